#!/usr/bin/env python3
"""Re-fetch the vendored uPlot release with ``npm pack`` and check its integrity.

``pacha ui`` draws its charts with uPlot (MIT), vendored as package data in
``pacha_sdk/ui/static/vendor/`` so the wheel builds without Node and the
page loads nothing from a CDN. This script is how those files got there:

    python scripts/vendor_uplot.py           # fetch, verify, write the files
    python scripts/vendor_uplot.py --check   # only verify the vendored files (offline)

The tarball must match the registry's pinned ``dist.integrity`` (sha512,
from ``npm view uplot@1.6.32 dist.integrity``) and each file its pinned
sha256 below; any difference stops the script before a file is written.
To move to another version, change the pins after reviewing the release.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "1.6.32"
INTEGRITY = (
    "sha512-"
    "KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
)
FILES = {
    # name in the tarball -> (name in vendor/, sha256)
    "package/dist/uPlot.iife.min.js": (
        "uPlot.iife.min.js",
        "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    ),
    "package/dist/uPlot.min.css": (
        "uPlot.min.css",
        "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    ),
    "package/LICENSE": (
        "uPlot.LICENSE",
        "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
    ),
}
VENDOR = Path(__file__).resolve().parent.parent / "pacha_sdk" / "ui" / "static" / "vendor"


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def check_vendored(folder: Path = VENDOR) -> list[str]:
    """Return a problem per vendored file that is missing or differs from its pin."""
    problems = []
    for name, digest in FILES.values():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{path} does not match its pinned sha256")
    return problems


def fetch(folder: Path = VENDOR) -> None:
    """``npm pack`` the pinned release, verify tarball and files, then write them."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", f"uplot@{VERSION}", "--silent"],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
        data = tarball.read_bytes()
        if _sri(data) != INTEGRITY:
            sys.exit(f"uplot@{VERSION}: tarball integrity {_sri(data)} is not the pinned one")
        contents: dict[str, bytes] = {}
        with tarfile.open(tarball) as archive:
            for member, (name, digest) in FILES.items():
                extracted = archive.extractfile(member)
                if extracted is None:
                    sys.exit(f"uplot@{VERSION}: {member} is not a file in the tarball")
                blob = extracted.read()
                if hashlib.sha256(blob).hexdigest() != digest:
                    sys.exit(f"uplot@{VERSION}: {member} does not match its pinned sha256")
                contents[name] = blob
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in contents.items():
        (folder / name).write_bytes(blob)
    print(f"vendored uplot@{VERSION} into {folder}")


def main() -> int:
    """Fetch (default) or only check (``--check``) the vendored files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify the vendored files")
    if parser.parse_args().check:
        problems = check_vendored()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    fetch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
