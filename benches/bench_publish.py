"""Publishing speed: tickpub against popoto's path on the same server, same run.

Run with::

    python -m pytest benches/bench_publish.py --benchmark-columns=median,mean,ops,rounds

Two kinds, each on every payload, each with nobody subscribed and with a subscriber
in another process reading every message:

- ``publish``, one message per call: ``Connection.publish`` against popoto's path,
  ``msgpack_numpy`` bytes published by redis-py (hiredis parses the replies).
- ``batch``, one batch per call: ``Connection.publish_many`` against a redis-py
  pipeline without a transaction, and a plain socket writing ``PUBLISH`` frames
  encoded before timing starts, the ceiling of any client.

With a subscriber, each timed round publishes a whole batch (one-at-a-time calls in
a row, or one batch call) and the subscriber catches up between rounds, outside the
timing, then reports how many messages it read: a benchmark fails when that is not
what was sent. Without a subscriber pytest-benchmark times single calls as usual.

Goals: tick one at a time >= 3x popoto's messages/s; batch of 1000 ticks >= 10x the
redis-py pipeline and >= 0.5x the raw socket; 16 MiB array >= 4x popoto's MB/s.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from itertools import repeat
from time import perf_counter
from typing import Any

import pytest

import tickpub
from benches.ratios import Case, Ratios
from tickpub.bench.drain import Drain
from tickpub.bench.paths import BASELINES, PATHS, BenchPath, Operation, Target
from tickpub.bench.payloads import PAYLOADS, Payload

PUBLISHERS = [path for path in PATHS if path.kind in ("publish", "batch")]
CASES = [
    pytest.param(payload, path, id=f"{payload.name}-{path.kind}-{path.name}")
    for payload in PAYLOADS
    for path in PUBLISHERS
]
MAX_SUBSCRIBED_ROUNDS = 1000


def _prepare(payload: Payload, path: BenchPath, target: Target) -> Operation:
    reason = path.unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        return path.prepare(payload, target)
    except ValueError as err:  # a raw socket cannot open a TLS URL, say
        pytest.skip(str(err))


def _case(payload: Payload, path: BenchPath, messages: int, subscribed: bool) -> Case:
    nbytes = len(tickpub.packb(payload.message()))
    baseline = BASELINES[path.kind]
    return Case(
        path.kind, payload.name, path.name, baseline, messages, nbytes, subscribed
    )


@pytest.mark.parametrize(("payload", "path"), CASES)
def test_no_subscriber(
    benchmark: Any, ratios: Ratios, alone: Target, payload: Payload, path: BenchPath
) -> None:
    """Time one publishing path on one payload, nobody subscribed."""
    operation = _prepare(payload, path, alone)
    case = _case(payload, path, operation.messages, subscribed=False)
    try:
        ratios.start(benchmark, case)
        benchmark(operation.fn, *operation.args)
        ratios.add(benchmark, case)
    finally:
        operation.close()


def _repeat(operation: Operation, times: int) -> Callable[[], None]:
    fn, args = operation.fn, operation.args

    def calls() -> None:
        for _ in repeat(None, times):
            fn(*args)

    return calls


def _expect(drain: Drain, sent: int) -> None:
    received = drain.sync()
    assert received == sent, f"the subscriber received {received} of {sent} messages"


@pytest.mark.parametrize(("payload", "path"), CASES)
def test_subscribed(
    benchmark: Any,
    ratios: Ratios,
    subscribed: Target,
    drain: Drain,
    payload: Payload,
    path: BenchPath,
    pytestconfig: pytest.Config,
) -> None:
    """Time one publishing path on one payload while a subscriber reads it all."""
    operation = _prepare(payload, path, subscribed)
    calls = payload.batch if path.kind == "publish" else 1
    per_round = operation.messages * calls
    timed = _repeat(operation, calls)
    case = _case(payload, path, per_round, subscribed=True)
    drain.sync()  # forget what earlier benchmarks published

    try:
        rounds = 1
        if not benchmark.disabled:
            # One round untimed: a warm-up, and the estimate that sizes the run.
            start = perf_counter()
            timed()
            elapsed = perf_counter() - start
            _expect(drain, per_round)
            budget = float(pytestconfig.getoption("benchmark_max_time"))
            rounds = math.ceil(budget / max(elapsed, 1e-9))
            rounds = min(
                max(rounds, int(pytestconfig.getoption("benchmark_min_rounds"))),
                MAX_SUBSCRIBED_ROUNDS,
            )

        sent = 0

        def catch_up() -> None:
            nonlocal sent
            _expect(drain, sent)
            sent = per_round

        ratios.start(benchmark, case)
        benchmark.pedantic(timed, setup=catch_up, rounds=rounds)
        _expect(drain, per_round)
        ratios.add(benchmark, case)
    finally:
        operation.close()


PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import tickpub

    conn = tickpub.connect(sys.argv[1])
    frame = {"frame": np.random.default_rng(0).random(2 * 1024 * 1024)}
    for _ in range(3):
        conn.publish("tickpub-bench-alone", frame)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10):
        conn.publish("tickpub-bench-alone", frame)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(after - before)
    """
)


def test_frame_peak_memory(server_url: str, ratios: Ratios) -> None:
    """Publishing a 16 MiB frame adds less than 2 MiB to the peak RSS.

    A fresh process measures it: in this one, earlier benchmarks have already set
    the peak.
    """
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, server_url],
        capture_output=True,
        text=True,
        check=True,
    )
    growth_kib = int(out.stdout.strip())
    ratios.note(
        f"peak RSS growth publishing a 16 MiB frame 10 times: {growth_kib} KiB "
        "(limit < 2048 KiB)"
    )
    assert growth_kib < 2048
