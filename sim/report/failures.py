"""The failure timeline, drawn from a run's ``failures.csv``: which capacity was down when.

- top: replicas down per pool over time (node failures, a step function of the failure and
  repair times);
- bottom: one lane per region outage, link failure or partition, a bar for each period.

Public: ``down_series``, ``failures_figure``.
"""
from __future__ import annotations

import numpy as np

from sim.report.charts import clock_axis, event_label
from sim.report.style import PALETTE

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

__all__ = ["down_series", "failures_figure"]

Rows = list[dict[str, str]]


def down_series(rows: Rows, end_s: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per pool (``region/pool``): step times (h) and replicas down from each time on."""
    series = {}
    nodes = [r for r in rows if r["kind"] == "node" and r["hit"] != "down"]
    for key in sorted({f"{r['region']}/{r['pool']}" for r in nodes}):
        events = []
        for r in nodes:
            if f"{r['region']}/{r['pool']}" == key:
                events.append((float(r["start_s"]), 1))
                if float(r["end_s"]) < end_s:
                    events.append((float(r["end_s"]), -1))
        events.sort()
        times = np.array([0.0] + [t for t, _ in events] + [end_s]) / 3600.0
        counts = np.concatenate(([0], np.cumsum([d for _, d in events]), [0]))
        counts[-1] = counts[-2]
        series[key] = (times, counts)
    return series


def failures_figure(rows: Rows, end_s: float) -> plt.Figure:
    series = down_series(rows, end_s)
    spans = [r for r in rows if r["kind"] != "node"]
    lanes = list(dict.fromkeys(event_label(r["kind"], r["region"], ": ") for r in spans))
    # Without node failures and with outages to show, the replicas panel would be empty: left out.
    nodes_panel = bool(series) or not lanes
    heights = ([3.0] if nodes_panel else []) + ([max(1.2, 0.45 * len(lanes) + 0.6)] if lanes else [])
    fig, axes = plt.subplots(len(heights), 1, figsize=(10, sum(heights) + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    ax = axes[0][0]
    if nodes_panel:
        _plot_down(ax, series)
    else:
        ax.set_title("Outages, link failures and partitions over time")
    ax.set_xlim(0, end_s / 3600.0)
    if lanes:
        _plot_lanes(axes[-1][0], lanes, spans, end_s)
    else:
        clock_axis(ax, span_h=end_s / 3600.0)
    fig.tight_layout()
    return fig


def _plot_down(ax: Axes, series: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Replicas down per pool over time, as steps."""
    for k, (key, (times, counts)) in enumerate(series.items()):
        ax.step(times, counts, where="post", color=PALETTE[k % len(PALETTE)], label=key)
    if series:
        ax.legend(loc="upper right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no node failures", transform=ax.transAxes, ha="center", va="center")
    ax.set_ylabel("replicas down")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Failures over time")


def _plot_lanes(ax: Axes, lanes: list[str], spans: Rows, end_s: float) -> None:
    """A lane per outage, link failure or partition, with a bar for each time it was down."""
    colours = {"region": PALETTE[3], "link": PALETTE[1], "partition": PALETTE[4]}
    for i, lane in enumerate(lanes):
        for r in spans:
            if event_label(r["kind"], r["region"], ": ") == lane:
                start = float(r["start_s"]) / 3600.0
                stop = min(float(r["end_s"]), end_s) / 3600.0
                ax.broken_barh([(start, stop - start)], (i - 0.35, 0.7), color=colours.get(r["kind"], PALETTE[0]))
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    clock_axis(ax, span_h=end_s / 3600.0)
