"""The publishing side of ``tickpub demo``: pacing, the live line, the summary."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
import uuid
from types import FrameType
from typing import Any, TextIO

import tickpub
from tickpub.demo.feed import (
    Feed,
    book_channel,
    end_channel,
    symbol_names,
    tick_channel,
)
from tickpub.demo.process import DemoError, SubscriberProcess
from tickpub.server import start_server

__all__ = ["run"]

# Ticks published in one go at most, when the publisher is behind its schedule.
_MAX_BATCH = 1000
# The longest sleep, so that the end of the run and Ctrl-C are noticed soon.
_MAX_SLEEP = 0.1
# How long the subscriber may go without receiving anything before the run ends.
_STALL_TIMEOUT = 10.0


class _Stop:
    """Set by the first SIGINT or SIGTERM; the next one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _Stop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _duration(ns: int) -> str:
    """A latency for people: microseconds, milliseconds or seconds."""
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


class _Display:
    """The live line: rewritten in place on a terminal, one line a second elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._shown = False

    def line(self, text: str) -> None:
        if self.tty:
            self.out.write(f"\r{text}\x1b[K")
        else:
            self.out.write(f"{text}\n")
        self.out.flush()
        self._shown = True

    def done(self) -> None:
        if self.tty and self._shown:
            self.out.write("\n")
            self.out.flush()
        self._shown = False


class _Run:
    """One run: the feed, its channels, the subscriber, the counters shown."""

    def __init__(
        self,
        connection: tickpub.Connection,
        subscriber: SubscriberProcess,
        feed: Feed,
        prefix: str,
        display: _Display,
    ) -> None:
        self.connection = connection
        self.subscriber = subscriber
        self.feed = feed
        self.display = display
        self.ticks = [tick_channel(prefix, name) for name in feed.symbols]
        self.books = [book_channel(prefix, name) for name in feed.symbols]
        self.end = end_channel(prefix)
        self.start = time.monotonic()
        self.publishing = True
        self.behind = 0
        self._shown_sent = 0
        self._shown_at = self.start

    def publish_ticks(self, count: int) -> None:
        """Publish the next ``count`` ticks, pipelined per symbol."""
        for index, messages in self.feed.ticks(count).items():
            if len(messages) == 1:
                self.connection.publish(self.ticks[index], messages[0])
            else:
                self.connection.publish_many(self.ticks[index], messages)

    def publish_books(self) -> None:
        """Publish one book per symbol."""
        for index, channel in enumerate(self.books):
            self.connection.publish(channel, self.feed.book(index))

    def publish_end(self) -> None:
        """Tell the subscriber how many messages each stream had; the run is over."""
        counts = {"ticks": self.feed.ticks_sent, "books": self.feed.books_sent}
        self.connection.publish(self.end, counts)

    def show(self, report: dict[str, Any]) -> None:
        """Print the live line for a progress report of the subscriber."""
        now = time.monotonic()
        sent = self.feed.sent()
        rate = (sent - self._shown_sent) / max(now - self._shown_at, 1e-9)
        self._shown_sent, self._shown_at = sent, now

        interval = report["interval"]
        parts = [
            f"{now - self.start:4.0f} s",
            f"sent {rate:,.0f}/s" if self.publishing else f"sent all {sent}",
            f"received {report['rate']:,.0f}/s",
            f"latency p50 {_duration(interval['p50_ns'])}",
            f"p99 {_duration(interval['p99_ns'])}",
            f"max {_duration(interval['max_ns'])}",
            f"lost {report['lost']}",
            f"malformed {report['malformed']}",
        ]
        if report["duplicates"]:
            parts.append(f"duplicates {report['duplicates']}")
        if self.behind:
            parts.append(f"behind by {self.behind} ticks")
        self.display.line("  ".join(parts))

    def poll_reports(self) -> None:
        """Show the reports that came, without waiting."""
        while (report := self.subscriber.next_event(0)) is not None:
            if report["event"] == "progress":
                self.show(report)

    def publish(self, rate: float, duration: float | None, stop: _Stop) -> None:
        """Publish ticks at ``rate`` a second and the books every second.

        Tick ``k`` is due ``k / rate`` seconds after the start, on the monotonic
        clock. When the publisher is behind it publishes the ticks due in batches
        of at most 1000, and sleeps only once it has caught up.

        Args:
            rate: ticks per second.
            duration: seconds to publish; None: until ``stop`` is requested.
            stop: set by Ctrl-C or SIGTERM.
        """
        end_at = math.inf if duration is None else self.start + duration
        next_books = self.start
        ticks = 0
        while not stop.requested:
            now = time.monotonic()
            if now >= end_at:
                break
            if now >= next_books:
                self.publish_books()
                next_books += 1.0

            due = int((now - self.start) * rate) + 1 - ticks
            self.behind = max(0, due - _MAX_BATCH)
            if due > 0:
                batch = min(due, _MAX_BATCH)
                self.publish_ticks(batch)
                ticks += batch
            else:
                next_tick = self.start + ticks / rate
                wake = min(next_tick, next_books, end_at)
                time.sleep(min(max(0.0, wake - now), _MAX_SLEEP))
            self.poll_reports()
        self.publishing = False
        self.behind = 0

    def finish(self) -> dict[str, Any]:
        """Announce the end until the subscriber sends its final report.

        Returns:
            The final report.

        Raises:
            DemoError: the subscriber received nothing for 10 s before the end.
        """
        self.publish_end()
        received, changed = -1, time.monotonic()
        while True:
            report = self.subscriber.next_event(1.0)
            if report is None:
                # Published again in case the first one was lost in a reconnection.
                self.publish_end()
            elif report["event"] == "final":
                return report
            elif report["event"] == "progress":
                self.show(report)
                if report["received"] != received:
                    received, changed = report["received"], time.monotonic()
            if time.monotonic() - changed > _STALL_TIMEOUT:
                raise DemoError(
                    f"the subscriber received nothing for {_STALL_TIMEOUT:.0f} s "
                    f"after the run; the server may have dropped it (see its log)"
                )


def _summary(run: _Run, final: dict[str, Any], elapsed: float) -> tuple[str, bool]:
    sent = run.feed.sent()
    latency = final["latency"]
    text = (
        f"summary: sent {sent}, received {final['received']}, lost {final['lost']}, "
        f"duplicates {final['duplicates']}, malformed {final['malformed']}; latency "
        f"p50 {_duration(latency['p50_ns'])}, p99 {_duration(latency['p99_ns'])}, "
        f"max {_duration(latency['max_ns'])}; {elapsed:.1f} s"
    )
    ok = (
        final["lost"] == final["malformed"] == final["duplicates"] == 0
        and final["received"] == sent
    )
    if ok:
        verdict = (
            f"OK: all {sent} messages published after the subscriber was ready "
            "arrived once each, in order and well formed"
        )
    else:
        verdict = (
            f"FAILED: of the {sent} messages published after the subscriber was "
            f"ready, {final['lost']} were lost, {final['malformed']} malformed and "
            f"{final['duplicates']} duplicated"
        )
    lines = [text, verdict]
    lines += [f"  malformed: {problem}" for problem in final["problems"]]
    if final["warnings"]:
        lines.append(f"  the subscriber logged {final['warnings']} warnings:")
        lines += [f"    {line}" for line in run.subscriber.warnings()[-5:]]
    return "\n".join(lines), ok


def _start_embedded_server(stack: contextlib.ExitStack) -> str:
    """Start a server for the run, stopped when ``stack`` closes; return its URL."""
    server = stack.enter_context(start_server())
    return server.url


def _connect(url: str, source: str) -> tickpub.Connection:
    server, hint = {
        "--url": (
            "given by --url",
            "check --url, or start a server (`tickpub server`) and pass its URL",
        ),
        "REDIS_URL": (
            "in REDIS_URL",
            "check REDIS_URL, or unset it to run on an embedded server",
        ),
    }.get(source, ("started for the demo", "see the server's log"))
    try:
        connection = tickpub.connect(url, socket_connect_timeout=5.0)
        connection.ping()
    except (tickpub.TickpubError, ValueError) as error:
        raise DemoError(f"cannot use the server {server}: {error}; {hint}") from None
    return connection


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the demo as the parsed options say.

    Args:
        args: ``rate``, ``symbols``, ``duration``, ``url``, ``book_depth``, ``seed``.
        out: where the live line and the summary go.

    Returns:
        0 when every message arrived once and well formed, else 1.

    Raises:
        DemoError: the server or the subscriber process cannot be used.
        tickpub.server.ServerNotFoundError: an embedded server was needed and no
            server binary was found.
    """
    with contextlib.ExitStack() as stack:
        if args.url:
            url, source = args.url, "--url"
        elif os.environ.get("REDIS_URL"):
            url, source = os.environ["REDIS_URL"], "REDIS_URL"
        else:
            url, source = _start_embedded_server(stack), "the embedded server"
        connection = stack.enter_context(_connect(url, source))

        prefix = f"tickpub-demo:{uuid.uuid4().hex[:12]}"
        symbols = symbol_names(args.symbols)
        subscriber = stack.enter_context(
            SubscriberProcess(url, prefix, len(symbols), args.book_depth)
        )
        until = "until Ctrl-C" if args.duration is None else f"for {args.duration:g} s"
        out.write(
            f"tickpub demo: {args.rate:g} ticks/s over {len(symbols)} symbols and a "
            f"book of depth {args.book_depth} per symbol every second, on "
            f"{connection.url} ({source}), {until}; subscriber pid {subscriber.pid}\n"
        )
        out.flush()

        display = _Display(out)
        feed = Feed(symbols, args.book_depth, seed=args.seed)
        demo = _Run(connection, subscriber, feed, prefix, display)
        try:
            with _Stop() as stop:
                demo.publish(args.rate, args.duration, stop)
                elapsed = time.monotonic() - demo.start
                final = demo.finish()
        except tickpub.TickpubError as error:
            display.done()
            raise DemoError(
                f"publishing failed: {error}; is the server still running?"
            ) from None
        display.done()

        subscriber.wait(5.0)
        text, ok = _summary(demo, final, elapsed)
        out.write(text + "\n")
        out.flush()
    return 0 if ok else 1
