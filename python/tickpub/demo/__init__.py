"""``tickpub demo``: a synthetic market feed, checked live by a subscriber process.

The demo publishes ticks at ``--rate`` messages a second, shared among ``--symbols``
symbols, and every second an order book per symbol (a numpy array), with the native
connection. A :class:`tickpub.Subscriber` in another process checks that every
message decodes, is well formed and arrives once and in order, and measures the
time from publishing to handling. The demo prints a live line every second and a
summary at the end; it exits 1 when a message was lost, duplicated or malformed.

The pieces: :mod:`tickpub.demo.feed` makes the messages, :mod:`tickpub.demo.check`
checks them, :mod:`tickpub.demo.subscriber` is the subscriber process,
:mod:`tickpub.demo.process` starts it and reads its reports, and
:mod:`tickpub.demo.run` paces the publishing and prints.

The demo runs on POSIX systems only: it starts the subscriber in a process group
of its own, which Windows does not have.
"""

from __future__ import annotations

import argparse
from typing import Any

from tickpub._argtypes import positive_number, whole_number
from tickpub.demo.process import DemoError
from tickpub.demo.run import run

__all__ = ["DemoError", "register", "run"]

_MAX_SYMBOLS = 10_000
_MAX_DEPTH = 10_000


def _command(args: argparse.Namespace) -> int:
    return run(args)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``demo`` subcommand to the ``tickpub`` command line.

    Args:
        commands: the subparsers of the ``tickpub`` parser.
    """
    demo = commands.add_parser(
        "demo",
        help="publish a synthetic market feed and check it in a subscriber process",
        description="Publish ticks and order books (numpy arrays) at a chosen rate, "
        "receive them in a tickpub.Subscriber running in another process, and print "
        "the rate, the publish-to-receive latency and the messages lost, every "
        "second and at the end. Exits 1 when a message was lost or malformed.",
    )
    demo.add_argument(
        "--rate",
        type=positive_number,
        default=1000.0,
        help="ticks per second over all symbols (default: 1000)",
    )
    demo.add_argument(
        "--symbols",
        type=whole_number(1, _MAX_SYMBOLS),
        default=8,
        help="number of symbols, each with a tick and a book channel (default: 8)",
    )
    demo.add_argument(
        "--duration",
        type=positive_number,
        default=None,
        help="seconds to publish (default: until Ctrl-C)",
    )
    demo.add_argument(
        "--url",
        default=None,
        help="server URL (default: REDIS_URL, else an embedded server started "
        "for the run)",
    )
    demo.add_argument(
        "--book-depth",
        type=whole_number(1, _MAX_DEPTH),
        default=10,
        help="price levels per side in each order book (default: 10)",
    )
    demo.add_argument(
        "--seed",
        type=whole_number(0),
        default=0,
        help="seed of the price walk (default: 0)",
    )
    demo.set_defaults(func=_command)
