"""Helpers that make a real server misbehave: pause it, or keep it paused at most."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tickpub.server import RedisServer


def process_state(pid: int) -> str:
    """The state letter of ``/proc/PID/stat`` (``T`` when stopped), or ``?``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    # The command name in parentheses may hold spaces; the state follows it.
    return stat.rsplit(")", 1)[1].split()[0]


@contextlib.contextmanager
def paused(server: RedisServer) -> Iterator[None]:
    """SIGSTOP the server for the block and SIGCONT it afterwards, also on errors.

    The block starts only once the kernel reports the process stopped, so no command
    sent in the block is served before the block ends. Where ``/proc`` is missing
    the state cannot be read, and a short sleep stands in for the check.

    Args:
        server: a private server (it must not be shared with other tests).

    Yields:
        Nothing; the server is stopped while the block runs.

    Raises:
        TimeoutError: the process did not stop within 10 seconds.
    """
    os.kill(server.pid, signal.SIGSTOP)
    try:
        if not Path("/proc").is_dir():
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while Path("/proc").is_dir() and process_state(server.pid) not in "tT":
            if time.monotonic() > deadline:
                raise TimeoutError(f"server {server.pid} did not stop")
            time.sleep(0.005)
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


@contextlib.contextmanager
def resumed_by_watchdog(server: RedisServer, after: float) -> Iterator[None]:
    """Run a separate process that sends the server SIGCONT after ``after`` seconds.

    The watchdog frees a test whose own thread cannot run (for instance because
    another thread holds the GIL while it waits on the paused server). It has a
    process group of its own, which is killed when the block ends.

    Args:
        server: the server to resume.
        after: seconds before the watchdog sends SIGCONT.

    Yields:
        Nothing; the watchdog runs while the block runs.
    """
    watchdog = subprocess.Popen(
        ["sh", "-c", f"sleep {after}; kill -CONT {server.pid}"],
        stdin=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watchdog.pid, signal.SIGKILL)
        watchdog.wait()
