"""The messages the benchmarks publish: from a four-field tick to a 16 MiB frame.

Each payload is built on demand (the big arrays cost memory only when a run asks for
them) and carries the batch size that suits its size: 1000 messages for the small
ones, fewer as they grow, so that a batch stays within a few tens of MiB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PAYLOADS", "Payload", "payload_names", "select_payloads"]

Message = dict[str, Any]


def _tick() -> Message:
    return {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456}


def _numpy_tick() -> Message:
    return {
        "symbol": "AAPL",
        "bid": np.float32(150.2),
        "ask": np.float32(150.3),
        "size": np.int64(100),
    }


def _row() -> Message:
    return {"symbol": "AAPL", "row": np.random.default_rng(1).random(64)}


def _frame(nbytes: int) -> Callable[[], Message]:
    def build() -> Message:
        return {"frame": np.random.default_rng(0).random(nbytes // 8)}

    return build


@dataclass(frozen=True)
class Payload:
    """One benchmark message.

    Attributes:
        name: the short name used on the command line and in results.
        description: what the message holds, for tables and plots.
        batch: how many copies of the message one batched publish sends.
        build: returns a fresh copy of the message.
    """

    name: str
    description: str
    batch: int
    build: Callable[[], Message] = field(repr=False)

    def message(self) -> Message:
        """Build the message, cached: every caller gets the same object.

        Returns:
            The message dict.
        """
        return _cached(self)


_CACHE: dict[str, Message] = {}


def _cached(payload: Payload) -> Message:
    if payload.name not in _CACHE:
        _CACHE[payload.name] = payload.build()
    return _CACHE[payload.name]


PAYLOADS: tuple[Payload, ...] = (
    Payload("tick", "tick of four Python scalars", 1000, _tick),
    Payload("tick-np", "tick of numpy scalars", 1000, _numpy_tick),
    Payload("row-64", "row of 64 float64", 1000, _row),
    Payload("array-8k", "8 KiB float64 array", 500, _frame(8 << 10)),
    Payload("array-1m", "1 MiB float64 array", 16, _frame(1 << 20)),
    Payload("array-16m", "16 MiB float64 array", 2, _frame(16 << 20)),
)


def payload_names() -> list[str]:
    """The names of all payloads, smallest first.

    Returns:
        The names, in the order of :data:`PAYLOADS`.
    """
    return [payload.name for payload in PAYLOADS]


def select_payloads(names: Iterable[str] | None) -> list[Payload]:
    """The payloads named, in the order of :data:`PAYLOADS`.

    Args:
        names: payload names; None or empty selects all of them.

    Returns:
        The selected payloads.

    Raises:
        ValueError: a name is not a payload's name.
    """
    wanted = set(names or ())
    unknown = wanted - set(payload_names())
    if unknown:
        raise ValueError(
            f"unknown payload {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(payload_names())}"
        )
    return [p for p in PAYLOADS if not wanted or p.name in wanted]
