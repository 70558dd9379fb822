"""What watches a run from beside it: the system-metrics sampler and the console capture.

Both are optional (``system_metrics=``, ``capture_output=``), start with
the run and stop before its final flush, so the last samples and the whole
console log reach the store. Neither holds the run: the sampler logs
through the callable it is given, the capture writes to the key it is given.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pacha_sdk.tracking._capture import OutputCapture
from pacha_sdk.tracking._system_metrics import SystemMetricsSampler

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.deadlines import StoreCalls
    from pacha_sdk.tracking._system_metrics import LogMetrics

__all__ = ["Observers"]

logger = logging.getLogger("pacha_sdk")


class Observers:
    """The sampler (every *sample_every* seconds, or none) and the capture (to *output_key*)."""

    def __init__(
        self,
        *,
        run_id: str,
        log_metrics: LogMetrics,
        sample_every: float | None,
        backend: Backend,
        output_key: str | None,
        calls: StoreCalls,
    ) -> None:
        self._run_id = run_id
        self._calls = calls
        self._log_metrics = log_metrics
        self._sample_every = sample_every
        self._backend = backend
        self._output_key = output_key
        self._sampler: SystemMetricsSampler | None = None
        self._output: OutputCapture | None = None

    def start(self) -> None:
        """Start the sampler and the capture, as asked; a capture that cannot start is off."""
        if self._sample_every is not None:
            self._sampler = SystemMetricsSampler(
                self._log_metrics, self._sample_every, run_id=self._run_id
            )
            self._sampler.start()
        if self._output_key is not None:
            try:
                self._output = OutputCapture(self._backend, self._output_key, self._calls).start()
            except OSError as error:
                logger.warning("pacha: console capture is off for run %s: %s", self._run_id, error)

    def stop(self, timeout: float = 5.0) -> None:
        """Join the sampler (its last points go into the final flush); restore the streams.

        Waits at most *timeout* seconds for the sampler.
        """
        try:
            if self._sampler is not None:
                self._sampler.stop(timeout)
        finally:
            if self._output is not None:
                self._output.stop()

    def upload_output(self, *, final: bool, timeout: float) -> None:
        """Upload the console log so far (every flush), or whole (at the end), within *timeout*."""
        if self._output is not None:
            self._output.upload(final=final, timeout=timeout)
