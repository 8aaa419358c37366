"""One matplotlib style for every Meridian chart: readable fonts, colour-blind-safe colours.

The palette is Okabe and Ito's (2008), distinguishable under the common colour-vision
deficiencies. Figures are drawn with the Agg backend and saved without timestamps or
software versions (PNG text chunks, SVG ``dc:date``, PDF ``CreationDate``), and SVG ids are
salted with a fixed string, so the same data gives byte-identical PNG, SVG and PDF files.

The colours, the style of each region and of an objective line live in
:mod:`sim.report.palette` (no matplotlib there) and are re-exported here.

Public: ``PALETTE``, ``FORMATS``, ``OBJECTIVE``, ``series_style``, ``apply_style``, ``pyplot``,
``save_figure``, ``save_figures``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # before any pyplot import: report modules import this one first
from cycler import cycler

from sim.fileio import discard
from sim.report.palette import OBJECTIVE, PALETTE, series_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PALETTE", "FORMATS", "OBJECTIVE", "series_style", "apply_style", "pyplot", "save_figure",
           "save_figures"]

FORMATS = ("png", "svg", "pdf")

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
