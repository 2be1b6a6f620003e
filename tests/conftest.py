"""Shared fixtures: one real server for the session, chosen by tickpub.server.

With ``REDIS_URL`` set the tests use that server and start nothing; tests that must
stop or reconfigure a server start their own through ``server_factory`` and are
skipped when no binary can be found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis
from hypothesis import HealthCheck, settings

from tickpub.server import RedisServer, find_server_binary, redis_server, start_server

settings.register_profile(
    "default",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("TICKPUB_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the session's server: ``REDIS_URL``, or one started for the session."""
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A redis-py client on the session's server."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


ServerFactory = Callable[..., RedisServer]


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Start private servers (stopped at teardown) for tests that break them."""
    if os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL points at an existing server; this test starts its own")
    find_server_binary()
    started: list[RedisServer] = []

    def start(
        *,
        unix_socket: bool = False,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> RedisServer:
        server = start_server(unix_socket=unix_socket, port=port, extra_args=extra_args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
