"""Type stubs for tickpub's native module; the public names are re-exported by
``tickpub``."""

import builtins

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
