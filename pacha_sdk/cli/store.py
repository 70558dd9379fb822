"""``pacha sync``, ``pacha gc`` and ``pacha compact``: store upkeep.

``pacha sync`` finishes spooled uploads; ``pacha gc`` removes what no run
needs (``--trash-older-than 7d`` also empties the trash of runs deleted a
week ago or more; without it the trash is kept); ``pacha compact [ID...]``
merges the part files of runs that no live writer merges (every run when
no id is given). ``compact`` exits with 1 when a part could not be read
(left in place, named on stderr) or a run named on the command line was
skipped (running, or in the trash).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pacha_sdk.cli._args import add_json, add_store, duration, run_ids, seconds, store
from pacha_sdk.exceptions import StoreError
from pacha_sdk.query.compacting import compact
from pacha_sdk.query.maintenance import TEMP_FILE_AGE, gc, pending_spools
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
            temp_older_than=args.temp_older_than,
            **store(args),
        )
    parts = len(report.parts) + len(report.covered_parts)
    count = len(report.blobs) + parts + len(report.trash) + len(report.temp_files)
    count += len(report.snapshots)
    if args.json:
        keys = {"blobs": report.blobs, "parts": report.parts, "trash": report.trash}
        keys["covered_parts"] = report.covered_parts
        keys["snapshots"] = report.snapshots
        temps = {"temp_files": report.temp_files, "recent_temp_files": report.recent_temp_files}
        out.json({"deleted": report.deleted, **keys, **temps})
        return 0
    trash = (f"trash/{run_id}" for run_id in report.trash)
    listed = [*report.blobs, *report.parts, *report.covered_parts, *trash, *report.temp_files]
    for key in [*listed, *report.snapshots]:
        out.print(key)
    verb = "deleted" if report.deleted else "would delete"
    hint = "" if report.deleted or not count else " (dry run: pass --yes to delete)"
    counts = [f"{len(report.blobs)} artifact blob(s)", f"{parts} part file(s)"]
    if report.trash:
        counts.append(f"{len(report.trash)} run(s) from the trash")
    if report.temp_files:
        counts.append(f"{len(report.temp_files)} temporary file(s)")
    if report.snapshots:
        counts.append(f"{len(report.snapshots)} superseded records snapshot(s)")
    out.note(f"{verb} {', '.join(counts[:-1])} and {counts[-1]}{hint}")
    _note_recent_temp_files(report.recent_temp_files, args.temp_older_than, out)
    return 0


def _note_recent_temp_files(recent: list[str], older_than: float, out: Output) -> None:
    """Say that temporary files written to recently were kept (a write may be under way)."""
    if recent:
        count = len(recent)
        out.note(
            f"{count} temporary file{'s' if count > 1 else ''} written to in the last "
            f"{older_than:g} s {'are' if count > 1 else 'is'} kept "
            "(a write may be under way; --temp-older-than changes that)"
        )


def cmd_compact(args: argparse.Namespace, out: Output) -> int:
    """Merge the part files of the runs given (every run if none)."""
    wanted = run_ids(args, args.run_ids, trash=None) if args.run_ids else None
    report = compact(wanted, **store(args))
    if args.json:
        out.json(
            {
                "runs": [vars(run) for run in report.runs],
                "records_snapshot": report.records_snapshot,
            }
        )
    else:
        for run in report.runs:
            if run.skipped is not None:
                out.print(f"{run.run_id}: skipped, {run.skipped}")
            elif run.parts_before != run.parts_after or run.removed:
                extra = f", {len(run.left)} left to delete" if run.left else ""
                out.print(f"{run.run_id}: {run.parts_before} -> {run.parts_after} part(s){extra}")
        for problem in report.unreadable:
            out.warn(f"left in place, unreadable: {problem}")
        compacted = [run for run in report.runs if run.skipped is None]
        out.note(
            f"{len(compacted)} run(s): {report.parts_before} -> {report.parts_after} part file(s)"
            + (f"; {len(report.skipped)} skipped" if report.skipped else "")
            + (f"; wrote {report.records_snapshot}" if report.records_snapshot else "")
        )
    refused = bool(wanted) and bool(report.skipped)
    return 1 if report.unreadable or refused else 0


def register(commands: Commands) -> None:
    """Add ``sync``, ``gc`` and ``compact``."""
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
    collect.add_argument(
        "--temp-older-than",
        metavar="SECONDS",
        type=seconds,
        default=TEMP_FILE_AGE,
        help="collect temporary files of interrupted writes once unwritten this long "
        f"(default {TEMP_FILE_AGE:g}: a write under way keeps its file)",
    )
    add_store(collect)
    add_json(collect)
    collect.set_defaults(handler=cmd_gc)

    compacting = commands.add_parser(
        "compact", help="merge runs' small part files (runs that died, older runs, every rank)"
    )
    compacting.add_argument("run_ids", nargs="*", metavar="ID", help="runs (default: every run)")
    add_store(compacting)
    add_json(compacting)
    compacting.set_defaults(handler=cmd_compact)
