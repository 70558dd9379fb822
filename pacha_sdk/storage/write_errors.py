"""What went wrong while a writer wrote, kept for the run's end and logged without a flood.

The writer meets three kinds of trouble, and :class:`WriteErrors` keeps
each apart so the end of the run can say exactly what happened:

* the store failing (kept as :attr:`WriteErrors.store`): the points wait in
  the spool, or in memory if the spool refuses them too;
* the spool failing (:attr:`WriteErrors.spool`): logged once per kind of
  error, at WARNING, since a healthy store still gets every point;
* an error the writer did not expect, such as a batch that cannot be
  encoded (:meth:`WriteErrors.unexpected`): logged once per kind at ERROR
  with its traceback, its points counted in :attr:`WriteErrors.points_lost`.

:attr:`WriteErrors.last` is whichever came last; the run shows it as
``run.last_error`` from the moment it happens.
"""

from __future__ import annotations

import logging

__all__ = ["WriteErrors", "describe_error"]

logger = logging.getLogger("pacha_sdk")


def describe_error(error: BaseException) -> str:
    """``"TypeName: message"``, as reports name an error."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class WriteErrors:
    """The errors one writer met, and the points it lost to them."""

    def __init__(self, run_id: str, spool_path: str) -> None:
        self._run_id = run_id
        self._spool_path = spool_path
        self._logged: set[tuple[str, str]] = set()
        self.last: BaseException | None = None
        """The latest error of any kind (never cleared)."""
        self.store: BaseException | None = None
        """The latest error the store gave."""
        self.spool: BaseException | None = None
        """The latest error the spool gave."""
        self.unexpected_error: BaseException | None = None
        """The latest error the writer did not expect (a bug)."""
        self.points_lost = 0
        """Points gone for good (a batch that could not be encoded)."""

    def store_failed(self, error: BaseException) -> None:
        """The store refused or did not answer; the caller logs it with where the points are."""
        self.last = self.store = error

    def spool_failed(self, error: OSError) -> None:
        """The spool refused a part: logged once per kind of error."""
        self.last = self.spool = error
        if self._first(("spool", f"{type(error).__name__}:{error.errno}")):
            logger.warning(
                "pacha: cannot keep points in the spool at %s (%s); until it can, unstored "
                "points wait in memory, and a killed process loses them",
                self._spool_path,
                describe_error(error),
            )

    def unexpected(self, what: str, error: BaseException, *, points_lost: int = 0) -> None:
        """An error the writer did not expect: logged once per kind, with its traceback."""
        self.last = self.unexpected_error = error
        self.points_lost += points_lost
        if self._first((what, type(error).__name__)):
            logger.error(
                "pacha: %s of run %s (%s); the writer goes on. This is a bug in pacha-sdk: "
                "please report it with the traceback below",
                what,
                self._run_id,
                describe_error(error),
                exc_info=error,
            )

    def causes(self) -> str:
        """What kept points from being stored, for the run's end: ``"store: ...; spool: ..."``."""
        said = []
        if self.store is not None:
            said.append(f"the store failed ({describe_error(self.store)})")
        if self.spool is not None:
            said.append(f"the spool at {self._spool_path} failed ({describe_error(self.spool)})")
        if self.unexpected_error is not None:
            said.append(describe_error(self.unexpected_error))
        return "; ".join(said) or "the writer did not finish in time"

    def _first(self, kind: tuple[str, str]) -> bool:
        if kind in self._logged:
            return False
        self._logged.add(kind)
        return True
