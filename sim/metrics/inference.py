"""Inference metrics: from the per-request log to the summary and the time series.

:class:`InferenceObserver` receives the :class:`~sim.records.RequestLog` the engine
publishes once at the end of the run; everything is computed from it, vectorised, with no
per-request objects. Conventions (also in docs/metrics.md):

- a request *arrives* at its origin at ``t_s``; ``arrived == completed + dropped + in_flight``
  counts every request that arrived during the run, warm-up included;
- latency, wait and SLO statistics cover requests that arrived at or after the warm-up;
- latency = RTT + wait + service (ms); SLO attainment = completed within ``slo_ms`` over
  completed + dropped, for workloads that set ``slo_ms`` (in-flight requests are left out);
- queue length and busy slots are exact time averages of the intervals each request spends
  queued ``[pool arrival, start)`` and in service ``[start, finish)``.

Public: ``InferenceLayout``, ``InferenceObserver``, ``inference_summary``,
``inference_timeseries``, ``interval_means``, ``latency_stats``, ``latency_cdf_rows``,
``busy_gpu_means``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.metrics.signals import bucket_edges
from sim.records import RequestLog, RequestStatus
from sim.scenario.model import Scenario
from sim.world import World

__all__ = ["busy_gpu_means", "LATENCY_CDF_COLUMNS", "latency_cdf_rows", "InferenceLayout", "InferenceObserver",
           "inference_summary", "inference_timeseries", "interval_means", "latency_stats", "INFERENCE_COLUMNS"]

LATENCY_CDF_COLUMNS = ("origin", "quantile", "latency_ms")
# A request is dropped when rejected by routing, timed out in a queue or lost to a failure.
_DROPPED = (RequestStatus.REJECTED, RequestStatus.TIMED_OUT, RequestStatus.FAILED)
_CDF_QUANTILES = np.round(np.concatenate((np.linspace(0, 0.99, 100), np.linspace(0.991, 1.0, 10))), 6)
INFERENCE_COLUMNS = ("arrivals", "completions", "dropped", "queue_len", "busy_slots",
                     "latency_p50_ms", "latency_p99_ms")


@dataclass(frozen=True)
class InferenceLayout:
    """Static facts the metrics need: names and sizes, no engine objects."""

    regions: tuple[str, ...]
    pool_region: np.ndarray        # region index per pool
    pool_slots: np.ndarray         # total slots per pool
    pool_gpus_per_slot: np.ndarray  # gpus_per_replica / slots_per_replica
    workloads: tuple[str, ...]
    slo_ms: tuple[float | None, ...]

    @classmethod
    def of(cls, scenario: Scenario, world: World) -> InferenceLayout:
        names = world.topology.names
        pools = world.pools
        return cls(regions=tuple(names),
                   pool_region=np.array([names.index(p.region) for p in pools], dtype=np.int64),
                   pool_slots=np.array([p.replicas * p.slots_per_replica for p in pools], dtype=np.int64),
                   pool_gpus_per_slot=np.array([p.gpus_per_replica / p.slots_per_replica for p in pools]),
                   workloads=tuple(w.name for w in scenario.inference),
                   slo_ms=tuple(w.slo_ms for w in scenario.inference))


class InferenceObserver:
    """Keeps the request log; computes the ``inference`` section, the request columns of
    the time series and ``latency_cdf.csv`` from it."""

    subscribes = (RequestLog,)

    def __init__(self, layout: InferenceLayout, warmup_s: float):
        self.layout, self.warmup_s = layout, warmup_s
        self.log: RequestLog | None = None

    def __call__(self, record: RequestLog) -> None:
        self.log = record

    def _require(self) -> RequestLog:
        if self.log is None:
            raise RuntimeError("the run published no request log")
        return self.log

    def summary(self, end_s: float) -> dict[str, Any]:
        return inference_summary(self._require(), self.layout, self.warmup_s, end_s)

    def columns(self, end_s: float, bucket_s: float) -> dict[str, dict[str, np.ndarray]]:
        return inference_timeseries(self._require(), self.layout, end_s, bucket_s)

    def busy_gpus(self, end_s: float) -> dict[str, float]:
        """Time-average GPUs serving requests per region over [warm-up, end)."""
        return busy_gpu_means(self._require(), self.layout, self.warmup_s, end_s)

    def latency_cdf(self) -> list[dict[str, Any]]:
        return latency_cdf_rows(self._require(), self.layout, self.warmup_s)


def latency_stats(values_ms: np.ndarray) -> dict[str, float | None]:
    if values_ms.size == 0:
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values_ms, [50, 95, 99])
    return {"mean": float(values_ms.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _cumulative_time(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point x: total time the intervals [s, e) cover below x."""
    s, e = np.sort(starts), np.sort(ends)
    cs, ce = np.concatenate(([0.0], np.cumsum(s))), np.concatenate(([0.0], np.cumsum(e)))
    ks, ke = np.searchsorted(s, points, side="left"), np.searchsorted(e, points, side="left")
    return (ks * points - cs[ks]) - (ke * points - ce[ke])


def interval_means(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean number of open intervals over each bucket [edges[k], edges[k+1])."""
    return np.diff(_cumulative_time(starts, ends, edges)) / np.diff(edges)


def _intervals(log: RequestLog, end_s: float):
    """Queue and service intervals of every routed request, censored at the end."""
    routed = log.pool >= 0
    arrive = log.pool_arrival_s
    reached = routed & (arrive < end_s)
    queued_until = np.where(np.isnan(log.wait_s), end_s, arrive + np.nan_to_num(log.wait_s))
    started = reached & ~np.isnan(log.wait_s) & (log.status != RequestStatus.TIMED_OUT)
    finish = np.minimum(queued_until + np.nan_to_num(log.service_s), end_s)
    return reached, arrive, queued_until, started, finish


def _mask_stats(log: RequestLog, mask: np.ndarray, layout: InferenceLayout, warmup_s: float) -> dict[str, Any]:
    status = log.status[mask]
    done = status == RequestStatus.COMPLETED
    dropped = np.isin(status, _DROPPED)
    measured = log.t_s[mask] >= warmup_s
    latency = log.latency_ms[mask]
    result = {
        "arrived": int(mask.sum()), "completed": int(done.sum()), "dropped": int(dropped.sum()),
        "in_flight": int((status == RequestStatus.IN_FLIGHT).sum()),
        "latency_ms": latency_stats(latency[done & measured]),
        "wait_ms": latency_stats(log.wait_s[mask][done & measured] * 1000.0),
        "slo_attainment": _slo(latency, log.workload[mask], done, dropped, measured, layout.slo_ms),
    }
    return result


def _slo(latency, workload, done, dropped, measured, slo_ms) -> float | None:
    limits = np.array([np.nan if s is None else s for s in slo_ms], dtype=float)
    limit = limits[workload] if len(workload) else np.zeros(0)
    counted = measured & ~np.isnan(limit) & (done | dropped)
    if not counted.any():
        return None
    met = counted & done & (latency <= np.nan_to_num(limit, nan=np.inf))
    return float(met.sum() / counted.sum())


def inference_summary(log: RequestLog, layout: InferenceLayout, warmup_s: float, end_s: float) -> dict[str, Any]:
    """The ``inference`` section of summary.json."""
    everything = np.ones(len(log.t_s), dtype=bool)
    summary = _mask_stats(log, everything, layout, warmup_s)
    summary["rejected"] = int((log.status == RequestStatus.REJECTED).sum())
    summary["timed_out"] = int((log.status == RequestStatus.TIMED_OUT).sum())
    summary["failed"] = int((log.status == RequestStatus.FAILED).sum())
    summary["by_origin"] = {name: _mask_stats(log, log.origin == i, layout, warmup_s)
                            for i, name in enumerate(layout.regions) if (log.origin == i).any()}
    region_of = np.where(log.pool >= 0, layout.pool_region[np.maximum(log.pool, 0)], -1)
    summary["by_region"] = {name: _mask_stats(log, region_of == i, layout, warmup_s)
                            for i, name in enumerate(layout.regions)
                            if layout.pool_slots[layout.pool_region == i].sum()}
    summary["by_workload"] = {name: _mask_stats(log, log.workload == i, layout, warmup_s)
                              for i, name in enumerate(layout.workloads)}
    return summary


def inference_timeseries(log: RequestLog, layout: InferenceLayout, end_s: float,
                         bucket_s: float) -> dict[str, dict[str, np.ndarray]]:
    """Per region, per bucket: arrivals, completions, dropped, queue length, busy slots and
    busy GPUs (time averages), latency p50/p99 of the requests completing in the bucket."""
    edges = bucket_edges(0.0, end_s, bucket_s)
    reached, arrive, queued_until, started, finish = _intervals(log, end_s)
    pool = np.maximum(log.pool, 0)
    region_of = np.where(log.pool >= 0, layout.pool_region[pool], -1)
    latency = log.latency_ms
    completed = log.status == RequestStatus.COMPLETED
    dropped = np.isin(log.status, _DROPPED)
    drop_time = np.where(log.status == RequestStatus.TIMED_OUT, queued_until, log.t_s)
    finish_at = queued_until + np.nan_to_num(log.service_s)
    result = {}
    for r, name in enumerate(layout.regions):
        mine = region_of == r
        q = mine & reached
        b = mine & started
        gpus = layout.pool_gpus_per_slot[pool[b]]
        busy_gpu_time = np.diff(_weighted_cumulative(queued_until[b], finish[b], gpus, edges)) / np.diff(edges)
        done_bucket = np.searchsorted(edges, finish_at[mine & completed], side="right") - 1
        result[name] = {
            "arrivals": np.histogram(arrive[q], edges)[0].astype(float),
            "completions": np.histogram(finish_at[mine & completed], edges)[0].astype(float),
            "dropped": np.histogram(drop_time[mine & dropped], edges)[0].astype(float),
            "queue_len": interval_means(arrive[q], queued_until[q], edges),
            "busy_slots": interval_means(queued_until[b], finish[b], edges),
            "busy_gpus": busy_gpu_time,
            "latency_p50_ms": _bucket_percentile(latency[mine & completed], done_bucket, len(edges) - 1, 50),
            "latency_p99_ms": _bucket_percentile(latency[mine & completed], done_bucket, len(edges) - 1, 99),
        }
    return result


def _weighted_cumulative(starts, ends, weights, points):
    """Like interval_means' integral, with each interval counted ``weight`` times."""
    total = np.zeros(len(points))
    for w in np.unique(weights):
        sel = weights == w
        total += w * _cumulative_time(starts[sel], ends[sel], points)
    return total


def _bucket_percentile(values, buckets, n_buckets, q) -> np.ndarray:
    out = np.full(n_buckets, np.nan)
    if values.size == 0:
        return out
    order = np.argsort(buckets, kind="stable")
    values, buckets = values[order], buckets[order]
    bounds = np.searchsorted(buckets, np.arange(n_buckets + 1))
    for k in range(n_buckets):
        chunk = values[bounds[k]:bounds[k + 1]]
        if chunk.size:
            out[k] = np.percentile(chunk, q)
    return out


def latency_cdf_rows(log: RequestLog, layout: InferenceLayout, warmup_s: float) -> list[dict[str, Any]]:
    """Latency quantiles of completed, post-warm-up requests, per origin and for all ('*')."""
    done = (log.status == RequestStatus.COMPLETED) & (log.t_s >= warmup_s)
    latency = log.latency_ms
    groups = [("*", done)] + [(name, done & (log.origin == i)) for i, name in enumerate(layout.regions)]
    rows = []
    for name, mask in groups:
        if not mask.any():
            continue
        values = np.quantile(latency[mask], _CDF_QUANTILES)
        rows += [{"origin": name, "quantile": q, "latency_ms": v} for q, v in zip(_CDF_QUANTILES, values, strict=True)]
    return rows


def busy_gpu_means(log: RequestLog, layout: InferenceLayout, start_s: float, end_s: float) -> dict[str, float]:
    """Exact time-average of GPUs serving requests in [start_s, end_s), per region."""
    reached, arrive, queued_until, started, finish = _intervals(log, end_s)
    pool = np.maximum(log.pool, 0)
    region_of = np.where(log.pool >= 0, layout.pool_region[pool], -1)
    points = np.array([start_s, end_s])
    result = {}
    for r, name in enumerate(layout.regions):
        b = (region_of == r) & started
        gpus = layout.pool_gpus_per_slot[pool[b]]
        busy = np.diff(_weighted_cumulative(queued_until[b], finish[b], gpus, points))[0]
        result[name] = float(busy / (end_s - start_s)) if end_s > start_s else 0.0
    return result
