"""Options every command shares: the store (``--uri``, ``--storage-option``) and ``--json``."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pacha_sdk.query.maintenance import resolve_run_id

if TYPE_CHECKING:
    from pacha_sdk.models import RunId

__all__ = [
    "add_json",
    "add_store",
    "duration",
    "positive_int",
    "run_ids",
    "seconds",
    "storage_option",
    "store",
]


def storage_option(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``: ``true``/``false`` and JSON objects or lists are decoded.

    Everything else stays a string, so an all-digit access key is not
    turned into a number.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value in ("true", "false"):
        return key.strip(), value == "true"
    if value[:1] in ("{", "["):
        try:
            return key.strip(), json.loads(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{key}: invalid JSON: {error}") from None
    return key.strip(), value


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--limit``, ``--dpi``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def seconds(text: str) -> float:
    """A non-negative number of seconds (``--older-than``)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """A length of time in seconds: ``90``, ``90s``, ``30m``, ``12h``, ``7d`` or ``2w``."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 7d, 12h, 30m or 90s, got {text!r}"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _uri(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the store URI must not be empty")
    return text


def add_store(parser: argparse.ArgumentParser, *, uri_help: str | None = None) -> None:
    """Add ``--uri`` and the repeatable ``--storage-option KEY=VALUE``."""
    parser.add_argument(
        "--uri",
        type=_uri,
        help=uri_help or "the store (default: $PACHA_URI, else ./pacha-runs)",
    )
    parser.add_argument(
        "--storage-option",
        dest="storage_options",
        metavar="KEY=VALUE",
        type=storage_option,
        action="append",
        default=[],
        help="a setting for the store's client, e.g. endpoint_url=http://127.0.0.1:9000 "
        "(repeatable; true/false and JSON objects are decoded)",
    )


def add_json(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    """Add ``--json``: machine-readable output on stdout."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def store(args: argparse.Namespace) -> dict[str, Any]:
    """``uri`` and ``storage_options`` keywords for the library calls."""
    options = dict(args.storage_options)
    return {"uri": args.uri, "storage_options": options or None}


def run_ids(
    args: argparse.Namespace, prefixes: Sequence[str], *, trash: bool | None = False
) -> list[RunId]:
    """Full run ids for the ids or unique prefixes given on the command line, once each.

    *trash* says where to look, as :func:`resolve_run_id` takes it. Every
    id is resolved before the command changes anything.
    """
    resolved = [resolve_run_id(prefix, **store(args), trash=trash) for prefix in prefixes]
    return list(dict.fromkeys(resolved))
