"""Charts of comparisons and sweeps, drawn from their result files only.

A comparison folder's charts read ``comparison.json`` and each run's ``latency_cdf.csv``,
``timeseries.csv`` and ``resolved.yaml``; a sweep's read ``index.csv``. Each chart is a
function ``plot_x(ax, data)``; :func:`comparison_charts` and :func:`sweep_charts` list the
charts a folder's data allows (see :mod:`sim.report.chartspec`), and
:func:`draw_comparison_charts` and :func:`draw_sweep_charts` save them into ``charts/``.

Bands across seeds: a comparison's curves show the median seed and the range from the
lowest to the highest seed; a sweep's metric shows the mean over seeds at each grid value
and its 95 % Student-t confidence interval.

Public: ``read_comparison``, ``read_index``, ``sweep_columns``, ``latency_bands``,
``utilization_bands``, ``plot_latency_bands``, ``plot_origin_bands``,
``plot_utilization_bands``, ``plot_metric_bars``, ``plot_sweep_metric``, ``chosen_metrics``,
``comparison_charts``, ``sweep_charts``, ``experiment_footer``, ``sweep_seeds``,
``draw_comparison_charts``, ``draw_sweep_charts``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import UsageError
from sim.metrics.stats import t_interval
from sim.report.charts import (
    clock_axis,
    event_spans,
    plain_log_labels,
    plain_numbers,
    read_latency_cdf,
    read_timeseries,
    shade_events,
    stamp,
)
from sim.report.chartspec import Chart, Skipped, one_axes, render_charts
from sim.report.files import read_json, read_rows
from sim.report.labels import metric_axis, param_label
from sim.report.plan import plot_plan, read_plan
from sim.report.runcharts import map_chart
from sim.report.style import PALETTE

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["read_comparison", "read_index", "sweep_columns", "latency_bands", "utilization_bands",
           "plot_latency_bands", "plot_origin_bands", "plot_utilization_bands", "plot_metric_bars",
           "plot_sweep_metric", "chosen_metrics", "comparison_charts", "sweep_charts", "experiment_footer",
           "sweep_seeds", "draw_comparison_charts", "draw_sweep_charts"]

Band = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, median, low, high
Entry = Chart | Skipped
DONE = ("ok", "skipped")


def read_comparison(folder: Path) -> dict[str, Any]:
    """``comparison.json``, checked to be one (a clear error otherwise)."""
    path = Path(folder) / "comparison.json"
    report = read_json(path)
    missing = [k for k in ("baseline", "policies", "metrics", "results", "runs") if k not in report]
    if missing:
        raise UsageError(f"{path}: not a comparison written by simulate.py compare (missing {', '.join(missing)})")
    return report


def _ok_runs(folder: Path, report: dict[str, Any], label: str) -> list[Path]:
    return [Path(folder) / r["run"] for r in report["runs"]
            if r["policy"] == label and r["status"] in DONE]


def _band(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.median(rows, axis=0), rows.min(axis=0), rows.max(axis=0)


def latency_bands(folder: Path, report: dict[str, Any], origin: str = "*") -> dict[str, Band]:
    """Policy -> (quantiles, median latency, min, max across seeds) for ``origin`` ("*": all)."""
    bands = {}
    for policy in report["policies"]:
        curves = []
        for run in _ok_runs(folder, report, policy["label"]):
            path = run / "latency_cdf.csv"
            if path.is_file() and origin in (cdf := read_latency_cdf(path)):
                curves.append(cdf[origin])
        if curves:
            q = curves[0][0]
            bands[policy["label"]] = (q, *_band(np.vstack([np.interp(q, c[0], c[1]) for c in curves])))
    return bands


def _origins(folder: Path, report: dict[str, Any]) -> list[str]:
    """Origins (other than "*") in the first run's ``latency_cdf.csv`` that has one."""
    for policy in report["policies"]:
        for run in _ok_runs(folder, report, policy["label"]):
            if (run / "latency_cdf.csv").is_file():
                return [o for o in read_latency_cdf(run / "latency_cdf.csv") if o != "*"]
    return []


def _total_utilization(run: Path) -> tuple[np.ndarray, np.ndarray] | None:
    table = read_timeseries(run / "timeseries.csv") if (run / "timeseries.csv").is_file() else None
    if table is None or not table.regions:
        return None
    cols = [table.columns[r] for r in table.regions]
    total = sum(c["total_gpus"] for c in cols)
    used = sum(c["utilization"] * c["total_gpus"] for c in cols)
    return table.hours(table.regions[0]), np.divide(used, total, where=total > 0, out=np.zeros_like(used))


def utilization_bands(folder: Path, report: dict[str, Any]) -> dict[str, Band]:
    """Policy -> (hours, median, min, max across seeds) of GPU-weighted total utilisation."""
    bands = {}
    for policy in report["policies"]:
        series = [s for run in _ok_runs(folder, report, policy["label"]) if (s := _total_utilization(run))]
        if series:
            n = min(len(s[1]) for s in series)
            bands[policy["label"]] = (series[0][0][:n], *_band(np.vstack([s[1][:n] for s in series]) * 100))
    return bands


def plot_latency_bands(ax: Axes, bands: dict[str, Band], title: str | None = None) -> None:
    """Latency CDF per policy: median across seeds, shaded from the lowest to the highest seed."""
    for k, (label, (q, mid, low, high)) in enumerate(bands.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(mid, q * 100, color=color, label=label)
        ax.fill_betweenx(q * 100, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    plain_log_labels(ax)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests completed within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title(title or "Latency CDF by policy (line: median seed; band: range across seeds)")
    if bands:
        ax.legend(loc="lower right")


def plot_origin_bands(fig: Figure, by_origin: dict[str, dict[str, Band]]) -> None:
    """One latency-band panel per origin region, sharing the latency axis."""
    cols = min(3, len(by_origin))
    rows = -(-len(by_origin) // cols)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k, (ax, (origin, bands)) in enumerate(zip(axes.flat, by_origin.items(), strict=False)):
        plot_latency_bands(ax, bands, title=f"from {origin}")
        ax.label_outer()
        if k + cols >= len(by_origin):  # nothing below it: this panel shows the latency axis
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("latency (ms, log scale)")
    for ax in list(axes.flat)[len(by_origin):]:
        ax.set_visible(False)
    fig.suptitle("Latency CDF by origin and policy (line: median seed; band: range across seeds)")


def plot_utilization_bands(ax: Axes, bands: dict[str, Band]) -> None:
    """Total utilisation over time per policy, with its range across seeds."""
    for k, (label, (hours, mid, low, high)) in enumerate(bands.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.step(hours, mid, where="post", color=color, label=label)
        ax.fill_between(hours, low, high, step="post", color=color, alpha=0.2, linewidth=0)
    clock_axis(ax, span_h=max((float(hours[-1]) for hours, *_ in bands.values() if len(hours)), default=24.0))
    ax.set_ylabel("utilisation (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Utilisation, all regions (line: median seed; band: range across seeds)")
    if bands:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _ci_end(stat: dict[str, Any], end: int) -> Any:
    """One end of a metric's 95 % interval, or its mean where there is none (a single seed)."""
    return stat["ci"][end] if stat["ci"][end] is not None else stat["mean"]


def plot_metric_bars(ax: Axes, report: dict[str, Any], metric: str) -> None:
    """One bar per policy: mean over seeds with its 95 % t interval."""
    stats = report["results"][metric]
    labels = list(stats)
    top = max((v for p in labels for v in (stats[p]["mean"], _ci_end(stats[p], 1)) if v is not None), default=None)
    factor, title = metric_axis(metric, top)
    means = np.array([stats[p]["mean"] for p in labels], dtype=float) * factor
    low = np.array([_ci_end(stats[p], 0) for p in labels], dtype=float) * factor
    high = np.array([_ci_end(stats[p], 1) for p in labels], dtype=float) * factor
    if np.all(means[np.isfinite(means)] >= 0):  # a count, latency or cost: its interval stops at zero
        low = np.maximum(low, 0.0)
    x = np.arange(len(labels))
    ax.bar(x, means, color=[PALETTE[k % len(PALETTE)] for k in range(len(labels))],
           yerr=np.vstack([means - low, high - means]), capsize=4)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    plain_numbers(ax)
    if np.all(low[np.isfinite(low)] >= 0):
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)  # the dotted path is in the report's tables


def _grid(metrics: Sequence[str], draw: Callable[[Axes, str], None], title: str,
          size: tuple[float, float], shared_legend: bool = False) -> plt.Figure:
    """Small multiples: ``draw(ax, metric)`` for each metric, three to a row;
    ``shared_legend``: the first panel's legend once, under the title, for all of them
    (a legend in every panel repeats itself and covers data)."""
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        draw(ax, metric)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    top = 1.0
    if shared_legend and handles:
        ncol = min(len(handles), 3)
        lines = -(-len(handles) // ncol)
        height = fig.get_figheight() * 72.0  # points
        fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=9, frameon=False,
                   bbox_to_anchor=(0.5, 1.0 - 22.0 / height))
        top = 1.0 - (26.0 + 15.0 * lines) / height
    fig.tight_layout(rect=(0.0, 0.0, 1.0, top) if top < 1.0 else None)
    return fig


def chosen_metrics(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    """``wanted`` (all of them present in ``available``), or every available metric."""
    if not wanted:
        return list(available)
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise UsageError(f"--metric: {', '.join(unknown)} not in {where} (available: {', '.join(available)})")
    return list(wanted)


def _single(name: str, title: str, reads: str, draw: Callable[[Axes], None], size: tuple[float, float]) -> Chart:
    return Chart(name, title, reads, one_axes(draw, size))


def _first_run(folder: Path, runs: Sequence[str]) -> Path | None:
    return next((Path(folder) / r for r in runs if (Path(folder) / r / "resolved.yaml").is_file()), None)


def comparison_charts(folder: Path, metrics: Sequence[str] | None = None) -> list[Entry]:
    """Every chart of a comparison folder, in report order (skips included)."""
    folder = Path(folder)
    report = read_comparison(folder)
    first = _first_run(folder, [r["run"] for r in report["runs"] if r["status"] in DONE])
    entries: list[Entry] = [map_chart(first) if first else Skipped("map", "no finished run with resolved.yaml")]
    lat = latency_bands(folder, report)
    entries.append(_single("latency_cdf", "Latency CDF by policy", "<run>/latency_cdf.csv",
                           lambda ax: plot_latency_bands(ax, lat), (8, 5)) if lat
                   else Skipped("latency_cdf", "no run has latency_cdf.csv"))
    by_origin = {o: b for o in _origins(folder, report) if (b := latency_bands(folder, report, o))}
    entries.append(Chart("latency_by_origin", "Latency CDF by origin region and policy", "<run>/latency_cdf.csv",
                         lambda: _origin_figure(by_origin)) if len(by_origin) > 1
                   else Skipped("latency_by_origin", "fewer than two origin regions"))
    util = utilization_bands(folder, report)
    spans = event_spans(first) if first else []  # the scenario's outages: the same in every run

    def draw_util(ax: Axes) -> None:
        plot_utilization_bands(ax, util)
        shade_events([ax], spans)
    entries.append(_single("utilization", "Utilisation over time by policy", "<run>/timeseries.csv",
                           draw_util, (10, 4.5)) if util
                   else Skipped("utilization", "no run has timeseries.csv"))
    chosen = chosen_metrics([m for m in report["metrics"] if m in report["results"]], metrics, "comparison.json")
    entries.append(Chart("metrics", "Metrics by policy (mean over seeds, 95 % CI)", "comparison.json",
                         lambda: _grid(chosen, lambda ax, m: plot_metric_bars(ax, report, m),
                                       "Mean over seeds with 95 % confidence interval", (4, 3.2)))
                   if chosen else Skipped("metrics", "comparison.json lists no metric results"))
    return entries


def _origin_figure(by_origin: dict[str, dict[str, Band]]) -> plt.Figure:
    cols = min(3, len(by_origin))
    fig = plt.figure(figsize=(4.6 * cols, 3.8 * -(-len(by_origin) // cols)))
    plot_origin_bands(fig, by_origin)
    # Laid out now, once: a layout run at save time would move the panels after the
    # footer was placed under them.
    fig.tight_layout()
    return fig


def read_index(folder: Path) -> list[dict[str, str]]:
    """``index.csv`` of a sweep or plan, checked: its columns, and numbers where metrics are."""
    path = Path(folder) / "index.csv"
    rows = read_rows(path)
    columns = list(rows[0]) if rows else []
    required = ("run", "seed", "status", "error", "path")
    if rows and not set(required) <= set(columns):
        raise UsageError(f"{path}: not an index written by simulate.py sweep or plan "
                         f"(needs columns {', '.join(required)}; has {', '.join(columns)})")
    _, metrics = sweep_columns(rows)
    for line, row in enumerate(rows, start=2):
        for metric in metrics:
            if row.get(metric, "") != "" and not _is_number(row[metric]):
                raise UsageError(f"{path}:{line}: {metric}: not a number (got {row[metric]!r})")
    return rows


def sweep_columns(rows: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """(grid parameters, metrics) named by the columns of ``index.csv``."""
    columns = list(rows[0]) if rows else []
    if not {"seed", "status", "error", "path"} <= set(columns):
        return [], []
    return (columns[columns.index("seed") + 1:columns.index("status")],
            columns[columns.index("error") + 1:columns.index("path")])


def _x_values(rows: list[dict[str, str]], param: str) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x of each row, and tick labels when the parameter is not numeric."""
    values = [r[param] for r in rows]
    if all(_is_number(v) for v in values):
        return np.array([float(v) for v in values]), None
    labels = sorted(set(values), key=lambda v: values.index(v))
    return np.array([labels.index(v) for v in values], dtype=float), labels


def plot_sweep_metric(ax: Axes, rows: list[dict[str, str]], param: str, metric: str,
                      group: str | Sequence[str] | None = None, legend: bool = True) -> None:
    """``metric`` against ``param``: seeds as dots, the mean over seeds as a line with its
    95 % t interval shaded; a line per value of ``group`` (one parameter, or several: a line
    per combination, so that different grid points are never averaged together)."""
    keys = [group] if isinstance(group, str) else list(group or [])
    done = [r for r in rows if r["status"] in DONE and r.get(metric, "") != ""]
    values = [float(r[metric]) for r in done]
    factor, ylabel = metric_axis(metric, max(values, default=None))
    combo = [tuple(r[k] for k in keys) for r in done]
    groups = sorted(set(combo)) if keys else [()]
    xs_all, labels = _x_values(done, param) if done else (np.zeros(0), None)
    for k, g in enumerate(groups):
        mine = np.array([c == g for c in combo], dtype=bool) if keys else np.ones(len(done), dtype=bool)
        xs = xs_all[mine]
        ys = np.array([float(r[metric]) for r, m in zip(done, mine, strict=True) if m]) * factor
        label = (", ".join(f"{param_label(name)} = {value}" for name, value in zip(keys, g, strict=True)) if keys
                 else "mean over seeds")
        _plot_seeds(ax, xs, ys, PALETTE[k % len(PALETTE)], label)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    elif len(done) and np.allclose(xs_all, np.round(xs_all)):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # replicas, GPUs: whole numbers
    if values and min(values) >= 0:  # a metric that is never negative, from zero: no exaggerated slopes
        ax.set_ylim(bottom=0)
    plain_numbers(ax)
    ax.set_xlabel(param_label(param))
    ax.set_ylabel(ylabel)
    if keys and done and legend:  # one line needs no legend: the title says what it is
        ax.legend(fontsize=8)


def _plot_seeds(ax: Axes, xs: np.ndarray, ys: np.ndarray, color: str, label: str) -> None:
    """One line: each seed's value as a dot, the mean over seeds at each x with its 95 % t
    interval shaded."""
    ax.scatter(xs, ys, color=color, s=10, alpha=0.5)
    levels = np.unique(xs)
    ci = [t_interval(list(ys[xs == v])) for v in levels]
    # A level whose values are all non-finite has no mean: a gap in the line.
    means = [np.nan if c.mean is None else c.mean for c in ci]
    ax.plot(levels, means, color=color, marker="o", label=label)
    low = [mean if c.low is None else c.low for c, mean in zip(ci, means, strict=True)]
    high = [mean if c.high is None else c.high for c, mean in zip(ci, means, strict=True)]
    if len(ys) and ys.min() >= 0:  # a metric that is never negative: so is its band
        low = [max(v, 0.0) for v in low]
    ax.fill_between(levels, low, high, color=color, alpha=0.2, linewidth=0)


def sweep_charts(folder: Path, metrics: Sequence[str] | None = None) -> list[Entry]:
    """The sweep chart (each chosen metric against the first grid parameter) and the map;
    in a plan's folder, the plan's chart too."""
    folder = Path(folder)
    rows = read_index(folder)
    params, available = sweep_columns(rows)
    chosen = chosen_metrics(available, metrics, "index.csv")
    first = _first_run(folder, [r["run"] for r in rows if r.get("status") in DONE])
    entries: list[Entry] = [map_chart(first) if first else Skipped("map", "no finished run with resolved.yaml")]
    if not params or not chosen or not any(r["status"] in DONE for r in rows):
        entries.append(Skipped("sweep", "index.csv has no finished run, grid parameter or metric"))
        return entries
    x = _x_axis(rows, params)
    others = [p for p in params if p != x]
    title = "Mean over seeds with 95 % confidence interval (dots: seeds)"
    entries.append(Chart("sweep", f"Metrics against {param_label(x)}", "index.csv", lambda: _grid(
        chosen, lambda ax, m: plot_sweep_metric(ax, rows, x, m, others, legend=False), title, (4.5, 3.4),
        shared_legend=bool(others))))
    if (folder / "plan.json").is_file():
        plan = read_plan(folder)
        if any(p["mean"] is not None for p in plan["points"]):
            entries.append(_single("plan", "Capacity plan: the target metric against the varied capacity", "plan.json",
                                   lambda ax: plot_plan(ax, plan), (9.5, 4.5)))
    return entries


def experiment_footer(folder: Path, runs: Sequence[str], seeds: Sequence[object]) -> Callable[[Figure], None] | None:
    """The footer of an experiment's charts: its scenario, seeds, date and commit, read from
    its first finished run (None when no run has a manifest)."""
    first = next((Path(folder) / r for r in runs if (Path(folder) / r / "manifest.json").is_file()), None)
    if first is None:
        return None
    return lambda fig: stamp(fig, first, tight=True, seeds=seeds)


def sweep_seeds(folder: Path, rows: list[dict[str, str]]) -> list[object]:
    """The seeds of a sweep or plan: from ``sweep.json``, else the index's seed column."""
    spec = read_json(Path(folder) / "sweep.json") if (Path(folder) / "sweep.json").is_file() else {}
    return list(spec.get("seeds") or sorted({int(r["seed"]) for r in rows if r.get("seed", "").isdigit()}))


def varying_metrics(rows: list[dict[str, str]], metrics: Sequence[str]) -> list[str]:
    """The metrics whose value differs between runs: a metric that is the same in every run
    (zero drops, a utilisation pinned at 100 %, the simulated time) draws a flat line that
    shows nothing; the report's tables still hold it. All of them when none varies."""
    def varies(metric: str) -> bool:
        values = [float(r[metric]) for r in rows if _is_number(r.get(metric, ""))]
        # Under 0.1 % of the value apart: a flat line on an axis from zero.
        return bool(values) and max(values) - min(values) > 1e-3 * max(abs(max(values)), abs(min(values)), 1e-12)
    return [m for m in metrics if varies(m)] or list(metrics)


def _x_axis(rows: list[dict[str, str]], params: list[str]) -> str:
    """The first numeric grid parameter, else the first parameter."""
    numeric = [p for p in params if all(_is_number(r[p]) for r in rows)]
    return (numeric or params)[0]


def _draw(entries: list[Entry], names: Sequence[str], folder: Path, formats: Sequence[str],
          footer: Callable[[Figure], None] | None) -> list[Path]:
    chosen = [e for e in entries if isinstance(e, Chart) and e.name in names]
    rendered, _ = render_charts(chosen, Path(folder) / "charts", formats, footer)
    return [p for r in rendered for p in r.files.values()]


def draw_comparison_charts(folder: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """``charts/latency_cdf``, ``charts/utilization`` and ``charts/metrics`` of a comparison
    (``simulate.py report`` adds the map and the per-origin latency bands)."""
    report = read_comparison(folder)
    footer = experiment_footer(folder, [r["run"] for r in report["runs"] if r["status"] in DONE],
                               report.get("seeds", []))
    return _draw(comparison_charts(folder), ("latency_cdf", "utilization", "metrics"), folder, formats, footer)


def draw_sweep_charts(folder: Path, formats: tuple[str, ...] | str = ("png",)) -> list[Path]:
    """``charts/sweep.<fmt>``: each metric against the first numeric grid parameter."""
    formats = (formats,) if isinstance(formats, str) else formats
    rows = read_index(folder)
    footer = experiment_footer(folder, [r["run"] for r in rows if r.get("status") in DONE], sweep_seeds(folder, rows))
    return _draw(sweep_charts(folder), ("sweep",), folder, formats, footer)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
