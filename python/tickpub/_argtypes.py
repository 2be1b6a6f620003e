"""Argument types shared by the ``tickpub`` subcommands: numbers checked on parsing,
so that a bad value is a one-line usage error naming the option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_number", "whole_number"]


def positive_number(text: str) -> float:
    """A finite number above zero.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not such a number.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """The parser of a whole number from ``low`` to ``high`` (no upper limit: None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number"
            ) from None
        if value < low or (high is not None and value > high):
            limits = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {limits}, not {text}")
        return value

    return parse
