"""Which charts a run folder can have, decided from its files.

Each builder takes a :class:`RunData` and returns a :class:`~sim.report.chartspec.Chart`
when the files it draws from hold data, else a :class:`~sim.report.chartspec.Skipped`
naming what is missing. :func:`run_charts` lists them in report order; the figures are drawn
only when rendered.

Public: ``RunData``, ``read_run``, ``run_charts``, ``map_chart``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import ScenarioError
from sim.report.charts import (
    RunTable,
    event_spans,
    inference_figure,
    latency_cdf_figure,
    overview_figure,
    plot_slo_series,
    plot_utilization_heatmap,
    read_latency_cdf,
    read_timeseries,
    shade_events,
    slo_series,
)
from sim.report.chartspec import Chart, Skipped, one_axes
from sim.report.energy import energy_figure
from sim.report.failures import failures_figure
from sim.report.files import has_columns, read_json, read_rows
from sim.report.network import transfers_figure
from sim.report.serving import batching_figure, serving_load_figure
from sim.report.training import training_figure
from sim.report.worldmap import plot_world_map, read_map_data
from sim.scenario.yaml_io import load_yaml_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RunData", "read_run", "run_charts", "map_chart"]

Entry = Chart | Skipped


@dataclass(frozen=True)
class RunData:
    """The files every run has, read once: summary, manifest and time series."""

    folder: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    table: RunTable

    @property
    def warmup_h(self) -> float:
        return float(self.summary.get("warmup_s") or 0.0) / 3600.0

    def rows(self, name: str) -> list[dict[str, str]]:
        return read_rows(self.folder / name)


def read_run(folder: Path) -> RunData:
    folder = Path(folder)
    return RunData(folder, read_json(folder / "summary.json"), read_json(folder / "manifest.json"),
                   read_timeseries(folder / "timeseries.csv"))


def map_chart(folder: Path) -> Entry:
    data = read_map_data(folder)
    if data is None:
        return Skipped("map", "resolved.yaml absent or not a valid scenario")
    reads = "resolved.yaml (regions, links), transfers.csv" if data.has_traffic else "resolved.yaml (regions, links)"
    return Chart("map", "World map", reads, one_axes(lambda ax: plot_world_map(ax, data), (12, 6.5)))


def _overview(run: RunData) -> Entry:
    if not run.table.regions:
        return Skipped("overview", "timeseries.csv has no rows")
    return Chart("overview", "Load, allocation, active capacity and utilisation over time", "timeseries.csv",
                 lambda: overview_figure(run.table, run.warmup_h, event_spans(run.folder)))


def _heatmap(run: RunData) -> Entry:
    with_gpus = [r for r in run.table.regions if np.nansum(run.table.columns[r].get("total_gpus", [0])) > 0]
    if not with_gpus:
        return Skipped("utilization_heatmap", "timeseries.csv has no region with GPUs")
    if len(with_gpus) == 1:
        return Skipped("utilization_heatmap", "one region with GPUs: its utilisation is the overview's last panel")
    rows = max(2.5, 0.45 * len(run.table.regions) + 1.5)
    return Chart("utilization_heatmap", "Utilisation heat map (region x time)", "timeseries.csv",
                 one_axes(lambda ax: plot_utilization_heatmap(ax, run.table), (11, rows)))


def _objectives(workload: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """A resolved workload's (TTFT, TPOT, end-to-end) objectives, ms (slo_ms is the e2e alias)."""
    slo = workload.get("slo") or {}
    e2e = slo.get("e2e_ms") if slo.get("e2e_ms") is not None else workload.get("slo_ms")
    return slo.get("ttft_ms"), slo.get("tpot_ms"), e2e


def _single_slo(run: RunData) -> float | None:
    slos = {_objectives(w)[2] for w in _resolved(run.folder).get("inference") or []}
    return slos.pop() if len(slos) == 1 else None


def _latency_cdf(run: RunData) -> Entry:
    path = run.folder / "latency_cdf.csv"
    if not read_rows(path):
        return Skipped("latency_cdf", "latency_cdf.csv absent or empty (no inference requests completed)")
    return Chart("latency_cdf", "Latency CDF by origin region", "latency_cdf.csv",
                 lambda: latency_cdf_figure(read_latency_cdf(path), _single_slo(run), run.table.regions))


def _inference(run: RunData) -> Entry:
    first = run.table.columns[run.table.regions[0]] if run.table.regions else {}
    if "arrivals" not in first or not any(np.nansum(run.table.columns[r]["arrivals"]) for r in run.table.regions):
        return Skipped("inference", "timeseries.csv has no inference arrivals")
    return Chart("inference", "Requests, queue length and p99 latency over time", "timeseries.csv",
                 lambda: inference_figure(run.table, run.warmup_h, event_spans(run.folder)))


def _has(run: RunData, column: str) -> bool:
    """Some region has finite values in this time-series column."""
    return any(np.isfinite(run.table.columns[r].get(column, np.full(1, np.nan))).any() for r in run.table.regions)


def _serving(run: RunData) -> Entry:
    if not _has(run, "ttft_p99_ms"):
        return Skipped("serving", "timeseries.csv has no time to first token (no token workload)")
    return Chart("serving", "Time to first token and time per output token against load", "timeseries.csv",
                 lambda: serving_load_figure(run.table))


def _batching(run: RunData) -> Entry:
    if not _has(run, "batch_size"):
        return Skipped("batching", "timeseries.csv has no batch sizes (no pool with serving)")
    return Chart("batching", "Batch size and KV-cache use of the batching replicas", "timeseries.csv",
                 lambda: batching_figure(run.table, run.warmup_h, event_spans(run.folder)))


def _resolved(folder: Path) -> dict[str, Any]:
    """``resolved.yaml`` as data, read with the scenario loader's limits ({} if unreadable)."""
    path = folder / "resolved.yaml"
    try:
        data = load_yaml_file(path)[0] if path.is_file() else None
    except ScenarioError:
        data = None
    return data if isinstance(data, dict) else {}


def _slo(run: RunData) -> Entry:
    path = run.folder / "requests.npz"
    if not path.is_file():
        return Skipped("slo", "requests.npz absent (set metrics.requests: true in the scenario)")
    resolved = _resolved(run.folder)
    objectives = [_objectives(w) for w in resolved.get("inference") or []]
    if not any(v is not None for row in objectives for v in row) or not run.table.regions:
        return Skipped("slo", "no inference workload sets an SLO")
    origins = [r["name"] for r in resolved.get("regions") or []]
    first = run.table.columns[run.table.regions[0]]
    edges = np.append(first["t_start_s"], first["t_end_s"][-1:])
    with np.load(path) as npz:
        series = slo_series({k: npz[k] for k in npz.files}, edges, objectives, origins)
    if not series:
        return Skipped("slo", "no request with an SLO completed or was dropped")
    spans = event_spans(run.folder)

    def draw(ax: Axes) -> None:
        plot_slo_series(ax, edges[:-1] / 3600.0, series, run.table.regions)
        shade_events([ax], spans)
    return Chart("slo", "SLO attainment over time", "requests.npz, resolved.yaml (slo), timeseries.csv (buckets)",
                 one_axes(draw, (10, 3.8)))


def _training(run: RunData) -> Entry:
    rows = run.rows("jobs.csv")
    if not has_columns(rows, "workload", "status", "arrival_s", "start_s", "end_s", "wait_s", "held_gpu_h"):
        return Skipped("training", "jobs.csv absent or empty (no training jobs)")
    return Chart("training", "Training: completion time, queueing delay, GPU-hours", "jobs.csv",
                 lambda: training_figure(rows))


def _transfers(run: RunData) -> Entry:
    rows = run.rows("transfers.csv")
    if not has_columns(rows, "src", "dst", "bytes", "cost_usd"):
        return Skipped("transfers", "transfers.csv absent or empty (no dataset copied over the WAN)")
    crossings = run.rows("border_crossings.csv")
    crossings = crossings if has_columns(crossings, "dataset", "bytes", "src_jurisdiction", "dst_jurisdiction") else []
    reads = "transfers.csv, border_crossings.csv" if crossings else "transfers.csv"
    return Chart("transfers", "Data transfers: bytes, cost and border crossings", reads,
                 lambda: transfers_figure(rows, crossings))


def _energy(run: RunData) -> Entry:
    energy = run.summary.get("energy")
    if not isinstance(energy, dict) or not energy.get("by_region"):
        return Skipped("energy", "summary.json has no energy.by_region")
    return Chart("energy", "Energy, carbon and electricity cost by region", "summary.json (energy)",
                 lambda: energy_figure(energy))


def _failures(run: RunData) -> Entry:
    rows = run.rows("failures.csv")
    if not has_columns(rows, "kind", "region", "pool", "start_s", "end_s", "hit"):
        return Skipped("failures", "failures.csv absent or empty (nothing failed)")
    end_s = float(run.summary.get("sim_time_s") or 0.0)
    return Chart("failures", "Failure timeline: replicas down, outages, link failures", "failures.csv",
                 lambda: failures_figure(rows, end_s))


def run_charts(run: RunData) -> list[Entry]:
    """Every chart of a run folder, in report order (skips included)."""
    return [map_chart(run.folder)] + [build(run) for build in (
        _overview, _heatmap, _latency_cdf, _inference, _serving, _batching, _slo, _training, _transfers, _failures,
        _energy)]
