"""The bar chart of ``tickpub bench --plot``: one bar per ratio against a baseline.

matplotlib is optional (``pip install 'tickpub[plot]'``); :func:`plotting_available`
tells the command whether to refuse ``--plot`` before a run starts.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tickpub.bench.runner import Measurement, Results

__all__ = ["INSTALL_HINT", "plotting_available", "write_plot"]

INSTALL_HINT = "pip install 'tickpub[plot]'"

_KIND_COLOURS = {"encode": "tab:blue", "publish": "tab:orange", "batch": "tab:green"}


def plotting_available() -> bool:
    """True when matplotlib can be imported.

    Returns:
        Whether :func:`write_plot` can run.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _label(m: Measurement) -> str:
    subscriber = "" if m.subscriber == "-" else f", {m.subscriber}"
    return f"{m.payload}  {m.id}{subscriber}"


def write_plot(path: Path, results: Results, title: str) -> None:
    """Draw the ratios of every path that is not a baseline as horizontal bars.

    Args:
        path: the PNG file to write.
        results: the run's results; failed measurements and baselines get no bar.
        title: the chart's title (the machine, say).

    Raises:
        ImportError: matplotlib is not installed.
        OSError: the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        (m, m.ratio)
        for m in results.measurements
        if not m.baseline and m.ratio is not None
    ]
    labels = [_label(m) for m, _ in bars]
    ratios = [ratio for _, ratio in bars]
    colours = [_KIND_COLOURS.get(m.kind, "tab:gray") for m, _ in bars]

    figure, axes = plt.subplots(figsize=(9, 1.5 + 0.28 * len(bars)))
    positions = list(range(len(bars)))
    axes.barh(positions, ratios, color=colours)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("baseline time / path time (log scale; 1 = as fast as baseline)")
    axes.set_title(textwrap.fill(title, 110), fontsize=8)
    for position, ratio in zip(positions, ratios, strict=True):
        axes.annotate(
            f"{ratio:.2f}x",
            (ratio, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
