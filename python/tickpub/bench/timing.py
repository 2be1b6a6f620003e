"""Timing one operation: warm up, calibrate to a time budget, time rounds.

Each round calls the operation the same number of times back to back and yields a
time per call; the median over rounds is the result, the best round is kept too. The
loop calls ``fn(*args)`` directly so that its own cost stays a few tens of
nanoseconds, which matters for operations that take a few hundred.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from time import perf_counter

__all__ = ["Timing", "measure"]

# Calibration stops once a run of calls takes this share of a round's budget.
_CALIBRATION_SHARE = 0.25


@dataclass(frozen=True)
class Timing:
    """What :func:`measure` found.

    Attributes:
        seconds_per_call: the median over rounds of the time per call.
        best_seconds_per_call: the fastest round's time per call.
        rounds: how many rounds were timed.
        calls_per_round: how many calls each round made.
        calls: all calls made, warm-up and calibration included.
    """

    seconds_per_call: float
    best_seconds_per_call: float
    rounds: int
    calls_per_round: int
    calls: int


def _run(fn: Callable[..., object], args: Sequence[object], calls: int) -> float:
    start = perf_counter()
    for _ in repeat(None, calls):
        fn(*args)
    return perf_counter() - start


def measure(
    fn: Callable[..., object],
    args: Sequence[object] = (),
    *,
    budget: float,
    rounds: int,
    between_rounds: Callable[[], None] | None = None,
) -> Timing:
    """Time ``fn(*args)``.

    One warm-up call, then calibration: runs of 1, 4, 16... calls until one takes a
    quarter of a round's share of ``budget``; each round then makes as many calls as
    fit in its share (at least one). An operation slower than the budget therefore
    takes about ``rounds + 2`` calls.

    Args:
        fn: the operation.
        args: its arguments.
        budget: seconds to spend in the timed rounds, all together.
        rounds: how many rounds to time.
        between_rounds: called before each timed round, outside the timing (to let
            a subscriber catch up, say).

    Returns:
        The timing.

    Raises:
        ValueError: ``budget`` is not positive or ``rounds`` is below 1.
    """
    if budget <= 0 or rounds < 1:
        raise ValueError("budget must be positive and rounds at least 1")
    per_round = budget / rounds

    calls = 1
    elapsed = _run(fn, args, 1)
    batch = 1
    while elapsed < per_round * _CALIBRATION_SHARE:
        batch *= 4
        elapsed = _run(fn, args, batch)
        calls += batch
    per_call = elapsed / batch
    calls_per_round = max(1, round(per_round / per_call))

    times = []
    for _ in range(rounds):
        if between_rounds is not None:
            between_rounds()
        times.append(_run(fn, args, calls_per_round) / calls_per_round)
        calls += calls_per_round

    return Timing(
        seconds_per_call=statistics.median(times),
        best_seconds_per_call=min(times),
        rounds=rounds,
        calls_per_round=calls_per_round,
        calls=calls,
    )
