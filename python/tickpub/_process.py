"""The helper processes tickpub starts: servers, and the subscriber processes of the
benchmarks and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Self

__all__ = ["PythonChild", "stop_process"]


def stop_process(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Ask ``process`` to exit (SIGTERM), kill it if it is still running after
    ``timeout`` seconds, and reap it. Does nothing to a process that has exited.

    Args:
        process: the child process.
        timeout: seconds to wait after SIGTERM before SIGKILL.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PythonChild:
    """``python -m MODULE ARGS`` with its stdout piped to this process and its stderr
    kept in a temporary file, to quote when it fails.

    Stopped by :meth:`stop` or at the end of a ``with`` block; subclasses call
    :meth:`stop` themselves when their constructor fails after this one ran.

    Attributes:
        process: the child process.
    """

    stop_timeout = 5.0
    """Seconds :meth:`stop` waits after SIGTERM before SIGKILL."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        own_process_group: bool = False,
    ) -> None:
        """Start the process.

        Args:
            module: the module to run.
            args: its arguments.
            env: its environment; this process's when None.
            own_process_group: run it in a process group of its own, so that a
                Ctrl-C typed in the terminal does not reach it.
        """
        import fcntl  # POSIX only, as are the benchmarks and the demo that use this

        # Closed by stop(). The child shares the file's offset: opened for
        # appending, its writes never land over what was there when this process
        # seeks back to read.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        flags = fcntl.fcntl(self._stderr.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self._stderr.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            process_group=0 if own_process_group else None,
        )

    @property
    def stdout(self) -> IO[bytes]:
        """The read end of the child's stdout."""
        assert self.process.stdout is not None
        return self.process.stdout

    def stderr_lines(self) -> list[str]:
        """What the child wrote to stderr so far, by line."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip().splitlines()

    def exit_summary(self) -> str:
        """``status N, <its last line of stderr>``, for an error message."""
        self.process.poll()
        lines = self.stderr_lines()
        last = lines[-1] if lines else "no error output"
        return f"status {self.process.returncode}, {last}"

    def stop(self) -> None:
        """Stop the process and close its files. Safe to call twice."""
        stop_process(self.process, self.stop_timeout)
        self.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
