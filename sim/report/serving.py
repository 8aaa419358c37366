"""Serving charts: time to first token and time per output token against load, and how full
the batching replicas ran, from ``timeseries.csv`` only.

Each point of the load chart is one time bucket of one region: the rate of requests that
reached the region's pools in the bucket (requests/s) against the p99 TTFT and the mean
TPOT of the requests that completed in it. The batching chart shows, per region and
bucket, the sequences per iteration of its busy batching replicas and the share of their
KV cache in use.

Public: ``plot_latency_against_load``, ``serving_load_figure``, ``batching_figure``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.report.charts import (
    RunTable,
    align_ylabels,
    clock_axis,
    one_legend,
    plot_region_series,
    shade_events,
    shade_warmup,
)
from sim.report.style import series_style

# isort: split
# pyplot after sim.report.style (imported by sim.report.charts), which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["plot_latency_against_load", "serving_load_figure", "batching_figure"]

_MARKERS = ("o", "s", "^", "D", "v", "P")


def _rate(table: RunTable, region: str) -> np.ndarray:
    cols = table.columns[region]
    return cols["arrivals"] / (cols["t_end_s"] - cols["t_start_s"])


def plot_latency_against_load(ax: Axes, table: RunTable, column: str, ylabel: str, title: str,
                              log: bool = False, legend: bool = True) -> None:
    """One marker per bucket and region (its colour on every chart): requests/s reaching the
    region against ``column``; both axes from zero unless ``log``."""
    tops = [0.0, 0.0]  # largest rate and value drawn: the axes run from zero to a little past them
    for k, region in enumerate(table.regions):
        values = table.columns[region].get(column)
        if values is None or not np.isfinite(values).any():
            continue
        ok = np.isfinite(values) & np.isfinite(_rate(table, region))
        if not ok.any():
            continue
        ax.scatter(_rate(table, region)[ok], values[ok], s=14, alpha=0.7, marker=_MARKERS[k % len(_MARKERS)],
                   color=series_style(k)["color"], label=region)
        tops = [max(tops[0], float(_rate(table, region)[ok].max())), max(tops[1], float(values[ok].max()))]
    ax.set_xlim(0, tops[0] * 1.06 or 1.0)
    if log:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_yscale("log")
        # Plain numbers (1500, not 1.5 x 10^3) at 1, 2 and 5 times each decade.
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    else:
        ax.set_ylim(0, tops[1] * 1.08 or 1.0)
    ax.set_xlabel("requests reaching the region (requests/s, per bucket)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.collections and legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def serving_load_figure(table: RunTable) -> plt.Figure:
    """p99 time to first token and mean time per output token against each region's load."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    plot_latency_against_load(axes[0], table, "ttft_p99_ms", "p99 TTFT (ms)", "Time to first token (p99) vs load",
                              log=True, legend=False)
    plot_latency_against_load(axes[1], table, "tpot_mean_ms", "mean TPOT (ms)",
                              "Time per output token (mean) vs load")
    fig.tight_layout()
    return fig


def batching_figure(table: RunTable, warmup_h: float = 0.0,
                    events: Sequence[tuple[str, float, float]] = ()) -> plt.Figure:
    """Sequences per iteration and KV-cache use of each region's batching replicas over time;
    ``events`` (outages, link failures, partitions) hatched."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    plot_region_series(axes[0], table, "batch_size", "sequences per iteration",
                       "Batch size of busy replicas (mean per bucket)")
    scaled = RunTable(table.regions, {r: {**c, "kv_percent": c.get("kv_fraction", np.full(1, np.nan)) * 100.0}
                                      for r, c in table.columns.items()})
    plot_region_series(axes[1], scaled, "kv_percent", "KV cache in use (%)",
                       "KV-cache use (share of the region's batching replicas' capacity)")
    clock_axis(axes[1], table)
    one_legend(axes, len(table.regions))
    shade_warmup(axes, warmup_h)
    shade_events(axes, events)
    align_ylabels(axes)
    return fig
