"""``python -m pacha_sdk``: command-line entry point.

Today it offers ``sync`` (finish uploads left in the local spool); the
full command line (list, show, compare, plot) builds on the same API.
"""

from __future__ import annotations

import argparse
import sys

from pacha_sdk.exceptions import PachaError
from pacha_sdk.sync import sync


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m pacha_sdk")
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="upload what runs left in the local spool")
    sync_parser.add_argument("spool", nargs="?", help="spool folder (default: the user's spool)")
    args = parser.parse_args(argv)
    try:
        report = sync(args.spool)
    except PachaError as error:
        print(f"pacha: {error}", file=sys.stderr)
        return 1
    print(f"synced {report.parts} parts and {report.records} records of {len(report.runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
