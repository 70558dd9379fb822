"""``pacha ui``: serve the web app over a store until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import sys
import threading
import webbrowser
from types import FrameType
from typing import TYPE_CHECKING

from pacha_sdk.cli._args import add_store, store

if TYPE_CHECKING:
    from pacha_sdk.cli import Commands
    from pacha_sdk.cli._output import Output
    from pacha_sdk.ui import UiServer

__all__ = ["register"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the host must not be empty")
    return text.strip()


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interrupt_on_sigterm() -> None:
    """Let SIGTERM end the server as Ctrl-C does (a clean exit, status 0)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def _serve(server: UiServer, args: argparse.Namespace, out: Output, uri: str) -> None:
    if not is_loopback(args.host):
        out.warn(
            f"serving on {args.host}, reachable from other machines: anyone with the "
            "URL's token can read every run in the store"
            + ("" if args.read_only else " and tag, archive or delete runs (--read-only: not)")
        )
    out.print(server.url)
    sys.stdout.flush()
    mode = " (read-only)" if args.read_only else ""
    out.note(f"pacha ui: serving {uri}{mode}; press Ctrl-C to stop")
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    server.serve_forever(poll_interval=0.25)


def cmd_ui(args: argparse.Namespace, out: Output) -> int:
    """Start the server, print its URL (with the token), serve until interrupted."""
    from pacha_sdk.ui import StoreReader, UiServer

    reader = StoreReader(**store(args))
    reader.check()
    server = UiServer(reader, host=args.host, port=args.port, read_only=args.read_only)
    _interrupt_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):  # from the URL line on, Ctrl-C is the way out
            _serve(server, args, out, reader.uri)
    finally:
        server.server_close()
    out.note("pacha ui: stopped")
    return 0


def register(commands: Commands) -> None:
    """Add ``ui``."""
    parser = commands.add_parser(
        "ui", help="browse the store's runs in a web app: table, live charts, run pages, compare"
    )
    add_store(parser)
    parser.add_argument(
        "--host",
        type=_host,
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="TCP port (default 0: pick a free one)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="only print the URL; do not open a browser"
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="turn every write off: no tagging, notes, renaming, archiving, deleting or restoring",
    )
    parser.set_defaults(handler=cmd_ui)
