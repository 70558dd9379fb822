"""Which run is active in this thread or asyncio task.

A :class:`contextvars.ContextVar` rather than mlflow's process-global
stack: each thread and each asyncio task sees its own innermost run.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pacha_sdk.tracking.run import Run

__all__ = ["current_run", "pop_run", "push_run"]

_active: ContextVar[Run | None] = ContextVar("pacha_active_run", default=None)


def current_run() -> Run | None:
    """The innermost active run of this thread / task, or ``None``."""
    return _active.get()


def push_run(run: Run) -> Token[Run | None]:
    """Make *run* the active run; keep the token to restore the previous one."""
    return _active.set(run)


def pop_run(token: Token[Run | None]) -> None:
    """Restore the run that was active before :func:`push_run` returned *token*."""
    try:
        _active.reset(token)
    except ValueError:  # token from another context (e.g. exit in another task)
        _active.set(None)
