"""``pacha ui``: a local web app over any store (runs table, live charts, run pages, compare).

:class:`UiServer` serves the page (plain JavaScript and the vendored uPlot
in ``static/``, no build step, no CDN) and the JSON API of
:mod:`pacha_sdk.ui._api` over a :class:`StoreReader`: reads, and curation
(tags, notes, names, archive, delete, restore) written only through the
curation API, and not at all with ``read_only=True``. The command line is
``pacha ui`` (:mod:`pacha_sdk.cli.ui`).
"""

from __future__ import annotations

from pacha_sdk.ui._server import UiServer
from pacha_sdk.ui._store import StoreReader

__all__ = ["StoreReader", "UiServer"]
