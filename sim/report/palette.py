"""Colours and line styles of every Meridian chart, without importing matplotlib.

The palette is Okabe and Ito's (2008), distinguishable under the common colour-vision
deficiencies. Each region keeps one colour and line style on every panel
(:func:`series_style`, by its place in the scenario), and an objective (SLO, plan target) is
drawn in a grey dash-dot that no series uses (``OBJECTIVE``).

Public: ``PALETTE``, ``LINESTYLES``, ``OBJECTIVE``, ``series_style``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["PALETTE", "LINESTYLES", "OBJECTIVE", "series_style"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LINESTYLES = ("-", "--", "-.", ":")
# An objective line (SLO, plan target): a grey no series is drawn in, dash-dot, thin.
OBJECTIVE: dict[str, Any] = {"color": "#555555", "linestyle": (0, (7, 2, 1.5, 2)), "linewidth": 1.4}


def series_style(k: int) -> dict[str, str]:
    """Colour and line style of the ``k``-th series (a region by its place in the scenario):
    the same on every panel, and no two alike for the first 32 (the style shifts each time
    the eight colours come round again)."""
    return {"color": PALETTE[k % len(PALETTE)],
            "linestyle": LINESTYLES[(k + k // len(PALETTE)) % len(LINESTYLES)]}
