"""Decoding speed of tickpub.unpackb against msgpack_numpy.unpackb.

Run with ``python -m pytest benches/bench_decode.py`` after ``maturin develop
--release``; pytest-benchmark groups each message so the two decoders sit side by
side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np
import pytest

import tickpub

Decoder = Callable[[bytes], Any]

DECODERS: dict[str, Decoder] = {
    "tickpub": tickpub.unpackb,
    "msgpack_numpy": msgpack_numpy.unpackb,
}


def _pack(obj: Any) -> bytes:
    data = msgpack.packb(obj, default=msgpack_numpy.encode)
    assert isinstance(data, bytes)
    return data


FRAME_MESSAGE = _pack({"frame": np.random.default_rng(0).random(131_072)})  # 1 MiB
TICK_MESSAGE = _pack(
    {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456}
)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_frame_1mib(benchmark: Any, decoder: str) -> None:
    benchmark.group = "decode 1 MiB float64 array"
    result = benchmark(DECODERS[decoder], FRAME_MESSAGE)
    assert result["frame"].nbytes == 1 << 20


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_tick(benchmark: Any, decoder: str) -> None:
    benchmark.group = "decode tick message"
    result = benchmark(DECODERS[decoder], TICK_MESSAGE)
    assert result["symbol"] == "AAPL"


def test_frame_is_not_copied() -> None:
    frame = tickpub.unpackb(FRAME_MESSAGE)["frame"]
    assert np.shares_memory(frame, np.frombuffer(FRAME_MESSAGE, np.uint8))
    assert np.array_equal(frame, msgpack_numpy.unpackb(FRAME_MESSAGE)["frame"])
