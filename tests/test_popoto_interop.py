"""tickpub against the real popoto 1.10.1 and msgpack-numpy, in both directions.

popoto reaches Redis through ``popoto.redis_db.POPOTO_REDIS_DB``; the ``popoto_db``
fixture points it at the test server and puts the original back. popoto's
publisher and subscriber call ``msgpack_numpy.patch()``, which replaces functions
of the ``msgpack`` module for the whole process; the fixture restores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import msgpack
import msgpack_numpy
import numpy as np
import popoto
import pytest
import redis
from popoto import redis_db

import tickpub

from .pubsub_helpers import (
    MARKER,
    assert_same,
    channel,
    listening,
    reference_packb,
    subscriber_count,
    wait_until,
)

_PATCHED_BY_MSGPACK_NUMPY = (
    "Packer",
    "Unpacker",
    "load",
    "loads",
    "dump",
    "dumps",
    "pack",
    "packb",
    "unpack",
    "unpackb",
)


@pytest.fixture
def popoto_db(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """popoto on the test server; tickpub's default too; msgpack restored after."""
    for name in _PATCHED_BY_MSGPACK_NUMPY:
        monkeypatch.setattr(msgpack, name, getattr(msgpack, name))
    client = redis_db.GuardedRedis.from_url(redis_url)
    monkeypatch.setattr(redis_db, "POPOTO_REDIS_DB", client)
    tickpub.configure(redis_url)
    try:
        yield
    finally:
        tickpub.configure()
        client.close()


class StockPrice(popoto.Model, tickpub.Publisher):  # type: ignore[misc]
    """popoto's documented example, with tickpub's Publisher."""

    symbol = popoto.KeyField()
    price = popoto.FloatField()

    def save(self, pipeline: Any = None, **kwargs: Any) -> Any:
        result = super().save(pipeline=pipeline, **kwargs)
        self.publish({"symbol": self.symbol, "price": self.price}, pipeline=pipeline)
        return result


def data() -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "close": np.array([187.1, 187.4, 186.9]),
        "volume": np.arange(3, dtype=np.uint32),
        "t": 1_700_000_000,
    }


def test_popoto_subscriber_decodes_a_tickpub_message(
    popoto_db: None, redis_client: redis.Redis
) -> None:
    name = channel()
    received: list[tuple[str, Any]] = []

    class PopotoListener(popoto.Subscriber):  # type: ignore[misc]
        sub_channel_names: ClassVar[list[str]] = [name]

        def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
            received.append((channel, data))

    listener = PopotoListener()
    try:
        wait_until(lambda: subscriber_count(redis_client, name) == 1)

        class Quotes(tickpub.Publisher):
            pass

        sent = data()
        assert Quotes(channel_name=name).publish(sent) == 1

        def handled() -> bool:
            listener()
            return bool(received)

        wait_until(handled)
    finally:
        listener.pubsub.close()
    [(got_channel, got)] = received
    assert got_channel == name
    assert_same(got, sent)


def test_plain_msgpack_numpy_decodes_a_tickpub_message(
    popoto_db: None, redis_client: redis.Redis
) -> None:
    name = channel()
    sent = data()
    with listening(redis_client, name) as listener:
        tickpub.Publisher(channel_name=name).publish(sent)
        _, payload = listener.next()
    assert_same(msgpack_numpy.unpackb(payload), sent)
    assert payload == reference_packb(sent)


def test_a_popoto_message_reaches_a_tickpub_subscriber(popoto_db: None) -> None:
    name = channel()
    received: list[tuple[str, Any]] = []

    class Listener(tickpub.Subscriber):
        sub_channel_names: ClassVar[list[str]] = [name]

        def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
            received.append((channel, data))

    sent = data()
    with Listener() as listener:
        assert popoto.Publisher(channel_name=name).publish(sent) == 1
        [(got_channel, got)] = list(listener.listen(timeout=1))
    assert got_channel == name
    assert_same(got, sent)


def test_a_model_saves_and_publishes_in_one_pipeline(
    popoto_db: None, redis_client: redis.Redis
) -> None:
    price = StockPrice(symbol=channel("SYM"), price=187.25)
    assert price.channel_name == "StockPrice"
    with listening(redis_client, "StockPrice") as listener:
        pipeline = redis_db.get_REDIS_DB().pipeline()
        price.save(pipeline=pipeline)
        redis_client.publish("StockPrice", MARKER)
        assert listener.next() == ("StockPrice", MARKER)
        assert StockPrice.query.get(symbol=price.symbol) is None

        pipeline.execute()
        got_channel, payload = listener.next()
    assert got_channel == "StockPrice"
    assert msgpack_numpy.unpackb(payload) == {"symbol": price.symbol, "price": 187.25}
    saved = StockPrice.query.get(symbol=price.symbol)
    assert saved is not None
    assert saved.price == 187.25
    saved.delete()


def test_a_model_publishes_without_a_pipeline(
    popoto_db: None, redis_client: redis.Redis
) -> None:
    price = StockPrice(symbol=channel("SYM"), price=10.5)
    with listening(redis_client, "StockPrice") as listener:
        price.save()
        assert listener.next()[1] == reference_packb(
            {"symbol": price.symbol, "price": 10.5}
        )
    price.delete()
