"""Fixtures of the benchmarks: one server, its clients, a subscriber process, and the
ratio summary printed at the end of the run.

The server is ``REDIS_URL`` or a throwaway one started by ``tickpub.server``. Its
``client-output-buffer-limit`` for pub/sub clients is raised for the run (and put
back afterwards): a batch of two 16 MiB frames passes the default hard limit of
32 MiB whenever the subscriber falls behind, and the server would drop it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import tickpub
from benches.ratios import RATIOS, Ratios
from tickpub.bench.drain import Drain
from tickpub.bench.paths import Target
from tickpub.server import redis_server

# pytest-benchmark's defaults suit slow functions. Its rounds (at least 5 µs) hold a
# single call of a sub-microsecond encoder, so every time it reports carries the
# timer's own cost of tens of nanoseconds; and it sizes its rounds by the first call,
# which for a path not yet warm can take long enough to make every round one call.
# Unless the command line chooses otherwise, rounds last at least MIN_ROUND_SECONDS and
# each benchmark first runs WARMUP_CALLS calls (within --benchmark-max-time).
MIN_ROUND_SECONDS = 0.0002
WARMUP_CALLS = 100

ALONE_CHANNEL = "tickpub-bench-alone"
SUBSCRIBED_CHANNEL = "tickpub-bench-subscribed"
BUFFER_LIMIT = "client-output-buffer-limit"
PUBSUB_BUFFER_LIMIT = "pubsub 512mb 256mb 60"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Lengthen pytest-benchmark's rounds and warm each path up, unless the command
    line chose."""
    given = {arg.split("=")[0] for arg in config.invocation_params.args}
    if "--benchmark-min-time" not in given:
        config.option.benchmark_min_time = MIN_ROUND_SECONDS
    if not given & {"--benchmark-warmup", "--benchmark-warmup-iterations"}:
        config.option.benchmark_warmup = True
        config.option.benchmark_warmup_iterations = WARMUP_CALLS


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of the run's server, with room for large messages to a slow subscriber."""
    with redis_server() as url:
        client = redis.Redis.from_url(url)
        limits = str(client.config_get(BUFFER_LIMIT)[BUFFER_LIMIT])
        client.config_set(BUFFER_LIMIT, PUBSUB_BUFFER_LIMIT)
        try:
            yield url
        finally:
            client.config_set(BUFFER_LIMIT, limits)
            client.close()


@pytest.fixture(scope="session")
def connection(server_url: str) -> Iterator[tickpub.Connection]:
    """A tickpub connection to the server."""
    with tickpub.connect(server_url) as conn:
        yield conn


@pytest.fixture(scope="session")
def client(server_url: str) -> Iterator[redis.Redis]:
    """A redis-py client of the server (hiredis parses its replies when installed)."""
    c = redis.Redis.from_url(server_url)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def alone(
    server_url: str, connection: tickpub.Connection, client: redis.Redis
) -> Target:
    """Where the paths publish when nobody subscribes."""
    counts = dict(client.pubsub_numsub(ALONE_CHANNEL))
    assert counts.get(ALONE_CHANNEL.encode(), 0) == 0, "the channel has a subscriber"
    return Target(server_url, connection, client, ALONE_CHANNEL)


@pytest.fixture(scope="session")
def drain(server_url: str, client: redis.Redis) -> Iterator[Drain]:
    """A subscriber process reading everything published on the subscribed channel."""
    with Drain(server_url, SUBSCRIBED_CHANNEL, client) as subscriber:
        yield subscriber


@pytest.fixture(scope="session")
def subscribed(
    server_url: str, connection: tickpub.Connection, client: redis.Redis, drain: Drain
) -> Target:
    """Where the paths publish when :func:`drain` subscribes."""
    return Target(server_url, connection, client, SUBSCRIBED_CHANNEL)


@pytest.fixture
def ratios() -> Ratios:
    """The run's registry of medians and ratios."""
    return RATIOS


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the ratios after pytest-benchmark's tables."""
    lines = RATIOS.summary()
    if not lines:
        return
    terminalreporter.write_sep("-", "tickpub ratios, this run")
    for line in lines:
        terminalreporter.write_line(line)
