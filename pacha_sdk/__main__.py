"""``python -m pacha_sdk``: the ``pacha`` command line (see :mod:`pacha_sdk.cli`)."""

from __future__ import annotations

import sys

from pacha_sdk.cli import main

if __name__ == "__main__":
    sys.exit(main())
