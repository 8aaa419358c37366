"""Charts of comparisons and sweeps, drawn from their result files only.

A comparison folder's charts read ``comparison.json`` and each run's ``latency_cdf.csv``
and ``timeseries.csv``; a sweep's read ``index.csv``. Each chart is a function
``plot_x(ax, data)``; :func:`draw_comparison_charts` and :func:`draw_sweep_charts`
compose them into ``charts/*.png`` inside the folder.

Public: ``read_comparison``, ``latency_bands``, ``utilization_bands``,
``plot_latency_bands``, ``plot_utilization_bands``, ``plot_metric_bars``,
``plot_sweep_metric``, ``draw_comparison_charts``, ``draw_sweep_charts``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.report.charts import read_latency_cdf, read_timeseries
from sim.report.style import PALETTE, apply_style, save_figure

import matplotlib.pyplot as plt  # noqa: E402  (after the style module chose Agg)

__all__ = ["read_comparison", "latency_bands", "utilization_bands", "plot_latency_bands",
           "plot_utilization_bands", "plot_metric_bars", "plot_sweep_metric",
           "draw_comparison_charts", "draw_sweep_charts"]

Band = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, median, low, high


def read_comparison(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "comparison.json").read_text(encoding="utf-8"))


def _ok_runs(folder: Path, report: dict[str, Any], label: str) -> list[Path]:
    return [Path(folder) / r["run"] for r in report["runs"]
            if r["policy"] == label and r["status"] in ("ok", "skipped")]


def latency_bands(folder: Path, report: dict[str, Any]) -> dict[str, Band]:
    """Policy -> (quantiles, median latency, min, max across seeds) of all origins ("*")."""
    bands = {}
    for policy in report["policies"]:
        curves = []
        for run in _ok_runs(folder, report, policy["label"]):
            path = run / "latency_cdf.csv"
            if path.is_file() and "*" in (cdf := read_latency_cdf(path)):
                curves.append(cdf["*"])
        if curves:
            q = curves[0][0]
            lat = np.vstack([np.interp(q, c[0], c[1]) for c in curves])
            bands[policy["label"]] = (q, np.median(lat, axis=0), lat.min(axis=0), lat.max(axis=0))
    return bands


def utilization_bands(folder: Path, report: dict[str, Any]) -> dict[str, Band]:
    """Policy -> (hours, median, min, max across seeds) of GPU-weighted total utilisation."""
    bands = {}
    for policy in report["policies"]:
        series = []
        for run in _ok_runs(folder, report, policy["label"]):
            table = read_timeseries(run / "timeseries.csv")
            cols = [table.columns[r] for r in table.regions]
            total = sum(c["total_gpus"] for c in cols)
            used = sum(c["utilization"] * c["total_gpus"] for c in cols)
            series.append((table.hours(table.regions[0]), np.divide(used, total, where=total > 0,
                                                                    out=np.zeros_like(used))))
        if series:
            n = min(len(s[1]) for s in series)
            util = np.vstack([s[1][:n] for s in series]) * 100
            bands[policy["label"]] = (series[0][0][:n], np.median(util, axis=0), util.min(axis=0), util.max(axis=0))
    return bands


def plot_latency_bands(ax, bands: dict[str, Band]) -> None:
    """Latency CDF per policy: median across seeds, shaded from the lowest to the highest seed."""
    for k, (label, (q, mid, low, high)) in enumerate(bands.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(mid, q * 100, color=color, label=label)
        ax.fill_betweenx(q * 100, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests completed within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title("Latency CDF by policy (line: median seed; band: range across seeds)")
    if bands:
        ax.legend(loc="lower right")


def plot_utilization_bands(ax, bands: dict[str, Band]) -> None:
    """Total utilisation over time per policy, with its range across seeds."""
    for k, (label, (hours, mid, low, high)) in enumerate(bands.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.step(hours, mid, where="post", color=color, label=label)
        ax.fill_between(hours, low, high, step="post", color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("time since start (h)")
    ax.set_ylabel("utilisation (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Utilisation, all regions (line: median seed; band: range across seeds)")
    if bands:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_metric_bars(ax, report: dict[str, Any], metric: str) -> None:
    """One bar per policy: mean over seeds with its 95 % t interval."""
    stats = report["results"][metric]
    labels = list(stats)
    means = np.array([stats[p]["mean"] for p in labels], dtype=float)
    low = np.array([stats[p]["ci"][0] if stats[p]["ci"][0] is not None else stats[p]["mean"] for p in labels], dtype=float)
    high = np.array([stats[p]["ci"][1] if stats[p]["ci"][1] is not None else stats[p]["mean"] for p in labels], dtype=float)
    x = np.arange(len(labels))
    ax.bar(x, means, color=[PALETTE[k % len(PALETTE)] for k in range(len(labels))],
           yerr=np.vstack([means - low, high - means]), capsize=4)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_title(metric, fontsize=9)


def draw_comparison_charts(folder: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """``charts/latency_cdf``, ``charts/utilization`` and ``charts/metrics`` of a comparison."""
    apply_style()
    folder = Path(folder)
    report = read_comparison(folder)
    lat, util = latency_bands(folder, report), utilization_bands(folder, report)
    written = []
    for fmt in formats:
        if lat:
            fig, ax = plt.subplots(figsize=(8, 5))
            plot_latency_bands(ax, lat)
            written.append(_save(fig, folder / "charts" / f"latency_cdf.{fmt}"))
        if util:
            fig, ax = plt.subplots(figsize=(10, 4.5))
            plot_utilization_bands(ax, util)
            written.append(_save(fig, folder / "charts" / f"utilization.{fmt}"))
        if report["metrics"]:
            written.append(_metric_grid(report, folder / "charts" / f"metrics.{fmt}"))
    return written


def _metric_grid(report: dict[str, Any], path: Path) -> Path:
    metrics = report["metrics"]
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        plot_metric_bars(ax, report, metric)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle("Mean over seeds with 95 % confidence interval")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    save_figure(fig, path)
    return path


def read_index(folder: Path) -> list[dict[str, str]]:
    with open(Path(folder) / "index.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plot_sweep_metric(ax, rows: list[dict[str, str]], param: str, metric: str, group: str | None = None) -> None:
    """``metric`` against numeric ``param``: mean over seeds, seeds as dots; a line per ``group`` value."""
    done = [r for r in rows if r["status"] in ("ok", "skipped") and r.get(metric, "") != ""]
    groups = sorted({r[group] for r in done}) if group else [None]
    for k, g in enumerate(groups):
        mine = [r for r in done if group is None or r[group] == g]
        xs = np.array([float(r[param]) for r in mine])
        ys = np.array([float(r[metric]) for r in mine])
        color = PALETTE[k % len(PALETTE)]
        ax.scatter(xs, ys, color=color, s=10, alpha=0.5)
        levels = np.unique(xs)
        ax.plot(levels, [ys[xs == v].mean() for v in levels], color=color, marker="o",
                label=f"{group} = {g}" if group else "mean over seeds")
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    if done:
        ax.legend(fontsize=8)


def draw_sweep_charts(folder: Path, fmt: str = "png") -> list[Path]:
    """``charts/sweep.<fmt>``: each metric against the first numeric grid parameter."""
    rows = read_index(folder)
    if not rows:
        return []
    columns = list(rows[0])
    params = columns[3:columns.index("status")]
    metrics = columns[columns.index("error") + 1:columns.index("path")]
    numeric = [p for p in params if all(_is_number(r[p]) for r in rows)]
    if not numeric or not metrics:
        return []
    apply_style()
    x, others = numeric[0], [p for p in params if p != numeric[0]]
    cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.5 * cols, 3.4 * n_rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        plot_sweep_metric(ax, rows, x, metric, others[0] if others else None)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    return [_save(fig, Path(folder) / "charts" / f"sweep.{fmt}")]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
