"""Fuzzing unpackb: any bytes decode to a value or raise DecodeError, nothing else.

The inputs are random bytes and mutations (bit flips, truncations, insertions,
overwrites) of valid msgpack-numpy messages. The reference decoder is not consulted
here: on mutated object dtypes it can unpickle or crash.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tickpub
from tickpub import DecodeError


def _seed_messages() -> list[bytes]:
    structured = np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "S3")])
    objects: list[Any] = [
        {"frame": np.arange(12, dtype="<f4").reshape(3, 4), "n": 1},
        {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456},
        [np.float32(1.5), np.int64(-7), 1 + 2j, b"raw", None, True],
        {"s": structured, "u": np.array(["ab", "c"]), "e": np.zeros((0, 2))},
        {"nested": {"deeper": [np.uint16(3), {"x": np.array(5, dtype=">i8")}]}},
        [msgpack.ExtType(3, b"xyz"), msgpack.Timestamp(10, 20)],
    ]
    packed: list[bytes] = []
    for obj in objects:
        data = msgpack.packb(obj, default=msgpack_numpy.encode)
        assert isinstance(data, bytes)
        packed.append(data)
    return packed


SEEDS = _seed_messages()


def decode_or_error(data: bytes) -> None:
    for copy in (False, True):
        for strict in (True, False):
            with contextlib.suppress(DecodeError):
                tickpub.unpackb(data, copy=copy, strict_map_key=strict)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[position] = draw(st.integers(0, 255))
    return bytes(data)


@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    decode_or_error(data)


@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    decode_or_error(data)


@given(st.sampled_from(SEEDS), st.data())
def test_every_truncation(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed) - 1))
    decode_or_error(seed[:cut])


@given(st.sampled_from(SEEDS), st.binary(min_size=1, max_size=8))
def test_trailing_bytes(seed: bytes, tail: bytes) -> None:
    with pytest.raises(DecodeError, match="extra data"):
        tickpub.unpackb(seed + tail)
