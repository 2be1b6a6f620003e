"""The ``Publisher`` mixin: popoto's publishing API on tickpub's native connection.

A class gains ``publish()`` by listing :class:`Publisher` among its bases. The mixin
has no metaclass and keeps no state that its ``__init__`` must have created, so it
combines with classes that have their own metaclass and an ``__init__`` that never
calls ``super().__init__()``, such as ``popoto.Model``.
"""

from __future__ import annotations

import ssl
import threading
from types import TracebackType
from typing import Any, Protocol, Self, TypeAlias, TypeVar, overload

import redis

from tickpub import _default
from tickpub._native import Connection, TickpubError, connect, packb

_T_co = TypeVar("_T_co", covariant=True)


class PublisherException(TickpubError):
    """A publish cannot be made: no channel to publish to, or a misused batch."""


class SupportsPublish(Protocol[_T_co]):
    """A pipeline: anything with a ``publish(channel, message)`` method.

    redis-py's ``Pipeline`` and popoto's pipelines and batches are such objects.
    """

    def publish(self, channel: str | bytes, message: bytes, /) -> _T_co: ...


ConnectionLike: TypeAlias = Connection | str | redis.Redis
"""What ``connection=`` accepts: a tickpub Connection, a URL, or a redis-py client."""


class Publisher:
    """Mixin that publishes msgpack-numpy messages to a pub/sub channel.

    Combine it with any class: ``class StockPrice(popoto.Model, Publisher)``. The
    channel defaults to the class name. Messages are encoded by tickpub's native
    codec into the bytes ``msgpack.packb(data, default=msgpack_numpy.encode)``
    produces, so popoto's Subscriber and plain msgpack-numpy read them.

    Nothing here depends on ``__init__`` having run: a class whose ``__init__``
    does not call ``super().__init__()`` publishes on the class-name channel
    through the process default connection.

    Attributes:
        _channel_name: the instance's channel, when one was given.
        _publish_data: the data of the last publish, sent again by ``publish()``
            without arguments.
    """

    # Declared, never assigned here: the class body must not hold state an
    # instance could share, and methods read these with getattr defaults because
    # a class whose __init__ skips super().__init__() never sets them.
    _channel_name: str
    _publish_data: object
    _publisher_connection: ConnectionLike | None
    _publisher_batch: PublishBatch | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take this mixin's keywords and pass the rest to the next class.

        Args:
            *args: Passed on to the next class in the method resolution order.
            **kwargs: ``channel_name`` (default: the class name) and ``connection``
                (a tickpub Connection, a URL, or a redis-py client whose host,
                port, db, credentials and unix socket path are reused; default:
                the process default connection, see :func:`tickpub.configure`)
                are taken; the others are passed on.
        """
        channel_name = kwargs.pop("channel_name", None)
        connection = kwargs.pop("connection", None)
        super().__init__(*args, **kwargs)
        if channel_name is not None:
            self._channel_name = channel_name
        if connection is not None:
            self._publisher_connection = connection

    @property
    def channel_name(self) -> str:
        """The channel ``publish()`` sends to: the one given, or the class name."""
        channel_name: str | None = getattr(self, "_channel_name", None)
        return type(self).__name__ if channel_name is None else channel_name

    @channel_name.setter
    def channel_name(self, value: str) -> None:
        self._channel_name = value

    @overload
    def publish(
        self,
        data: object = None,
        channel_name: str | None = None,
        pipeline: None = None,
    ) -> int | None: ...

    @overload
    def publish(
        self,
        data: object,
        channel_name: str | None,
        pipeline: SupportsPublish[_T_co],
    ) -> _T_co | None: ...

    @overload
    def publish(
        self,
        data: object = None,
        channel_name: str | None = None,
        *,
        pipeline: SupportsPublish[_T_co],
    ) -> _T_co | None: ...

    def publish(
        self,
        data: object = None,
        channel_name: str | None = None,
        pipeline: SupportsPublish[Any] | None = None,
    ) -> Any:
        """Publish ``data`` to the channel; with ``pipeline``, queue it there.

        ``data`` is remembered as ``_publish_data``, and ``publish()`` without data
        sends the remembered data again. Unlike popoto, only ``None`` falls back to
        the remembered data: an empty dict is nothing to publish.

        With a pipeline the encoded message is queued by calling
        ``pipeline.publish(channel, message)``; it reaches the server only when the
        pipeline executes, in the same ``MULTI`` as the model save queued there.
        Unlike popoto, a ``channel_name`` given to this call is honoured in pipeline
        mode too.

        Inside a ``with self.batch():`` block, in the thread that opened it, the
        message is queued on the batch and sent when the block ends.

        Args:
            data: The message, usually a dict of numbers, strings and numpy arrays.
                None means the remembered data.
            channel_name: This call's channel instead of :attr:`channel_name`.
            pipeline: A redis-py or popoto pipeline, or anything with a
                ``publish(channel, message)`` method.

        Returns:
            The number of subscribers that received the message; with a pipeline,
            what the pipeline's ``publish`` returned (redis-py returns the
            pipeline); inside a batch, None. None when there is nothing to
            publish (no data, or an empty dict).

        Raises:
            PublisherException: No channel to publish to (an empty channel name).
            tickpub.EncodeError: ``data`` holds a value the codec cannot encode;
                nothing was sent or queued.
            tickpub.ConnectionError: The server cannot be reached.
            tickpub.ServerError: The server refused the command.
            tickpub.MessageTooLargeError: The message exceeds the server's limit.
        """
        if data is None:
            data = getattr(self, "_publish_data", None)
        else:
            self._publish_data = data
        if data is None or (isinstance(data, dict) and not data):
            return None
        channel = self.channel_name if channel_name is None else channel_name
        if not channel:
            raise PublisherException(
                f"{type(self).__name__} has no channel to publish to: set "
                "channel_name on the instance or pass channel_name= to publish()"
            )

        if pipeline is not None:
            return pipeline.publish(channel, packb(data))
        batch: PublishBatch | None = getattr(self, "_publisher_batch", None)
        if batch is not None and batch.thread == threading.get_ident():
            batch.queue(channel, data)
            return None
        return self.publisher_connection().publish(channel, data)

    def batch(self) -> PublishBatch:
        """A context manager collecting this publisher's publishes, sent on exit.

        Inside ``with publisher.batch() as batch:``, every ``publisher.publish()``
        without a pipeline, from the thread that entered the block, is queued. When
        the block ends normally the queue is sent with one ``publish_many`` per
        channel, and ``batch.results`` holds the subscriber counts in the order of
        the publishes. See :class:`PublishBatch` for what happens on errors.

        Returns:
            The batch, to use as a context manager.
        """
        return PublishBatch(self)

    def publisher_connection(self) -> Connection:
        """The native connection this publisher sends on, opened on first use.

        Returns:
            The instance's connection when ``connection=`` was given, else the
            process default connection.

        Raises:
            tickpub.ConnectionError: The server cannot be reached.
        """
        given: ConnectionLike | None = getattr(self, "_publisher_connection", None)
        if given is None:
            return _default.default_connection()
        if isinstance(given, Connection):
            return given
        opened = _connect_like(given)
        self._publisher_connection = opened
        return opened


class PublishBatch:
    """Publishes collected in a ``with`` block and sent when it ends.

    Semantics:
        - The data is encoded when the block ends, not when ``publish()`` is
          called: arrays must not be changed in the block after they were
          published.
        - When the block raises, nothing is sent, the queue is discarded and the
          exception propagates.
        - When the block ends normally, each channel's messages go out with one
          ``publish_many``, channels in the order of their first publish.
        - If sending fails (an encode error, a lost connection) the exception
          propagates and ``results`` stays empty. The channels before the
          failing one were sent; of the failing channel, an encode error sent
          nothing, and a connection error sent the chunks the server confirmed
          (see ``Connection.publish_many``). A batch on one channel is therefore
          all or nothing for encode errors; a batch on several channels is not.

    Attributes:
        results: The subscriber count of every queued publish, in publish order,
            filled when the block ends normally.
        thread: The identifier of the thread that opened the block.
    """

    def __init__(self, publisher: Publisher) -> None:
        """Prepare a batch for ``publisher``; it opens when the block is entered."""
        self.publisher = publisher
        self.results: list[int] = []
        self.thread = threading.get_ident()
        self._queued: list[tuple[str | bytes, object]] = []

    def publish(self, data: object = None, channel_name: str | None = None) -> None:
        """Queue a publish; the same as ``publisher.publish`` inside the block.

        Args:
            data: The message; None means the publisher's remembered data.
            channel_name: The channel instead of the publisher's.

        Raises:
            PublisherException: The batch is not open, is used from another
                thread than the one that opened it, or there is no channel.
        """
        if getattr(self.publisher, "_publisher_batch", None) is not self:
            raise PublisherException("this batch is not open: use it in a with block")
        if self.thread != threading.get_ident():
            raise PublisherException(
                "a batch collects the publishes of the thread that opened it; "
                "publish from this thread directly or open a batch here"
            )
        self.publisher.publish(data, channel_name)

    def queue(self, channel: str | bytes, data: object) -> None:
        """Add a message to the queue (called by ``Publisher.publish``)."""
        self._queued.append((channel, data))

    def __enter__(self) -> Self:
        if getattr(self.publisher, "_publisher_batch", None) is not None:
            raise PublisherException(
                f"a batch is already open on this {type(self.publisher).__name__}"
            )
        self.thread = threading.get_ident()
        self.publisher._publisher_batch = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.publisher._publisher_batch = None
        queued, self._queued = self._queued, []
        if exc_type is None:
            self.results = self._send(queued)

    def _send(self, queued: list[tuple[str | bytes, object]]) -> list[int]:
        by_channel: dict[str | bytes, list[int]] = {}
        for index, (channel, _) in enumerate(queued):
            by_channel.setdefault(channel, []).append(index)

        connection = self.publisher.publisher_connection()
        results = [0] * len(queued)
        for channel, indexes in by_channel.items():
            counts = connection.publish_many(channel, [queued[i][1] for i in indexes])
            for index, count in zip(indexes, counts, strict=True):
                results[index] = count
        return results


def _connect_like(given: str | redis.Redis) -> Connection:
    """Open a native connection to a URL, or to the server of a redis-py client."""
    if isinstance(given, str):
        return connect(given)

    pool = given.connection_pool
    kwargs: dict[str, Any] = pool.connection_kwargs
    options = {
        key: kwargs[key]
        for key in ("db", "username", "password")
        if kwargs.get(key) is not None
    }
    if kwargs.get("path"):
        return connect(f"unix://{kwargs['path']}", **options)

    host = str(kwargs.get("host", "localhost"))
    if ":" in host:
        host = f"[{host}]"
    scheme = "redis"
    if issubclass(pool.connection_class, redis.SSLConnection):
        scheme = "rediss"
        options.update(_ssl_options(kwargs))
    return connect(f"{scheme}://{host}:{kwargs.get('port', 6379)}", **options)


def _ssl_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The TLS options of a redis-py SSL connection, named as ``connect`` takes them."""
    options = {
        key: kwargs[key]
        for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
        if kwargs.get(key) is not None
    }
    reqs = kwargs.get("ssl_cert_reqs", "required")
    none = reqs in (ssl.CERT_NONE, "none") or reqs is None
    options["ssl_cert_reqs"] = "none" if none else "required"
    return options
