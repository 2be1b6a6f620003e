"""Publishing throughput: tickpub against popoto's path on the same server, same run.

popoto publishes ``msgpack.packb(data, default=msgpack_numpy.encode)`` with redis-py
(hiredis installed). Run with::

    maturin develop --release
    pytest benches/bench_publish.py --benchmark-columns=mean,ops,rounds

The ratios (goals: tick >= 3x, batch >= 10x redis-py's pipeline and >= 0.5x a raw
socket, 16 MiB frame >= 4x) are printed at the end and stored in ``extra_info``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np
import pytest
import redis

import tickpub
from tickpub.server import redis_server

TICK = {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456}
FRAME = {"frame": np.random.default_rng(0).random(2 * 1024 * 1024)}  # 16 MiB float64
FRAME_MB = FRAME["frame"].nbytes / 1e6
BATCH = 1000
CHANNEL = "bench"

_means: dict[str, float] = {}


def popoto_packb(data: object) -> bytes:
    packed: bytes = msgpack.packb(data, default=msgpack_numpy.encode)
    return packed


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as server_url:
        yield server_url


@pytest.fixture(scope="module")
def conn(url: str) -> Iterator[tickpub.Connection]:
    with tickpub.connect(url) as connection:
        yield connection


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(url)
    yield c
    c.close()


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "tickpub / baseline (higher is better):"]
    for label, fast, slow, goal in [
        ("tick, one at a time vs popoto", "tick-tickpub", "tick-popoto", 3.0),
        ("batch of 1000 vs redis-py pipeline", "batch-tickpub", "batch-pipeline", 10.0),
        ("batch of 1000 vs raw socket", "batch-tickpub", "batch-raw-socket", 0.5),
        ("16 MiB frame vs popoto", "frame-tickpub", "frame-popoto", 4.0),
    ]:
        if fast in _means and slow in _means:
            ratio = _means[slow] / _means[fast]
            lines.append(f"  {label}: {ratio:.2f}x (goal >= {goal}x)")
    if reporter is not None:
        for line in lines:
            reporter.write_line(line)


def run(
    benchmark: Any, name: str, group: str, fn: Callable[[], object], **info: Any
) -> None:
    benchmark.group = group
    benchmark.extra_info.update(info)
    benchmark(fn)
    if benchmark.stats is None:  # --benchmark-disable: run once, measure nothing
        return
    _means[name] = benchmark.stats.stats.mean
    benchmark.extra_info["per_second"] = info.get("units", 1) / _means[name]


def test_tick_popoto(benchmark: Any, client: redis.Redis) -> None:
    run(
        benchmark,
        "tick-popoto",
        "tick",
        lambda: client.publish(CHANNEL, popoto_packb(TICK)),
    )


def test_tick_tickpub(benchmark: Any, conn: tickpub.Connection) -> None:
    run(benchmark, "tick-tickpub", "tick", lambda: conn.publish(CHANNEL, TICK))


def test_batch_pipeline(benchmark: Any, client: redis.Redis) -> None:
    def batch() -> None:
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.publish(CHANNEL, popoto_packb(TICK))
        pipe.execute()

    run(benchmark, "batch-pipeline", "batch", batch, units=BATCH)


def test_batch_raw_socket(benchmark: Any, url: str) -> None:
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    payload = popoto_packb(TICK)
    frame = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(CHANNEL), CHANNEL.encode(), len(payload), payload
    )  # fmt: skip
    frames = frame * BATCH
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def batch() -> None:
        sock.sendall(frames)
        replies = 0
        while replies < BATCH:
            replies += sock.recv(65536).count(b"\r\n")

    run(benchmark, "batch-raw-socket", "batch", batch, units=BATCH)
    sock.close()


def test_batch_tickpub(benchmark: Any, conn: tickpub.Connection) -> None:
    ticks = [TICK] * BATCH
    fn = lambda: conn.publish_many(CHANNEL, ticks)  # noqa: E731
    run(benchmark, "batch-tickpub", "batch", fn, units=BATCH)


def test_frame_popoto(benchmark: Any, client: redis.Redis) -> None:
    fn = lambda: client.publish(CHANNEL, popoto_packb(FRAME))  # noqa: E731
    run(benchmark, "frame-popoto", "frame-16MiB", fn, units=FRAME_MB)


def test_frame_tickpub(benchmark: Any, conn: tickpub.Connection) -> None:
    fn = lambda: conn.publish(CHANNEL, FRAME)  # noqa: E731
    run(benchmark, "frame-tickpub", "frame-16MiB", fn, units=FRAME_MB)


PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import tickpub

    conn = tickpub.connect(sys.argv[1])
    frame = {"frame": np.random.default_rng(0).random(2 * 1024 * 1024)}
    for _ in range(3):
        conn.publish("bench", frame)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10):
        conn.publish("bench", frame)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(after - before)
    """
)


def test_frame_peak_memory(url: str) -> None:
    """Publishing a 16 MiB frame adds less than 2 MiB to the peak RSS."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, url],
        capture_output=True,
        text=True,
        check=True,
    )
    growth_kib = int(out.stdout.strip())
    print(f"peak RSS growth publishing a 16 MiB frame: {growth_kib} KiB")
    assert growth_kib < 2048
