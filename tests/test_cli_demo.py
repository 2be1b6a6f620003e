"""``tickpub demo``: runs against a real server, stops cleanly, checks what it says.

The runs are subprocesses of ``python -m tickpub demo``, so the subscriber process,
the signals and the exit status are the real ones. The checker is also fed message
sequences by hand, through the real codec, to see it count what is wrong.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tickpub
from tickpub import cli
from tickpub.demo.check import Checker, LatencyHistogram
from tickpub.demo.feed import (
    Feed,
    book_channel,
    end_channel,
    symbol_names,
    tick_channel,
)
from tickpub.server import ServerNotFoundError, find_server_binary

_TIMEOUT = 120.0
_SUMMARY = re.compile(
    r"summary: sent (\d+), received (\d+), lost (\d+), duplicates (\d+), "
    r"malformed (\d+);"
)


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tickpub", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A group of its own, so that a test can signal it as a terminal would.
        start_new_session=True,
    )


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    """Demo processes started by a test, killed (with their group) at teardown."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _read_until(
    process: subprocess.Popen[str], done: Callable[[str], bool]
) -> list[str]:
    """Lines of the demo's stdout up to the first one ``done`` accepts."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + _TIMEOUT
    while not lines or not done(lines[-1]):
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            assert line, f"the demo exited early after {lines}"
            lines.append(line.rstrip("\n"))
        assert time.monotonic() < deadline, f"no such line in {lines}"
    return lines


def _subscriber_pid(header: str) -> int:
    match = re.search(r"subscriber pid (\d+)", header)
    assert match, header
    return int(match.group(1))


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped has exited too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _counts(output: str) -> tuple[int, ...]:
    match = _SUMMARY.search(output)
    assert match, output
    return tuple(int(group) for group in match.groups())


def test_every_message_arrives_and_the_subscriber_exits(
    redis_url: str, running: list[subprocess.Popen[str]]
) -> None:
    rate, symbols, duration = 500, 4, 1.5
    process = _demo(
        *("--url", redis_url, "--rate", str(rate), "--symbols", str(symbols)),
        *("--duration", str(duration)),
    )
    running.append(process)
    out, err = process.communicate(timeout=_TIMEOUT)

    assert process.returncode == 0, out + err
    sent, received, lost, duplicates, malformed = _counts(out)
    assert sent == received > 0
    assert lost == duplicates == malformed == 0
    # Never ahead of the schedule: the ticks due in 1.5 s and two books a symbol.
    assert sent <= int(duration * rate) + 1 + 2 * symbols
    assert "OK: all" in out
    assert "Traceback" not in err

    lines = out.splitlines()
    assert any(" received " in line and "lost 0" in line for line in lines[1:-2])
    assert _gone(_subscriber_pid(lines[0]))


def test_ctrl_c_ends_with_a_summary_on_an_embedded_server(
    running: list[subprocess.Popen[str]],
) -> None:
    try:
        find_server_binary()
    except ServerNotFoundError as error:
        pytest.skip(str(error))
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    process = _demo("--rate", "300", env=env)
    running.append(process)
    lines = _read_until(process, lambda line: " received " in line)
    assert "(the embedded server)" in lines[0]

    # A terminal's Ctrl-C reaches the whole group: the demo, subscriber, server.
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=_TIMEOUT)

    assert process.returncode == 0, out + err
    sent, received, lost, _, malformed = _counts(out)
    assert sent == received > 0
    assert lost == malformed == 0
    assert _gone(_subscriber_pid(lines[0]))


def test_the_subscriber_exits_when_the_demo_is_killed(
    redis_url: str, running: list[subprocess.Popen[str]]
) -> None:
    process = _demo("--url", redis_url, "--rate", "200")
    running.append(process)
    lines = _read_until(process, lambda line: " received " in line)
    subscriber = _subscriber_pid(lines[0])

    process.kill()
    process.wait()

    deadline = time.monotonic() + _TIMEOUT
    while not _gone(subscriber):
        assert time.monotonic() < deadline, "the subscriber outlived the demo"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--rate", "0"], "--rate: must be a number above 0"),
        (["--rate", "-3"], "--rate: must be a number above 0"),
        (["--rate", "fast"], "--rate: 'fast' is not a number"),
        (["--symbols", "0"], "--symbols: must be from 1"),
        (["--duration", "0"], "--duration: must be a number above 0"),
        (["--book-depth", "x"], "--book-depth: 'x' is not a whole number"),
    ],
)
def test_bad_options_give_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *args])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1


def test_unreachable_url_gives_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"

    assert cli.main(["demo", "--url", url]) == 1

    err = capsys.readouterr().err
    assert err.startswith("tickpub: error: cannot use the server given by --url")
    assert "check --url" in err
    assert len(err.splitlines()) == 1


def test_unreachable_redis_url_gives_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_free_port()}/0")

    assert cli.main(["demo"]) == 1

    err = capsys.readouterr().err
    assert "cannot use the server in REDIS_URL" in err
    assert "unset it" in err
    assert len(err.splitlines()) == 1


def test_no_server_binary_gives_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")

    assert cli.main(["demo"]) == 1

    err = capsys.readouterr().err
    assert "REDIS_SERVER_BIN" in err
    assert len(err.splitlines()) == 1


def test_bad_input_in_a_real_process_has_no_traceback() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    for args in (["--rate", "0"], ["--url", url]):
        result = subprocess.run(
            [sys.executable, "-m", "tickpub", "demo", *args],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
        assert result.returncode != 0
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


# The checker, fed by hand.

PREFIX = "tickpub-demo:test"


def _decoded(message: dict[str, Any]) -> Any:
    return tickpub.unpackb(tickpub.packb(message))


def _checker_and_feed(symbols: int = 2, depth: int = 5) -> tuple[Checker, Feed]:
    names = symbol_names(symbols)
    return Checker(PREFIX, names, depth), Feed(names, depth, seed=7)


def _ticks(feed: Feed, count: int) -> list[tuple[str, dict[str, Any]]]:
    messages = []
    for index, ticks in sorted(feed.ticks(count).items()):
        channel = tick_channel(PREFIX, feed.symbols[index])
        messages += [(channel, tick) for tick in ticks]
    return messages


def _end(checker: Checker, feed: Feed) -> bool:
    end = {"ticks": feed.ticks_sent, "books": feed.books_sent}
    return checker.check(end_channel(PREFIX), _decoded(end), 0)


def test_checker_accepts_a_whole_feed() -> None:
    checker, feed = _checker_and_feed()
    messages = _ticks(feed, 20)
    for index, name in enumerate(feed.symbols):
        messages.append((book_channel(PREFIX, name), feed.book(index)))

    for channel, message in messages:
        assert not checker.check(channel, _decoded(message), message["ts"] + 5)

    assert _end(checker, feed)
    assert (checker.received, checker.lost, checker.malformed) == (22, 0, 0)
    assert checker.duplicates == 0
    assert checker.latencies == [5] * 22


def test_checker_counts_gaps_duplicates_and_tail_losses() -> None:
    checker, feed = _checker_and_feed()
    messages = _ticks(feed, 20)  # ten per symbol, SYM00's first
    delivered = messages[:3] + messages[5:10] + [messages[6]] + messages[10:17]

    for channel, message in delivered:
        checker.check(channel, _decoded(message), message["ts"])
    assert (checker.lost, checker.duplicates) == (2, 1)

    assert _end(checker, feed)
    assert checker.lost == 2 + 3
    assert checker.received == len(delivered)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.pop("size"), "keys"),
        (lambda m: m.update(symbol="OTHER"), "symbol 'OTHER'"),
        (lambda m: m.update(price="1.5"), "price"),
        (lambda m: m.update(size=0), "size"),
        (lambda m: m.update(ts=1.5), "ts"),
    ],
)
def test_checker_finds_malformed_ticks(
    change: Callable[[dict[str, Any]], object], problem: str
) -> None:
    checker, feed = _checker_and_feed()
    channel, tick = _ticks(feed, 1)[0]
    change(tick)

    checker.check(channel, _decoded(tick), 0)

    assert checker.malformed == 1
    assert problem in checker.problems[0]
    assert checker.lost == 0


@pytest.mark.parametrize(
    ("book", "problem"),
    [
        (np.zeros((5, 4), dtype=np.float32), "float32"),
        (np.ones((4, 4)), "(4, 4)"),
        (np.full((5, 4), np.nan), "NaN"),
        (np.ones((5, 4)), "bid at or above"),
        ([[1.0, 1.0, 2.0, 1.0]] * 5, "not a numpy array"),
    ],
)
def test_checker_finds_malformed_books(book: object, problem: str) -> None:
    checker, feed = _checker_and_feed()
    message = feed.book(0)
    message["book"] = book

    checker.check(book_channel(PREFIX, feed.symbols[0]), _decoded(message), 0)

    assert checker.malformed == 1
    assert problem in checker.problems[0]


def test_checker_refuses_other_channels_and_bad_end_messages() -> None:
    checker, feed = _checker_and_feed()
    checker.check(f"{PREFIX}:quote:SYM00", {"seq": 0}, 0)
    assert not checker.check(end_channel(PREFIX), _decoded({"ticks": [1]}), 0)

    assert checker.malformed == 2
    assert _end(checker, feed)


def test_histogram_percentiles_are_within_a_percent() -> None:
    latencies = np.random.default_rng(3).lognormal(12, 1.5, 20_000).astype(np.int64)
    histogram = LatencyHistogram()
    histogram.add(latencies[:5000])
    histogram.add(latencies[5000:])

    for q in (50, 99):
        exact = np.percentile(latencies, q, method="higher")
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.01)
    assert histogram.max_ns == latencies.max()
    assert histogram.count == latencies.size
