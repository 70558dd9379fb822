"""``memory://`` — a process-local store for examples and fast tests.

Built on fsspec's ``MemoryFileSystem``, whose store is one class-global dict:
every backend opened on ``memory://exp`` in the same process sees the same
objects, so a run written by one ``pacha.run`` is readable by ``read_metrics``.
Nothing survives the process.

fsspec's create-only write on this filesystem is exists-then-write, so two
threads could both "create" a key; a module-level lock makes the check and the
write one step. ``replace`` takes the same lock so it cannot slip in between.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from pacha_sdk.backends._fsspec import FsspecBackend
from pacha_sdk.backends.base import Backend, Readable

__all__ = ["MemoryBackend"]

_write_lock = threading.Lock()


class MemoryBackend(FsspecBackend):
    """Objects in fsspec's shared in-memory filesystem; ``memory://exp`` is rooted at ``/exp``."""

    scheme: ClassVar[str | tuple[str, ...]] = "memory"
    write_ahead: ClassVar[bool] = False

    def _open_filesystem(self) -> tuple[Any, str]:
        """Return the shared memory filesystem and ``/<path>`` for ``<scheme>://<path>``."""
        from fsspec.implementations.memory import MemoryFileSystem

        path = self.uri.split("://", 1)[-1]
        return MemoryFileSystem(**self._storage_options), "/" + path.strip("/")

    def write_new(self, key: str, data: bytes) -> None:
        """Create the object at *key*; raise :class:`FileExistsError` if it exists."""
        with _write_lock:
            super().write_new(key, data)

    def write_new_from(self, key: str, source: Readable) -> None:
        """Create the object at *key* from *source* (read whole: memory holds it anyway)."""
        Backend.write_new_from(self, key, source)

    def replace(self, key: str, data: bytes) -> None:
        """Create or replace the object at *key*; readers see old or new, whole."""
        with _write_lock:
            super().replace(key, data)
