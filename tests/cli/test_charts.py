"""``pacha metrics``, ``pacha plot`` (PNG) and ``pacha report`` (HTML, opened in Chromium)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

import pacha_sdk as pacha

if TYPE_CHECKING:
    from tests.cli.conftest import Cli, Store


def test_metrics_json_is_every_point(cli: Cli, shared_store: Store) -> None:
    run_id = shared_store.runs["bert-0"]
    points = cli.ok("metrics", run_id[:8], "--uri", shared_store.uri, "--json").json()
    assert len(points) == 40
    assert {p["name"] for p in points} == {"loss", "acc"}
    loss = [p for p in points if p["name"] == "loss"]
    assert [p["step"] for p in loss] == list(range(20))
    assert loss[0]["value"] == 2.0
    assert loss[0]["run_id"] == run_id
    assert loss[0]["timestamp"].endswith("Z")


def test_metrics_nan_is_null_in_json(cli: Cli, shared_store: Store) -> None:
    points = cli.ok("metrics", shared_store.runs["diverged"], "--uri", shared_store.uri, "--json")
    assert points.json()[0]["value"] is None


def test_metrics_csv_and_name_filter(cli: Cli, shared_store: Store) -> None:
    ids = [shared_store.runs["bert-0"], shared_store.runs["bert-1"]]
    out = cli.ok("metrics", *ids, "--name", "acc", "--format", "csv", "--uri", shared_store.uri)
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert len(rows) == 40
    assert {row["name"] for row in rows} == {"acc"}
    assert {row["run_id"] for row in rows} == set(ids)


def test_metrics_parquet_file(cli: Cli, shared_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "points.parquet"
    ids = list(shared_store.runs.values())
    result = cli.ok(
        "metrics", *ids, "--format", "parquet", "-o", str(target), "--uri", shared_store.uri
    )
    assert result.out.startswith("wrote 81 points of 4 run(s)")
    table = pq.read_table(target)
    assert table.num_rows == 81
    assert table.column_names == ["run_id", "name", "step", "value", "timestamp", "rank"]


def test_metrics_format_follows_the_output_suffix(
    cli: Cli, shared_store: Store, tmp_path: Path
) -> None:
    run_id = shared_store.runs["bert-0"]
    for suffix in [".parquet", ".json", ".csv"]:
        cli.ok("metrics", run_id, "-o", f"points{suffix}", "--uri", shared_store.uri)
    assert pq.read_table(tmp_path / "points.parquet").num_rows == 40
    assert len(json.loads((tmp_path / "points.json").read_text())) == 40
    assert len((tmp_path / "points.csv").read_text().splitlines()) == 41
    table = tmp_path / "points.txt"
    cli.ok("metrics", run_id, "--format", "table", "-o", str(table), "--uri", shared_store.uri)
    assert table.read_text().split()[:5] == ["run", "metric", "step", "value", "timestamp"]


def test_metrics_table(cli: Cli, shared_store: Store) -> None:
    run_id = shared_store.runs["bert-1"]
    out = cli.ok("metrics", run_id, "--name", "loss", "--uri", shared_store.uri).out
    header, _, *rows = out.splitlines()
    assert header.split() == ["run", "metric", "step", "value", "timestamp"]
    assert len(rows) == 20
    assert rows[0].split()[:4] == [run_id[:8], "loss", "0", "2"]


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking every chunk's CRC and the pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, dict[bytes, bytes]()
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {2: 3, 6: 4}[colour]
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + width * channels * depth // 8)
    return width, height


def test_plot_writes_a_png_of_the_asked_size(cli: Cli, shared_store: Store, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ids = [shared_store.runs["bert-0"][:8], shared_store.runs["bert-1"][:8]]
    target = tmp_path / "loss.png"
    argv = ["plot", *ids, "--name", "loss", "-o", str(target), "--width", "640", "--height", "360"]
    result = cli.ok(*argv, "--uri", shared_store.uri)
    assert result.out == f"wrote {target} (640x360 px, 2 run(s))\n"
    assert _png_size(target) == (640, 360)
    image = pytest.importorskip("PIL.Image")
    with image.open(target) as png:
        assert png.size == (640, 360)


def test_plot_default_name_and_size(cli: Cli, shared_store: Store, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cli.ok("plot", shared_store.runs["bert-0"], "--name", "acc", "--uri", shared_store.uri)
    assert _png_size(tmp_path / "acc.png") == (800, 500)  # the tests run in tmp_path


def test_plot_unknown_metric(cli: Cli, shared_store: Store) -> None:
    pytest.importorskip("matplotlib")
    result = cli("plot", shared_store.runs["bert-0"], "--name", "nope", "--uri", shared_store.uri)
    assert result.code == 1
    assert result.err.startswith("pacha: error: no points of metric 'nope'")
    assert "acc, loss" in result.err


def test_plot_without_matplotlib(
    cli: Cli, shared_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = cli("plot", shared_store.runs["bert-0"], "--name", "loss", "--uri", shared_store.uri)
    assert result.code == 1
    assert result.err == (
        "pacha: error: PNG charts need matplotlib, which is not installed: "
        "pip install 'pacha-sdk[plot]'\n"
    )
    with pytest.raises(pacha.ExtraNotInstalledError):
        pacha.plot_metric(shared_store.runs["bert-0"], "loss", "x.png", uri=shared_store.uri)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: apt-get install -y chromium")
        pytest.skip("chromium is not installed")
    return binary


def _dump_dom(page: Path, profile: Path) -> str:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={profile}",
    ]  # fmt: skip
    done = subprocess.run(
        [_chromium(), *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_opens_in_chromium_with_one_chart_per_metric(
    cli: Cli, shared_store: Store, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = cli.ok("report", "--output", str(page), "--uri", shared_store.uri)
    assert result.out == f"wrote {page} (4 run(s))\n"
    html = page.read_text()
    assert "http" not in html  # nothing to fetch: no CDN, no font, no script source
    assert "<script" not in html
    dom = _dump_dom(page, tmp_path / "chromium-profile")
    charts = re.findall(r'<figure class="chart" data-metric="([^"]+)">(.*?)</figure>', dom, re.S)
    assert [name for name, _ in charts] == ["acc", "loss"]
    for name, chart in charts:
        assert chart.count("<svg") == 1
        curves = chart.count("<path") + chart.count("<circle")
        assert curves == 2, name  # bert-0 and bert-1; the diverged run's only loss is NaN
    table = re.search(r'<table class="runs">.*?</table>', dom, re.S)
    assert table is not None
    assert table.group(0).count("<tr>") == 5  # header and four runs
    for run_id in shared_store.runs.values():
        assert run_id[:8] in table.group(0)


def test_report_of_chosen_runs_and_metric(cli: Cli, shared_store: Store, tmp_path: Path) -> None:
    page = tmp_path / "loss.html"
    ids = [shared_store.runs["bert-1"][:8], shared_store.runs["diverged"][:8]]
    cli.ok("report", *ids, "--name", "loss", "-o", str(page), "--uri", shared_store.uri)
    html = page.read_text()
    assert re.findall(r'data-metric="([^"]+)"', html) == ["loss"]
    assert html.count("<path") == 1  # the diverged run's NaN point draws nothing


def test_report_thins_long_curves_and_keeps_spikes() -> None:
    from pacha_sdk.views import report

    steps = list(range(100_000))
    values = [1.0] * len(steps)
    values[54_321] = 50.0  # one spike
    kept = report._thin(steps, values)
    assert len(kept) <= report.MAX_POINTS
    assert (54_321, 50.0) in kept
    assert [s for s, _ in kept] == sorted(s for s, _ in kept)
    assert report._ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert report._ticks(0, 49) == [0, 10, 20, 30, 40]
