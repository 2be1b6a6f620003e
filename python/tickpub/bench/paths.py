"""The ways of sending a message that the benchmarks compare, as ready-to-call
operations.

Three kinds, each with a pure-Python baseline that its ratios are taken against:

- ``encode``: bytes only. ``tickpub`` is :func:`tickpub.packb`; ``msgpack-numpy``
  (the baseline) is ``msgpack_numpy.packb``, the function ``msgpack_numpy.patch()``
  installs as ``msgpack.packb`` and popoto calls, which builds a ``Packer`` per
  call; ``ormsgpack`` is a speed reference writing another format.
- ``publish``: one message per call. ``tickpub`` is
  :meth:`tickpub.Connection.publish`, ``tickpub-sleeping`` the same with
  ``busy_poll=0``; ``popoto`` (the baseline) encodes with msgpack-numpy and publishes
  with redis-py, as popoto's ``Publisher`` does.
- ``batch``: one batch per call. ``tickpub`` is
  :meth:`tickpub.Connection.publish_many`; ``redis-py-pipeline`` (the baseline) queues
  the encoded messages on a redis-py pipeline without a transaction; ``raw-socket``
  writes pre-encoded ``PUBLISH`` frames to a plain socket, the ceiling of any client.
"""

from __future__ import annotations

import functools
import importlib.util
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

import msgpack_numpy
import redis

from tickpub import Connection, connect, packb
from tickpub.bench.payloads import Message, Payload

__all__ = [
    "BASELINES",
    "KINDS",
    "PATHS",
    "BenchPath",
    "Operation",
    "Target",
    "path_ids",
    "select_paths",
]

Kind = Literal["encode", "publish", "batch"]
KINDS: tuple[Kind, ...] = ("encode", "publish", "batch")

BASELINES: dict[Kind, str] = {
    "encode": "msgpack-numpy",
    "publish": "popoto",
    "batch": "redis-py-pipeline",
}
"""The pure-Python path each kind's ratios are taken against."""


@dataclass(frozen=True)
class Target:
    """Where the publishing paths send.

    Attributes:
        url: the server's URL.
        connection: a tickpub connection to it.
        client: a redis-py client of it.
        channel: the channel to publish on.
    """

    url: str
    connection: Connection
    client: redis.Redis
    channel: str


@dataclass(frozen=True)
class Operation:
    """One measured call: ``fn(*args)``, which sends ``messages`` messages.

    Attributes:
        fn: the function to time.
        args: its arguments, bound before timing starts.
        messages: how many messages one call encodes or publishes.
        close: releases what preparing the call opened, if anything.
    """

    fn: Callable[..., object]
    args: tuple[object, ...]
    messages: int = 1
    close: Callable[[], None] = field(default=lambda: None)

    def __call__(self) -> object:
        return self.fn(*self.args)


Prepare = Callable[[Payload, Target | None], Operation]


@dataclass(frozen=True)
class BenchPath:
    """A way of encoding or publishing, to be measured on every payload.

    Attributes:
        kind: ``encode``, ``publish`` or ``batch``.
        name: the path's name within its kind.
        description: one line saying what is timed.
        prepare: builds the operation for a payload; publishing paths need a target.
        module: a module the path needs that tickpub does not depend on.
        note: a caveat printed with the results.
    """

    kind: Kind
    name: str
    description: str
    prepare: Prepare = field(repr=False)
    module: str | None = None
    note: str = ""

    @property
    def id(self) -> str:
        """``kind/name``, e.g. ``publish/popoto``."""
        return f"{self.kind}/{self.name}"

    @property
    def is_baseline(self) -> bool:
        """True for the pure-Python path of its kind."""
        return BASELINES[self.kind] == self.name

    def unavailable(self) -> str | None:
        """Why the path cannot run here, or None when it can.

        Returns:
            A sentence naming the missing module and how to install it, or None.
        """
        if self.module is None or importlib.util.find_spec(self.module) is not None:
            return None
        return f"{self.module} is not installed (pip install 'tickpub[bench]')"


def popoto_publish(client: redis.Redis, channel: str, message: Message) -> int:
    """Publish as popoto does: msgpack-numpy bytes sent with redis-py.

    Args:
        client: the redis-py client.
        channel: the channel.
        message: the message to encode and publish.

    Returns:
        How many subscribers received it.
    """
    count: int = client.publish(channel, msgpack_numpy.packb(message))
    return count


def pipeline_publish(
    client: redis.Redis, channel: str, message: Message, count: int
) -> None:
    """Publish ``count`` copies of a message through one redis-py pipeline.

    Each copy is encoded as it is queued, as popoto does when given a pipeline.

    Args:
        client: the redis-py client.
        channel: the channel.
        message: the message.
        count: how many times to publish it.
    """
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.publish(channel, msgpack_numpy.packb(message))
    pipe.execute()


class RawPublisher:
    """A plain socket writing pre-encoded ``PUBLISH`` frames and counting replies.

    Supports ``redis://`` and ``unix://`` URLs, with a password when the URL has one;
    TLS is not supported.
    """

    def __init__(self, url: str, channel: str, payload: bytes, count: int) -> None:
        """Connect, authenticate, and build ``count`` frames of ``payload``.

        Args:
            url: the server's URL.
            channel: the channel.
            payload: the encoded message.
            count: frames written per :meth:`send`.

        Raises:
            ValueError: the URL's scheme is not ``redis`` or ``unix``.
            OSError: the server cannot be reached.
            ConnectionError: the server refused the password.
        """
        parts = urlsplit(url)
        if parts.scheme == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(parts.path)
        elif parts.scheme == "redis":
            self.sock = socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 6379)
            )
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            raise ValueError(f"a raw socket cannot open a {parts.scheme}:// URL")

        if parts.password is not None:
            words = [b"AUTH", unquote(parts.password).encode()]
            if parts.username:
                words.insert(1, unquote(parts.username).encode())
            self.sock.sendall(_command(*words))
            reply = self.sock.recv(1024)
            if not reply.startswith(b"+OK"):
                self.sock.close()
                raise ConnectionError(f"AUTH failed: {reply.decode(errors='replace')}")

        self.count = count
        self.frames = _command(b"PUBLISH", channel.encode(), payload) * count

    def send(self) -> None:
        """Write all frames and read one reply per frame.

        Raises:
            ConnectionError: the server closed the connection or answered an error.
        """
        self.sock.sendall(self.frames)
        replies = 0
        while replies < self.count:
            chunk = self.sock.recv(65536)
            if not chunk or chunk.startswith(b"-"):
                raise ConnectionError(f"PUBLISH failed: {chunk[:200]!r}")
            replies += chunk.count(b"\r\n")

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def _command(*words: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        parts.append(b"$%d\r\n%s\r\n" % (len(word), word))
    return b"".join(parts)


def _target(target: Target | None) -> Target:
    if target is None:
        raise ValueError("a publishing path needs a server")
    return target


def _encode_tickpub(payload: Payload, _: Target | None) -> Operation:
    return Operation(packb, (payload.message(),))


def _encode_msgpack_numpy(payload: Payload, _: Target | None) -> Operation:
    return Operation(msgpack_numpy.packb, (payload.message(),))


def _encode_ormsgpack(payload: Payload, _: Target | None) -> Operation:
    import ormsgpack

    fn = functools.partial(ormsgpack.packb, option=ormsgpack.OPT_SERIALIZE_NUMPY)
    return Operation(fn, (payload.message(),))


def _publish_tickpub(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    return Operation(t.connection.publish, (t.channel, payload.message()))


def _publish_tickpub_sleeping(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    connection = connect(t.url, busy_poll=0)
    return Operation(
        connection.publish, (t.channel, payload.message()), close=connection.close
    )


def _publish_popoto(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    return Operation(popoto_publish, (t.client, t.channel, payload.message()))


def _batch_tickpub(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    batch = [payload.message()] * payload.batch
    return Operation(t.connection.publish_many, (t.channel, batch), payload.batch)


def _batch_pipeline(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    args = (t.client, t.channel, payload.message(), payload.batch)
    return Operation(pipeline_publish, args, payload.batch)


def _batch_raw_socket(payload: Payload, target: Target | None) -> Operation:
    t = _target(target)
    encoded = packb(payload.message())
    raw = RawPublisher(t.url, t.channel, encoded, payload.batch)
    return Operation(raw.send, (), payload.batch, raw.close)


PATHS: tuple[BenchPath, ...] = (
    BenchPath("encode", "tickpub", "tickpub.packb", _encode_tickpub),
    BenchPath(
        "encode",
        "msgpack-numpy",
        "msgpack.packb after msgpack_numpy.patch()",
        _encode_msgpack_numpy,
    ),
    BenchPath(
        "encode",
        "ormsgpack",
        "ormsgpack.packb with OPT_SERIALIZE_NUMPY",
        _encode_ormsgpack,
        module="ormsgpack",
        note="ormsgpack writes arrays as msgpack lists, not msgpack-numpy maps: "
        "a speed reference whose bytes popoto cannot read",
    ),
    BenchPath("publish", "tickpub", "Connection.publish", _publish_tickpub),
    BenchPath(
        "publish",
        "tickpub-sleeping",
        "Connection.publish with busy_poll=0",
        _publish_tickpub_sleeping,
        note="tickpub-sleeping waits for each reply asleep in the kernel instead of "
        "polling for it first (busy_poll=0): what the polling saves",
    ),
    BenchPath(
        "publish", "popoto", "msgpack-numpy, then redis-py publish", _publish_popoto
    ),
    BenchPath("batch", "tickpub", "Connection.publish_many", _batch_tickpub),
    BenchPath(
        "batch",
        "redis-py-pipeline",
        "msgpack-numpy into a redis-py pipeline(transaction=False)",
        _batch_pipeline,
    ),
    BenchPath(
        "batch",
        "raw-socket",
        "pre-encoded PUBLISH frames written to a plain socket",
        _batch_raw_socket,
        note="raw-socket sends bytes encoded before timing starts: the ceiling "
        "of any client, not a way to publish",
    ),
)


def path_ids() -> list[str]:
    """The ids (``kind/name``) of all paths.

    Returns:
        The ids, in the order of :data:`PATHS`.
    """
    return [path.id for path in PATHS]


def select_paths(selectors: list[str] | None) -> list[BenchPath]:
    """The paths matching any selector: a kind (``encode``) or an id
    (``publish/tickpub``).

    Args:
        selectors: kinds and ids; None or empty selects every path.

    Returns:
        The selected paths, in the order of :data:`PATHS`.

    Raises:
        ValueError: a selector matches no path.
    """
    if not selectors:
        return list(PATHS)
    known = set(KINDS) | set(path_ids())
    unknown = [s for s in selectors if s not in known]
    if unknown:
        raise ValueError(
            f"unknown path {', '.join(unknown)}; choose a kind "
            f"({', '.join(KINDS)}) or one of {', '.join(path_ids())}"
        )
    return [p for p in PATHS if p.kind in selectors or p.id in selectors]
