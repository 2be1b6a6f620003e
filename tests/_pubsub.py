"""A redis-py subscriber for connection tests: what a real consumer would see."""

from __future__ import annotations

import time

import redis


class Subscriber:
    """Subscribed to ``channel`` on ``url`` once constructed."""

    def __init__(self, url: str, channel: str, *, sharded: bool = False) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.sharded = sharded
        if sharded:
            self.pubsub.ssubscribe(channel)
        else:
            self.pubsub.subscribe(channel)
        # Wait for the confirmation so that no later publish can race the subscribe.
        deadline = time.monotonic() + 10
        while not self.pubsub.subscribed:
            self.pubsub.get_message(timeout=0.1)
            if time.monotonic() > deadline:
                raise TimeoutError("subscription was not confirmed")
        confirmed = self.pubsub.get_message(timeout=0.1)
        assert confirmed is None, confirmed

    def receive(self, count: int, timeout: float = 20.0) -> list[bytes]:
        """The next ``count`` payloads; fewer if ``timeout`` passes first."""
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] in ("message", "smessage"):
                out.append(message["data"])
        return out

    def nothing_more(self, wait: float = 0.3) -> bool:
        """True when no message arrives within ``wait`` seconds."""
        return self.receive(1, timeout=wait) == []

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
