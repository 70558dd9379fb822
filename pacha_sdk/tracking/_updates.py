"""What a running run still takes: hyperparameters and tags added after the start.

Frameworks (Lightning, accelerate) hand over their configuration only once
the run exists. What is added changes the record in memory, under the
keeper's lock; the writer's next heartbeat, and the final write, put it in
``run.json``. No I/O happens on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk._names import tags_dict
from pacha_sdk.tracking._hparams import update_hyperparameters
from pacha_sdk.tracking._lenient import convert_leniently
from pacha_sdk.tracking._view import RunView

if TYPE_CHECKING:
    from pacha_sdk.models import Hyperparameters

__all__ = ["RunUpdates"]


class RunUpdates(RunView):
    """``log_hyperparams`` and ``add_tags`` of :class:`~pacha_sdk.tracking.run.Run`."""

    def log_hyperparams(
        self, hparams: Hyperparameters | Mapping[str, Any], *, lenient: bool = False
    ) -> None:
        """Add or update hyperparameters; they reach ``run.json`` at the next flush.

        Keys it names replace the current values (a named field such as
        ``learning_rate``, or a ``custom`` key); others stay as they are.
        The rules are those of :func:`pacha_sdk.run`: a value that cannot be
        stored raises :class:`InvalidHyperparameterError` and nothing changes;
        a run that is not running raises :class:`RunStateError`. With
        ``lenient=True`` (framework configs), the mapping goes through
        :func:`pacha_sdk.lenient_hparams` first, so this never raises over a
        value: what cannot be kept is left out with one warning. In
        distributed training rank 0 records them; on other ranks the values
        are checked and kept in memory only.
        """
        self._require_running("log hyperparameters")
        if lenient:
            hparams = convert_leniently(hparams, stacklevel=3)
        with self._keeper.lock:
            self._record.hyperparameters = self._secrets.hyperparameters(
                update_hyperparameters(self._record.hyperparameters, hparams), stacklevel=3
            )

    def add_tags(self, tags: Mapping[str, Any] | Iterable[str]) -> None:
        """Add or update tags (a ``{name: value}`` mapping or a list of names), as ``tags=`` does.

        They reach ``run.json`` at the next flush (and at the end).
        """
        self._require_running("add tags")
        added = tags_dict(tags)
        with self._keeper.lock:
            self._record.extra["tags"] = {**self._record.tags, **added}
