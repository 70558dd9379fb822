"""Curation: what edits cost readers, and how long a delete and a restore take.

    python benchmarks/bench_curation.py [--runs 1000] [--edits 2] [--parts 20] [--uri URI]

Fills the root with --runs run records, times list_runs, then gives every
run --edits annotations and times list_runs again: the ratio is what
folding edits costs a listing (the annotation keys come from the same
listing of runs/, and are read in the same parallel batch as the records).
Then times delete_run and restore_run of one run with --parts part files.
--uri picks the store (default: a temporary local folder); pass
--storage-option key=value for object stores.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from typing import Any

from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import ExperimentRun, RunAnnotation, RunStatus
from pacha_sdk.storage import annotated, records


def fill(uri: str, options: dict[str, Any], runs: int) -> list[str]:
    """Write *runs* completed run records straight to the store (no points)."""
    backend = get_backend(uri, storage_options=options)
    made = []
    for index in range(runs):
        record = ExperimentRun(
            status=RunStatus.COMPLETED, extra={"name": f"run-{index}", "summary": {"acc": 0.5}}
        )
        records.write_run(backend, record)
        made.append(str(record.run_id))
    return made


def annotate_all(uri: str, options: dict[str, Any], run_ids: list[str], edits: int) -> None:
    backend = get_backend(uri, storage_options=options)

    def edit(run_id: str) -> None:
        for index in range(edits):
            note = RunAnnotation(run_id=run_id, add_tags={f"t{index}": ""}, note=f"edit {index}")
            annotated.write_annotation(backend, note)

    records.in_parallel(edit, run_ids)


def one_run(uri: str, options: dict[str, Any], parts: int) -> str:
    with pacha.run(uri=uri, storage_options=options, system_metrics=False) as run:
        for part in range(parts):
            for step in range(1000):
                run.log_metric("loss", 1 / (step + 1), part * 1000 + step)
            run.flush()
    return str(run.run_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=2)
    parser.add_argument("--parts", type=int, default=20)
    parser.add_argument("--uri")
    parser.add_argument("--storage-option", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    options: dict[str, Any] = dict(item.split("=", 1) for item in args.storage_option)
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.uri or tmp
        where = {"uri": uri, "storage_options": options}
        run_ids = fill(uri, options, args.runs)
        plain = best_of(args.repeats, lambda: timed(lambda: pacha.list_runs(**where)))
        annotate_all(uri, options, run_ids, args.edits)
        edited = best_of(args.repeats, lambda: timed(lambda: pacha.list_runs(**where)))
        assert all(r.note == f"edit {args.edits - 1}" for r in pacha.list_runs(**where))
        run_id = one_run(uri, options, args.parts)
        deleting = timed(lambda: pacha.delete_run(run_id, **where))
        restoring = timed(lambda: pacha.restore_run(run_id, **where))
    print(f"\nmachine: {machine()}")
    print(f"store: {args.uri or 'local temporary folder'}; {args.runs} runs")
    print_table(
        "Curation, seconds (best of repeats)",
        ["what", "seconds", "ratio"],
        [
            ["list_runs(), no edits", f"{plain:.3f}", "1.00x"],
            [f"list_runs(), {args.edits} edits per run", f"{edited:.3f}", f"{edited / plain:.2f}x"],
            [f"delete_run, {args.parts} part files", f"{deleting:.3f}", ""],
            [f"restore_run, {args.parts} part files", f"{restoring:.3f}", ""],
        ],
    )


if __name__ == "__main__":
    main()
