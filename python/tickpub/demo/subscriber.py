"""The demo's subscriber process: ``python -m tickpub.demo.subscriber``.

It subscribes with a :class:`tickpub.Subscriber` to the pattern ``PREFIX:*``, passes
every message its ``handle`` receives to a :class:`~tickpub.demo.check.Checker`, and
reports on stdout, one JSON object a line:

- ``{"event": "ready"}`` once the server confirmed the subscription;
- ``{"event": "progress", ...}`` every second: the counters so far, the rate
  received, and the exact latency percentiles of the last second (``interval``);
- ``{"event": "final", ...}`` when the end message arrived: the counters, the
  latency percentiles of the whole run (``latency``) and the first problems found;
- ``{"event": "error", "message": ...}`` when it cannot go on; it then exits 1.

The server's URL is read from ``REDIS_URL``, so that a password in it stays out of
the process list. The process exits when its parent is gone (checked twice a
second), so a publisher killed without warning leaves no subscriber behind.

A message that does not decode never reaches ``handle``: the Subscriber logs it at
WARNING on the ``tickpub`` logger and drops it. It is then counted as lost, through
the gap it leaves in its stream, and the warning is counted under ``warnings`` and
written to stderr. Reconnections, which lose the messages published meanwhile, are
logged and counted the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import redis

import tickpub
from tickpub.demo.check import Checker, LatencyHistogram, latency_summary
from tickpub.demo.feed import clock_ns, symbol_names

__all__ = ["main"]

_PARENT_POLL = 0.5
_REPORT_INTERVAL = 1.0


class _WarningCounter(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the ``tickpub`` logger's warnings to stderr and counts them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        super().emit(record)


class _State:
    """What ``handle`` and the reporting thread share, guarded by ``lock``."""

    def __init__(self, checker: Checker, warnings: _WarningCounter) -> None:
        self.checker = checker
        self.warnings = warnings
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ended = False
        self.parent_gone = False
        self.histogram = LatencyHistogram()
        self._last_received = 0
        self._last_time = time.monotonic()

    def snapshot(self, event: str) -> dict[str, Any]:
        """The counters, and the latencies since the previous snapshot."""
        with self.lock:
            checker = self.checker
            latencies, checker.latencies = checker.latencies, []
            counts = {
                "received": checker.received,
                "lost": checker.lost,
                "duplicates": checker.duplicates,
                "malformed": checker.malformed,
            }
        now = time.monotonic()
        seconds = max(now - self._last_time, 1e-9)
        rate = (counts["received"] - self._last_received) / seconds
        self._last_received, self._last_time = counts["received"], now

        interval = np.array(latencies, dtype=np.int64)
        self.histogram.add(interval)
        report: dict[str, Any] = {"event": event, **counts}
        report["warnings"] = self.warnings.count
        report["rate"] = rate
        report["interval"] = latency_summary(interval)
        return report


def _subscriber_class(prefix: str, state: _State) -> type[tickpub.Subscriber]:
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + ":*"

    class DemoSubscriber(tickpub.Subscriber):
        sub_channel_patterns = (pattern,)

        def handle(self, channel: str, data: Any, *args: Any, **kwargs: Any) -> None:
            received_ns = clock_ns()
            with state.lock:
                if state.ended:
                    return
                state.ended = state.checker.check(channel, data, received_ns)
            if state.ended:
                state.stop.set()

    return DemoSubscriber


def _emit(report: dict[str, Any]) -> None:
    print(json.dumps(report), flush=True)


def _report_every_second(state: _State, parent: int) -> None:
    """Runs in a thread: a progress line every second, until told to stop or the
    parent process is gone."""
    next_report = time.monotonic() + _REPORT_INTERVAL
    while not state.stop.wait(_PARENT_POLL):
        if os.getppid() != parent:
            state.parent_gone = True
            state.stop.set()
            return
        if time.monotonic() >= next_report:
            next_report += _REPORT_INTERVAL
            try:
                _emit(state.snapshot("progress"))
            except BrokenPipeError:
                state.parent_gone = True
                state.stop.set()
                return


def _serve(args: argparse.Namespace) -> int:
    warnings = _WarningCounter()
    logging.getLogger("tickpub").addHandler(warnings)
    checker = Checker(args.prefix, symbol_names(args.symbols), args.depth)
    state = _State(checker, warnings)
    subscriber = _subscriber_class(args.prefix, state)(url=os.environ["REDIS_URL"])
    _emit({"event": "ready"})

    reporter = threading.Thread(
        target=_report_every_second, args=(state, args.parent), daemon=True
    )
    reporter.start()
    try:
        subscriber.run(state.stop)
    finally:
        state.stop.set()
        reporter.join()
        subscriber.close()
    if state.parent_gone:
        return 0

    final = state.snapshot("final")
    final["latency"] = state.histogram.summary()
    final["problems"] = checker.problems
    _emit(final)
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tickpub.demo.subscriber",
        description="The subscriber process of `tickpub demo` (started by it).",
    )
    parser.add_argument("--prefix", required=True, help="the run's channel prefix")
    parser.add_argument("--symbols", type=int, required=True, help="symbol count")
    parser.add_argument("--depth", type=int, required=True, help="book depth")
    parser.add_argument(
        "--parent", type=int, required=True, help="exit when this process is gone"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subscriber until the end message arrives or the parent is gone.

    Args:
        argv: the arguments; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0, or 1 after an ``error`` report.
    """
    args = _parse(argv)
    if "REDIS_URL" not in os.environ:
        _emit({"event": "error", "message": "REDIS_URL is not set"})
        return 1
    try:
        return _serve(args)
    except BrokenPipeError:
        # The parent closed the pipe: nobody reads the reports any more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (redis.RedisError, tickpub.SubscriberException, OSError) as error:
        _emit({"event": "error", "message": f"{type(error).__name__}: {error}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
