"""Measuring every selected path on every selected payload, in one run.

A run is a list of :class:`Step` (payload, path, subscriber mode). Encoding paths run
once per payload; publishing and batch paths run once per subscriber mode: ``none``
publishes to a channel nobody reads, ``live`` to a channel a :class:`Drain` process
reads. With a live subscriber the drain is synced before the measurement, between
rounds (so the server's output buffer for the subscriber stays within about a round's
worth of messages) and after it, and the messages it counted must equal the messages
sent; any difference, or a subscriber the server dropped, makes the measurement fail.

Ratios are taken against the kind's baseline measured in the same run on the same
payload with the same subscriber mode: baseline time per message / path time per
message, so a ratio above 1 means faster than the baseline.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

import tickpub
from tickpub.bench.drain import Drain, DrainError
from tickpub.bench.paths import PATHS, BenchPath, Operation, Target
from tickpub.bench.payloads import Payload
from tickpub.bench.timing import Timing, measure

__all__ = [
    "FULL",
    "QUICK",
    "SUBSCRIBER_MODES",
    "Measurement",
    "Results",
    "Settings",
    "Step",
    "plan",
    "run",
    "with_baselines",
]

SUBSCRIBER_MODES: tuple[str, ...] = ("none", "live")
"""``none``: nobody subscribes to the channel; ``live``: a drain process does."""

NO_SUBSCRIBER = "-"
"""The subscriber mode of encoding steps, which publish nothing."""


@dataclass(frozen=True)
class Settings:
    """How long each measurement takes.

    Attributes:
        budget: seconds of timed calls per measurement, all rounds together
            (calibration adds about a quarter of that).
        rounds: timed rounds per measurement; the result is their median.
    """

    budget: float
    rounds: int


QUICK = Settings(budget=0.1, rounds=3)
"""``tickpub bench --quick``: every payload and path in 10 to 20 seconds on 2 cores."""

FULL = Settings(budget=1.0, rounds=5)
"""``tickpub bench``: every payload and path in about 100 seconds on 2 cores."""


@dataclass(frozen=True)
class Step:
    """One measurement to make.

    Attributes:
        payload: the message.
        path: the way of sending it.
        subscriber: ``none``, ``live``, or ``-`` for encoding paths.
    """

    payload: Payload
    path: BenchPath
    subscriber: str

    @property
    def label(self) -> str:
        """``payload kind/name subscriber``, for progress lines."""
        mode = "" if self.subscriber == NO_SUBSCRIBER else f" ({self.subscriber})"
        return f"{self.payload.name} {self.path.id}{mode}"


@dataclass
class Measurement:
    """The result of one step.

    Attributes:
        payload: the payload's name.
        payload_bytes: the length of the message's msgpack bytes.
        kind: the path's kind.
        path: the path's name.
        baseline: True for the baseline of its kind.
        subscriber: ``none``, ``live`` or ``-``.
        messages_per_call: messages one timed call sends.
        timing: what the timing loop found; None when the measurement failed.
        sent: messages published, warm-up and calibration included (None for
            encoding).
        received: messages the live subscriber counted (None without one).
        error: why the measurement failed, or None.
        ratio: baseline time per message / this path's, or None when the baseline
            is missing or failed.
    """

    payload: str
    payload_bytes: int
    kind: str
    path: str
    baseline: bool
    subscriber: str
    messages_per_call: int
    timing: Timing | None = None
    sent: int | None = None
    received: int | None = None
    error: str | None = None
    ratio: float | None = None

    @property
    def id(self) -> str:
        """``kind/name`` of the path."""
        return f"{self.kind}/{self.path}"

    @property
    def seconds_per_message(self) -> float | None:
        """Median time per message, or None when the measurement failed."""
        if self.timing is None:
            return None
        return self.timing.seconds_per_call / self.messages_per_call

    @property
    def messages_per_second(self) -> float | None:
        """Messages per second, or None when the measurement failed."""
        seconds = self.seconds_per_message
        return None if seconds is None else 1.0 / seconds

    @property
    def megabytes_per_second(self) -> float | None:
        """Payload MB (10**6 bytes) per second, or None when it failed."""
        rate = self.messages_per_second
        return None if rate is None else rate * self.payload_bytes / 1e6

    def to_dict(self) -> dict[str, Any]:
        """The measurement as JSON-ready values, the derived rates included.

        Returns:
            A dict of plain values.
        """
        if self.timing is not None:
            timing = dataclasses.asdict(self.timing)
        else:
            timing = dict.fromkeys(f.name for f in dataclasses.fields(Timing))
        return {
            "payload": self.payload,
            "payload_bytes": self.payload_bytes,
            "kind": self.kind,
            "path": self.path,
            "baseline": self.baseline,
            "subscriber": self.subscriber,
            "messages_per_call": self.messages_per_call,
            **timing,
            "messages_sent": self.sent,
            "messages_received": self.received,
            "messages_per_second": self.messages_per_second,
            "megabytes_per_second": self.megabytes_per_second,
            "ratio": self.ratio,
            "error": self.error,
        }


@dataclass
class Results:
    """Everything a run found.

    Attributes:
        measurements: one per step that ran, in the order they ran.
        skipped: ``(path id, reason)`` for paths that could not run here.
        notes: caveats of the paths measured, one sentence each.
    """

    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Measurement]:
        """The measurements that failed."""
        return [m for m in self.measurements if m.error is not None]


def with_baselines(paths: Iterable[BenchPath]) -> list[BenchPath]:
    """The paths plus the baseline of each of their kinds, in the order of
    :data:`PATHS`.

    Args:
        paths: the selected paths.

    Returns:
        The paths to measure.
    """
    chosen = {path.id for path in paths}
    kinds = {path.kind for path in paths}
    return [p for p in PATHS if p.id in chosen or (p.is_baseline and p.kind in kinds)]


def plan(
    payloads: Sequence[Payload],
    paths: Sequence[BenchPath],
    subscribers: Sequence[str],
) -> list[Step]:
    """The steps of a run: per payload, the encoding paths, then the publishing
    paths once per subscriber mode.

    Args:
        payloads: the payloads.
        paths: the paths (baselines included).
        subscribers: a subset of :data:`SUBSCRIBER_MODES`.

    Returns:
        The steps, in the order they run.
    """
    steps = []
    for payload in payloads:
        steps += [Step(payload, p, NO_SUBSCRIBER) for p in paths if p.kind == "encode"]
        for mode in subscribers:
            steps += [Step(payload, p, mode) for p in paths if p.kind != "encode"]
    return steps


class _LiveSubscriber:
    """The drain process, started when first needed and again after a failure."""

    def __init__(self, url: str, channel: str, client: redis.Redis) -> None:
        self.url = url
        self.channel = channel
        self.client = client
        self.drain: Drain | None = None

    def get(self) -> Drain:
        if self.drain is None:
            self.drain = Drain(self.url, self.channel, self.client)
        return self.drain

    def discard(self) -> None:
        if self.drain is not None:
            self.drain.stop()
            self.drain = None


def _measure(
    step: Step, operation: Operation, live: _LiveSubscriber, settings: Settings
) -> Measurement:
    payload, path = step.payload, step.path
    result = Measurement(
        payload=payload.name,
        payload_bytes=len(tickpub.packb(payload.message())),
        kind=path.kind,
        path=path.name,
        baseline=path.is_baseline,
        subscriber=step.subscriber,
        messages_per_call=operation.messages,
    )
    fn, args = operation.fn, operation.args
    try:
        if step.subscriber != "live":
            timing = measure(fn, args, budget=settings.budget, rounds=settings.rounds)
            result.timing = timing
            if path.kind != "encode":
                result.sent = timing.calls * operation.messages
            return result

        drain = live.get()
        drain.sync()
        counts: list[int] = []
        timing = measure(
            fn,
            args,
            budget=settings.budget,
            rounds=settings.rounds,
            between_rounds=lambda: counts.append(drain.sync()),
        )
        counts.append(drain.sync())
        result.sent = timing.calls * operation.messages
        result.received = sum(counts)
        if result.received == result.sent:
            result.timing = timing
        else:
            result.error = (
                f"the subscriber received {result.received} of the "
                f"{result.sent} messages sent"
            )
    except DrainError as err:
        live.discard()
        result.error = f"the live subscriber failed: {err}"
    except (tickpub.ServerError, tickpub.MessageTooLargeError) as err:
        result.error = f"the server refused: {err}"
    except redis.ResponseError as err:
        result.error = f"the server refused: {err}"
    return result


def _set_ratios(measurements: list[Measurement]) -> None:
    baselines = {
        (m.payload, m.kind, m.subscriber): m.seconds_per_message
        for m in measurements
        if m.baseline
    }
    for m in measurements:
        base = baselines.get((m.payload, m.kind, m.subscriber))
        mine = m.seconds_per_message
        m.ratio = None if base is None or mine is None else base / mine


def run(
    url: str,
    steps: Sequence[Step],
    settings: Settings,
    on_step: Callable[[int, Step], None] | None = None,
) -> Results:
    """Make every measurement of ``steps`` against the server at ``url``.

    Args:
        url: the server's URL.
        steps: from :func:`plan`.
        settings: budget and rounds per measurement.
        on_step: called with the step's index and the step before each step.

    Returns:
        The results, ratios set. A path whose module is missing, or that cannot
        use this URL, is listed in ``skipped`` instead of measured.

    Raises:
        tickpub.ConnectionError: the tickpub connection failed.
        redis.ConnectionError: the redis-py client failed.
        OSError: the raw socket failed.
    """
    results = Results()
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    skipped: dict[str, str] = {}

    connection = tickpub.connect(url)
    client = redis.Redis.from_url(url)
    targets = {
        mode: Target(url, connection, client, f"tickpub-bench-{mode}-{token}")
        for mode in SUBSCRIBER_MODES
    }
    live = _LiveSubscriber(url, targets["live"].channel, client)
    try:
        for index, step in enumerate(steps):
            if on_step is not None:
                on_step(index, step)
            path = step.path
            reason = skipped.get(path.id) or path.unavailable()
            if reason is not None:
                skipped[path.id] = reason
                continue

            target = targets.get(step.subscriber) if path.kind != "encode" else None
            try:
                operation = path.prepare(step.payload, target)
            except ValueError as err:
                # The raw socket cannot open rediss:// URLs, for one.
                skipped[path.id] = str(err)
                continue
            try:
                results.measurements.append(_measure(step, operation, live, settings))
            finally:
                operation.close()
    finally:
        live.discard()
        client.close()
        connection.close()

    _set_ratios(results.measurements)
    results.skipped = list(skipped.items())
    measured = {m.id for m in results.measurements}
    results.notes = [p.note for p in PATHS if p.note and p.id in measured]
    return results
