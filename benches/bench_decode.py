"""Decoding speed of tickpub.unpackb against msgpack_numpy.unpackb.

Run with::

    python -m pytest benches/bench_decode.py --benchmark-columns=median,mean,ops,rounds

Every payload is encoded once in the msgpack-numpy wire format; pytest-benchmark
groups each message so the two decoders sit side by side. tickpub decodes with
``copy=False``, its default: arrays are views of the message's bytes. There is no
decoding goal; the ratios are printed with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import msgpack_numpy
import numpy as np
import pytest

import tickpub
from benches.ratios import Case, Ratios
from tickpub.bench.payloads import PAYLOADS, Payload

Decoder = Callable[[bytes], Any]

DECODERS: dict[str, Decoder] = {
    "tickpub": tickpub.unpackb,
    "msgpack-numpy": msgpack_numpy.unpackb,
}
BASELINE = "msgpack-numpy"


@cache
def _encoded(name: str) -> bytes:
    payload = next(p for p in PAYLOADS if p.name == name)
    data = msgpack_numpy.packb(payload.message())
    assert isinstance(data, bytes)
    return data


def _assert_same(decoded: dict[str, Any], expected: dict[str, Any]) -> None:
    assert decoded.keys() == expected.keys()
    for key, value in expected.items():
        assert type(decoded[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert decoded[key].dtype == value.dtype, key
            assert np.array_equal(decoded[key], value), key
        else:
            assert decoded[key] == value, key


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.name for p in PAYLOADS])
def test_decode(benchmark: Any, ratios: Ratios, payload: Payload, decoder: str) -> None:
    """Time one decoder on one message; both must give back the message."""
    data = _encoded(payload.name)
    case = Case("decode", payload.name, decoder, BASELINE, 1, len(data))

    ratios.start(benchmark, case)
    result = benchmark(DECODERS[decoder], data)
    ratios.add(benchmark, case)

    _assert_same(result, payload.message())


def test_frame_is_not_copied() -> None:
    """A 1 MiB array decoded with copy=False is a view of the message."""
    message = _encoded("array-1m")
    frame = tickpub.unpackb(message, copy=False)["frame"]
    assert frame.nbytes == 1 << 20
    assert np.shares_memory(frame, np.frombuffer(message, np.uint8))
    assert np.array_equal(frame, msgpack_numpy.unpackb(message)["frame"])
