"""Stopping the helper processes tickpub starts: servers and subscriber processes."""

from __future__ import annotations

import subprocess

__all__ = ["stop_process"]


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
