"""The vendored uPlot files are the pinned release's, byte for byte (no network needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vendor_uplot.py"


def test_vendored_uplot_matches_its_pins() -> None:
    spec = importlib.util.spec_from_file_location("vendor_uplot", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check_vendored() == []
    assert set(module.VENDOR.iterdir()) == {
        module.VENDOR / name for name, _ in module.FILES.values()
    }


def test_every_served_file_is_package_data() -> None:
    from importlib import resources

    from pacha_sdk.ui._server import STATIC_FILES

    static = resources.files("pacha_sdk.ui").joinpath("static")
    for file_name, _ in STATIC_FILES.values():
        assert static.joinpath(*file_name.split("/")).is_file(), file_name
