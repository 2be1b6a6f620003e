"""tickpub.unpackb against msgpack_numpy.unpackb, the reference decoder.

Messages are packed with ``msgpack.packb(obj, default=msgpack_numpy.encode)`` (without
patching msgpack) or built by hand where the reference packer cannot write them; each
is decoded by both, and the results must agree in type and value. Where the reference
raises, tickpub must raise ``DecodeError``. The safety tests cover what tickpub refuses
on purpose: pickled and object-holding arrays.
"""

from __future__ import annotations

import gc
import math
import mmap
import pickle
import struct
import subprocess
import sys
import textwrap
import threading
from typing import Any, Literal, cast

import hypothesis.extra.numpy as hnp
import msgpack
import msgpack_numpy
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tickpub
from tickpub import DecodeError

# longdouble and clongdouble are float128/complex256 on x86-64 Linux and alias
# float64/complex128 where the platform has no wider type.
FLOAT_SIZES: tuple[Literal[16, 32, 64, 96, 128], ...] = (16, 32, 64, 96, 128)
COMPLEX_SIZES: tuple[Literal[64, 128, 192, 256], ...] = (64, 128, 192, 256)
FLOAT_SIZES = tuple(bits for bits in FLOAT_SIZES if hasattr(np, f"float{bits}"))
COMPLEX_SIZES = tuple(bits for bits in COMPLEX_SIZES if hasattr(np, f"complex{bits}"))


def _encode_with_tobytes(obj: Any) -> Any:
    """msgpack_numpy.encode's map for an array, with the bytes copied out.

    The reference hands msgpack ``obj.data`` for C-contiguous arrays, which fails
    for dtypes the buffer protocol cannot describe (datetime64, timedelta64); the
    map is otherwise the one it writes, and the bytes on the wire the same.
    """
    if not isinstance(obj, np.ndarray):
        return msgpack_numpy.encode(obj)
    if obj.dtype.kind == "V":
        kind, descr = b"V", obj.dtype.descr
    else:
        kind, descr = b"", obj.dtype.str
    return {
        b"nd": True,
        b"type": descr,
        b"kind": kind,
        b"shape": obj.shape,
        b"data": obj.tobytes(),
    }


def pack(obj: Any) -> bytes:
    """The bytes the reference packer writes for ``obj``."""
    try:
        packed = msgpack.packb(obj, default=msgpack_numpy.encode)
    except ValueError:
        packed = msgpack.packb(obj, default=_encode_with_tobytes)
    assert isinstance(packed, bytes)
    return packed


def _float_bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_same(actual: Any, expected: Any, path: str = "data") -> None:
    """Same type and the same value, bit for bit for floats and array contents."""
    assert type(actual) is type(expected), (
        f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    )
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, f"{path}: dtype"
        assert actual.shape == expected.shape, f"{path}: shape"
        assert actual.tobytes() == expected.tobytes(), f"{path}: contents"
        if expected.dtype.kind in "biufc":
            assert np.array_equal(actual, expected, equal_nan=True), path
    elif isinstance(expected, np.generic):
        assert actual.dtype == expected.dtype, f"{path}: dtype"
        assert actual.tobytes() == expected.tobytes(), f"{path}: value"
    elif isinstance(expected, dict):
        assert [(type(k), k) for k in actual] == [(type(k), k) for k in expected], path
        for key, value in expected.items():
            assert_same(actual[key], value, f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: length"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same(got, want, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), path
    elif isinstance(expected, complex):
        assert _float_bits(actual.real) == _float_bits(expected.real), path
        assert _float_bits(actual.imag) == _float_bits(expected.imag), path
    else:
        assert actual == expected, path


def check(data: bytes, **options: Any) -> Any:
    """Decode with both; tickpub must return the same value or raise DecodeError."""
    try:
        expected = msgpack_numpy.unpackb(data, **options)
    except Exception:
        with pytest.raises(DecodeError):
            tickpub.unpackb(data, **options)
        return None
    actual = tickpub.unpackb(data, **options)
    assert_same(actual, expected)
    return actual


def nd_map(**fields: Any) -> bytes:
    """A hand-built msgpack-numpy map: bytes keys, values as given."""
    return msgpack.packb({k.encode(): v for k, v in fields.items()})  # type: ignore[no-any-return]


# Strategies ------------------------------------------------------------------------


def numeric_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.one_of(
        hnp.boolean_dtypes(),
        hnp.integer_dtypes(endianness="?"),
        hnp.unsigned_integer_dtypes(endianness="?"),
        hnp.floating_dtypes(endianness="?", sizes=FLOAT_SIZES),
        hnp.complex_number_dtypes(endianness="?", sizes=COMPLEX_SIZES),
    )


def leaf_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.one_of(
        numeric_dtypes(),
        hnp.byte_string_dtypes(endianness="?", max_len=4),
        hnp.unicode_string_dtypes(endianness="?", max_len=4),
        hnp.datetime64_dtypes(endianness="?"),
        hnp.timedelta64_dtypes(endianness="?"),
    )


def array_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.one_of(
        leaf_dtypes(),
        hnp.array_dtypes(leaf_dtypes(), min_size=1, max_size=3, allow_subarrays=True),
        hnp.nested_dtypes(leaf_dtypes(), max_leaves=4, max_itemsize=64),
    )


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray[Any, Any]:
    """Arrays of every dtype, in C, Fortran and non-contiguous layouts."""
    dtype = draw(array_dtypes())
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    array: np.ndarray[Any, Any] = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim > 0:
        array = np.repeat(array, 2, axis=0)[::2]
    return array


@st.composite
def numpy_scalars(draw: st.DrawFn) -> np.generic:
    dtype = draw(numeric_dtypes())
    value = draw(hnp.from_dtype(dtype))
    return cast(np.generic, np.array(value, dtype=dtype)[()])


python_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(),
    st.binary(),
    st.complex_numbers(),
)

keys = st.one_of(st.text(max_size=6), st.binary(max_size=6), st.sampled_from([b"nd"]))

messages = st.recursive(
    st.one_of(python_leaves, numpy_scalars(), arrays()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=8,
)


# Differential tests ----------------------------------------------------------------


@given(messages)
def test_messages_decode_like_the_reference(obj: Any) -> None:
    check(pack(obj))


@given(arrays())
def test_arrays_of_every_dtype_and_layout(array: np.ndarray[Any, Any]) -> None:
    check(pack({"frame": array}))


@given(numpy_scalars())
def test_numpy_scalars_keep_their_type(scalar: np.generic) -> None:
    # np.float64 and np.complex128 subclass float and complex, which msgpack packs
    # natively; both decoders then agree on the Python type.
    check(pack(scalar))


@pytest.mark.parametrize(
    "scalar",
    [
        np.float32(1.5),
        np.float16(-2.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
    ],
)
def test_named_scalar_types(scalar: np.generic) -> None:
    result = check(pack(scalar))
    assert type(result) is type(scalar)


@given(st.sampled_from(("<", ">")), numeric_dtypes(), st.data())
def test_scalars_of_either_byte_order(
    order: Literal["<", ">"], dtype: np.dtype[Any], data: st.DataObject
) -> None:
    dtype = dtype.newbyteorder(order)
    value = np.array(data.draw(hnp.from_dtype(dtype)), dtype=dtype)
    check(nd_map(nd=False, type=dtype.str, data=value.tobytes()))


@given(st.complex_numbers(allow_nan=True, allow_infinity=True))
def test_complex_numbers(value: complex) -> None:
    assert type(check(pack(value))) is complex


def test_tick_message() -> None:
    tick = {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456}
    assert check(pack(tick)) == tick


def test_ext_types_and_timestamps() -> None:
    check(msgpack.packb([msgpack.ExtType(5, b"abc"), msgpack.Timestamp(1, 2)]))
    check(msgpack.packb(msgpack.Timestamp(2**40, 999_999_999)))
    check(b"\xd4\xfe\x00")  # negative ext code: msgpack refuses it
    check(b"\xd5\xff\x00\x00")  # timestamp of a length msgpack refuses


@pytest.mark.parametrize(
    "fields",
    [
        {"nd": True, "type": "<f8", "shape": [2]},  # no data
        {"nd": True, "data": b"\x00" * 8, "shape": [1]},  # no type
        {"nd": True, "type": "<f8", "data": b"\x00" * 8},  # no shape
        {"nd": False, "type": "<f8"},
        {"nd": True, "kind": b"O", "type": "|O", "shape": [1]},  # no data
        {"complex": True},
        {"nd": True, "kind": b"V", "data": b"", "shape": [0]},
    ],
)
def test_incomplete_numpy_maps_stay_dicts(fields: dict[str, Any]) -> None:
    result = check(nd_map(**fields))
    assert isinstance(result, dict)


@pytest.mark.parametrize(
    "fields",
    [
        {"nd": True, "type": "<f8", "shape": [2], "data": b"\x00" * 24},  # longer
        {"nd": True, "type": "<f8", "shape": [3], "data": b"\x00" * 16},  # shorter
        {"nd": True, "type": "<f8", "shape": 2, "data": b"\x00" * 16},
        {"nd": True, "type": "<f8", "shape": [-1], "data": b"\x00" * 16},
        {"nd": True, "type": "<f8", "shape": [-2], "data": b"\x00" * 16},
        {"nd": True, "type": "<f8", "shape": [2**62, 2**62], "data": b""},
        {"nd": True, "type": "<f8", "shape": [0, 2**62, 2**62], "data": b""},
        {"nd": True, "type": "<f8", "shape": [1.0], "data": b"\x00" * 8},
        {"nd": True, "type": "<f8", "shape": ["1"], "data": b"\x00" * 8},
        {"nd": True, "type": "<f8", "shape": None, "data": b"\x00" * 8},
        {"nd": True, "type": "<f8", "shape": b"\x01", "data": b"\x00" * 8},
        {"nd": True, "type": "<f8", "shape": [1], "data": "text"},
        {"nd": True, "type": "<q9", "shape": [1], "data": b"\x00" * 8},
        {"nd": True, "type": 7, "shape": [1], "data": b"\x00" * 8},
        {"nd": True, "type": [["a", "<i4", [2]]], "shape": [1], "data": b"\0" * 8},
        {
            "nd": True,
            "kind": b"V",
            "type": [[b"a", "<i2"]],
            "shape": [2],
            "data": b"1234",
        },
        {
            "nd": True,
            "kind": b"V",
            "type": [[b"\xff", "<i2"]],
            "shape": [1],
            "data": b"12",
        },
        {"nd": True, "kind": b"V", "type": 5, "shape": [1], "data": b"12"},
        {"nd": True, "kind": b"V", "type": [{"x": 1}], "shape": [1], "data": b"12"},
        {"nd": 1, "type": "<i2", "data": b"12"},  # nd that is not True: a scalar
        {"nd": None, "type": "<i2", "data": b"123"},
        {"nd": False, "type": "<i2", "data": b""},
        {"nd": False, "type": "V0", "data": b""},
        {"complex": 0, "data": "1+2j"},
        {"complex": True, "data": b"(1-2j)"},
        {"complex": True, "data": 1.5},
        {"complex": True, "data": "not a number"},
        {"complex": True, "data": b"\xff"},
    ],
)
def test_numpy_maps_follow_the_reference(fields: dict[str, Any]) -> None:
    check(nd_map(**fields))


def test_numpy_maps_decode_inside_out() -> None:
    inner = {
        b"nd": True,
        b"type": "<i4",
        b"kind": b"",
        b"shape": [2],
        b"data": b"\1" * 8,
    }
    check(msgpack.packb({b"nd": False, b"type": "<i4", b"data": inner}))
    check(msgpack.packb({b"nd": True, b"type": "<i2", b"shape": [4], b"data": inner}))
    check(msgpack.packb({"outer": [inner, {b"complex": True, b"data": "3j"}]}))


def test_duplicate_keys_keep_the_last_value() -> None:
    # fixmap of 3: b'nd': True, ..., b'nd': False
    body = msgpack.packb(b"nd") + b"\xc3"
    body += msgpack.packb(b"type") + msgpack.packb("<i2")
    body += msgpack.packb(b"nd") + b"\xc2"
    check(b"\x84" + body + msgpack.packb(b"data") + msgpack.packb(b"\1\0"))


# Map keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\x01\xa3int",  # int key
        b"\x81\xcb" + struct.pack(">d", 1.5) + b"\xc0",
        b"\x81\xc0\xc0",  # None key
        b"\x81\xc3\xc0",  # True key
        b"\x81\x91\x01\xc0",  # array key: unhashable list
        b"\x81\x80\xc0",  # map key: unhashable dict
        b"\x81\xd4\x01\x00\xc0",  # ext key
        b"\x81\xa1a\x01",
        b"\x81\xc4\x01a\x01",
    ],
)
@pytest.mark.parametrize("strict", [True, False])
def test_map_keys_follow_msgpack(data: bytes, strict: bool) -> None:
    check(data, strict_map_key=strict)


def test_numpy_scalar_keys_need_strict_map_key_false() -> None:
    key = {b"nd": False, b"type": "<i8", b"data": struct.pack("<q", 7)}
    data = b"\x81" + msgpack.packb(key) + b"\xc0"
    check(data, strict_map_key=True)
    result = check(data, strict_map_key=False)
    assert list(result) == [np.int64(7)]


# Zero copy -------------------------------------------------------------------------


def _frame_message() -> tuple[bytes, np.ndarray[Any, Any]]:
    frame = np.arange(1000, dtype="<f8").reshape(10, 100)
    return pack({"frame": frame, "n": 1}), frame


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_arrays_view_the_input(wrap: Any) -> None:
    data, frame = _frame_message()
    source = wrap(data)
    result = tickpub.unpackb(source)["frame"]
    assert np.array_equal(result, frame)
    assert np.shares_memory(result, np.frombuffer(source, np.uint8))
    assert not result.flags.writeable


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_arrays_cannot_be_made_writable(wrap: Any) -> None:
    data, _ = _frame_message()
    result = tickpub.unpackb(wrap(data))["frame"]
    with pytest.raises(ValueError):
        result.flags.writeable = True


def test_a_decoded_array_keeps_a_bytearray_from_being_resized() -> None:
    data, _ = _frame_message()
    source = bytearray(data)
    result = tickpub.unpackb(source)["frame"]
    with pytest.raises(BufferError):
        source.extend(b"more")
    with pytest.raises(BufferError):
        source.clear()
    del result
    source.extend(b"more")  # the array was the last user of the buffer


def test_a_decoded_array_keeps_an_mmap_open() -> None:
    data, frame = _frame_message()
    with mmap.mmap(-1, len(data)) as mapped:
        mapped[:] = data
        result = tickpub.unpackb(mapped)["frame"]
        with pytest.raises(BufferError):
            mapped.close()
        assert np.array_equal(result, frame)
        del result


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_copy_returns_writable_arrays_of_their_own(wrap: Any) -> None:
    data, frame = _frame_message()
    source = wrap(data)
    result = tickpub.unpackb(source, copy=True)["frame"]
    assert np.array_equal(result, frame)
    assert not np.shares_memory(result, np.frombuffer(source, np.uint8))
    assert result.flags.writeable
    result[0, 0] = 42.0
    assert tickpub.unpackb(source)["frame"][0, 0] == 0.0


def test_the_view_keeps_the_input_alive() -> None:
    data, frame = _frame_message()
    source = bytearray(data)
    result = tickpub.unpackb(source)["frame"]
    del source, data
    gc.collect()
    junk = [bytearray(len(frame.tobytes())) for _ in range(50)]
    assert np.array_equal(result, frame)
    del junk


def test_non_contiguous_memoryview_is_a_type_error() -> None:
    data, _ = _frame_message()
    strided = np.frombuffer(data, np.uint8)[::2].data
    with pytest.raises(TypeError):
        tickpub.unpackb(strided)


# Safety ----------------------------------------------------------------------------

_pickle_ran: list[str] = []


def _record_unpickled(marker: str) -> str:
    _pickle_ran.append(marker)
    return marker


class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record_unpickled, ("unpickled",))


def test_pickled_object_arrays_are_refused_without_unpickling() -> None:
    payload = pickle.dumps(_Payload())
    data = nd_map(nd=True, type="|O", kind=b"O", shape=[1], data=payload)

    # The reference runs the pickle: the payload is live.
    _pickle_ran.clear()
    assert msgpack_numpy.unpackb(data) == "unpickled"
    assert _pickle_ran == ["unpickled"]

    _pickle_ran.clear()
    with pytest.raises(DecodeError, match="unpickle"):
        tickpub.unpackb(data)
    assert _pickle_ran == []


def test_reference_object_array_is_refused() -> None:
    data = msgpack.packb(np.array([1, "a"], dtype=object), default=msgpack_numpy.encode)
    with pytest.raises(DecodeError):
        tickpub.unpackb(data)


@pytest.mark.parametrize("type_", ["|O", "O", "object", "O8"])
def test_object_dtype_with_empty_kind_is_refused(type_: str) -> None:
    # The reference would read eight bytes of the message as a PyObject pointer.
    data = nd_map(nd=True, type=type_, kind=b"", shape=[1], data=b"\x41" * 8)
    with pytest.raises(DecodeError, match="Python"):
        tickpub.unpackb(data)


@pytest.mark.parametrize(
    "descr",
    [
        [["a", "<i4"], ["b", "|O"]],
        [["a", [["inner", "|O"]]]],
        [["a", "|O", [2]]],
    ],
)
def test_structured_dtype_with_object_field_is_refused(descr: Any) -> None:
    data = nd_map(nd=True, type=descr, kind=b"V", shape=[1], data=b"\x41" * 64)
    with pytest.raises(DecodeError):
        tickpub.unpackb(data)


def test_object_scalar_is_refused() -> None:
    with pytest.raises(DecodeError):
        tickpub.unpackb(nd_map(nd=False, type="|O", data=b"\x41" * 8))


# Malformed input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x92\x01",  # array of two with one element
        b"\xa5abc",  # str shorter than declared
        b"\xc6\xff\xff\xff\xff",  # 4 GiB bin declared in five bytes
        b"\xdd\xff\xff\xff\xff\xc0",  # 4 billion elements
        b"\xdf\xff\xff\xff\xff\xc0\xc0",  # 4 billion pairs
        b"\xc9\xff\xff\xff\xff\x01",
        b"\xa2\xc3\x28",  # invalid UTF-8
        b"\xa3\xed\xa0\x80",  # UTF-8 encoded surrogate
        b"\xc0\xc0",  # trailing bytes
        b"\x81\xa1a",  # map missing its value
    ],
)
def test_malformed_input_is_a_decode_error(data: bytes) -> None:
    check(data)
    with pytest.raises(DecodeError):
        tickpub.unpackb(data)


@pytest.mark.parametrize("depth", [1000, 1024, 1025, 100_000])
def test_nesting_limit_matches_msgpack(depth: int) -> None:
    for header in (b"\x91", b"\x81\xa0"):  # [[...]] and {"": {"": ...}}
        data = header * depth + b"\xc0"
        try:
            msgpack.unpackb(data)
        except ValueError:
            with pytest.raises(DecodeError, match="nested"):
                tickpub.unpackb(data)
            continue
        result = tickpub.unpackb(data)
        for _ in range(depth):
            (result,) = result if isinstance(result, list) else result.values()
        assert result is None


def test_errors_say_where() -> None:
    with pytest.raises(DecodeError, match="byte 3"):
        tickpub.unpackb(b"\x93\x01\x02\xa5abc")
    with pytest.raises(DecodeError, match="extra data"):
        tickpub.unpackb(b"\x01\x02")
    with pytest.raises(DecodeError, match=r"byte 0.*not understood"):
        tickpub.unpackb(nd_map(nd=True, type="<q9", shape=[1], data=b"\x00" * 8))


def test_float_specials_survive() -> None:
    for value in (math.inf, -math.inf, math.nan, -0.0):
        check(pack({"x": value, "y": np.float32(value), "z": complex(value, value)}))


def test_array_data_must_be_bin_not_nil() -> None:
    # numpy would allocate the declared size: 2 GiB, uninitialised, from 44 bytes.
    message = msgpack.packb(
        {b"nd": True, b"type": "<f8", b"kind": b"", b"shape": [2**28], b"data": None}
    )
    with pytest.raises(DecodeError, match="no data"):
        tickpub.unpackb(message)


def test_renaming_a_decoded_dtype_does_not_change_later_messages() -> None:
    # A type string may describe fields too; each message gets its own dtype.
    message = msgpack.packb(
        {b"nd": True, b"type": "i4,f8", b"kind": b"", b"shape": [1], b"data": bytes(12)}
    )
    first = tickpub.unpackb(message)
    first.dtype.names = ("x", "y")
    assert tickpub.unpackb(message).dtype.names == ("f0", "f1")


def test_deep_nesting_decodes_on_a_small_thread_stack() -> None:
    message = b"\x91" * 1024 + b"\xc0"
    results: list[Any] = []
    old = threading.stack_size(128 * 1024)
    try:
        thread = threading.Thread(
            target=lambda: results.append(tickpub.unpackb(message))
        )
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old)
    assert len(results) == 1
    level = results[0]
    for _ in range(1024):
        assert isinstance(level, list)
        assert len(level) == 1
        level = level[0]
    assert level is None


def test_decoding_repeatedly_keeps_memory_flat() -> None:
    script = textwrap.dedent(
        """
        import resource, msgpack_numpy, numpy as np, tickpub
        good = msgpack_numpy.packb({"frame": np.ones(1 << 17), "s": "x" * 100})
        bad = good[:-1]
        def run(count):
            for _ in range(count):
                tickpub.unpackb(good)
                tickpub.unpackb(good, copy=True)
                try:
                    tickpub.unpackb(bad)
                except tickpub.DecodeError:
                    pass
        run(50)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(3000)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    # 3000 leaked copies would be 3 GiB; allow for allocator noise only.
    assert int(result.stdout) < 8 * 1024
