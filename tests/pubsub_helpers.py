"""Helpers for pub/sub tests: a raw redis-py listener and reference encodings.

The raw listener is the oracle for what reached the server: it receives the exact
bytes published, and a marker published after an operation shows whether that
operation's message went out before it (the server delivers in command order).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np
import redis
import redis.client

MARKER = b"marker"


def channel(prefix: str = "test") -> str:
    """A channel name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def reference_packb(data: object) -> bytes:
    """The bytes popoto publishes for ``data``: msgpack with msgpack-numpy."""
    packed: bytes = msgpack.packb(data, default=msgpack_numpy.encode)
    return packed


def reference_unpackb(payload: bytes) -> Any:
    """Decode as popoto's subscriber does, with msgpack-numpy's object hook."""
    return msgpack.unpackb(
        payload, object_hook=msgpack_numpy.decode, strict_map_key=False
    )


def assert_same(actual: Any, expected: Any) -> None:
    """Compare decoded messages, numpy arrays by dtype, shape and content."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray)
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert list(actual) == list(expected)
        for key, value in expected.items():
            assert_same(actual[key], value)
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple)
        assert len(actual) == len(expected)
        for item, value in zip(actual, expected, strict=True):
            assert_same(item, value)
    else:
        assert type(actual) is type(expected)
        assert actual == expected


class Listener:
    """A redis-py subscription whose confirmations have been read."""

    def __init__(self, client: redis.Redis, *channels: str) -> None:
        self.pubsub = redis.client.PubSub(client.connection_pool)
        self.pubsub.subscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):
            event = self.pubsub.get_message(timeout=5)
            assert event is not None, "subscription not confirmed"
            confirmed += event["type"] == "subscribe"

    def next(self, timeout: float = 5) -> tuple[str, bytes]:
        """The next message's channel and payload; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.pubsub.get_message(timeout=deadline - time.monotonic())
            if event is not None and event["type"] == "message":
                return event["channel"].decode(), event["data"]
        raise AssertionError("no message arrived")

    def close(self) -> None:
        self.pubsub.close()


@contextmanager
def listening(client: redis.Redis, *channels: str) -> Iterator[Listener]:
    """A :class:`Listener` on ``channels``, closed on exit."""
    listener = Listener(client, *channels)
    try:
        yield listener
    finally:
        listener.close()


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def subscriber_count(client: redis.Redis, name: str) -> int:
    """How many connections the server has subscribed to channel ``name``."""
    counts: list[tuple[bytes | str, int]] = client.pubsub_numsub(name)
    return counts[0][1]
