"""Type stubs for tickpub's native module; the public names are re-exported by
``tickpub``."""

import builtins
from typing import Any

__version__: str

class TickpubError(Exception):
    """Base class of every error tickpub raises."""

class EncodeError(TickpubError, TypeError, ValueError):
    """A value cannot be encoded; nothing was written.

    Attributes:
        path: where the value sits in the message, e.g. ``data['frames'][3]``.
    """

    path: str

class DecodeError(TickpubError, ValueError):
    """Bytes that are not a message tickpub decodes."""

class ConnectionError(TickpubError, builtins.ConnectionError):
    """The connection to the server failed.

    Attributes:
        kind: 'refused', 'timeout', 'dropped', 'auth', 'tls', 'protocol' or 'config'.
        retry_safe: True when no byte of the failed command reached the server.
    """

    kind: str
    retry_safe: bool

class ServerError(TickpubError):
    """The server answered with an error reply.

    Attributes:
        code: the reply's first word, e.g. ``'NOPERM'``.
    """

    code: str

class MessageTooLargeError(TickpubError, ValueError):
    """The message exceeds the server's ``proto-max-bulk-len``; nothing was sent."""

def packb(obj: object, /) -> bytes:
    """Serialize ``obj`` to msgpack-numpy bytes.

    The bytes are identical to ``msgpack.packb(obj, default=msgpack_numpy.encode)``
    (msgpack 1.x, msgpack-numpy 0.4.8) for every value that reference accepts, so
    existing subscribers decode them unchanged. A C-contiguous array's data is read
    straight from its buffer and copied once, into the result.

    Two intended differences: arrays whose dtype holds Python objects raise instead of
    being pickled, and datetime64/timedelta64 arrays are packed from their raw bytes
    whatever their layout (the reference fails on C-contiguous ones).

    Args:
        obj: None, bool, int, float, str, bytes, bytearray, memoryview, complex,
            dicts, lists and tuples of these, numpy arrays and numpy scalars
            (subclasses count as their base type).

    Returns:
        The msgpack bytes.

    Raises:
        EncodeError: a value cannot be encoded; the message and ``path`` name it,
            e.g. ``data['frames'][3]: cannot encode datetime.datetime``.
    """

def unpackb(
    data: bytes | bytearray | memoryview,
    *,
    copy: bool = False,
    strict_map_key: bool = True,
) -> Any:
    """Decode one msgpack-numpy message, as ``msgpack_numpy.unpackb`` would.

    Maps written by msgpack-numpy become numpy arrays, numpy scalars and complex
    numbers; msgpack arrays become lists, str stays str, bin becomes bytes, ext
    types become ``msgpack.ExtType`` and ext -1 ``msgpack.Timestamp``. Object
    arrays are refused, never unpickled.

    Args:
        data: the whole message. ``bytes`` is parsed in place; other buffers are
            copied once for parsing, but arrays still view the buffer itself.
        copy: False (the default) returns arrays as read-only views of ``data``,
            which keep ``data`` alive (and a ``bytearray`` from being resized) for
            as long as they live. True returns writable arrays with their own memory.
        strict_map_key: True (msgpack's default) accepts only str and bytes map
            keys; False accepts any hashable key.

    Returns:
        The decoded object.

    Raises:
        DecodeError: the bytes are not exactly one msgpack object (truncated,
            malformed, trailing bytes, nested deeper than 1024), a map key is not
            allowed, or a msgpack-numpy map is invalid or would hold Python objects
            (a pickled object array, or a dtype with object fields).
        TypeError: ``data`` does not support the buffer protocol, or is not
            C-contiguous.
    """
