"""Charts of a run, drawn from its result files only (never from a live engine).

Each chart is a function ``plot_x(ax, table, **style)`` over a :class:`RunTable` read from
``timeseries.csv`` (or over ``latency_cdf.csv`` and ``requests.npz``); the ``*_figure``
functions compose them into the figures a run folder keeps, and :func:`draw_run_charts`
(called after every run) saves ``charts/overview``, ``charts/latency_cdf`` and
``charts/inference``.

Public: ``RunTable``, ``read_timeseries``, ``read_latency_cdf``, ``plot_load``,
``plot_active_gpus``, ``plot_utilization``, ``plot_latency_cdf``, ``plot_region_series``,
``plot_utilization_heatmap``, ``slo_series``, ``plot_slo_series``, ``overview_figure``,
``latency_cdf_figure``, ``inference_figure``, ``align_ylabels``, ``fit_margins``, ``warmup_hours``,
``draw_run_charts``.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.metrics.inference import meets_objectives, objective_limits
from sim.records import RequestStatus

if TYPE_CHECKING:  # matplotlib itself loads when a figure is made (_subplots)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RunTable", "read_timeseries", "read_latency_cdf", "plot_load", "plot_active_gpus",
           "plot_utilization", "plot_latency_cdf", "plot_region_series", "plot_utilization_heatmap",
           "slo_series", "plot_slo_series", "overview_figure", "latency_cdf_figure", "inference_figure",
           "align_ylabels", "fit_margins", "warmup_hours", "draw_run_charts"]

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


def plot_load(ax: Axes, table: RunTable) -> None:
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
        ax.legend(lines, [str(line.get_label()) for line in lines], loc="upper left", bbox_to_anchor=(1.08, 1.0))
    ax.set_ylabel("load (units)")
    ax.set_title("Load and allocation model")


def plot_active_gpus(ax: Axes, table: RunTable) -> None:
    for k, region in enumerate(table.regions):
        cols = table.columns[region]
        share = np.nanmean(cols["share"]) * 100
        ax.step(table.hours(region), cols["active_gpus"], where="post", linestyle=_STYLES[k % 4],
                label=f"{region} (share {share:.1f} %)")
    ax.set_ylabel("active GPUs")
    ax.set_title("Active capacity by region")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_utilization(ax: Axes, table: RunTable) -> None:
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


def plot_latency_cdf(ax: Axes, cdf: dict[str, tuple[np.ndarray, np.ndarray]], slo_ms: float | None = None) -> None:
    """Latency CDF per origin region (log latency axis), all requests in black."""
    for k, (origin, (q, v)) in enumerate(sorted(cdf.items(), key=lambda kv: kv[0] == "*")):
        label = "all origins" if origin == "*" else origin
        style = {"color": "#000000", "linewidth": 2.2} if origin == "*" else {"linestyle": _STYLES[k % 4]}
        ax.plot(v, q * 100, label=label, **style)
    if slo_ms:
        ax.axvline(slo_ms, color="#D55E00", linestyle=":", label=f"SLO {slo_ms:g} ms")
    ax.set_xscale("log")
    _plain_log_labels(ax)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests completed within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title("Latency CDF by origin region (after warm-up)")
    ax.legend(loc="lower right")


def _plain_log_labels(ax: Axes) -> None:
    """Decades as plain numbers (1000, not mathtext's 10^3, which costs a parser per label),
    minor ticks at 2 and 5 times each decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # fewer minor ticks: each is several artists
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_region_series(ax: Axes, table: RunTable, column: str, ylabel: str, title: str) -> None:
    for k, region in enumerate(table.regions):
        values = table.columns[region].get(column)
        if values is None or np.all(np.isnan(values)) or not np.nansum(values):
            continue
        ax.step(table.hours(region), values, where="post", linestyle=_STYLES[k % 4], label=region)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_utilization_heatmap(ax: Axes, table: RunTable) -> None:
    """Utilisation (%) of each region (rows) in each bucket (columns); regions without GPUs are left out."""
    regions = [r for r in table.regions if np.nansum(table.columns[r]["total_gpus"]) > 0]
    first = table.columns[regions[0]]
    edges = np.append(first["t_start_s"], first["t_end_s"][-1:]) / 3600.0
    n = len(first["t_start_s"])
    grid = np.vstack([table.columns[r]["utilization"][:n] * 100 for r in regions])
    mesh = ax.pcolormesh(edges, np.arange(len(regions) + 1), grid, cmap="viridis", vmin=0, vmax=100)
    ax.set_yticks(np.arange(len(regions)) + 0.5, regions)
    ax.invert_yaxis()
    ax.grid(False)
    ax.set_xlabel("time since start (h)")
    ax.set_title("Utilisation by region and time (busy / installed GPUs)")
    ax.figure.colorbar(mesh, ax=ax, label="utilisation (%)", pad=0.01)


def slo_series(requests: dict[str, np.ndarray], edges_s: np.ndarray,
               objectives: list[tuple[float | None, float | None, float | None]],
               origins: list[str]) -> dict[str, np.ndarray]:
    """SLO attainment per bucket of arrival time, for all origins (``"*"``) and each origin.

    Same rule as ``summary.json`` (:func:`~sim.metrics.inference.meets_objectives`): completed
    within every objective of its workload (TTFT, TPOT, end-to-end) over completed + dropped,
    for workloads with one; in-flight requests are left out; a bucket with none is NaN.
    """
    limits = objective_limits(objectives)
    has = ~np.isnan(limits).all(axis=1)
    workload = requests["workload"]
    status = requests["status"]
    done = status == RequestStatus.COMPLETED
    # Every outcome other than completed, pending or in flight is a drop (rejected, timed out, failed...).
    dropped = ~np.isin(status, (RequestStatus.PENDING, RequestStatus.COMPLETED, RequestStatus.IN_FLIGHT))
    retry_s = requests.get("retry_s", 0.0)
    latency = requests["rtt_ms"] + (retry_s + requests["wait_s"] + requests["service_s"]) * 1000.0
    nan = np.full(len(status), np.nan)
    ttft = requests["rtt_ms"] + (retry_s + requests.get("first_token_s", nan)) * 1000.0
    tpot = requests.get("tpot_s", nan) * 1000.0
    counted = (has[workload] if len(objectives) else np.zeros(len(status), dtype=bool)) & (done | dropped)
    met = counted & done & meets_objectives(latency, ttft, tpot, workload, limits)
    bucket = np.searchsorted(edges_s, requests["t_s"], side="right") - 1
    n = len(edges_s) - 1
    out = {}
    for name, mask in [("*", np.ones_like(counted))] + [(o, requests["origin"] == i) for i, o in enumerate(origins)]:
        total = np.bincount(bucket[counted & mask], minlength=n)[:n].astype(float)
        good = np.bincount(bucket[met & mask], minlength=n)[:n].astype(float)
        if total.sum():
            out[name] = np.divide(good, total, out=np.full(n, np.nan), where=total > 0)
    return out


def plot_slo_series(ax: Axes, hours: np.ndarray, series: dict[str, np.ndarray]) -> None:
    """SLO attainment (%) per bucket: all requests in black, each origin dashed."""
    for k, (origin, values) in enumerate(sorted(series.items(), key=lambda kv: kv[0] != "*")):
        style = {"color": "#000000", "linewidth": 2.2} if origin == "*" else {"linestyle": _STYLES[k % 4]}
        ax.step(hours, values * 100, where="post", label="all origins" if origin == "*" else origin, **style)
    ax.set_ylabel("within SLO (%)")
    ax.set_ylim(0, 105)
    ax.set_title("SLO attainment by arrival time")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def align_ylabels(axes: Sequence[Axes]) -> None:
    """The y labels of a column of panels at one distance from the axes (fixed, so no
    panel's tick labels are laid out to place them)."""
    for ax in axes:
        ax.yaxis.set_label_coords(-0.07, 0.5)


def fit_margins(fig: Figure, left: float = 0.1, bottom: float = 0.07, top: float = 0.95) -> Figure:
    """Margins that hold the labels and the legends placed beside the axes, sized from the
    legends themselves, so that the figure is saved without a tight bounding box (which
    lays every tick and label out twice)."""
    fig.subplots_adjust(left=left, right=0.98, bottom=bottom, top=top, hspace=0.3)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvas (sim.report.style)
    room = fig.bbox.width - 6.0  # pixels, a little short of the edge
    for _ in range(3):  # a legend moves with its axes' right edge: converge in a few steps
        legends = [legend for ax in fig.axes if (legend := ax.get_legend()) is not None]
        overflow = max((legend.get_window_extent(renderer).x1 for legend in legends), default=0.0) - room
        if overflow <= 0.5:
            break
        fig.subplots_adjust(right=fig.subplotpars.right - overflow / fig.bbox.width)
    return fig


def _subplots(*args: Any, **kwargs: Any) -> Any:
    """``plt.subplots`` on the Agg backend; matplotlib loads with the first figure drawn."""
    from sim.report.style import pyplot

    return pyplot().subplots(*args, **kwargs)


def warmup_hours(run_dir: Path) -> float:
    summary = Path(run_dir) / "summary.json"
    if not summary.exists():
        return 0.0
    import json

    return float(json.loads(summary.read_text()).get("warmup_s", 0.0)) / 3600.0


def shade_warmup(axes: np.ndarray, warmup_h: float) -> None:
    """Grey out the warm-up hours on each panel of ``axes`` (a column of Axes), labelled on the first."""
    if warmup_h > 0:
        for ax in axes:
            ax.axvspan(0, warmup_h, color="#999999", alpha=0.15, linewidth=0)
        axes[0].text(warmup_h / 2, 0.97, "warm-up", transform=axes[0].get_xaxis_transform(),
                     ha="center", va="top", fontsize=8, color="#555555")


def overview_figure(table: RunTable, warmup_h: float = 0.0) -> Figure:
    """Load and allocation, active GPUs and utilisation over time, one panel each."""
    fig, axes = _subplots(3, 1, figsize=(10, 9), sharex=True)
    plot_load(axes[0], table)
    plot_active_gpus(axes[1], table)
    plot_utilization(axes[2], table)
    shade_warmup(axes, warmup_h)
    align_ylabels(axes)
    return fit_margins(fig)


def latency_cdf_figure(cdf: dict[str, tuple[np.ndarray, np.ndarray]], slo_ms: float | None = None) -> Figure:
    fig, ax = _subplots(figsize=(8, 5))
    plot_latency_cdf(ax, cdf, slo_ms)
    return fit_margins(fig, left=0.1, bottom=0.11, top=0.92)


def inference_figure(table: RunTable, warmup_h: float = 0.0) -> Figure:
    """Requests reaching each region, queue length and p99 latency over time."""
    fig, axes = _subplots(3, 1, figsize=(10, 9), sharex=True)
    plot_region_series(axes[0], table, "arrivals", "requests / bucket", "Requests reaching each region")
    plot_region_series(axes[1], table, "queue_len", "queued (mean)", "Queue length")
    plot_region_series(axes[2], table, "latency_p99_ms", "p99 latency (ms)", "p99 latency of requests completing")
    axes[2].set_xlabel("time since start (h)")
    shade_warmup(axes, warmup_h)
    align_ylabels(axes)
    return fit_margins(fig)


def draw_run_charts(run_dir: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw ``charts/overview.<fmt>`` (and, with inference, ``latency_cdf`` and ``inference``)."""
    from sim.report.style import apply_style, save_figures

    apply_style()
    run_dir = Path(run_dir)
    table = read_timeseries(run_dir / "timeseries.csv")
    if not table.regions:
        return []
    warmup = warmup_hours(run_dir)
    charts = run_dir / "charts"
    # The figures fit their own margins: each is drawn once, without a tight bounding box.
    written = save_figures(overview_figure(table, warmup), [charts / f"overview.{f}" for f in formats], tight=False)
    cdf_path = run_dir / "latency_cdf.csv"
    if cdf_path.exists():
        written += save_figures(latency_cdf_figure(read_latency_cdf(cdf_path)),
                                [charts / f"latency_cdf.{f}" for f in formats], tight=False)
        written += save_figures(inference_figure(table, warmup), [charts / f"inference.{f}" for f in formats],
                                tight=False)
    return written
