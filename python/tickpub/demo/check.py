"""What the demo's subscriber checks in each message, and the latencies it keeps.

:class:`Checker` holds no connection: it is given each decoded message with the time
it arrived, so the same checks run in the subscriber process and in tests that feed
it a sequence by hand.

A stream's messages come in ``seq`` order, as a server delivers one publisher's
messages to one subscriber in the order they were published. A ``seq`` beyond the
next expected one counts the skipped messages as lost; one below it counts as a
duplicate. A message lost after the last one received on its stream is counted when
the end message says how many were sent.

A malformed message whose ``seq`` is usable takes its place in the sequence, so it
is counted as malformed only; one without a usable ``seq`` leaves a gap and is also
counted as lost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tickpub.demo.feed import book_channel, end_channel, tick_channel

__all__ = ["Checker", "LatencyHistogram", "latency_summary"]

_TICK_KEYS = frozenset({"symbol", "seq", "price", "size", "ts"})
_BOOK_KEYS = frozenset({"symbol", "seq", "ts", "book"})
_KEPT_PROBLEMS = 5

# Latency buckets are 1% wide, from 1 ns to about 1,000 s.
_BUCKET_RATIO = 1.01
_BUCKETS = math.ceil(math.log(1e12) / math.log(_BUCKET_RATIO))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_float(value: object) -> bool:
    return isinstance(value, float | np.floating) and math.isfinite(value)


class _Stream:
    """The ticks or the books of one symbol."""

    def __init__(self, kind: str, symbol: str, index: int) -> None:
        self.kind = kind
        self.symbol = symbol
        self.index = index
        self.next_seq = 0


class Checker:
    """Checks messages of one demo run and counts what went wrong.

    Attributes:
        received: data messages handled (the end message is not counted).
        lost: messages missing from their stream's sequence.
        duplicates: messages whose ``seq`` was already seen or passed.
        malformed: messages that are not a well-formed tick or book for their
            channel, or that arrived on a channel of no stream.
        problems: descriptions of the first few malformed messages.
        latencies: receive time minus ``ts`` of each well-formed message since the
            caller last took them, in nanoseconds.
    """

    def __init__(self, prefix: str, symbols: list[str], depth: int) -> None:
        """Expect the ticks and books of ``symbols`` on the channels of ``prefix``.

        Args:
            prefix: the run's channel prefix.
            symbols: the symbol names, in the publisher's order.
            depth: levels per side in each book.
        """
        self.symbols = symbols
        self.depth = depth
        self.end = end_channel(prefix)
        self._streams: dict[str, _Stream] = {}
        for index, symbol in enumerate(symbols):
            self._streams[tick_channel(prefix, symbol)] = _Stream("tick", symbol, index)
            self._streams[book_channel(prefix, symbol)] = _Stream("book", symbol, index)
        self.received = 0
        self.lost = 0
        self.duplicates = 0
        self.malformed = 0
        self.problems: list[str] = []
        self.latencies: list[int] = []

    def check(self, channel: str, data: Any, received_ns: int) -> bool:
        """Check one decoded message.

        Args:
            channel: the channel it arrived on.
            data: the decoded message.
            received_ns: :func:`tickpub.demo.feed.clock_ns` when it arrived.

        Returns:
            True when it was a well-formed end message: the tail losses are
            counted and the run is over.
        """
        if channel == self.end:
            return self._check_end(data)

        self.received += 1
        stream = self._streams.get(channel)
        if stream is None:
            self._malformed(channel, "a channel the demo does not publish on")
            return False

        if isinstance(data, dict) and _is_int(data.get("seq")) and data["seq"] >= 0:
            self._sequence(stream, int(data["seq"]))
        problem = self._problem(stream, data)
        if problem is not None:
            self._malformed(channel, problem)
        else:
            self.latencies.append(received_ns - int(data["ts"]))
        return False

    def finish(self, ticks: list[int], books: list[int]) -> None:
        """Count as lost what was sent after the last message received per stream.

        Args:
            ticks: per symbol, how many ticks were sent.
            books: per symbol, how many books were sent.
        """
        for stream in self._streams.values():
            sent = (ticks if stream.kind == "tick" else books)[stream.index]
            if sent > stream.next_seq:
                self.lost += sent - stream.next_seq
                stream.next_seq = sent

    def _check_end(self, data: Any) -> bool:
        counts = []
        for key in ("ticks", "books"):
            value = data.get(key) if isinstance(data, dict) else None
            if not (
                isinstance(value, list)
                and len(value) == len(self.symbols)
                and all(_is_int(count) and count >= 0 for count in value)
            ):
                self._malformed(self.end, f"an end message without a valid {key!r}")
                return False
            counts.append([int(count) for count in value])
        self.finish(*counts)
        return True

    def _sequence(self, stream: _Stream, seq: int) -> None:
        if seq < stream.next_seq:
            self.duplicates += 1
            return
        self.lost += seq - stream.next_seq
        stream.next_seq = seq + 1

    def _problem(self, stream: _Stream, data: Any) -> str | None:
        """What is wrong with ``data`` as a message of ``stream``, or None."""
        if not isinstance(data, dict):
            return f"a {type(data).__name__} instead of a dict"
        keys = _TICK_KEYS if stream.kind == "tick" else _BOOK_KEYS
        if data.keys() != keys:
            return f"keys {sorted(map(str, data))} instead of {sorted(keys)}"
        if data["symbol"] != stream.symbol:
            return f"symbol {data['symbol']!r} on the channel of {stream.symbol!r}"
        if not (_is_int(data["seq"]) and data["seq"] >= 0):
            return f"seq {data['seq']!r} is not a non-negative int"
        if not _is_int(data["ts"]):
            return f"ts {data['ts']!r} is not an int"
        if stream.kind == "tick":
            return _tick_problem(data)
        return _book_problem(data["book"], self.depth)

    def _malformed(self, channel: str, problem: str) -> None:
        self.malformed += 1
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append(f"{channel}: {problem}")


def _tick_problem(data: dict[str, Any]) -> str | None:
    if not (_is_float(data["price"]) and data["price"] > 0):
        return f"price {data['price']!r} is not a positive float"
    if not (_is_int(data["size"]) and data["size"] > 0):
        return f"size {data['size']!r} is not a positive int"
    return None


def _book_problem(book: object, depth: int) -> str | None:
    if not isinstance(book, np.ndarray):
        return f"book is a {type(book).__name__}, not a numpy array"
    if book.dtype != np.float64 or book.shape != (depth, 4):
        return f"book is {book.dtype} {book.shape}, not float64 {(depth, 4)}"
    if not np.isfinite(book).all():
        return "book holds NaN or infinity"
    if not (book[:, 0] < book[:, 2]).all():
        return "book has a bid at or above its ask"
    return None


class LatencyHistogram:
    """Latencies counted in buckets 1% wide, for percentiles over a whole run.

    Percentiles read from it are the geometric middle of their bucket, so they are
    within half a percent of the exact value; the maximum is exact.
    """

    def __init__(self) -> None:
        self._counts = np.zeros(_BUCKETS, dtype=np.int64)
        self.count = 0
        self.max_ns = 0

    def add(self, latencies_ns: np.ndarray) -> None:
        """Count latencies; values below 1 ns go to the first bucket.

        Args:
            latencies_ns: latencies in nanoseconds.
        """
        if latencies_ns.size == 0:
            return
        logs = np.log(np.maximum(latencies_ns, 1).astype(np.float64))
        buckets = np.minimum(logs / math.log(_BUCKET_RATIO), _BUCKETS - 1)
        self._counts += np.bincount(buckets.astype(np.intp), minlength=_BUCKETS)
        self.count += int(latencies_ns.size)
        self.max_ns = max(self.max_ns, int(latencies_ns.max()))

    def percentile(self, q: float) -> int:
        """The latency below which ``q`` percent of the counted ones lie.

        Args:
            q: the percentile, 0 to 100.

        Returns:
            The latency in nanoseconds; 0 when nothing was counted.
        """
        if self.count == 0:
            return 0
        rank = max(1, math.ceil(q / 100 * self.count))
        bucket = int(np.searchsorted(np.cumsum(self._counts), rank))
        middle = int(_BUCKET_RATIO ** (bucket + 0.5))
        return min(middle, self.max_ns)

    def summary(self) -> dict[str, int]:
        """``count``, ``p50_ns``, ``p99_ns`` and ``max_ns`` of the whole run."""
        return {
            "count": self.count,
            "p50_ns": self.percentile(50),
            "p99_ns": self.percentile(99),
            "max_ns": self.max_ns,
        }


def latency_summary(latencies_ns: np.ndarray) -> dict[str, int]:
    """Exact ``count``, ``p50_ns``, ``p99_ns`` and ``max_ns`` of some latencies.

    Args:
        latencies_ns: latencies in nanoseconds.

    Returns:
        The summary; every value is 0 when there are no latencies.
    """
    if latencies_ns.size == 0:
        return {"count": 0, "p50_ns": 0, "p99_ns": 0, "max_ns": 0}
    p50, p99 = np.percentile(latencies_ns, [50, 99], method="higher")
    return {
        "count": int(latencies_ns.size),
        "p50_ns": int(p50),
        "p99_ns": int(p99),
        "max_ns": int(latencies_ns.max()),
    }
