"""Type stubs for tickpub's native module; the public names are re-exported by
``tickpub``."""

import builtins
import os
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal, final

from typing_extensions import Buffer

__all__ = [
    "Connection",
    "ConnectionError",
    "DecodeError",
    "EncodeError",
    "MessageTooLargeError",
    "ServerError",
    "TickpubError",
    "__version__",
    "connect",
    "packb",
    "unpackb",
]

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
        retry_safe: True when no byte of the failed command reached the server, and
            for every failure to connect (nothing was published yet).
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

@final
class Connection:
    """A connection to one Redis or Valkey server, made by :func:`connect`.

    Safe to share between threads: each call holds the connection's lock while it
    writes and reads, so frames never interleave. The GIL is released while the
    socket is busy. After ``os.fork()`` the child opens its own connection on its
    first call and never touches the parent's socket.

    A call on a connection that failed reconnects first (``retry_attempts`` attempts,
    ``retry_backoff`` apart, doubling), logging on the ``tickpub`` logger. A message
    whose sending failed is never resent: pub/sub has no de-duplication.

    Usable as a context manager; leaving the block closes it.
    """

    @property
    def url(self) -> str:
        """The server's URL with the password replaced by ``***``."""

    def publish(self, channel: str | bytes, data: object) -> int:
        """Encode ``data`` as msgpack-numpy and PUBLISH it on ``channel``.

        The whole message is encoded before anything is written, so an encode error
        sends nothing and leaves the connection usable. Array data goes from the numpy
        buffer to the socket without a copy; do not modify the arrays from another
        thread while the call runs.

        Args:
            channel: the channel; a str is sent as UTF-8.
            data: the message: dicts, lists, scalars, strings, bytes, numpy arrays.

        Returns:
            How many subscribers received the message.

        Raises:
            TypeError: ``channel`` is not str or bytes.
            EncodeError: ``data`` holds a value that cannot be encoded.
            MessageTooLargeError: the message exceeds the server's
                ``proto-max-bulk-len``; nothing was sent.
            ConnectionError: the connection failed; ``retry_safe`` tells whether any
                byte of the message was written.
            ServerError: the server refused the command (e.g. an ACL's NOPERM).
        """

    def spublish(self, channel: str | bytes, data: object) -> int:
        """Like :meth:`publish`, with SPUBLISH (sharded pub/sub, Redis 7 and later).

        Args:
            channel: the shard channel.
            data: the message.

        Returns:
            How many subscribers received the message.

        Raises:
            ServerError: among the errors of :meth:`publish`, when the server does
                not know SPUBLISH (Redis 6 and older).
        """

    def publish_many(
        self, channel: str | bytes, messages: Iterable[object]
    ) -> list[int]:
        """Publish every message of ``messages`` on ``channel``, pipelined.

        All messages are encoded first, so an encode error anywhere sends nothing.
        They are then written in chunks (at most 1000 frames or about 4 MiB at a time),
        each chunk's replies read before the next is written.

        Args:
            channel: the channel.
            messages: the messages, in order.

        Returns:
            The subscriber count of each message.

        Raises:
            TypeError: ``channel`` is not str or bytes, or ``messages`` is not
                iterable.
            EncodeError: a message cannot be encoded; nothing was sent.
            MessageTooLargeError: a message exceeds ``proto-max-bulk-len``; nothing
                was sent.
            ConnectionError: the connection failed part-way; the messages of chunks
                already confirmed were published, ``retry_safe`` is true only when no
                byte of the batch was written.
            ServerError: the server refused a command; the chunk holding it was
                sent in full and no later chunk was.
        """

    def publish_bytes(self, channel: str | bytes, payload: bytes) -> int:
        """PUBLISH an already encoded payload as it is.

        Args:
            channel: the channel.
            payload: the message bytes.

        Returns:
            How many subscribers received the message.

        Raises:
            TypeError: ``channel`` is not str or bytes, or ``payload`` is not bytes.
            MessageTooLargeError: the payload exceeds ``proto-max-bulk-len``.
            ConnectionError: the connection failed.
            ServerError: the server refused the command.
        """

    def ping(self) -> bool:
        """Send PING.

        Returns:
            True when the server answered PONG.

        Raises:
            ConnectionError: the connection failed.
            ServerError: the server answered with an error.
        """

    def close(self) -> None:
        """Close the connection; later calls raise ConnectionError. Safe to repeat."""

    def stats(self) -> dict[str, int]:
        """Counters since :func:`connect`.

        Returns:
            ``messages`` and ``bytes`` (payload bytes) the server confirmed,
            ``errors`` raised by publishing calls, ``reconnects`` made.
        """

    def __enter__(self) -> Connection: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

def connect(
    url: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    db: int | None = None,
    client_name: str | None = None,
    socket_connect_timeout: float | None = None,
    socket_timeout: float | None = None,
    ssl_ca_certs: str | os.PathLike[str] | None = None,
    ssl_certfile: str | os.PathLike[str] | None = None,
    ssl_keyfile: str | os.PathLike[str] | None = None,
    ssl_cert_reqs: Literal["required", "none"] | None = None,
    retry_attempts: int | None = None,
    retry_backoff: float | None = None,
    busy_poll: float | None = None,
) -> Connection:
    """Connect to a Redis or Valkey server.

    The URL is read as redis-py's ``from_url`` reads it:
    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` for TLS, and
    ``unix:///path/to/socket?db=N``; user and password are percent-decoded, and
    ``?db=`` wins over the path. Options may also be given in the URL's query. A
    keyword option overrides the URL; None means "not given".

    The connection authenticates (AUTH with the user, if any, and the password),
    selects ``db``, sets the client name, and reads the server's
    ``proto-max-bulk-len`` (512 MiB when CONFIG is not allowed). TCP_NODELAY is on.
    One attempt is made: a server that is not listening fails at once.

    Args:
        url: the server; ``REDIS_URL`` from the environment when None, else
            ``redis://127.0.0.1:6379/0``.
        username: ACL user.
        password: password; never shown in reprs, logs or error messages.
        db: database number (pub/sub ignores it, other commands do not).
        client_name: name set with CLIENT SETNAME.
        socket_connect_timeout: seconds to connect, including TLS and the handshake
            (default 5.0).
        socket_timeout: seconds a read or write may block (default: no limit).
        ssl_ca_certs: PEM file of the CAs to trust (default: the Mozilla roots).
        ssl_certfile: PEM file of a client certificate chain.
        ssl_keyfile: PEM file of the client key (default: ``ssl_certfile``).
        ssl_cert_reqs: ``'none'`` skips verifying the server's certificate.
        retry_attempts: connection attempts a call makes after the connection was
            lost (default 3).
        retry_backoff: seconds before the second attempt, doubling after (default
            0.05).
        busy_poll: seconds a call polls the socket for the server's reply before it
            sleeps until the reply arrives (default 0.0001; at most 0.01; 0 turns
            polling off). Polling keeps the thread from being put to sleep and woken
            for every reply, which on many machines costs more than the loopback
            round trip itself; it spends at most this much CPU time per reply
            waited for. TLS connections do not poll.

    Returns:
        The open connection.

    Raises:
        TypeError: an unknown option, or an option of the wrong type.
        ConnectionError: kind ``'config'`` for an invalid URL or option value (the
            ssl options need a ``rediss://`` URL), ``'refused'``, ``'timeout'``,
            ``'auth'``, ``'tls'`` or ``'protocol'`` (the server's answers are not
            RESP) when connecting fails.
    """

def packb(obj: object, /) -> bytes:
    """Serialize ``obj`` to msgpack-numpy bytes.

    The bytes are identical to ``msgpack.packb(obj, default=msgpack_numpy.encode)``
    (msgpack 1.x, msgpack-numpy 0.4.8) for every value that reference accepts, so
    existing subscribers decode them unchanged. A C-contiguous array's data is read
    straight from its buffer and copied once, into the result.

    Intended differences: arrays whose dtype holds Python objects raise instead of
    being pickled; datetime64/timedelta64 arrays are packed from their raw bytes
    whatever their layout (the reference fails on C-contiguous ones); and the padding
    bytes of a non-contiguous structured array with gaps between its fields are
    copied as they are in memory, where the reference leaves them unspecified.

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
    data: Buffer,
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
            which keep ``data`` alive (and a ``bytearray`` from being resized, an
            ``mmap`` from being closed) for as long as they live; their memory may
            not be aligned for their dtype, which numpy handles at some cost. True
            returns writable, aligned arrays with their own memory.
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
