"""Starting the demo's subscriber process and reading its reports."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from types import TracebackType
from typing import IO, Any

from tickpub._process import stop_process

__all__ = ["DemoError", "SubscriberProcess"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0


class DemoError(Exception):
    """The demo cannot run or cannot go on; printed as one line by the CLI."""


class SubscriberProcess:
    """``python -m tickpub.demo.subscriber``, subscribed once the constructor returns.

    The process runs in a process group of its own, so a Ctrl-C typed in the
    terminal reaches the demo only, which then ends the run in order. Its reports
    are read by a thread and handed out by :meth:`next_event`; its stderr goes to a
    temporary file, quoted when it fails.

    Attributes:
        process: the subscriber process.
    """

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
        # Closed by stop(), which every path out of this constructor calls on error.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        # The process shares the file's offset: appending, its writes never land
        # over what was there when this process seeks back to read.
        flags = fcntl.fcntl(self._stderr.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self._stderr.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tickpub.demo.subscriber"),
                *("--prefix", prefix, "--symbols", str(symbols)),
                *("--depth", str(depth), "--parent", str(os.getpid())),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "REDIS_URL": url},
            process_group=0,
        )
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), daemon=True
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
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no error output"
        return f"status {self.process.returncode}, {last}"

    def warnings(self) -> list[str]:
        """The lines the subscriber wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").splitlines()

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
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> SubscriberProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
