"""Charts of a run, drawn from its result files only (never from a live engine).

Each chart is a function ``plot_x(ax, table, **style)`` over a :class:`RunTable` read from
``timeseries.csv``; :func:`draw_run_charts` composes them into ``charts/overview.png``.

Public: ``RunTable``, ``read_timeseries``, ``plot_load``, ``plot_active_gpus``,
``plot_utilization``, ``draw_run_charts``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.report.style import apply_style, save_figure

import matplotlib.pyplot as plt  # noqa: E402  (after the style module chose Agg)

__all__ = ["RunTable", "read_timeseries", "plot_load", "plot_active_gpus", "plot_utilization",
           "draw_run_charts"]


@dataclass(frozen=True)
class RunTable:
    """Per-region columns of ``timeseries.csv``: ``columns[region][name] -> array``."""

    regions: tuple[str, ...]
    columns: dict[str, dict[str, np.ndarray]]

    def hours(self, region: str) -> np.ndarray:
        return self.columns[region]["t_start_s"] / 3600.0


def read_timeseries(path: Path) -> RunTable:
    regions: list[str] = []
    raw: dict[str, dict[str, list[float]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            region = row.pop("region")
            if region not in raw:
                regions.append(region)
                raw[region] = {k: [] for k in row}
            for key, value in row.items():
                raw[region][key].append(float(value) if value != "" else np.nan)
    columns = {r: {k: np.asarray(v) for k, v in cols.items()} for r, cols in raw.items()}
    return RunTable(tuple(regions), columns)


def plot_load(ax, table: RunTable) -> None:
    """L(t) on the left axis, R(t) on the right (both identical across regions)."""
    first = table.regions[0]
    hours = table.hours(first)
    load = table.columns[first]["load"]
    if np.all(np.isnan(load)):
        ax.text(0.5, 0.5, "no scheduler: all capacity active", ha="center", transform=ax.transAxes)
    else:
        ax.step(hours, load, where="post", label="load L(t)")
        right = ax.twinx()
        right.step(hours, table.columns[first]["resources"], where="post", color="#D55E00",
                   linestyle="--", label="resources R(t)")
        right.set_ylabel("R(t)")
        right.grid(False)
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], loc="upper left")
    ax.set_ylabel("load (units)")
    ax.set_title("Load and allocation model")


def plot_active_gpus(ax, table: RunTable) -> None:
    for region in table.regions:
        cols = table.columns[region]
        share = np.nanmean(cols["share"]) * 100
        ax.step(table.hours(region), cols["active_gpus"], where="post",
                label=f"{region} (share {share:.1f} %)")
    ax.set_ylabel("active GPUs")
    ax.set_title("Active capacity by region")
    ax.legend(loc="upper left", ncols=2)


def plot_utilization(ax, table: RunTable) -> None:
    for region in table.regions:
        ax.step(table.hours(region), table.columns[region]["utilization"] * 100, where="post", label=region)
    ax.set_ylabel("utilisation (%)")
    ax.set_xlabel("time since start (h)")
    ax.set_ylim(bottom=0)
    ax.set_title("Utilisation by region (busy / installed GPUs)")
    ax.legend(loc="upper left", ncols=2)


def draw_run_charts(run_dir: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw ``charts/overview.<fmt>`` from ``run_dir/timeseries.csv``."""
    apply_style()
    table = read_timeseries(Path(run_dir) / "timeseries.csv")
    written = []
    for fmt in formats:
        fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
        plot_load(axes[0], table)
        plot_active_gpus(axes[1], table)
        plot_utilization(axes[2], table)
        fig.align_ylabels(axes)
        path = Path(run_dir) / "charts" / f"overview.{fmt}"
        save_figure(fig, path)
        written.append(path)
    return written
