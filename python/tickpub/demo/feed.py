"""The demo's synthetic market feed: channel names, the shared clock, the messages.

Every symbol has two channels, ``PREFIX:tick:SYMBOL`` and ``PREFIX:book:SYMBOL``, and
the run has one control channel, ``PREFIX:end``, where the publisher announces how
many messages it sent. Each stream (the ticks or the books of one symbol) numbers its
messages from 0 in ``seq``, so the subscriber sees a lost message as a gap.

A tick is ``{"symbol": str, "seq": int, "price": float, "size": int, "ts": int}``; a
book is ``{"symbol": str, "seq": int, "ts": int, "book": array}``, the array of shape
``(depth, 4)`` and dtype float64 holding, per level, bid price, bid size, ask price
and ask size. ``ts`` is :func:`clock_ns` when the message was made, just before it
is published; the ticks published together in one batch share one ``ts``.

Prices are a random walk in cents drawn from a seeded numpy generator, so two runs
with the same seed, rate and symbol count publish the same prices.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = [
    "END",
    "Feed",
    "book_channel",
    "clock_ns",
    "end_channel",
    "symbol_names",
    "tick_channel",
]

END = "end"
"""The last part of the control channel's name."""

_START_CENTS = 10_000
_MIN_CENTS = 1
_MAX_STEP_CENTS = 2
_MAX_SIZE = 1_000


def clock_ns() -> int:
    """The time both demo processes stamp and compare, in nanoseconds.

    This is ``CLOCK_MONOTONIC`` where the system has it (Linux, macOS, the BSDs),
    a single clock for every process of the machine, which wall-clock adjustments
    do not move. Elsewhere it is the wall clock, ``time.time_ns()``, which an NTP
    step can move while the demo runs and so skew the latencies measured then.

    Returns:
        The clock's reading in nanoseconds.
    """
    return _clock()


def _monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


_clock = _monotonic_ns if hasattr(time, "CLOCK_MONOTONIC") else time.time_ns


def symbol_names(count: int) -> list[str]:
    """The names of the first ``count`` symbols: ``SYM00``, ``SYM01``, ...

    Args:
        count: how many symbols.

    Returns:
        The names, zero-padded to one width so they sort in order.
    """
    width = max(2, len(str(count - 1)))
    return [f"SYM{index:0{width}d}" for index in range(count)]


def tick_channel(prefix: str, symbol: str) -> str:
    """The channel of ``symbol``'s ticks."""
    return f"{prefix}:tick:{symbol}"


def book_channel(prefix: str, symbol: str) -> str:
    """The channel of ``symbol``'s order books."""
    return f"{prefix}:book:{symbol}"


def end_channel(prefix: str) -> str:
    """The control channel on which the publisher announces the end of the run."""
    return f"{prefix}:{END}"


class Feed:
    """Makes the ticks and books of ``symbols`` symbols, numbering each stream.

    Ticks go to the symbols in turn, so over a run every symbol gets the same share
    (within one message).

    Attributes:
        symbols: the symbol names.
        depth: levels per side in each book.
        ticks_sent: per symbol, how many ticks were made so far (the next ``seq``).
        books_sent: per symbol, how many books were made so far.
    """

    def __init__(self, symbols: list[str], depth: int, seed: int = 0) -> None:
        """Start every symbol at the same price.

        Args:
            symbols: the symbol names.
            depth: levels per side in each book.
            seed: seed of the random walk.
        """
        self.symbols = symbols
        self.depth = depth
        self.ticks_sent = [0] * len(symbols)
        self.books_sent = [0] * len(symbols)
        self._cents = [_START_CENTS] * len(symbols)
        self._next_symbol = 0
        self._rng = np.random.default_rng(seed)
        self._levels = np.arange(1, depth + 1, dtype=np.float64)

    def ticks(self, count: int) -> dict[int, list[dict[str, Any]]]:
        """The next ``count`` ticks, grouped by symbol index, in order per symbol.

        Args:
            count: how many ticks to make.

        Returns:
            A map from symbol index to that symbol's new ticks.
        """
        steps = self._rng.integers(-_MAX_STEP_CENTS, _MAX_STEP_CENTS + 1, count)
        sizes = self._rng.integers(1, _MAX_SIZE + 1, count)
        ts = clock_ns()

        groups: dict[int, list[dict[str, Any]]] = {}
        index = self._next_symbol
        for step, size in zip(steps.tolist(), sizes.tolist(), strict=True):
            cents = max(_MIN_CENTS, self._cents[index] + step)
            self._cents[index] = cents
            seq = self.ticks_sent[index]
            self.ticks_sent[index] = seq + 1
            tick = {
                "symbol": self.symbols[index],
                "seq": seq,
                "price": cents / 100,
                "size": size,
                "ts": ts,
            }
            groups.setdefault(index, []).append(tick)
            index = (index + 1) % len(self.symbols)
        self._next_symbol = index
        return groups

    def book(self, index: int) -> dict[str, Any]:
        """The next order book of symbol ``index``, around its last price.

        Args:
            index: the symbol's index.

        Returns:
            The book message.
        """
        # The lowest bid stays above zero, however low the price walked.
        mid = max(self._cents[index], self.depth + 1) / 100
        book = np.empty((self.depth, 4), dtype=np.float64)
        book[:, 0] = mid - 0.01 * self._levels
        book[:, 1] = self._rng.integers(1, _MAX_SIZE + 1, self.depth)
        book[:, 2] = mid + 0.01 * self._levels
        book[:, 3] = self._rng.integers(1, _MAX_SIZE + 1, self.depth)
        seq = self.books_sent[index]
        self.books_sent[index] = seq + 1
        return {
            "symbol": self.symbols[index],
            "seq": seq,
            "ts": clock_ns(),
            "book": book,
        }

    def sent(self) -> int:
        """How many messages, ticks and books, were made so far."""
        return sum(self.ticks_sent) + sum(self.books_sent)
