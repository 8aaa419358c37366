"""One matplotlib style for every Meridian chart: readable fonts, colour-blind-safe colours.

The palette is Okabe and Ito's (2008), distinguishable under the common colour-vision
deficiencies. Figures are drawn with the Agg backend and saved without timestamps or
software versions (PNG text chunks, SVG ``dc:date``, PDF ``CreationDate``), and SVG ids are
salted with a fixed string, so the same data gives byte-identical PNG, SVG and PDF files.

Each region keeps one colour and line style on every panel (:func:`series_style`, by its
place in the scenario), and an objective (SLO, target) is drawn in a grey dash-dot that no
series uses (``OBJECTIVE``).

Public: ``PALETTE``, ``FORMATS``, ``OBJECTIVE``, ``series_style``, ``apply_style``, ``pyplot``,
``save_figure``, ``save_figures``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # before any pyplot import: report modules import this one first
from cycler import cycler

from sim.fileio import discard

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PALETTE", "FORMATS", "OBJECTIVE", "series_style", "apply_style", "pyplot", "save_figure",
           "save_figures"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
FORMATS = ("png", "svg", "pdf")
LINESTYLES = ("-", "--", "-.", ":")
# An objective line (SLO, plan target): a grey no series is drawn in, dash-dot, thin.
OBJECTIVE: dict[str, Any] = {"color": "#555555", "linestyle": (0, (7, 2, 1.5, 2)), "linewidth": 1.4}


def series_style(k: int) -> dict[str, str]:
    """Colour and line style of the ``k``-th series (a region by its place in the scenario):
    the same on every panel, and no two alike for the first 32 (the style shifts each time
    the eight colours come round again)."""
    return {"color": PALETTE[k % len(PALETTE)],
            "linestyle": LINESTYLES[(k + k // len(PALETTE)) % len(LINESTYLES)]}

# Metadata keys matplotlib would otherwise fill with the date or its own version.
_METADATA = {
    ".png": {"Software": None},
    ".svg": {"Date": None, "Creator": None},
    ".pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, imported on first use (on the Agg backend chosen above)."""
    import matplotlib.pyplot as plt

    return plt


def apply_style() -> None:
    matplotlib.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 130, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 9, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=PALETTE), "svg.hashsalt": "meridian",
        # Titles just above the axes, where their automatic placement puts them when no
        # tick labels are on top; placing them automatically lays out every tick again.
        "axes.titley": 1.0,
    })


def save_figures(fig: Figure, paths: Sequence[Path], tight: bool = True) -> list[Path]:
    """Save ``fig`` to each path (format from the suffix) atomically and deterministically, then close it.
    ``tight``: crop to what is drawn (which lays the figure out twice); False for a figure
    whose margins already hold everything."""
    for path in paths:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        try:
            fig.savefig(tmp, metadata=_METADATA.get(path.suffix, {}), bbox_inches="tight" if tight else None)
            tmp.replace(path)
        except BaseException:
            discard(tmp)
            pyplot().close(fig)
            raise
    pyplot().close(fig)
    return [Path(p) for p in paths]


def save_figure(fig: Figure, path: Path) -> None:
    """Save to one file deterministically and close."""
    save_figures(fig, [path])
