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
from sim.report.files import reading
from sim.report.palette import OBJECTIVE, PALETTE, series_style

if TYPE_CHECKING:  # matplotlib itself loads when a figure is made (_subplots)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RunTable", "read_timeseries", "read_latency_cdf", "plot_load", "plot_active_gpus",
           "plot_utilization", "plot_latency_cdf", "plot_region_series", "plot_utilization_heatmap",
           "slo_series", "plot_slo_series", "overview_figure", "latency_cdf_figure", "inference_figure",
           "align_ylabels", "fit_margins", "warmup_hours", "draw_run_charts", "clock_axis", "stamp", "event_spans",
           "shade_events", "proportional", "seconds_if_long", "constant_capacity", "plain_log_labels",
           "plain_numbers", "has_series", "one_legend", "event_label", "region_styles"]


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
    with reading(path), open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            region = row.pop("region")
            if region not in raw:
                regions.append(region)
                raw[region] = {k: [] for k in row}
            for key, value in row.items():
                raw[region][key].append(float(value) if value != "" else np.nan)
    columns = {r: {k: np.asarray(v) for k, v in cols.items()} for r, cols in raw.items()}
    return RunTable(tuple(regions), columns)


def proportional(load: np.ndarray, resources: np.ndarray) -> float | None:
    """R(t) / L(t) when the allocation is one constant multiple of the load (the seed's
    formula, no cap), else None: then one line on two scales shows both."""
    ok = np.isfinite(load) & np.isfinite(resources) & (load > 0)
    if not ok.any():
        return None
    ratio = resources[ok] / load[ok]
    return float(ratio[0]) if ratio[0] > 0 and np.allclose(ratio, ratio[0], rtol=1e-6, atol=0.0) else None


def plot_load(ax: Axes, table: RunTable) -> None:
    """L(t) on the left axis, R(t) as a share of the weighted fleet on the right (both
    identical across regions): one line read on two scales when R is proportional to L,
    else a second, dashed line; the load at which R reaches the whole fleet is marked."""
    first = table.regions[0]
    cols = table.columns[first]
    load = cols["load"]
    if np.all(np.isnan(load)):
        ax.text(0.5, 0.5, "no scheduler: all capacity active", ha="center", transform=ax.transAxes)
    else:
        _step(ax, table, first, load, color=PALETTE[0], label="load L(t) driving the allocation")
        for column, color, label in (("forecast_load", "#009E73", "forecast (formula)"),
                                     ("observed_load", "#CC79A7", "observed (measured arrivals)")):
            values = cols.get(column)
            if values is not None and not np.all(np.isnan(values)):
                _step(ax, table, first, values, color=color, linestyle=":", linewidth=2, label=label)
        twin = _plot_allocation(ax, table, first)  # before reading ax's lines: it may mark one there
        handles = ax.get_lines() + twin
        ax.legend(handles, [str(line.get_label()) for line in handles], loc="upper left",
                  bbox_to_anchor=(1.14, 1.0))
        ax.set_ylim(bottom=0)
    ax.set_ylabel("load L(t) (load units)")
    ax.set_title("Load model L(t) and the allocation R(t) it drives")


def _plot_allocation(ax: Axes, table: RunTable, region: str) -> list[Any]:
    """R(t) on a right-hand axis: a second scale of the load line when R is proportional
    to L (with the load that activates the whole fleet), else its own dashed line on a
    twin axis. Returns the lines drawn on the twin axis, for the legend."""
    cols = table.columns[region]
    load = cols["load"]
    ratio = proportional(load, cols["resources"])
    lines = []
    right: Any
    if ratio is not None:  # R = ratio * L: a second line would lie on the first
        per = ratio * 100.0

        def to_r(v: Any) -> Any:
            return np.asarray(v) * per

        def to_load(v: Any) -> Any:
            return np.asarray(v) / per
        right = ax.secondary_yaxis("right", functions=(to_r, to_load))
        top = float(np.nanmax(load))
        if 1.0 / ratio <= 1.5 * top:
            ax.axhline(1.0 / ratio, color="#777777", linestyle=(0, (1, 2)), linewidth=1.2,
                       label="whole weighted fleet active (R = 100 %)")
    else:
        right = ax.twinx()
        _step(right, table, region, cols["resources"] * 100.0, color="#D55E00", linestyle="--",
              label="allocation R(t)")
        lines = right.get_lines()
        right.set_ylim(bottom=0)
        right.grid(False)
    right.set_ylabel("R(t) (% of weighted fleet)")
    return lines


def _step(ax: Axes, table: RunTable, region: str, values: np.ndarray, **style: Any) -> None:
    """A bucket series as steps, each value held until its bucket's end (the last one included)."""
    ends = table.columns[region]["t_end_s"]
    if not len(values):
        return
    hours = np.append(table.hours(region), ends[-1] / 3600.0)
    ax.step(hours, np.append(values, values[-1]), where="post", **style)


def plot_active_gpus(ax: Axes, table: RunTable) -> None:
    from matplotlib.ticker import MaxNLocator

    for k, region in enumerate(table.regions):
        cols = table.columns[region]
        share = np.nanmean(cols["share"]) * 100
        _step(ax, table, region, cols["active_gpus"], **series_style(k), label=f"{region} (share {share:.1f} %)")
    top = max((np.nanmax(table.columns[r]["active_gpus"]) for r in table.regions), default=1.0)
    ax.set_ylim(0, max(top, 1.0) * 1.08)  # counts from zero, whole GPUs on the axis
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("active GPUs")
    ax.set_title("Active capacity by region")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def constant_capacity(table: RunTable) -> bool:
    """Every region keeps the same GPUs active all run (within 1 %, a few failed nodes):
    a panel of them would be flat lines, so the legend names each region's GPUs instead."""
    for region in table.regions:
        active = table.columns[region]["active_gpus"]
        active = active[np.isfinite(active)]
        if len(active) and active.max() - active.min() > 0.01 * max(active.max(), 1.0):
            return False
    return True


def plot_utilization(ax: Axes, table: RunTable, capacity: bool = False) -> None:
    """Utilisation (%) per region; ``capacity``: each legend entry gives the region's active GPUs."""
    for k, region in enumerate(table.regions):
        label = region
        if capacity:
            active = table.columns[region]["active_gpus"]
            gpus = int(round(float(np.nanmedian(active)))) if np.isfinite(active).any() else 0
            label = f"{region} ({gpus:,} GPUs)"
        _step(ax, table, region, table.columns[region]["utilization"] * 100, **series_style(k), label=label)
    ax.set_ylabel("utilisation (%)")
    clock_axis(ax, table)
    ax.set_ylim(0, 105)
    ax.set_title("Utilisation by region (busy / installed GPUs)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def read_latency_cdf(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``origin -> (quantiles, latency_ms)`` from ``latency_cdf.csv``."""
    data: dict[str, tuple[list[float], list[float]]] = {}
    with reading(path), open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            q, v = data.setdefault(row["origin"], ([], []))
            q.append(float(row["quantile"]))
            v.append(float(row["latency_ms"]))
    return {k: (np.asarray(q), np.asarray(v)) for k, (q, v) in data.items()}


def region_styles(names: Sequence[str], order: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each name's :func:`series_style` by its place in ``order`` (the run's regions, so an
    origin looks as its region does on the other charts); names not in it come after."""
    extra = [n for n in names if n not in order]
    return {n: series_style(list(order).index(n) if n in order else len(order) + extra.index(n)) for n in names}


def plot_latency_cdf(ax: Axes, cdf: dict[str, tuple[np.ndarray, np.ndarray]], slo_ms: float | None = None,
                     order: Sequence[str] = ()) -> None:
    """Latency CDF per origin region (log latency axis), all requests in black; ``order``:
    the run's regions, which fix each origin's style."""
    styles = region_styles([o for o in cdf if o != "*"], order)
    for origin, (q, v) in sorted(cdf.items(), key=lambda kv: kv[0] == "*"):
        label = "all origins" if origin == "*" else origin
        style = {"color": "#000000", "linewidth": 2.2} if origin == "*" else styles[origin]
        ax.plot(v, q * 100, label=label, **style)
    if slo_ms:
        ax.axvline(slo_ms, label=f"SLO {slo_ms:,g} ms", **OBJECTIVE)
    ax.set_xscale("log")
    plain_log_labels(ax)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests completed within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title("Latency CDF by origin region (after warm-up)")
    ax.legend(loc="lower right")


def plain_log_labels(ax: Axes) -> None:
    """Decades as plain numbers (1000, not mathtext's 10^3, which costs a parser per label),
    minor ticks at 2 and 5 times each decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # fewer minor ticks: each is several artists
    ax.xaxis.set_minor_formatter(NullFormatter())


def plain_numbers(ax: Axes) -> None:
    """Y tick labels as plain numbers with thousands separators (``125,000``), never an
    offset or a ``1e5`` printed at the axis' end."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"))


def has_series(table: RunTable, column: str) -> bool:
    """Some region has a non-zero value in ``column`` (what :func:`plot_region_series` draws)."""
    return any(column in cols and np.isfinite(cols[column]).any() and bool(np.nansum(np.abs(cols[column])))
               for cols in table.columns.values())


def one_legend(axes: Sequence[Axes], regions: int) -> None:
    """With more than six regions, only the first panel of a column keeps its legend: a
    region has one style on every panel, and a tall legend per panel would run into the
    next one."""
    if regions > 6:
        for ax in axes[1:]:
            if (legend := ax.get_legend()) is not None:
                legend.remove()


def plot_region_series(ax: Axes, table: RunTable, column: str, ylabel: str, title: str,
                       per_second: bool = False, scale: float = 1.0) -> None:
    """One step line per region of ``column`` (``per_second``: a count per bucket divided by
    the bucket's length, a rate; ``scale``: a factor, e.g. ms to s), each region in its own
    style on every panel."""
    for k, region in enumerate(table.regions):
        values = table.columns[region].get(column)
        if values is None or np.all(np.isnan(values)) or not np.nansum(values):
            continue
        cols = table.columns[region]
        if per_second:
            values = values / np.maximum(cols["t_end_s"] - cols["t_start_s"], 1e-9)
        _step(ax, table, region, values * scale, **series_style(k), label=region)
    lows = [np.nanmin(line.get_ydata()) for line in ax.get_lines()]
    highs = [np.nanmax(np.abs(line.get_ydata())) for line in ax.get_lines()]
    # Counts, rates and latencies from zero (no exaggerated swings); a mean queue of -4e-9
    # (a float sum's rounding) is zero.
    if lows and min(lows) >= -1e-6 * max(max(highs), 1.0):
        ax.set_ylim(bottom=0)
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
    clock_axis(ax, table)
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


def plot_slo_series(ax: Axes, hours: np.ndarray, series: dict[str, np.ndarray], order: Sequence[str] = ()) -> None:
    """SLO attainment (%) per bucket: all requests in black, each origin in its region's
    style (``order``: the run's regions)."""
    styles = region_styles([o for o in series if o != "*"], order)
    for origin, values in sorted(series.items(), key=lambda kv: kv[0] != "*"):
        style = {"color": "#000000", "linewidth": 2.2} if origin == "*" else styles[origin]
        ax.step(hours, values * 100, where="post", label="all origins" if origin == "*" else origin, **style)
    ax.set_ylabel("within SLO (%)")
    ax.set_ylim(0, 105)
    if len(hours) > 1:
        clock_axis(ax, span_h=float(hours[-1] + (hours[-1] - hours[-2])))
    ax.set_title("SLO attainment by arrival time")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


def align_ylabels(axes: Sequence[Axes]) -> None:
    """The y labels of a column of panels at one distance from the axes, just clear of the
    widest tick label of any of them (measured in characters from the tick formatter, so
    no panel is laid out to place them; call it once the limits are set)."""
    from matplotlib.transforms import offset_copy

    widest = max((len(_tick_labels(ax)[-1]) if _tick_labels(ax) else 0 for ax in axes), default=0)
    size = float(axes[0].yaxis.get_ticklabels()[0].get_fontsize()) if axes[0].yaxis.get_ticklabels() else 10.0
    gap = widest * 0.62 * size + 12.0  # points: digits are about 0.6 em wide, plus tick and padding
    for ax in axes:
        shifted = offset_copy(ax.transAxes, fig=ax.get_figure(root=True), x=-gap, y=0.0, units="points")
        ax.yaxis.set_label_coords(0.0, 0.5, transform=shifted)


def _tick_labels(ax: Axes) -> list[str]:
    """The y tick labels ``ax`` will show, shortest first."""
    low, high = sorted(ax.get_ylim())
    locs = [v for v in ax.yaxis.get_major_locator()() if low <= v <= high]
    return sorted(ax.yaxis.get_major_formatter().format_ticks(locs), key=len)


def seconds_if_long(values_ms: Sequence[np.ndarray]) -> tuple[float, str]:
    """(factor, unit) to show latencies: ms, or s once they reach 10,000 ms (five-digit
    tick labels are hard to read and crowd the axis label)."""
    top = max((float(np.nanmax(v)) for v in values_ms if np.isfinite(v).any()), default=0.0)
    return (0.001, "s") if top >= 10_000 else (1.0, "ms")


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


def clock_axis(ax: Axes, table: RunTable | None = None, span_h: float | None = None) -> None:
    """Time on ``ax`` as a UTC clock (the run starts at 00:00 UTC on day 1, the origin of
    every diurnal profile): ``HH:MM`` within a day, ``day N HH:MM`` past it, ``day N`` on
    runs longer than four days. ``span_h``: the run's length (default: the table's)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    if span_h is None:
        span_h = 24.0
        if table is not None and table.regions:
            cols = table.columns[table.regions[0]]
            span_h = float(np.nanmax(cols["t_end_s"])) / 3600.0 if len(cols["t_end_s"]) else 24.0
    step = next((s for s in (1 / 12, 1 / 6, 0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 168) if span_h / s <= 10), 720)
    ax.xaxis.set_major_locator(MultipleLocator(step))

    def label(hours: float, _: object) -> str:
        day, rest = divmod(round(hours * 60), 24 * 60)
        if step >= 24:
            return f"day {day + 1}"
        clock = f"{rest // 60:02d}:{rest % 60:02d}"
        return clock if span_h <= 24 else f"day {day + 1}\n{clock}"
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.set_xlabel("time (UTC; the run starts at 00:00 on day 1)")


def stamp(fig: Figure, run_dir: Path, tight: bool = False, seeds: Sequence[object] | None = None) -> None:
    """A footer naming what the chart shows: scenario, seed, run date and commit (from the
    run folder's manifest.json; nothing when it is absent). ``seeds``: the seeds of an
    experiment whose first run ``run_dir`` is, named instead of that run's one seed."""
    import json

    try:
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    seed = f"seed {manifest.get('seed', '?')}" if seeds is None else f"seeds {', '.join(map(str, seeds))}"
    parts = [f"scenario {manifest.get('scenario', '?')}", seed]
    if manifest.get("started_utc"):
        parts.append(f"run {str(manifest['started_utc'])[:16].replace('T', ' ')} UTC")
    if manifest.get("git_commit"):
        parts.append(f"commit {str(manifest['git_commit'])[:8]}")
    room = 16.0 / fig.bbox.height  # a line of 7-point text, as a share of the figure's height
    y = 0.004
    if fig.get_layout_engine() is None and not tight:
        fig.subplots_adjust(bottom=fig.subplotpars.bottom + room)
    else:  # a figure saved to its tight bounding box: the line goes just below what is drawn
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvas
        lowest = fig.get_tightbbox(renderer).y0 * fig.dpi  # inches -> pixels
        y = (lowest - 16.0) / fig.bbox.height  # below the drawing, not at the foot of an empty margin
    fig.text(0.01, y, " · ".join(parts), fontsize=7, color="#666666", ha="left", va="bottom")


def warmup_hours(run_dir: Path) -> float:
    summary = Path(run_dir) / "summary.json"
    if not summary.exists():
        return 0.0
    import json

    return float(json.loads(summary.read_text()).get("warmup_s", 0.0)) / 3600.0


def _halo() -> list[Any]:
    """A thin white outline around a label drawn over the data: legible over a line, and,
    unlike a box behind it, hiding none of the data."""
    from matplotlib.patheffects import withStroke

    return [withStroke(linewidth=2.5, foreground="white")]


def shade_warmup(axes: np.ndarray, warmup_h: float) -> None:
    """Grey out the warm-up hours on each panel of ``axes`` (a column of Axes), labelled on the first."""
    if warmup_h > 0:
        for ax in axes:
            ax.axvspan(0, warmup_h, color="#999999", alpha=0.15, linewidth=0)
        axes[0].text(warmup_h / 2, 0.97, "warm-up", transform=axes[0].get_xaxis_transform(),
                     ha="center", va="top", fontsize=8, color="#555555", path_effects=_halo())


def event_spans(run_dir: Path) -> list[tuple[str, float, float]]:
    """Region outages, link failures and partitions of a run, ``(label, start_h, end_h)``,
    from its ``failures.csv`` (none when the file is absent)."""
    path = Path(run_dir) / "failures.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("kind") in ("region", "link", "partition")]
    return [(event_label(r["kind"], r.get("region", "")), float(r["start_s"]) / 3600.0, float(r["end_s"]) / 3600.0)
            for r in rows]


_EVENT_WORDS = {"region": "outage", "link": "link down", "partition": "partition"}


def event_label(kind: str, where: str, sep: str = " ") -> str:
    """``outage eastus``, ``partition southeastasia - japaneast``: a failures.csv row in words."""
    return f"{_EVENT_WORDS.get(kind, kind)}{sep}{where.replace('|', ' - ')}".strip()


def shade_events(axes: Sequence[Axes], spans: Sequence[tuple[str, float, float]]) -> None:
    """Hatch each outage, link failure or partition on every panel, named on the first."""
    for label, start, end in spans:
        for ax in axes:
            ax.axvspan(start, end, facecolor="none", edgecolor="#D55E00", hatch="///", alpha=0.35, linewidth=0)
        axes[0].text((start + end) / 2, 0.97, label, transform=axes[0].get_xaxis_transform(), ha="center",
                     va="top", fontsize=8, color="#D55E00",
                     path_effects=_halo())


def overview_figure(table: RunTable, warmup_h: float = 0.0,
                    events: Sequence[tuple[str, float, float]] = ()) -> Figure:
    """Load and allocation (when a scheduler applies them), active GPUs and utilisation over
    time, one panel each; ``events`` (outages, link failures, partitions) hatched."""
    first = table.columns[table.regions[0]]
    scheduled = not np.all(np.isnan(first["load"]))
    flat = not scheduled and constant_capacity(table)  # the active GPUs would be flat lines
    panels = [plot_load] * scheduled + [plot_active_gpus] * (not flat)
    fig, axes = _subplots(len(panels) + 1, 1, figsize=(10, 3.0 + 3.0 * len(panels)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, panel in zip(axes, panels, strict=False):
        panel(ax, table)
    plot_utilization(axes[-1], table, capacity=flat)
    one_legend(axes[int(scheduled):], len(table.regions))
    shade_warmup(axes, warmup_h)
    shade_events(axes, events)
    align_ylabels(axes)
    return fit_margins(fig)


def latency_cdf_figure(cdf: dict[str, tuple[np.ndarray, np.ndarray]], slo_ms: float | None = None,
                       order: Sequence[str] = ()) -> Figure:
    fig, ax = _subplots(figsize=(8, 5))
    plot_latency_cdf(ax, cdf, slo_ms, order)
    return fit_margins(fig, left=0.1, bottom=0.11, top=0.92)


def inference_figure(table: RunTable, warmup_h: float = 0.0,
                     events: Sequence[tuple[str, float, float]] = ()) -> Figure:
    """Requests reaching each region, queue length and p99 latency over time; ``events``
    (outages, link failures, partitions) hatched."""
    scale, unit = seconds_if_long([table.columns[r].get("latency_p99_ms", np.full(1, np.nan)) for r in table.regions])
    panels = [("arrivals", "requests / s", "Requests reaching each region (mean rate per bucket)", True, 1.0),
              ("queue_len", "requests queued (mean)", "Queue length", False, 1.0),
              ("latency_p99_ms", f"p99 latency ({unit})", "p99 latency of requests completing", False, scale)]
    # A panel of zeros (no queue ever formed) is left out; the arrivals stay if all are.
    panels = [p for p in panels if has_series(table, p[0])] or panels[:1]
    fig, axes = _subplots(len(panels), 1, figsize=(10, 3.0 * len(panels)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (column, ylabel, title, per_second, factor) in zip(axes, panels, strict=True):
        plot_region_series(ax, table, column, ylabel, title, per_second=per_second, scale=factor)
    clock_axis(axes[-1], table)
    one_legend(axes, len(table.regions))
    shade_warmup(axes, warmup_h)
    shade_events(axes, events)
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
    def stamped(fig: Figure) -> Figure:
        stamp(fig, run_dir)
        return fig
    written = save_figures(stamped(overview_figure(table, warmup, event_spans(run_dir))),
                           [charts / f"overview.{f}" for f in formats], tight=False)
    cdf_path = run_dir / "latency_cdf.csv"
    if cdf_path.exists():
        written += save_figures(stamped(latency_cdf_figure(read_latency_cdf(cdf_path), order=table.regions)),
                                [charts / f"latency_cdf.{f}" for f in formats], tight=False)
        written += save_figures(stamped(inference_figure(table, warmup, event_spans(run_dir))),
                                [charts / f"inference.{f}" for f in formats], tight=False)
    return written
