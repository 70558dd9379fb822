"""``pacha runs tag | untag | note | rename | archive | unarchive | delete | restore``.

Each command resolves every id it is given (any unique prefix) before it
changes anything, so a typo in the third id leaves the first two alone,
then calls :mod:`pacha_sdk.query.curation`. ``delete`` lists what it will
move to the trash and asks first; without a terminal to ask on it needs
``--yes``. ``restore`` looks among the deleted runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pacha_sdk.cli._args import add_json, add_store, run_ids, store
from pacha_sdk.cli._output import table
from pacha_sdk.exceptions import PachaError, RunNotFoundError
from pacha_sdk.query.curation import annotate, check_not_running, delete_run, restore_run
from pacha_sdk.query.read import load_run
from pacha_sdk.views.display import (
    deleted_overview,
    format_time,
    run_label,
    run_overview,
    short_id,
    status_text,
)

if TYPE_CHECKING:
    from pacha_sdk.cli import Commands
    from pacha_sdk.cli._output import Output
    from pacha_sdk.models import ExperimentRun, RunId

__all__ = ["register"]


def _tag_pair(text: str) -> tuple[str, str]:
    """``NAME`` or ``NAME=VALUE`` (the first ``=`` splits; ``NAME`` alone is valued ``""``)."""
    name, _, value = text.partition("=")
    return name, value


def _tags_text(record: ExperimentRun) -> str:
    tags = sorted(record.tags.items())
    return ", ".join(f"{name}={value}" if value else name for name, value in tags) or "no tags"


def _report(
    out: Output,
    args: argparse.Namespace,
    records: list[ExperimentRun],
    done: str,
    *,
    tags: bool = False,
) -> int:
    if args.json:
        out.json([run_overview(record) for record in records])
    else:
        for record in records:
            out.note(
                f"{done} {run_label(record)}" + (f"; tags: {_tags_text(record)}" if tags else "")
            )
    return 0


def _edit_one(args: argparse.Namespace, **edit: Any) -> ExperimentRun:
    return annotate(_one(args), **edit, **store(args))


def _one(args: argparse.Namespace) -> RunId:
    (run_id,) = run_ids(args, [args.run])
    return run_id


def cmd_tag(args: argparse.Namespace, out: Output) -> int:
    """Set tags on a run."""
    record = _edit_one(args, add_tags=dict(_tag_pair(tag) for tag in args.tags))
    return _report(out, args, [record], "tagged", tags=True)


def cmd_untag(args: argparse.Namespace, out: Output) -> int:
    """Remove tags from a run."""
    run_id = _one(args)
    before = load_run(run_id, **store(args)).tags
    if missing := [tag for tag in dict.fromkeys(args.tags) if tag not in before]:
        out.warn(f"run {short_id(run_id)} has no tag {', '.join(map(repr, missing))}")
    record = annotate(run_id, remove_tags=args.tags, **store(args))
    return _report(out, args, [record], "untagged", tags=True)


def cmd_note(args: argparse.Namespace, out: Output) -> int:
    """Replace a run's note ("-" reads it from stdin, "" clears it)."""
    text = sys.stdin.read() if args.text == "-" else args.text
    record = _edit_one(args, note=text)
    return _report(out, args, [record], "noted" if text else "cleared the note of")


def cmd_rename(args: argparse.Namespace, out: Output) -> int:
    """Give a run a new display name."""
    record = _edit_one(args, name=args.name)
    return _report(out, args, [record], "renamed")


def _set_archived(args: argparse.Namespace, out: Output, *, archived: bool) -> int:
    ids = run_ids(args, args.runs)
    records = [annotate(run_id, archived=archived, **store(args)) for run_id in ids]
    return _report(out, args, records, "archived" if archived else "unarchived")


def cmd_archive(args: argparse.Namespace, out: Output) -> int:
    """Hide runs from listings."""
    return _set_archived(args, out, archived=True)


def cmd_unarchive(args: argparse.Namespace, out: Output) -> int:
    """Show archived runs in listings again."""
    return _set_archived(args, out, archived=False)


# delete, restore


def _to_delete(
    args: argparse.Namespace, ids: list[RunId]
) -> list[tuple[RunId, ExperimentRun | None]]:
    """Each run to delete with its record (``None`` for one already on its way to the trash).

    A run that is still running is refused here, before anything is deleted.
    """
    found: list[tuple[RunId, ExperimentRun | None]] = []
    for run_id in ids:
        try:
            record: ExperimentRun | None = load_run(run_id, **store(args))
        except RunNotFoundError:
            record = None  # resolved in the trash: a deletion to finish
        if record is not None and not args.force:
            check_not_running(record)
        found.append((run_id, record))
    return found


def _confirmed(out: Output, runs: list[tuple[RunId, ExperimentRun | None]]) -> bool:
    grid = table(["id", "name", "status", "started"])
    for run_id, record in runs:
        if record is None:
            grid.add_row(short_id(run_id), "", "(in the trash: finish deleting)", "")
        else:
            name, started = record.name or "", format_time(record.started_at)
            grid.add_row(short_id(run_id), name, status_text(record), started)
    out.errors.print(grid)
    question = f"move {len(runs)} run(s) to the trash (restorable until gc empties it)? [y/N] "
    out.errors.print(question, end="")
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace, out: Output) -> int:
    """Move runs to the trash, after confirmation."""
    runs = _to_delete(args, run_ids(args, args.runs, trash=None))
    if not args.yes:
        if not sys.stdin.isatty():
            raise PachaError(
                f"not deleting {len(runs)} run(s) without confirmation: pass --yes "
                "(stdin is not a terminal to ask on)"
            )
        if not _confirmed(out, runs):
            out.note("nothing deleted")
            return 1
    deleted = [delete_run(run_id, force=args.force, **store(args)) for run_id, _ in runs]
    if args.json:
        out.json([deleted_overview(deletion) for deletion in deleted])
        return 0
    for deletion in deleted:
        label = run_label(deletion.record) if deletion.record else short_id(deletion.run_id)
        out.note(f"moved {label} to the trash ({len(deletion.keys)} file(s))")
    out.note(f"undo with: pacha runs restore {' '.join(short_id(d.run_id) for d in deleted)}")
    return 0


def cmd_restore(args: argparse.Namespace, out: Output) -> int:
    """Move deleted runs back from the trash."""
    ids = run_ids(args, args.runs, trash=True)
    records = [restore_run(run_id, **store(args)) for run_id in ids]
    return _report(out, args, records, "restored")


def _add(
    sub: Commands, name: str, help_text: str, handler: Any, *, many: bool = False
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    if many:
        parser.add_argument("runs", metavar="ID", nargs="+", help="run ids or unique prefixes")
    else:
        parser.add_argument("run", metavar="ID", help="a run id or a unique prefix of one")
    parser.set_defaults(handler=handler)
    return parser


def register(sub: Commands) -> list[argparse.ArgumentParser]:
    """Add the curation subcommands to ``pacha runs``; return their parsers."""
    tag = _add(sub, "tag", "set tags on a run (NAME or NAME=VALUE)", cmd_tag)
    tag.add_argument("tags", metavar="TAG", nargs="+", help="NAME or NAME=VALUE")
    untag = _add(sub, "untag", "remove tags from a run", cmd_untag)
    untag.add_argument("tags", metavar="NAME", nargs="+", help="a tag name")
    note = _add(sub, "note", "replace a run's note", cmd_note)
    note.add_argument(
        "text", metavar="TEXT", help='the note; "-" reads it from stdin, "" clears it'
    )
    rename = _add(sub, "rename", "give a run a new display name", cmd_rename)
    rename.add_argument("name", metavar="NAME", help="the new name")
    archive = _add(sub, "archive", "hide runs from listings", cmd_archive, many=True)
    unarchive = _add(sub, "unarchive", "show archived runs again", cmd_unarchive, many=True)
    delete = _add(sub, "delete", "move runs to the trash (asks first)", cmd_delete, many=True)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    delete.add_argument("--force", action="store_true", help="delete runs that are still running")
    restore = _add(sub, "restore", "move deleted runs back from the trash", cmd_restore, many=True)
    parsers = [tag, untag, note, rename, archive, unarchive, delete, restore]
    for parser in parsers:
        add_store(parser)
        add_json(parser, "the runs as changed")
    return parsers
