"""Starting the demo's subscriber process and reading its reports."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from typing import IO, Any

from tickpub._process import PythonChild, stop_process

__all__ = ["DemoError", "SubscriberProcess"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0


class DemoError(Exception):
    """The demo cannot run or cannot go on; printed as one line by the CLI."""


class SubscriberProcess(PythonChild):
    """``python -m tickpub.demo.subscriber``, subscribed once the constructor returns.

    The process runs in a process group of its own, so a Ctrl-C typed in the
    terminal reaches the demo only, which then ends the run in order. Its reports
    are read by a thread and handed out by :meth:`next_event`; its stderr goes to a
    temporary file, quoted when it fails.

    """

    stop_timeout = _STOP_TIMEOUT

    def __init__(self, url: str, prefix: str, symbols: int, depth: int) -> None:
        """Start the process and wait until it is subscribed.

        Args:
            url: the server's URL, passed in the environment.
            prefix: the run's channel prefix.
            symbols: how many symbols the feed has.
            depth: levels per side in each book.

        Raises:
            DemoError: the process failed, or was not subscribed within 30 s.
        """
        super().__init__(
            "tickpub.demo.subscriber",
            [
                *("--prefix", prefix, "--symbols", str(symbols)),
                *("--depth", str(depth), "--parent", str(os.getpid())),
            ],
            env={**os.environ, "REDIS_URL": url},
            own_process_group=True,
        )
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, args=(self.stdout,), daemon=True
        )
        self._reader.start()

        try:
            event = self.next_event(_START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        if event is None or event.get("event") != "ready":
            self.stop()
            raise DemoError(
                f"the subscriber process was not subscribed within "
                f"{_START_TIMEOUT:.0f} s; is the server overloaded?"
            )

    @property
    def pid(self) -> int:
        """The process id of the subscriber."""
        return self.process.pid

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "error", "message": line.decode(errors="replace")}
            self._events.put(event)
        self._events.put(None)

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next report of the subscriber.

        Args:
            timeout: seconds to wait; 0 to take only one that already came.

        Returns:
            The report, or None when none came in time.

        Raises:
            DemoError: the subscriber reported an error, or exited.
        """
        try:
            if timeout > 0:
                event = self._events.get(timeout=timeout)
            else:
                event = self._events.get_nowait()
        except queue.Empty:
            return None
        if event is None:
            self._events.put(None)
            raise DemoError(f"the subscriber process exited: {self._failure()}")
        if event.get("event") == "error":
            raise DemoError(f"the subscriber process failed: {event.get('message')}")
        return event

    def _failure(self) -> str:
        try:
            self.process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return "its output closed but it is still running"
        return self.exit_summary()

    def warnings(self) -> list[str]:
        """The lines the subscriber wrote to stderr so far."""
        return self.stderr_lines()

    def wait(self, timeout: float) -> bool:
        """Wait for the process to exit on its own.

        Args:
            timeout: seconds to wait.

        Returns:
            True when it exited.
        """
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop the process (terminate, then kill) and close its files; idempotent."""
        stop_process(self.process, _STOP_TIMEOUT)
        self._reader.join(timeout=_STOP_TIMEOUT)
        super().stop()
