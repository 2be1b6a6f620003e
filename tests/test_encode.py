"""packb against the reference encoder: identical bytes for everything the reference
accepts, a clear EncodeError for everything it rejects."""

from __future__ import annotations

import datetime
import enum
import gc
import string
import subprocess
import sys
import textwrap
from collections import OrderedDict
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tickpub

from .reference import reference_packb


class Color(enum.IntEnum):
    RED = 7


class Price(float):
    pass


class Name(str):
    pass


class Record(dict[str, Any]):
    pass


class Items(list[Any]):
    pass


class Frame(np.ndarray[Any, Any]):
    """An ndarray subclass: packed like its base class."""


class Reversed(list[Any]):
    """A list subclass whose iteration order differs from its storage order."""

    def __iter__(self) -> Any:
        return iter(list(super().__iter__())[::-1])


EXACT_CASES: dict[str, Any] = {
    "tick": {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456},
    "numpy tick": {
        "symbol": "AAPL",
        "bid": np.float32(150.2),
        "ask": np.float32(150.3),
        "size": np.int64(100),
    },
    "nested": {"a": [1, (2, 3), {"b": None, "c": [True, False]}], 4: b"x", None: 1.5},
    "ints at every boundary": [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        2**64 - 1,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        -(2**63),
    ],
    "floats": [0.0, -0.0, 1.5, float("inf"), float("-inf"), 1e308, 5e-324],
    "strings at every boundary": [
        "",
        "a" * 31,
        "a" * 32,
        "a" * 255,
        "a" * 256,
        "a" * 65535,
        "a" * 65536,
        "é",
        "日本",
        "\U0001f600",
    ],
    "bytes at every boundary": [b"", b"x" * 255, b"x" * 256, b"x" * 65536],
    "containers at every boundary": [
        list(range(15)),
        list(range(16)),
        list(range(65536)),
        {str(i): i for i in range(16)},
    ],
    "bytearray and memoryview": [
        bytearray(b"abc"),
        memoryview(b"xyz"),
        memoryview(b"abcdef").cast("H"),
    ],
    "subclasses": [
        Color.RED,
        Price(1.25),
        Name("n"),
        Record(a=1),
        Items([1, 2]),
        Reversed([1, 2, 3]),
        OrderedDict(b=2, a=1),
    ],
    "python complex": [1 + 2j, complex(float("nan"), -0.0), -1j],
    "numpy scalars": [
        np.bool_(True),
        np.int8(-5),
        np.uint8(200),
        np.int16(-300),
        np.uint16(60000),
        np.int32(-(2**31)),
        np.uint32(2**32 - 1),
        np.int64(-(2**63)),
        np.uint64(2**64 - 1),
        np.float16(1.5),
        np.float32(-2.25),
        np.float64(3.5),
        np.longdouble(1) / 3,
        np.complex64(1 + 2j),
        np.complex128(3 - 4j),
        np.clongdouble(1 + 1j),
        np.timedelta64(5, "s"),
        np.timedelta64(-3, "ns"),
        np.intc(3),
        np.longlong(4),
        np.str_("text"),
        np.bytes_(b"raw"),
    ],
    "msgpack types": [
        msgpack.ExtType(5, b"abc"),
        msgpack.ExtType(3, b"x" * 300),
        msgpack.Timestamp(10, 5),
        msgpack.Timestamp(2**34, 0),
        msgpack.Timestamp(-1, 500),
    ],
    "array layouts": [
        np.arange(12.0).reshape(3, 4),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.arange(12.0).reshape(3, 4).T,
        np.arange(24, dtype=">i4")[::-3],
        np.arange(24, dtype="<u2").reshape(2, 3, 4)[:, ::2, 1:],
        np.broadcast_to(np.arange(3), (4, 3)),
        np.zeros((2, 0, 3)),
        np.array(5.0),
        np.array([], dtype="<c16"),
        np.arange(6, dtype=np.float32).reshape(2, 3)[:, 1],
        np.arange(4.0).reshape(2, 2).view(Frame),
    ],
    "array dtypes": [
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.array([b"ab", b""]),
        np.array([1 + 2j], dtype=">c8"),
        np.array([1.5], dtype="<f2"),
        np.array([1.5], dtype=np.longdouble),
        np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8", (2,))]),
        np.zeros(2, dtype=[("a", [("b", "<i4"), ("c", "S2")])]),
        np.zeros(
            2, dtype=np.dtype({"names": ["x"], "formats": ["<i2"], "itemsize": 8})
        ),
        np.zeros(2, dtype="V3"),
        np.ones(4, dtype=[("x", "<f4"), ("y", "<f4")])[::2],
    ],
    "masked array": np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False]),
    "masked array, strided": np.ma.array(np.arange(10.0), mask=[False, True] * 5)[::2],
    "record array": np.rec.array([(1, 2.0), (3, 4.0)], dtype="<i4,<f8"),
    "record array, reversed": np.rec.array([(1, 2.0)] * 3, dtype="<i4,<f8")[::-1],
    "large array is borrowed": {"frame": np.arange(1 << 16, dtype=np.float64)},
    "large bytes are borrowed": {"blob": b"\x01" * 100_000, "tail": [1, 2]},
}


@pytest.mark.parametrize("name", sorted(EXACT_CASES))
def test_bytes_match_the_reference(name: str) -> None:
    value = EXACT_CASES[name]
    assert tickpub.packb(value) == reference_packb(value)


@pytest.mark.parametrize("depth", [1, 100, 1024])
def test_nesting_up_to_the_reference_limit_is_accepted(depth: int) -> None:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    assert tickpub.packb(value) == reference_packb(value)


@pytest.mark.parametrize(
    ("leaf", "levels"),
    [
        (1, 1024),
        ([1], 1023),
        (np.zeros(2), 1022),
        (np.array(1.0), 1023),
        (np.zeros(2, dtype=[("a", "<i4")]), 1021),
        (np.zeros(2, dtype=[("a", "<i4", (2,))]), 1020),
        (np.int8(1), 1023),
        (1j, 1023),
    ],
)
def test_nesting_limit_matches_the_reference_for_every_leaf(
    leaf: Any, levels: int
) -> None:
    def nest(n: int) -> Any:
        value = leaf
        for _ in range(n):
            value = {"k": value}
        return value

    assert tickpub.packb(nest(levels)) == reference_packb(nest(levels))
    with pytest.raises(ValueError, match="recursion limit"):
        reference_packb(nest(levels + 1))
    with pytest.raises(tickpub.EncodeError, match="nesting deeper than 1024"):
        tickpub.packb(nest(levels + 1))


def test_datetime_arrays_pack_like_the_references_noncontiguous_form() -> None:
    values = np.array(["2024-01-01", "2024-06-30", "1969-12-31"], dtype="M8[D]")
    contiguous = values.copy()
    strided = np.repeat(values, 2)[::2]
    assert not strided.flags.c_contiguous
    with pytest.raises(ValueError):
        reference_packb(contiguous)
    assert tickpub.packb(contiguous) == reference_packb(strided)
    deltas = np.arange(4, dtype="m8[ms]")
    assert tickpub.packb(deltas) == reference_packb(np.repeat(deltas, 2)[::2])


def test_field_names_the_reference_cannot_export() -> None:
    # numpy refuses to export a buffer of a structured dtype with ':' in a field name,
    # so the reference fails on such arrays when C-contiguous; tickpub packs them the
    # way the reference packs their non-contiguous form.
    values = np.zeros(3, dtype=[("a:b", "<i4")])
    with pytest.raises(ValueError):
        reference_packb(values)
    assert tickpub.packb(values) == reference_packb(np.repeat(values, 2)[::2])


# Hypothesis strategies: every dtype the reference packs, every layout.

ENDIAN = st.sampled_from(["<", ">", "="])
SCALAR_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.byte_string_dtypes(min_len=1, max_len=4),
    hnp.unicode_string_dtypes(endianness="?", min_len=1, max_len=4),
)
FIELD_NAMES = st.text(alphabet=string.ascii_letters + "_ ", min_size=1, max_size=6)


def structured_dtypes(
    fields: st.SearchStrategy[np.dtype[Any]],
) -> st.SearchStrategy[np.dtype[Any]]:
    """Structured dtypes, some fields with subarray shapes.

    Field names avoid ':', which the reference cannot export; a separate test covers
    those names.
    """

    @st.composite
    def build(draw: st.DrawFn) -> np.dtype[Any]:
        names = draw(st.lists(FIELD_NAMES, min_size=1, max_size=3, unique=True))
        spec: list[Any] = []
        for name in names:
            field = draw(fields)
            if draw(st.booleans()):
                spec.append((name, field, (draw(st.integers(1, 3)),)))
            else:
                spec.append((name, field))
        return np.dtype(spec)

    return build()


ARRAY_DTYPES = st.one_of(
    SCALAR_DTYPES,
    structured_dtypes(SCALAR_DTYPES),
    structured_dtypes(structured_dtypes(SCALAR_DTYPES)),
    st.just(np.dtype(np.longdouble)),
)


def relayout(array: np.ndarray[Any, Any], how: str) -> np.ndarray[Any, Any]:
    if how == "fortran":
        return np.asfortranarray(array)
    if how == "transposed":
        return array.T
    if how == "reversed" and array.ndim:
        return array[::-1]
    if how == "strided" and array.ndim:
        return np.repeat(array, 2, axis=0)[::2]
    return array


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray[Any, Any]:
    dtype = draw(ARRAY_DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    array = draw(hnp.arrays(dtype, shape))
    return relayout(
        array,
        draw(st.sampled_from(["c", "fortran", "transposed", "reversed", "strided"])),
    )


@st.composite
def numpy_scalars(draw: st.DrawFn) -> Any:
    dtype = draw(
        st.one_of(
            hnp.boolean_dtypes(),
            hnp.integer_dtypes(),
            hnp.unsigned_integer_dtypes(),
            hnp.floating_dtypes(),
            hnp.complex_number_dtypes(),
        )
    )
    return draw(hnp.arrays(dtype, ()))[()]


PYTHON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(),
    st.complex_numbers(),
)
VALUES = st.recursive(
    st.one_of(PYTHON_SCALARS, numpy_scalars(), arrays()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(-5, 5), st.binary(max_size=4)),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@given(VALUES)
def test_any_value_matches_the_reference(value: Any) -> None:
    assert tickpub.packb(value) == reference_packb(value)


@given(arrays())
def test_any_array_matches_the_reference(array: np.ndarray[Any, Any]) -> None:
    assert tickpub.packb({"frame": array}) == reference_packb({"frame": array})


# What the reference rejects, and what tickpub refuses on purpose.

REJECTED: list[tuple[Any, str, str]] = [
    (
        {"frames": [0, 1, 2, datetime.datetime(2024, 1, 1)]},
        r"data\['frames'\]\[3\]",
        "datetime.datetime",
    ),
    ({"t": np.datetime64(1, "s")}, r"data\['t'\]", "numpy.datetime64"),
    ({"v": np.void(b"ab")}, r"data\['v'\]", "numpy.void"),
    ([2**64], r"data\[0\]", "int out of msgpack's range"),
    ([-(2**63) - 1], r"data\[0\]", "int out of msgpack's range"),
    ({"s": {1, 2}}, r"data\['s'\]", "cannot encode set"),
    ("\ud800", r"^data:", "surrogates"),
    ({"k": {frozenset(): 1}}, r"data\['k'\]", "dict key frozenset"),
    ({1: [{2: object()}]}, r"data\[1\]\[0\]\[2\]", "cannot encode object"),
]


@pytest.mark.parametrize(("value", "path", "what"), REJECTED)
def test_rejected_values_raise_with_their_path(
    value: Any, path: str, what: str
) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError, UnicodeEncodeError)):
        reference_packb(value)
    with pytest.raises(tickpub.EncodeError) as info:
        tickpub.packb(value)
    message = str(info.value)
    assert what in message
    import re

    assert re.search(path, message), message
    assert re.search(path, info.value.path + ":"), info.value.path


OBJECT_ARRAYS = [
    np.array([1, "a"], dtype=object),
    np.array([], dtype=object),
    np.zeros(2, dtype=[("a", "<i4"), ("o", "O")]),
]


@pytest.mark.parametrize(
    "array", OBJECT_ARRAYS, ids=["object", "empty object", "object field"]
)
def test_arrays_of_python_objects_are_refused_not_pickled(
    array: np.ndarray[Any, Any],
) -> None:
    with pytest.raises(tickpub.EncodeError, match="Python objects") as info:
        tickpub.packb({"x": [array]})
    assert info.value.path == "data['x'][0]"
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)


def test_python_exceptions_raised_while_encoding_are_chained() -> None:
    class Broken(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(tickpub.EncodeError, match="items") as info:
        tickpub.packb({"b": Broken(a=1)})
    assert isinstance(info.value.__cause__, RuntimeError)


def test_encoding_takes_no_lasting_references() -> None:
    array = np.arange(4096, dtype=np.float64)
    blob = b"x" * 10_000
    message = {"frame": array, "blob": blob, "scalar": np.float32(1)}
    tickpub.packb(message)  # caches the dtype, once
    gc.collect()
    before = (
        sys.getrefcount(array),
        sys.getrefcount(blob),
        sys.getrefcount(array.dtype),
    )
    for _ in range(1000):
        tickpub.packb(message)
    with pytest.raises(tickpub.EncodeError):
        tickpub.packb({"frame": array, "bad": object()})
    after = (
        sys.getrefcount(array),
        sys.getrefcount(blob),
        sys.getrefcount(array.dtype),
    )
    assert after == before


def test_encoding_a_large_array_repeatedly_keeps_memory_flat() -> None:
    script = textwrap.dedent(
        """
        import resource, numpy as np, tickpub
        frame = {"frame": np.ones(1 << 17)}  # 1 MiB
        for _ in range(50):
            tickpub.packb(frame)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(3000):
            tickpub.packb(frame)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after - before)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    growth_kib = int(result.stdout)
    # 3000 leaked copies would be 3 GiB; allow for allocator noise only.
    assert growth_kib < 8 * 1024


def test_containers_changed_by_code_run_while_encoding_raise_cleanly() -> None:
    # A dict subclass's items() runs Python code in the middle of encoding its parent;
    # here that code empties the parent, freeing values not yet encoded. The encoder
    # must notice the change and raise, never read a freed object.
    class Clearing(dict[str, Any]):
        def __init__(self, victim: Any) -> None:
            super().__init__(k=1)
            self.victim = victim

        def items(self) -> Any:
            self.victim.clear()
            return super().items()

    parent: dict[str, Any] = {}
    parent["first"] = Clearing(parent)
    parent["".join(["se", "cond"])] = "".join(["fresh ", "string"]) * 3
    with pytest.raises(tickpub.EncodeError, match="changed size"):
        tickpub.packb(parent)

    items: list[Any] = []
    items.extend([Clearing(items), "".join(["fresh ", "string"]) * 3, 2.5 * 3])
    with pytest.raises(tickpub.EncodeError, match="changed size") as info:
        tickpub.packb({"list": items})
    assert info.value.path == "data['list']"


def test_renamed_structured_dtypes_pack_their_new_names() -> None:
    array = np.zeros(2, [("a", "<i4"), ("b", [("c", "<f8")])])
    tickpub.packb(array)
    array.dtype.names = ("x", "y")
    assert tickpub.packb(array) == reference_packb(array)
    array.dtype["y"].names = ("z",)
    assert tickpub.packb(array) == reference_packb(array)


@pytest.mark.parametrize("raised", [KeyboardInterrupt, MemoryError, SystemExit])
def test_interrupts_raised_while_encoding_are_not_wrapped(
    raised: type[BaseException],
) -> None:
    class Interrupting(dict[str, Any]):
        def items(self) -> Any:
            raise raised

    with pytest.raises(raised) as info:
        tickpub.packb({"k": Interrupting(a=1)})
    assert not isinstance(info.value, tickpub.EncodeError)


def test_deep_paths_are_shortened_in_the_message_only() -> None:
    value: Any = [object()]
    for _ in range(30):
        value = [value]
    with pytest.raises(tickpub.EncodeError) as info:
        tickpub.packb(value)
    assert info.value.path == "data" + "[0]" * 31
    assert "more)" in str(info.value)
    assert str(info.value).startswith("data[0][0]")
