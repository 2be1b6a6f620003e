"""A progress bar on stderr, in plain text.

On a terminal the bar is redrawn in place with a carriage return; elsewhere (a log
file, a pipe) each step gets a line of its own.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_BAR_WIDTH = 20


class Progress:
    """Counts the steps of a run and shows the current one."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        """Prepare a bar of ``total`` steps; nothing is drawn yet.

        Args:
            total: how many steps the run has.
            stream: where to draw; ``sys.stderr`` when None.
        """
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._drawn = False

    def step(self, index: int, label: str) -> None:
        """Show that step ``index`` (from 0) is starting.

        Args:
            index: the step's position.
            label: what the step measures.
        """
        done = index * _BAR_WIDTH // max(1, self.total)
        bar = "#" * done + "." * (_BAR_WIDTH - done)
        elapsed = time.monotonic() - self.start
        line = f"[{bar}] {index + 1}/{self.total} {elapsed:5.1f}s {label}"
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the bar from a terminal, so that what follows starts a clean line."""
        if self.tty and self._drawn:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()
        self._drawn = False
