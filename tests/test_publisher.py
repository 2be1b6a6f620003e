"""tickpub.Publisher: popoto's publishing contract, on a real server.

The bytes on the wire are compared with msgpack + msgpack-numpy's, the subscriber
counts with the server's own ``PUBSUB NUMSUB``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

import tickpub
from tickpub import _default
from tickpub.publisher import PublishBatch

from .conftest import ServerFactory
from .pubsub_helpers import (
    MARKER,
    assert_same,
    channel,
    listening,
    reference_packb,
    reference_unpackb,
    subscriber_count,
)


@pytest.fixture
def default_server(redis_url: str) -> Iterator[str]:
    """Point the process default connection at the session's server."""
    tickpub.configure(redis_url)
    try:
        yield redis_url
    finally:
        tickpub.configure()


def message() -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "price": 187.25,
        "volume": 1200,
        "bids": np.arange(12, dtype=np.float32).reshape(3, 4),
        "flags": np.array([True, False]),
    }


class Ticker(tickpub.Publisher):
    pass


class Base:
    """A base class with arguments of its own, to check the cooperative init."""

    def __init__(self, size: int, *, colour: str) -> None:
        self.size = size
        self.colour = colour


class Sized(tickpub.Publisher, Base):
    pass


class Plain:
    """A base whose __init__ does not call super().__init__()."""

    def __init__(self) -> None:
        self.ready = True


class Skipped(Plain, tickpub.Publisher):
    pass


class Meta(type):
    pass


class WithMeta(metaclass=Meta):
    pass


class MetaPublisher(WithMeta, tickpub.Publisher):
    pass


def test_channel_defaults_to_the_class_name_and_can_be_set() -> None:
    publisher = Ticker()
    assert publisher.channel_name == "Ticker"
    publisher.channel_name = "prices"
    assert publisher.channel_name == "prices"
    assert Ticker(channel_name="quotes").channel_name == "quotes"


def test_init_takes_its_keywords_and_passes_the_rest_on() -> None:
    publisher = Sized(3, colour="red", channel_name="sized")
    assert (publisher.size, publisher.colour) == (3, "red")
    assert publisher.channel_name == "sized"


def test_publish_data_belongs_to_the_instance(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    first, second = Ticker(channel_name=name), Ticker(channel_name=name)
    with listening(redis_client, name):
        first.publish({"a": 1})
    assert "_publish_data" not in vars(tickpub.Publisher)
    assert "_publish_data" not in vars(second)
    assert second.publish() is None


def test_publish_sends_msgpack_numpy_bytes_and_returns_the_subscriber_count(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    data = message()
    with listening(redis_client, name) as first, listening(redis_client, name):
        count = Ticker(channel_name=name).publish(data)
        got_channel, payload = first.next()
        assert count == subscriber_count(redis_client, name) == 2
    assert got_channel == name
    assert payload == reference_packb(data)
    assert_same(reference_unpackb(payload), data)


def test_publish_without_data_sends_the_remembered_data(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    with listening(redis_client, name) as listener:
        publisher.publish({"n": 1})
        assert publisher.publish() == 1
        assert listener.next()[1] == listener.next()[1] == reference_packb({"n": 1})


def test_nothing_to_publish_returns_none_and_sends_nothing(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    with listening(redis_client, name) as listener:
        assert publisher.publish() is None
        assert publisher.publish({}) is None
        redis_client.publish(name, MARKER)
        assert listener.next()[1] == MARKER


def test_an_empty_channel_raises_publisher_exception(default_server: str) -> None:
    publisher = Ticker(channel_name="")
    with pytest.raises(tickpub.PublisherException, match="no channel") as info:
        publisher.publish({"a": 1})
    assert isinstance(info.value, tickpub.TickpubError)


def test_a_per_call_channel_overrides_the_instance_channel(
    default_server: str, redis_client: redis.Redis
) -> None:
    name, other = channel(), channel()
    with listening(redis_client, other) as listener:
        assert Ticker(channel_name=name).publish({"a": 1}, channel_name=other) == 1
        assert listener.next() == (other, reference_packb({"a": 1}))


def test_a_pipeline_sends_only_when_it_executes(
    default_server: str, redis_client: redis.Redis
) -> None:
    name, other = channel(), channel()
    publisher = Ticker(channel_name=name)
    with listening(redis_client, name, other) as listener:
        pipeline = redis_client.pipeline(transaction=True)
        # redis-py's stubs say Pipeline.publish returns int; it returns the pipeline.
        queued: object = publisher.publish({"a": 1}, pipeline=pipeline)
        assert queued is pipeline
        assert publisher.publish({"b": 2}, channel_name=other, pipeline=pipeline)
        redis_client.publish(name, MARKER)
        assert listener.next() == (name, MARKER)

        assert pipeline.execute() == [1, 1]
        assert listener.next() == (name, reference_packb({"a": 1}))
        assert listener.next() == (other, reference_packb({"b": 2}))


def test_any_object_with_a_publish_method_is_a_pipeline() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str | bytes, bytes]] = []

        def publish(self, channel: str | bytes, message: bytes, /) -> str:
            self.calls.append((channel, message))
            return "queued"

    recorder = Recorder()
    data = message()
    assert Ticker().publish(data, pipeline=recorder) == "queued"
    assert recorder.calls == [("Ticker", reference_packb(data))]


def test_a_mixin_whose_init_never_ran_publishes_on_the_class_channel(
    default_server: str, redis_client: redis.Redis
) -> None:
    publisher = Skipped()
    assert publisher.ready
    with listening(redis_client, "Skipped") as listener:
        assert publisher.publish({"a": 1}) == 1
        assert listener.next() == ("Skipped", reference_packb({"a": 1}))


def test_the_mixin_combines_with_a_class_that_has_a_metaclass() -> None:
    assert type(MetaPublisher) is Meta
    assert MetaPublisher().channel_name == "MetaPublisher"


def test_connection_may_be_a_url_a_connection_or_a_redis_client(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(unix_socket=True)
    client = redis.Redis.from_url(server.url)
    unix_client = redis.Redis(unix_socket_path=server.unix_socket, db=0)
    native = tickpub.connect(server.url)
    name = channel()
    try:
        with listening(client, name) as listener:
            for given in (server.url, native, client, unix_client):
                assert Ticker(channel_name=name, connection=given).publish({"a": 1})
                assert listener.next() == (name, reference_packb({"a": 1}))
    finally:
        native.close()
        client.close()
        unix_client.close()


def test_a_redis_client_lends_its_db_and_credentials(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "trader",
        enabled=True,
        passwords=["+s3cret"],
        keys=["*"],
        channels=["*"],
        commands=["+@all"],
    )
    admin.acl_setuser("default", enabled=False)
    client = redis.Redis(port=server.port, username="trader", password="s3cret", db=3)
    name = channel()
    try:
        with listening(client, name) as listener:
            publisher = Ticker(channel_name=name, connection=client)
            assert publisher.publish({"a": 1}) == 1
            assert listener.next() == (name, reference_packb({"a": 1}))
            publishing = [e for e in client.client_list() if e["cmd"] == "publish"]
            assert [(e["db"], e["user"]) for e in publishing] == [("3", "trader")]
            assert "s3cret" not in publisher.publisher_connection().url
    finally:
        client.close()
        admin.close()


def test_configure_moves_the_default_connection(
    server_factory: ServerFactory, redis_url: str, redis_client: redis.Redis
) -> None:
    server = server_factory()
    other = redis.Redis.from_url(server.url)
    name = channel()
    try:
        with listening(redis_client, name) as first, listening(other, name) as second:
            tickpub.configure(redis_url)
            Ticker(channel_name=name).publish({"to": "first"})
            assert first.next() == (name, reference_packb({"to": "first"}))

            tickpub.configure(server.url)
            Ticker(channel_name=name).publish({"to": "second"})
            assert second.next() == (name, reference_packb({"to": "second"}))
            redis_client.publish(name, MARKER)
            assert first.next() == (name, MARKER)
    finally:
        tickpub.configure()
        other.close()


def test_the_default_connection_comes_from_redis_url(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory()
    client = redis.Redis.from_url(server.url)
    monkeypatch.setenv("REDIS_URL", server.url)
    tickpub.configure()
    name = channel()
    try:
        with listening(client, name) as listener:
            assert Ticker(channel_name=name).publish({"a": 1}) == 1
            assert listener.next() == (name, reference_packb({"a": 1}))
    finally:
        tickpub.configure()
        client.close()


def test_a_forked_child_opens_its_own_default_connection(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    with listening(redis_client, name) as listener:
        publisher.publish({"from": "parent"})
        parent_connection = _default.default_connection()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                fresh = _default._connection is None
                publisher.publish({"from": "child"})
                if fresh and _default.default_connection() is not parent_connection:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert listener.next()[1] == reference_packb({"from": "parent"})
        assert listener.next()[1] == reference_packb({"from": "child"})
        assert publisher.publish({"from": "parent"}) == 1


def test_a_batch_sends_when_the_block_ends(
    default_server: str, redis_client: redis.Redis
) -> None:
    name, other, empty = channel(), channel(), channel()
    publisher = Ticker(channel_name=name)
    data = [message(), {"n": 2}, {"n": 3}, {"n": 4}]
    with listening(redis_client, name, other) as listener:
        with publisher.batch() as batch:
            assert publisher.publish(data[0]) is None
            batch.publish(data[1], channel_name=other)
            publisher.publish(data[2], channel_name=empty)
            publisher.publish(data[3])
            redis_client.publish(name, MARKER)
            assert listener.next() == (name, MARKER)
            assert batch.results == []

        assert batch.results == [1, 1, 0, 1]
        received = [listener.next() for _ in range(3)]
    expected = [(name, data[0]), (name, data[3]), (other, data[1])]
    assert [ch for ch, _ in received] == [ch for ch, _ in expected]
    for (_, payload), (_, sent) in zip(received, expected, strict=True):
        assert payload == reference_packb(sent)


def test_an_exception_in_a_batch_sends_nothing(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    batches: list[PublishBatch] = []

    def fail_in_a_batch() -> None:
        with publisher.batch() as batch:
            batches.append(batch)
            publisher.publish({"a": 1})
            raise KeyError("in the block")

    with listening(redis_client, name) as listener:
        with pytest.raises(KeyError):
            fail_in_a_batch()
        assert batches[0].results == []
        redis_client.publish(name, MARKER)
        assert listener.next() == (name, MARKER)
        assert publisher.publish({"after": True}) == 1
        assert listener.next() == (name, reference_packb({"after": True}))


def test_a_batch_cannot_nest_or_be_used_outside_its_block(
    default_server: str,
) -> None:
    publisher = Ticker(channel_name=channel())
    batch = publisher.batch()
    with pytest.raises(tickpub.PublisherException, match="not open"):
        batch.publish({"a": 1})
    with batch, pytest.raises(tickpub.PublisherException, match="already open"):
        publisher.batch().__enter__()
    assert isinstance(batch, PublishBatch)


def test_other_threads_publish_directly_during_a_batch(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    counts: list[int | None] = []
    with listening(redis_client, name) as listener, publisher.batch():
        thread = threading.Thread(
            target=lambda: counts.append(publisher.publish({"thread": True}))
        )
        thread.start()
        thread.join()
        assert counts == [1]
        assert listener.next() == (name, reference_packb({"thread": True}))


def test_a_batch_refuses_publishes_from_another_thread(default_server: str) -> None:
    publisher = Ticker(channel_name=channel())
    errors: list[Exception] = []

    def publish_on(batch: PublishBatch) -> None:
        try:
            batch.publish({"a": 1})
        except tickpub.PublisherException as error:
            errors.append(error)

    with publisher.batch() as batch:
        thread = threading.Thread(target=publish_on, args=(batch,))
        thread.start()
        thread.join()
    assert "thread that opened it" in str(errors[0])
    assert batch.results == []


def test_an_encode_error_at_the_end_of_a_one_channel_batch_sends_nothing(
    default_server: str, redis_client: redis.Redis
) -> None:
    name = channel()
    publisher = Ticker(channel_name=name)
    batches: list[PublishBatch] = []

    def batch_with_a_bad_value() -> None:
        with publisher.batch() as batch:
            batches.append(batch)
            publisher.publish({"good": 1})
            publisher.publish({"bad": object()})

    with listening(redis_client, name) as listener:
        with pytest.raises(tickpub.EncodeError, match="bad"):
            batch_with_a_bad_value()
        assert batches[0].results == []
        redis_client.publish(name, MARKER)
        assert listener.next() == (name, MARKER)
