"""Ratios between the paths measured in one run, with the project's goals.

Every benchmark belongs to a comparison (a :class:`Case` with the same group: one
kind of operation, one payload, with or without a subscriber), which pytest-benchmark
shows as one table. Once a comparison holds two paths that are compared, the ratio
``median time of the other path / median time of the path`` is stored in the path's
``extra_info`` and printed at the end of the run. Both paths send the same messages
per timed call, so the ratio is also the ratio of their messages (and MB) per second:
higher is faster.

Paths are compared with their kind's pure-Python baseline, and ``tickpub`` also with
the other references (``ormsgpack``, ``raw-socket``). The ratios come from the
medians of whatever rounds this run timed; on a machine shared with other work they
move by tens of percent between runs, which is why goals are printed, not asserted.

The registry is one per process: with pytest-xdist each worker would see only its
own benchmarks, so run the suite without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GOALS", "RATIOS", "Case", "Ratios"]

TICKPUB = "tickpub"

GOALS: dict[tuple[str, str, str, str], float] = {
    ("encode", "tick", TICKPUB, "msgpack-numpy"): 10.0,
    ("encode", "tick-np", TICKPUB, "msgpack-numpy"): 25.0,
    ("encode", "array-16m", TICKPUB, "msgpack-numpy"): 5.0,
    ("publish", "tick", TICKPUB, "popoto"): 3.0,
    ("publish", "array-16m", TICKPUB, "popoto"): 4.0,
    ("batch", "tick", TICKPUB, "redis-py-pipeline"): 10.0,
    ("batch", "tick", TICKPUB, "raw-socket"): 0.5,
}
"""Goals by ``(kind, payload, path, compared with)``; they apply with and without a
subscriber."""


@dataclass(frozen=True)
class Case:
    """One benchmark: a path on a payload.

    Attributes:
        kind: ``encode``, ``decode``, ``publish`` or ``batch``.
        payload: the payload's name.
        path: the path's name within its kind.
        baseline: the name of the kind's pure-Python path.
        messages: how many messages one timed call encodes, decodes or publishes.
        nbytes: the size of one encoded message.
        subscribed: for publishing kinds, whether a subscriber reads the channel.
    """

    kind: str
    payload: str
    path: str
    baseline: str
    messages: int = 1
    nbytes: int = 0
    subscribed: bool | None = None

    @property
    def group(self) -> str:
        """The comparison's name, which is also pytest-benchmark's group."""
        if self.kind == "batch":
            name = f"batch of {self.messages} {self.payload}"
        elif self.kind == "publish" and self.subscribed:
            name = f"publish {self.payload}, {self.messages} calls"
        else:
            name = f"{self.kind} {self.payload}"
        if self.subscribed is None:
            return name
        return f"{name}, {'subscribed' if self.subscribed else 'no subscriber'}"


@dataclass
class _Result:
    case: Case
    seconds: float
    extra_info: dict[str, Any]


@dataclass
class _Group:
    results: dict[str, _Result] = field(default_factory=dict)


def _pairs(group: _Group) -> list[tuple[_Result, _Result]]:
    """The (path, compared with) pairs a comparison holds, in display order."""
    results = list(group.results.values())
    baseline = results[0].case.baseline
    pairs = []
    for result in results:
        if result.case.path != baseline and baseline in group.results:
            pairs.append((result, group.results[baseline]))
    if TICKPUB in group.results:
        for result in results:
            if result.case.path not in (TICKPUB, baseline):
                pairs.append((group.results[TICKPUB], result))
    return pairs


class Ratios:
    """The medians of one run's benchmarks and the ratios between them."""

    def __init__(self) -> None:
        """Start with no results."""
        self._groups: dict[str, _Group] = {}
        self._untimed = 0
        self._notes: list[str] = []

    def start(self, benchmark: Any, case: Case) -> None:
        """Put a benchmark in its comparison's group; call before timing.

        Args:
            benchmark: the pytest-benchmark fixture.
            case: what the benchmark measures.
        """
        benchmark.group = case.group
        benchmark.extra_info.update(
            kind=case.kind,
            payload=case.payload,
            path=case.path,
            messages_per_call=case.messages,
            message_bytes=case.nbytes,
        )
        if case.subscribed is not None:
            benchmark.extra_info["subscribed"] = case.subscribed

    def add(self, benchmark: Any, case: Case) -> None:
        """Record a finished benchmark and update the ratios of its comparison.

        Args:
            benchmark: the pytest-benchmark fixture, after timing.
            case: what it measured, as given to :meth:`start`.
        """
        if benchmark.stats is None:  # --benchmark-disable: ran once, timed nothing
            self._untimed += 1
            return
        seconds = float(benchmark.stats.stats.median)
        info = benchmark.extra_info
        info["messages_per_second"] = case.messages / seconds
        info["megabytes_per_second"] = case.messages * case.nbytes / seconds / 1e6

        group = self._groups.setdefault(case.group, _Group())
        group.results[case.path] = _Result(case, seconds, info)
        for fast, slow in _pairs(group):
            ratio = slow.seconds / fast.seconds
            fast.extra_info.setdefault("ratios", {})[f"vs {slow.case.path}"] = ratio
            goal = _goal(fast.case, slow.case)
            if goal is not None:
                fast.extra_info.setdefault("goals", {})[f"vs {slow.case.path}"] = goal

    def note(self, line: str) -> None:
        """Print a line with the ratios: a measurement that is not a timing.

        Args:
            line: the text.
        """
        self._notes.append(line)

    def summary(self) -> list[str]:
        """The lines printed at the end of the run.

        Returns:
            One line per ratio and note; empty when no benchmark ran.
        """
        lines = []
        if self._groups:
            lines.append(
                "median time of the compared path / median time of the path "
                "(higher is faster; noisy on a shared machine):"
            )
        rows = [
            (name, f"{fast.case.path} vs {slow.case.path}", fast, slow)
            for name, group in self._groups.items()
            for fast, slow in _pairs(group)
        ]
        name_width = max((len(row[0]) for row in rows), default=0)
        pair_width = max((len(row[1]) for row in rows), default=0)
        for name, pair, fast, slow in rows:
            ratio = slow.seconds / fast.seconds
            text = f"  {name:<{name_width}}  {pair:<{pair_width}}  {ratio:7.2f}x"
            goal = _goal(fast.case, slow.case)
            if goal is not None:
                text += (
                    f"  (goal >= {goal:g}x: {'met' if ratio >= goal else 'NOT MET'})"
                )
            lines.append(text)
        if self._untimed and not self._groups:
            lines.append(f"{self._untimed} benchmarks ran untimed: no ratios")
        lines.extend(self._notes)
        return lines


def _goal(fast: Case, slow: Case) -> float | None:
    return GOALS.get((fast.kind, fast.payload, fast.path, slow.path))


RATIOS = Ratios()
"""The registry of this process's run."""
