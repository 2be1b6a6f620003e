"""tickpub.Subscriber: popoto's subscribing contract, the safe decoder, reconnection.

Messages are published with redis-py and msgpack + msgpack-numpy, the reference
encoder, unless the test is about tickpub's Publisher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sized
from typing import Any, ClassVar

import msgpack_numpy
import numpy as np
import pytest
import redis

import tickpub

from .conftest import ServerFactory
from .pubsub_helpers import (
    assert_same,
    channel,
    reference_packb,
    subscriber_count,
    wait_until,
)


class Recorder(tickpub.Subscriber):
    """Records what reaches its hooks; its channels are set per test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        super().__init__(*args, **kwargs)

    def pre_handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("pre_handle", channel, data))

    def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("handle", channel, data))

    def handled(self) -> list[tuple[str, Any]]:
        return [(ch, data) for hook, ch, data in self.calls if hook == "handle"]


def recorder(
    channels: list[str] = [],  # noqa: B006 - read only
    patterns: list[str] = [],  # noqa: B006 - read only
    **kwargs: Any,
) -> Recorder:
    """A Recorder subclass on ``channels`` and ``patterns``, instantiated."""
    cls = type(
        "PriceRecorder",
        (Recorder,),
        {"sub_channel_names": channels, "sub_channel_patterns": patterns},
    )
    instance: Recorder = cls(**kwargs)
    return instance


def poll(subscriber: tickpub.Subscriber, until: int, seen: Sized | Recorder) -> None:
    """Call the subscriber until ``seen`` holds ``until`` items (handled messages)."""

    def enough() -> bool:
        subscriber()
        done = seen.handled() if isinstance(seen, Recorder) else seen
        return len(done) >= until

    wait_until(enough)


@pytest.fixture
def default_server(redis_url: str) -> Iterator[str]:
    """Point the process default connection at the session's server."""
    tickpub.configure(redis_url)
    try:
        yield redis_url
    finally:
        tickpub.configure()


def test_a_message_goes_to_pre_handle_then_handle(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    data = {"bids": np.linspace(0, 1, 7), "n": 3, "s": "x", 5: "int key"}
    subscriber = recorder([name])
    try:
        assert subscriber_count(redis_client, name) == 1
        redis_client.publish(name, reference_packb(data))
        poll(subscriber, 1, subscriber)
    finally:
        subscriber.close()
    assert [(hook, ch) for hook, ch, _ in subscriber.calls] == [
        ("pre_handle", name),
        ("handle", name),
    ]
    assert_same(subscriber.calls[1][2], data)


def test_calling_without_a_message_returns_at_once(default_server: str) -> None:
    subscriber = recorder([channel()])
    try:
        subscriber()
        assert subscriber.calls == []
    finally:
        subscriber.close()


def test_tickpub_publisher_to_subscriber(default_server: str) -> None:
    name = channel()

    class Quotes(tickpub.Publisher):
        pass

    data = {"frame": np.arange(6, dtype=np.int16).reshape(2, 3), "t": 1.5}
    with recorder([name]) as subscriber:
        assert isinstance(subscriber, Recorder)
        assert Quotes(channel_name=name).publish(data) == 1
        poll(subscriber, 1, subscriber)
    [(got_channel, got)] = subscriber.handled()
    assert got_channel == name
    assert_same(got, data)


def test_one_url_with_native_options_serves_publisher_and_subscriber(
    redis_url: str,
) -> None:
    # redis-py refuses options it does not know: the subscriber leaves them out.
    url = f"{redis_url}?busy_poll=0&retry_attempts=2&retry_backoff=0.01"
    tickpub.configure(url)
    try:
        name = channel()
        with recorder([name]) as subscriber:
            assert tickpub.Publisher(channel_name=name).publish({"n": 1}) == 1
            poll(subscriber, 1, subscriber)
        assert subscriber.handled() == [(name, {"n": 1})]
    finally:
        tickpub.configure()


def test_patterns_deliver_the_actual_channel(
    default_server: str, redis_client: redis.Redis
) -> None:
    prefix = channel()
    subscriber = recorder(patterns=[f"{prefix}.*"])
    try:
        redis_client.publish(f"{prefix}.AAPL", reference_packb({"p": 1}))
        redis_client.publish(f"{prefix}.MSFT", reference_packb({"p": 2}))
        poll(subscriber, 2, subscriber)
    finally:
        subscriber.close()
    assert subscriber.handled() == [
        (f"{prefix}.AAPL", {"p": 1}),
        (f"{prefix}.MSFT", {"p": 2}),
    ]


def test_a_malformed_message_is_logged_and_discarded(
    default_server: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    name = channel()
    subscriber = recorder([name])
    try:
        with caplog.at_level(logging.WARNING, logger="tickpub"):
            redis_client.publish(name, b"\xc1")
            redis_client.publish(name, reference_packb({"ok": True}))
            poll(subscriber, 1, subscriber)
    finally:
        subscriber.close()
    assert subscriber.handled() == [(name, {"ok": True})]
    [record] = [r for r in caplog.records if r.name == "tickpub"]
    assert record.levelno == logging.WARNING
    assert "PriceRecorder discarded a message of 1 bytes" in record.getMessage()


def test_a_pickled_array_is_refused_not_unpickled(
    default_server: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    name = channel()
    # msgpack-numpy pickles object arrays; decoding this would run pickle.
    pickled: bytes = msgpack_numpy.packb({"a": np.array([1, "x"], dtype=object)})
    with pytest.raises(tickpub.DecodeError):
        tickpub.unpackb(pickled, strict_map_key=False)

    subscriber = recorder([name])
    try:
        with caplog.at_level(logging.WARNING, logger="tickpub"):
            redis_client.publish(name, pickled)
            redis_client.publish(name, reference_packb({"next": 1}))
            poll(subscriber, 1, subscriber)
    finally:
        subscriber.close()
    assert subscriber.handled() == [(name, {"next": 1})]
    assert any("discarded" in r.getMessage() for r in caplog.records)


def test_a_handler_error_raises_subscriber_exception(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()

    class Failing(tickpub.Subscriber):
        sub_channel_names: ClassVar[list[str]] = [name]

        def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
            raise KeyError("price")

    subscriber = Failing()
    try:
        redis_client.publish(name, reference_packb({"volume": 1}))
        with pytest.raises(tickpub.SubscriberException, match="Failing") as info:
            poll(subscriber, 1, [])
    finally:
        subscriber.close()
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, tickpub.TickpubError)


def test_the_default_handler_logs_the_discarded_message(
    default_server: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    name = channel()

    class Unhandled(tickpub.Subscriber):
        sub_channel_names: ClassVar[list[str]] = [name]

    with Unhandled() as subscriber, caplog.at_level(logging.WARNING, "tickpub"):
        redis_client.publish(name, reference_packb({"a": 1}))
        poll(subscriber, 1, caplog.records)
    assert "does not override handle()" in caplog.records[0].getMessage()


def test_listen_yields_messages_and_ends_after_the_idle_timeout(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    subscriber = recorder([name])
    try:
        for n in range(3):
            redis_client.publish(name, reference_packb({"n": n}))
        received = list(subscriber.listen(timeout=0.5))
    finally:
        subscriber.close()
    assert received == [(name, {"n": 0}), (name, {"n": 1}), (name, {"n": 2})]
    assert subscriber.calls == []


def test_run_dispatches_until_the_stop_event(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    stop = threading.Event()

    class Stopper(Recorder):
        sub_channel_names: ClassVar[list[str]] = [name]

        def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
            super().handle(channel, data)
            if data["last"]:
                stop.set()

    subscriber = Stopper()
    thread = threading.Thread(target=subscriber.run, args=(stop,))
    thread.start()
    try:
        redis_client.publish(name, reference_packb({"last": False}))
        redis_client.publish(name, reference_packb({"last": True}))
        thread.join(timeout=10)
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join()
        subscriber.close()
    assert subscriber.handled() == [(name, {"last": False}), (name, {"last": True})]


def test_subscriber_options_and_cooperative_init(
    redis_url: str, redis_client: redis.Redis
) -> None:
    name = channel()

    class Base:
        def __init__(self, label: str) -> None:
            self.label = label

    class Labelled(tickpub.Subscriber, Base):
        sub_channel_names: ClassVar[list[str]] = [name]

    with Labelled("x", url=redis_url) as by_url:
        assert by_url.label == "x"
        assert subscriber_count(redis_client, name) == 1
    with Labelled("y", connection=redis_client):
        assert subscriber_count(redis_client, name) == 1

    class Misnamed(tickpub.Subscriber):
        sub_channel_names: ClassVar[str] = name

    with pytest.raises(TypeError, match="lists of names"):
        Misnamed(url=redis_url)

    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        Labelled("z", connection=decoding)
    decoding.close()


def test_it_reconnects_and_resubscribes_after_a_server_restart(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory()
    name, prefix = channel(), channel()
    subscriber = recorder([name], [f"{prefix}.*"], url=server.url)
    try:
        with caplog.at_level(logging.WARNING, logger="tickpub"):
            server.stop()
            subscriber()
            restarted = server_factory(port=server.port)
            client = redis.Redis.from_url(restarted.url)

            def resubscribed() -> bool:
                subscriber()
                numpat: int = client.pubsub_numpat()
                return subscriber_count(client, name) == 1 and numpat == 1

            wait_until(resubscribed)
            client.publish(name, reference_packb({"after": "restart"}))
            client.publish(f"{prefix}.x", reference_packb({"pattern": True}))
            poll(subscriber, 2, subscriber)
            client.close()
    finally:
        subscriber.close()
    assert subscriber.handled() == [
        (name, {"after": "restart"}),
        (f"{prefix}.x", {"pattern": True}),
    ]
    messages = [r.getMessage() for r in caplog.records if r.name == "tickpub"]
    assert any("lost its connection" in m for m in messages)
    assert any("reconnected and subscribed again after" in m for m in messages)
