"""One matplotlib style for every Meridian chart: readable fonts, colour-blind-safe colours.

The palette is Okabe and Ito's (2008), distinguishable under the common colour-vision
deficiencies. Figures are drawn with the Agg backend and saved without timestamps so that
the same data gives the same file.

Public: ``PALETTE``, ``apply_style``, ``save_figure``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

__all__ = ["PALETTE", "apply_style", "save_figure"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def apply_style() -> None:
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 130, "font.size": 10, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 9, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=PALETTE), "svg.hashsalt": "meridian",
    })


def save_figure(fig: "plt.Figure", path: Path) -> None:
    """Save deterministically (no software/date metadata) and close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Software": None} if path.suffix == ".png" else {"Date": None, "Creator": None} if path.suffix == ".svg" else {"CreationDate": None, "Creator": None, "Producer": None}
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, metadata=metadata, bbox_inches="tight")
    tmp.replace(path)
    plt.close(fig)
