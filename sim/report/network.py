"""Charts of data movement, drawn from a run's ``transfers.csv`` and ``border_crossings.csv``.

- two region x region matrices (source rows, destination columns) of the bytes dataset
  copies moved and of their egress cost;
- the border-crossing audit: bytes that crossed a jurisdiction border, per dataset and
  jurisdiction pair (one audit row per hop, as ``border_crossings.csv`` records them).

Public: ``transfer_matrix``, ``plot_matrix``, ``plot_border_crossings``, ``transfers_figure``.
"""
from __future__ import annotations

import numpy as np

from sim.report.style import PALETTE

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["transfer_matrix", "plot_matrix", "plot_border_crossings", "transfers_figure"]

Rows = list[dict[str, str]]


def transfer_matrix(rows: Rows, column: str) -> tuple[list[str], np.ndarray]:
    """Region names (sorted) and the ``[src, dst]`` sums of ``column``."""
    names = sorted({r["src"] for r in rows} | {r["dst"] for r in rows})
    matrix = np.zeros((len(names), len(names)))
    for row in rows:
        matrix[names.index(row["src"]), names.index(row["dst"])] += float(row[column] or 0.0)
    return names, matrix


def plot_matrix(ax: Axes, names: list[str], matrix: np.ndarray, title: str, unit: str) -> None:
    """A matrix as a heat map with each non-zero cell's value written in it."""
    top = float(matrix.max()) if matrix.size and matrix.max() > 0 else 1.0
    image = ax.imshow(np.where(matrix > 0, matrix, np.nan), cmap="viridis", vmin=0.0, vmax=top)
    for (i, j), value in np.ndenumerate(matrix):
        if value > 0:
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=8,
                    color="#000000" if value > 0.6 * top else "#FFFFFF")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("destination")
    ax.set_ylabel("source")
    ax.grid(False)
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label=unit, shrink=0.8)


def plot_border_crossings(ax: Axes, rows: Rows) -> None:
    """Horizontal bars: TB that crossed each border, per dataset and direction."""
    totals: dict[str, float] = {}
    for row in rows:
        key = f"{row['dataset']}: {row['src_jurisdiction']} -> {row['dst_jurisdiction']}"
        totals[key] = totals.get(key, 0.0) + float(row["bytes"] or 0.0) / 1e12
    labels = sorted(totals)
    ax.barh(range(len(labels)), [totals[k] for k in labels], height=0.5, color=PALETTE[3])
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("TB crossing the border")
    ax.set_title("Border crossings (audit, hop by hop)")


def transfers_figure(transfers: Rows, crossings: Rows) -> plt.Figure:
    bars = len({(r["dataset"], r["src_jurisdiction"], r["dst_jurisdiction"]) for r in crossings})
    lower = 1.4 + 0.35 * bars if crossings else 0.0
    fig = plt.figure(figsize=(11, 4.8 + lower))
    grid = fig.add_gridspec(2 if crossings else 1, 2, height_ratios=(4.8, lower) if crossings else None)
    names, tb = transfer_matrix(transfers, "bytes")
    plot_matrix(fig.add_subplot(grid[0, 0]), names, tb / 1e12, "Data copied between regions", "TB")
    names, usd = transfer_matrix(transfers, "cost_usd")
    plot_matrix(fig.add_subplot(grid[0, 1]), names, usd, "Egress cost of the copies", "USD")
    if crossings:
        plot_border_crossings(fig.add_subplot(grid[1, :]), crossings)
    fig.tight_layout()
    return fig
