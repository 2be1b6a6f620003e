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


# Maps shaped like msgpack-numpy's, each field any msgpack value: byte mutations
# rarely produce a well-formed map with, say, a nil `data` or a huge `shape`.
_FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(
        ["<f8", "i4,f8", "V8", "V0", "O", "|O", "U3", "S2", "M8[s]", "V2000000000"]
    ),
    st.sampled_from([b"", b"V", b"O", b"nd"]),
    st.binary(max_size=64),
    st.lists(st.integers(0, 4096) | st.integers(-1, 2**40), max_size=3),
    st.lists(
        st.lists(st.sampled_from(["x", "<f8", "O", b"b"]), max_size=3), max_size=3
    ),
)


@st.composite
def numpy_maps(draw: st.DrawFn) -> bytes:
    # Start from a valid array map, then replace, drop or add fields.
    fields: dict[bytes, Any] = {
        b"nd": True,
        b"type": "<f8",
        b"kind": b"",
        b"shape": [64],
        b"data": bytes(512),
    }
    names = [b"nd", b"type", b"kind", b"shape", b"data", b"complex"]
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4)):
        if draw(st.integers(0, 4)) == 0:
            fields.pop(name, None)
        else:
            fields[name] = draw(_FIELD_VALUES)
    data = msgpack.packb(fields)
    assert isinstance(data, bytes)
    return data


@given(numpy_maps())
def test_numpy_maps_never_allocate_more_than_their_input(data: bytes) -> None:
    for copy in (False, True):
        try:
            result = tickpub.unpackb(data, copy=copy)
        except DecodeError:
            continue
        if isinstance(result, np.ndarray | np.generic):
            assert result.nbytes <= len(data)
