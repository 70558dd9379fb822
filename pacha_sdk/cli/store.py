"""``pacha sync`` and ``pacha gc``: finish spooled uploads, remove what no run needs.

``pacha gc --trash-older-than 7d`` also empties the trash of runs deleted a
week ago or more; without it the trash is kept.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pacha_sdk.cli._args import add_json, add_store, duration, store
from pacha_sdk.exceptions import StoreError
from pacha_sdk.query.maintenance import gc, pending_spools
from pacha_sdk.storage.sync import SyncReport, sync

if TYPE_CHECKING:
    from pacha_sdk.cli import Commands
    from pacha_sdk.cli._output import Output

__all__ = ["register"]


def _sync_each(
    folders: list[str], args: argparse.Namespace, out: Output
) -> tuple[SyncReport, list[str]]:
    """Sync folder by folder (the progress bar counts them); collect failures, go on."""
    total = SyncReport()
    failures: list[str] = []
    options = store(args)["storage_options"]
    with out.progress("uploading spooled runs") as update:
        for done_folders, folder in enumerate(folders, 1):
            try:
                done = sync(folder, storage_options=options)
            except StoreError as error:
                failures.append(str(error))
            else:
                total.runs |= done.runs
                total.parts += done.parts
                total.records += done.records
                total.kept_newer += done.kept_newer
            update(done_folders, len(folders))
    return total, failures


def cmd_sync(args: argparse.Namespace, out: Output) -> int:
    """Upload what runs left in the local spool."""
    folders = pending_spools(args.spool, **store(args))
    report, failures = _sync_each(folders, args, out)
    if args.json:
        summary = {"runs": sorted(report.runs), "parts": report.parts, "records": report.records}
        out.json({**summary, "kept_newer": report.kept_newer, "failed": failures})
    else:
        kept = f"; kept {report.kept_newer} newer stored record(s)" if report.kept_newer else ""
        out.print(
            f"synced {report.parts} part(s) and {report.records} record(s) "
            f"of {len(report.runs)} run(s){kept}"
        )
    if failures:
        raise StoreError("; ".join(failures))
    return 0


def cmd_gc(args: argparse.Namespace, out: Output) -> int:
    """Find, and with --yes delete, unreferenced blobs, orphaned parts and old trash."""
    with out.progress("deleting") as update:
        report = gc(
            delete=args.yes,
            progress=update,
            trash_older_than=args.trash_older_than,
            **store(args),
        )
    count = len(report.blobs) + len(report.parts) + len(report.trash)
    if args.json:
        keys = {"blobs": report.blobs, "parts": report.parts, "trash": report.trash}
        out.json({"deleted": report.deleted, **keys})
        return 0
    for key in [*report.blobs, *report.parts, *(f"trash/{run_id}" for run_id in report.trash)]:
        out.print(key)
    verb = "deleted" if report.deleted else "would delete"
    hint = "" if report.deleted or not count else " (dry run: pass --yes to delete)"
    counts = [f"{len(report.blobs)} artifact blob(s)", f"{len(report.parts)} part file(s)"]
    if report.trash:
        counts.append(f"{len(report.trash)} run(s) from the trash")
    out.note(f"{verb} {', '.join(counts[:-1])} and {counts[-1]}{hint}")
    return 0


def register(commands: Commands) -> None:
    """Add ``sync`` and ``gc``."""
    syncing = commands.add_parser("sync", help="finish uploads left in the local spool")
    syncing.add_argument(
        "spool", nargs="?", help="spool folder (default: $PACHA_SPOOL_DIR, else ~/.cache/...)"
    )
    add_store(syncing, uri_help="only what is bound for this store (default: every store)")
    add_json(syncing)
    syncing.set_defaults(handler=cmd_sync)

    collect = commands.add_parser(
        "gc", help="remove unreferenced artifact blobs and orphaned part files (dry run by default)"
    )
    collect.add_argument(
        "--yes",
        "--delete",
        dest="yes",
        action="store_true",
        help="delete them (default: only list)",
    )
    collect.add_argument(
        "--trash-older-than",
        type=duration,
        metavar="DURATION",
        help="also empty, for good, the runs deleted at least this long ago "
        "(7d, 12h, 30m, 90s; 0 empties the whole trash)",
    )
    add_store(collect)
    add_json(collect)
    collect.set_defaults(handler=cmd_gc)
