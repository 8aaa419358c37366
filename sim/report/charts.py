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

__all__ = ["RunTable", "read_timeseries", "read_latency_cdf", "plot_load", "plot_active_gpus",
           "plot_utilization", "plot_latency_cdf", "plot_region_series", "draw_run_charts"]

_STYLES = ("-", "--", "-.", ":")


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
        ax.step(hours, load, where="post", label="load L(t) driving the allocation")
        for column, color, label in (("forecast_load", "#009E73", "forecast (formula)"),
                                     ("observed_load", "#CC79A7", "observed (measured arrivals)")):
            values = table.columns[first].get(column)
            if values is not None and not np.all(np.isnan(values)):
                ax.step(hours, values, where="post", color=color, linestyle=":", linewidth=2, label=label)
        right = ax.twinx()
        right.step(hours, table.columns[first]["resources"], where="post", color="#D55E00",
                   linestyle="--", label="resources R(t)")
        right.set_ylabel("R(t)")
        right.grid(False)
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], loc="upper left", bbox_to_anchor=(1.08, 1.0))
    ax.set_ylabel("load (units)")
    ax.set_title("Load and allocation model")


def plot_active_gpus(ax, table: RunTable) -> None:
    for k, region in enumerate(table.regions):
        cols = table.columns[region]
        share = np.nanmean(cols["share"]) * 100
        ax.step(table.hours(region), cols["active_gpus"], where="post", linestyle=_STYLES[k % 4],
                label=f"{region} (share {share:.1f} %)")
    ax.set_ylabel("active GPUs")
    ax.set_title("Active capacity by region")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_utilization(ax, table: RunTable) -> None:
    for k, region in enumerate(table.regions):
        ax.step(table.hours(region), table.columns[region]["utilization"] * 100, where="post",
                linestyle=_STYLES[k % 4], label=region)
    ax.set_ylabel("utilisation (%)")
    ax.set_xlabel("time since start (h)")
    ax.set_ylim(0, 105)
    ax.set_title("Utilisation by region (busy / installed GPUs)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def read_latency_cdf(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``origin -> (quantiles, latency_ms)`` from ``latency_cdf.csv``."""
    data: dict[str, tuple[list[float], list[float]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            q, v = data.setdefault(row["origin"], ([], []))
            q.append(float(row["quantile"]))
            v.append(float(row["latency_ms"]))
    return {k: (np.asarray(q), np.asarray(v)) for k, (q, v) in data.items()}


def plot_latency_cdf(ax, cdf: dict[str, tuple[np.ndarray, np.ndarray]], slo_ms: float | None = None) -> None:
    """Latency CDF per origin region (log latency axis), all requests in black."""
    for k, (origin, (q, v)) in enumerate(sorted(cdf.items(), key=lambda kv: kv[0] == "*")):
        label = "all origins" if origin == "*" else origin
        style = {"color": "#000000", "linewidth": 2.2} if origin == "*" else {"linestyle": _STYLES[k % 4]}
        ax.plot(v, q * 100, label=label, **style)
    if slo_ms:
        ax.axvline(slo_ms, color="#D55E00", linestyle=":", label=f"SLO {slo_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests completed within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title("Latency CDF by origin region (after warm-up)")
    ax.legend(loc="lower right")


def plot_region_series(ax, table: RunTable, column: str, ylabel: str, title: str) -> None:
    for k, region in enumerate(table.regions):
        values = table.columns[region].get(column)
        if values is None or np.all(np.isnan(values)) or not np.nansum(values):
            continue
        ax.step(table.hours(region), values, where="post", linestyle=_STYLES[k % 4], label=region)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


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
        _shade_warmup(axes, run_dir)
        fig.align_ylabels(axes)
        path = Path(run_dir) / "charts" / f"overview.{fmt}"
        save_figure(fig, path)
        written.append(path)
        written += _inference_charts(run_dir, table, fmt)
    return written


def _warmup_h(run_dir: Path) -> float:
    summary = Path(run_dir) / "summary.json"
    if not summary.exists():
        return 0.0
    import json

    return float(json.loads(summary.read_text()).get("warmup_s", 0.0)) / 3600.0


def _shade_warmup(axes, run_dir: Path) -> None:
    warmup = _warmup_h(run_dir)
    if warmup > 0:
        for ax in axes:
            ax.axvspan(0, warmup, color="#999999", alpha=0.15, linewidth=0)
        axes[0].text(warmup / 2, 0.97, "warm-up", transform=axes[0].get_xaxis_transform(),
                     ha="center", va="top", fontsize=8, color="#555555")


def _inference_charts(run_dir: Path, table: RunTable, fmt: str) -> list[Path]:
    cdf_path = Path(run_dir) / "latency_cdf.csv"
    if not cdf_path.exists():
        return []
    fig, ax = plt.subplots(figsize=(8, 5))
    plot_latency_cdf(ax, read_latency_cdf(cdf_path))
    cdf_out = Path(run_dir) / "charts" / f"latency_cdf.{fmt}"
    save_figure(fig, cdf_out)
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    plot_region_series(axes[0], table, "arrivals", "requests / bucket", "Requests reaching each region")
    plot_region_series(axes[1], table, "queue_len", "queued (mean)", "Queue length")
    plot_region_series(axes[2], table, "latency_p99_ms", "p99 latency (ms)", "p99 latency of requests completing")
    axes[2].set_xlabel("time since start (h)")
    _shade_warmup(axes, run_dir)
    fig.align_ylabels(axes)
    series_out = Path(run_dir) / "charts" / f"inference.{fmt}"
    save_figure(fig, series_out)
    return [cdf_out, series_out]
