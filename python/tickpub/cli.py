"""The ``tickpub`` command line: ``tickpub server``, and the subcommands later
modules register."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from tickpub import ConnectionError as TickpubConnectionError
from tickpub import __version__
from tickpub import demo as _demo
from tickpub.bench import command as _bench
from tickpub.server import ServerNotFoundError, ServerStartError, start_server


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _cmd_server(args: argparse.Namespace) -> int:
    server = start_server(unix_socket=args.unix_socket, port=args.port)
    print(server.url, flush=True)
    if server.unix_socket is not None:
        print(server.unix_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tickpub",
        description="Fast msgpack-numpy publishing to Redis pub/sub.",
    )
    parser.add_argument("--version", action="version", version=f"tickpub {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    server = commands.add_parser(
        "server",
        help="run a throwaway server in the foreground and print its URL",
        description="Start a private Redis-compatible server on loopback (persistence "
        "off), print its URL, and run until interrupted.",
    )
    server.add_argument(
        "--port", type=int, default=None, help="TCP port (default: a free one)"
    )
    server.add_argument(
        "--unix-socket", action="store_true", help="also listen on a unix socket"
    )
    server.set_defaults(func=_cmd_server)
    _demo.register(commands)
    _bench.add_bench_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tickpub`` command."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except (
        CliError,
        ServerNotFoundError,
        ServerStartError,
        _demo.DemoError,
        _bench.BenchError,
        TickpubConnectionError,
    ) as err:
        print(f"tickpub: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
