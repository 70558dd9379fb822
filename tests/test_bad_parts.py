"""One bad file under metrics/ never breaks reading everything else.

A part file cut short, an empty one, a Parquet file of another schema: a
read of every run (``read_metrics()``, ``metrics_dataset()``, ``pacha
report`` and ``pacha plot``) skips each with a warning naming it; a read of
exactly the broken run raises :class:`InvalidPartError` naming the file
(``bad_parts="skip"`` reads the rest), and the command line says so in one
line. A stray file that is not ``*.parquet`` is no part file: left out, as
engines leave it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pacha_sdk as pacha
from pacha_sdk.cli import main
from pacha_sdk.storage.schema import METRIC_SCHEMA

POINTS = 50


def _log(uri: str, name: str, flushes: int) -> str:
    with pacha.run(uri=uri, name=name, system_metrics=False, compact_parts=False) as run:
        for flush in range(flushes):
            for step in range(POINTS):
                run.log_metric("loss", 1.0 / (step + 1), flush * POINTS + step)
            assert run.flush(timeout=30)
    return run.run_id


class BrokenStore:
    """Two runs: ``good`` untouched, ``broken`` with one of each kind of bad file."""

    def __init__(self, root: Path) -> None:
        self.uri = str(root)
        self.good = _log(self.uri, "good", 1)
        self.broken = _log(self.uri, "broken", 2)
        folder = root / "metrics" / f"run_id={self.broken}"
        parts = sorted(folder.glob("part-*.parquet"))
        assert len(parts) == 2
        self.truncated = parts[0]
        data = self.truncated.read_bytes()
        self.truncated.write_bytes(data[: len(data) // 2])
        self.empty = folder / "part-0000000000000000-000009.parquet"
        self.empty.write_bytes(b"")
        self.foreign = folder / "part-foreign-000000.parquet"
        pq.write_table(pa.table({"foo": [1, 2], "name": ["x", "y"]}), self.foreign)
        self.stray = root / "metrics" / "notes.txt"
        self.stray.write_text("kept by hand")
        self.readme = folder / "README.md"
        self.readme.write_text("# broken run")
        (folder / ".DS_Store").write_bytes(b"\x00")  # hidden: ignored, as engines do
        self.bad = [self.truncated, self.empty, self.foreign]


@pytest.fixture
def broken(tmp_path: Path) -> BrokenStore:
    return BrokenStore(tmp_path / "store")


def _named(caught: Iterable[warnings.WarningMessage], path: Path) -> bool:
    return any(path.name in str(w.message) for w in caught)


def test_reading_every_run_skips_each_bad_file_with_a_warning(broken: BrokenStore) -> None:
    with pytest.warns(UserWarning, match="skipping") as caught:
        table = pacha.read_metrics(uri=broken.uri)

    assert sorted(table.column("run_id").unique().to_pylist()) == sorted(
        [broken.good, broken.broken]
    )
    assert table.num_rows == 2 * POINTS  # the good run, and the broken run's intact part
    assert table.filter(pa.compute.is_null(table["name"])).num_rows == 0
    for path in broken.bad:
        assert _named(caught, path), path
    assert len(caught) == len(broken.bad)
    assert "0 bytes" in str(next(w.message for w in caught if broken.empty.name in str(w.message)))


def test_metrics_dataset_leaves_the_bad_files_out(broken: BrokenStore) -> None:
    with pytest.warns(UserWarning, match="skipping") as caught:
        dataset = pacha.metrics_dataset(broken.uri)
    assert len(caught) == len(broken.bad)
    assert dataset.to_table().num_rows == 2 * POINTS
    losses = dataset.to_table(filter=ds.field("run_id") == broken.good)
    assert losses.num_rows == POINTS


def test_metrics_dataset_can_skip_the_footer_check(broken: BrokenStore) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = pacha.metrics_dataset(broken.uri, check_parts=False)
    assert len(dataset.files) == 1 + 4  # the good run's part; the broken run's .parquet files
    with pytest.raises(pa.ArrowInvalid):  # what pyarrow says: asked for, not a surprise
        dataset.to_table()


def test_reading_exactly_the_broken_run_raises_naming_the_file(broken: BrokenStore) -> None:
    with pytest.raises(pacha.InvalidPartError) as caught:
        pacha.read_metrics(broken.broken, uri=broken.uri)
    error = caught.value
    assert isinstance(error, pacha.PachaError)
    assert isinstance(error, pacha.InvalidRecordError)  # a stored file that cannot be read
    assert isinstance(error, ValueError)
    assert error.location.endswith(".parquet")
    assert Path(error.location).name in {broken.truncated.name, broken.empty.name}
    assert "bad_parts='skip'" in str(error)

    with pytest.warns(UserWarning, match="skipping") as skipped:
        table = pacha.read_metrics(broken.broken, uri=broken.uri, bad_parts="skip")
    assert table.num_rows == POINTS
    for path in broken.bad:
        assert _named(skipped, path), path
    assert not _named(skipped, broken.readme)


def test_the_other_runs_read_as_before(broken: BrokenStore) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = pacha.read_metrics(broken.good, uri=broken.uri)
    assert table.num_rows == POINTS


def test_a_store_of_bad_files_only_reads_as_empty(tmp_path: Path) -> None:
    root = tmp_path / "store"
    run_id = _log(str(root), "r", 1)
    (part,) = (root / "metrics" / f"run_id={run_id}").glob("*.parquet")
    part.write_bytes(b"PAR1")
    with pytest.warns(UserWarning, match=part.name):
        table = pacha.read_metrics(uri=str(root))
    assert table.num_rows == 0
    assert table.schema == METRIC_SCHEMA


def test_bad_parts_must_be_raise_or_skip(broken: BrokenStore) -> None:
    with pytest.raises(ValueError, match="bad_parts"):
        pacha.read_metrics(broken.good, uri=broken.uri, bad_parts="ignore")  # type: ignore[arg-type]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_line_names_the_bad_file_in_one_line(
    broken: BrokenStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _cli(capsys, "metrics", "--uri", broken.uri, broken.broken[:8])
    assert code == 1
    (error,) = err.splitlines()
    assert error.startswith("pacha: error: ")
    assert "is not a readable metric part file" in error
    assert "Traceback" not in err

    code, out, err = _cli(capsys, "metrics", "--uri", broken.uri, broken.good[:8], "--json")
    assert code == 0
    assert err == ""

    report = tmp_path / "report.html"
    code, out, err = _cli(capsys, "report", "--uri", broken.uri, "--output", str(report))
    assert code == 0, err
    assert "wrote" in out
    assert all(path.name in err for path in broken.bad), err
    assert "Traceback" not in err
    assert report.read_text().count('class="chart"') == 1

    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    ids = (broken.broken[:8], broken.good[:8])
    argv = ("plot", *ids, "--uri", broken.uri, "--name", "loss", "-o", str(png))
    code, out, err = _cli(capsys, *argv)
    assert code == 0, err
    assert png.stat().st_size > 0
    assert broken.truncated.name in err
