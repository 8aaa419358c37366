"""Energy, carbon and electricity cost by region, from the ``energy`` section of
``summary.json`` (computed by the run from the TDP/idle/PUE power model, ``docs/metrics.md``).

Public: ``ENERGY_PANELS``, ``plot_energy_by_region``, ``energy_figure``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sim.report.style import PALETTE

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["ENERGY_PANELS", "plot_energy_by_region", "energy_figure"]

# summary.json key, axis label, colour
ENERGY_PANELS = (("kwh", "energy (kWh)", PALETTE[0]), ("co2_kg", "carbon (kg CO2e)", PALETTE[3]),
                 ("cost_usd", "electricity cost (USD)", PALETTE[1]))


def plot_energy_by_region(ax: Axes, energy: dict[str, Any], key: str, label: str, color: str) -> None:
    """One bar per region of ``energy.by_region[*][key]``; the title gives the total."""
    regions = list(energy["by_region"])
    values = np.array([energy["by_region"][r].get(key) or 0.0 for r in regions], dtype=float)
    ax.bar(np.arange(len(regions)), values, color=color)
    ax.set_xticks(np.arange(len(regions)), regions, rotation=20, ha="right")
    ax.set_ylabel(label)
    total = energy.get(key)
    unit = label[label.index("(") + 1:label.rindex(")")] if "(" in label else ""
    name = label.split(" (")[0]
    ax.set_title(f"{name}: total {total:,.4g} {unit}".rstrip() if isinstance(total, (int, float)) else name,
                 fontsize=9)


def energy_figure(energy: dict[str, Any]) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (key, label, color) in zip(axes, ENERGY_PANELS, strict=True):
        plot_energy_by_region(ax, energy, key, label, color)
    fig.suptitle("Energy, carbon and electricity cost by region (after the warm-up, PUE included)")
    fig.tight_layout()
    return fig
