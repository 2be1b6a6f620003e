"""The ``Subscriber`` base class: popoto's subscribing API with a safe decoder.

A subclass names its channels in ``sub_channel_names`` (and glob patterns in
``sub_channel_patterns``) and overrides ``handle(channel, data)``. Each instance
subscribes on construction, on a redis-py pub/sub connection of its own, and
decodes with tickpub's native decoder, which refuses pickled payloads instead of
running them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

import redis
import redis.client

from tickpub import _default
from tickpub._native import DecodeError, TickpubError, unpackb

logger = logging.getLogger("tickpub")

# How long a blocking loop waits on the socket before it looks at its stop
# condition again, and the longest pause between reconnection attempts.
_POLL_INTERVAL = 0.1
_MAX_BACKOFF = 1.0
_SUBSCRIBE_TIMEOUT = 5.0

Message = tuple[str, Any]
"""A received message: the channel it was published on and the decoded data."""


class SubscriberException(TickpubError):
    """A subscriber's ``pre_handle`` or ``handle`` raised; the cause is chained."""


class _PubSub(redis.client.PubSub):
    """redis-py's PubSub, telling its subscriber when it has reconnected."""

    def __init__(self, connection_pool: redis.ConnectionPool, owner: Subscriber):
        self._owner = owner
        super().__init__(connection_pool)

    def on_connect(self, connection: redis.connection.AbstractConnection) -> None:
        super().on_connect(connection)
        if self._owner._subscribed:
            self._owner._reconnected()


class Subscriber:
    """Base class receiving msgpack-numpy messages from pub/sub channels.

    Set ``sub_channel_names`` (and ``sub_channel_patterns``) in a subclass and
    override :meth:`handle`. Then either poll, calling the instance (one message
    at most per call, never blocking), or iterate :meth:`listen`, or call
    :meth:`run`.

    A message that is not valid msgpack-numpy, or that holds a pickled array,
    is logged at WARNING on the ``tickpub`` logger and discarded. Unlike popoto,
    an exception raised by ``pre_handle`` or ``handle`` always becomes a
    :class:`SubscriberException`, a ``KeyError`` included (popoto logs a
    ``KeyError`` as a malformed message and goes on). After a lost
    connection the subscriber reconnects and subscribes again on its next read
    and logs the gap at WARNING; messages published during the gap are lost,
    as pub/sub does not keep them.

    Attributes:
        sub_channel_names: Channels to subscribe to.
        sub_channel_patterns: Glob-style patterns (``PSUBSCRIBE``) to subscribe to;
            ``handle`` receives the channel the message was published on.
        pubsub: The redis-py ``PubSub`` the messages arrive on.
    """

    sub_channel_names: ClassVar[Sequence[str]] = ()
    sub_channel_patterns: ClassVar[Sequence[str]] = ()

    def __init__(
        self,
        *args: Any,
        connection: redis.Redis | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Subscribe to the class's channels and patterns.

        When this returns the server has confirmed every subscription, so a
        message published afterwards is received.

        Args:
            *args: Passed on to the next class in the method resolution order.
            connection: A redis-py client whose server to subscribe on (the
                subscriber takes one connection from its pool). It must not
                decode responses.
            url: The server's URL, when ``connection`` is not given. Default: the
                process default server (see :func:`tickpub.configure`).
            **kwargs: Passed on to the next class.

        Raises:
            ValueError: ``connection`` decodes responses to str.
            TypeError: ``sub_channel_names`` or ``sub_channel_patterns`` is a
                single string instead of a list.
            redis.ConnectionError: The server cannot be reached.
        """
        super().__init__(*args, **kwargs)
        if connection is None:
            self._client = _default.redis_client(url)
            self._owns_client = True
        elif connection.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError(
                "the Subscriber's redis client must not decode responses: "
                "create it without decode_responses=True"
            )
        else:
            self._client = connection
            self._owns_client = False

        self._pending: deque[dict[str, Any]] = deque()
        self._lost_at: float | None = None
        self._failures = 0
        self._subscribed = False
        self.pubsub: redis.client.PubSub = _PubSub(self._client.connection_pool, self)
        self._subscribe()

    def _subscribe(self) -> None:
        for names in (self.sub_channel_names, self.sub_channel_patterns):
            if isinstance(names, str | bytes):
                raise TypeError(
                    f"{type(self).__name__}: sub_channel_names and "
                    f"sub_channel_patterns are lists of names, not {names!r}"
                )
        channels = list(dict.fromkeys(self.sub_channel_names))
        patterns = list(dict.fromkeys(self.sub_channel_patterns))
        if channels:
            self.pubsub.subscribe(*channels)
        if patterns:
            self.pubsub.psubscribe(*patterns)

        # Wait for the confirmations; messages that arrive between them are kept.
        unconfirmed = len(channels) + len(patterns)
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        while unconfirmed and time.monotonic() < deadline:
            event = self.pubsub.get_message(timeout=deadline - time.monotonic())
            if event is None:
                continue
            if event["type"] in ("subscribe", "psubscribe"):
                unconfirmed -= 1
            else:
                self._pending.append(event)
        if unconfirmed:
            raise redis.TimeoutError(
                f"{type(self).__name__}: the server did not confirm the "
                f"subscriptions within {_SUBSCRIBE_TIMEOUT} s"
            )
        self._subscribed = True
        logger.debug(
            "%s subscribed to channels %s and patterns %s",
            type(self).__name__,
            channels,
            patterns,
        )

    def __call__(self) -> None:
        """Receive at most one message, without blocking, and handle it.

        Returns:
            None, whether or not a message was handled.

        Raises:
            SubscriberException: ``pre_handle`` or ``handle`` raised.
        """
        message = self._receive(0.0)
        if message is not None:
            self._dispatch(*message)

    def listen(self, timeout: float | None = None) -> Iterator[Message]:
        """Iterate over the messages as they arrive, blocking between them.

        Messages are decoded but not dispatched to the handlers. A lost
        connection is retried with backoff (logged) without ending the iteration.

        Args:
            timeout: End the iteration when no message arrived for this many
                seconds. None: wait for ever.

        Yields:
            ``(channel, data)`` for each message.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _POLL_INTERVAL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            message = self._receive(wait)
            if message is not None:
                yield message
                if timeout is not None:
                    deadline = time.monotonic() + timeout

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Receive and handle messages until ``stop_event`` is set.

        Args:
            stop_event: Ends the loop when set (noticed within a tenth of a
                second). None: run until a handler raises.

        Raises:
            SubscriberException: ``pre_handle`` or ``handle`` raised; the loop
                ends.
        """
        while stop_event is None or not stop_event.is_set():
            message = self._receive(_POLL_INTERVAL)
            if message is not None:
                self._dispatch(*message)

    def pre_handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
        """Called before :meth:`handle` with the same arguments; does nothing.

        Override it for work shared by several subscribers: parsing, filtering,
        logging.

        Args:
            channel: The channel the message was published on.
            data: The decoded message.
            *args: Unused, for popoto compatibility.
            **kwargs: Unused, for popoto compatibility.
        """

    def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
        """Handle one message. Override it; this one logs that it was discarded.

        Args:
            channel: The channel the message was published on.
            data: The decoded message.
            *args: Unused, for popoto compatibility.
            **kwargs: Unused, for popoto compatibility.
        """
        logger.warning(
            "%s received a message on %r but does not override handle(); "
            "the message was discarded",
            type(self).__name__,
            channel,
        )

    def close(self) -> None:
        """Unsubscribe and close the connection (and the client, if created here)."""
        self.pubsub.close()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _receive(self, timeout: float) -> Message | None:
        """The next message within ``timeout`` seconds, decoded; None if none."""
        event = self._pending.popleft() if self._pending else self._read(timeout)
        if event is None or event["type"] not in ("message", "pmessage"):
            return None

        channel = event["channel"].decode("utf-8", "surrogateescape")
        try:
            data = unpackb(event["data"], strict_map_key=False)
        except DecodeError as error:
            logger.warning(
                "%s discarded a message of %d bytes on %r: %s",
                type(self).__name__,
                len(event["data"]),
                channel,
                error,
            )
            return None
        return channel, data

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """One event from the connection; on a connection error, log and back off."""
        try:
            event: dict[str, Any] | None = self.pubsub.get_message(timeout=timeout)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self._connection_lost(error)
            if timeout > 0:
                time.sleep(min(timeout, _MAX_BACKOFF, 0.05 * 2**self._failures))
            return None
        self._failures = 0
        return event

    def _connection_lost(self, error: Exception) -> None:
        self._failures = min(self._failures + 1, 10)
        connection = self.pubsub.connection
        if connection is not None:
            connection.disconnect()
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            logger.warning(
                "%s lost its connection (%s); reconnecting",
                type(self).__name__,
                error,
            )

    def _reconnected(self) -> None:
        gap = 0.0 if self._lost_at is None else time.monotonic() - self._lost_at
        self._lost_at = None
        logger.warning(
            "%s reconnected and subscribed again after %.2f s without a "
            "connection; messages published in that time were not received",
            type(self).__name__,
            gap,
        )

    def _dispatch(self, channel: str, data: Any) -> None:
        try:
            self.pre_handle(channel, data)
            self.handle(channel, data)
        except Exception as error:
            raise SubscriberException(
                f"Error calling {type(self).__name__} on a message from "
                f"{channel!r}: {type(error).__name__}: {error}"
            ) from error
