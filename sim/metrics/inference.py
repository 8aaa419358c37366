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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.metrics.serving import batch_columns, pool_summary
from sim.metrics.signals import bucket_edges
from sim.records import BatchLog, RequestLog, RequestStatus
from sim.scenario.model import Scenario
from sim.world import World

__all__ = ["busy_gpu_means", "LATENCY_CDF_COLUMNS", "latency_cdf_rows", "InferenceLayout", "InferenceObserver",
           "objective_limits", "meets_objectives",
           "inference_summary", "inference_timeseries", "interval_means", "latency_stats", "INFERENCE_COLUMNS"]

LATENCY_CDF_COLUMNS = ("origin", "quantile", "latency_ms")
# A request is dropped when rejected by routing, timed out in a queue or lost to a failure.
_DROPPED = (RequestStatus.REJECTED, RequestStatus.TIMED_OUT, RequestStatus.FAILED)
_CDF_QUANTILES = np.round(np.concatenate((np.linspace(0, 0.99, 100), np.linspace(0.991, 1.0, 10))), 6)
INFERENCE_COLUMNS = ("arrivals", "completions", "dropped", "queue_len", "busy_slots",
                     "latency_p50_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p99_ms", "tpot_mean_ms",
                     "batch_size", "kv_fraction")


@dataclass(frozen=True)
class InferenceLayout:
    """Static facts the metrics need: names and sizes, no engine objects."""

    regions: tuple[str, ...]
    pool_region: np.ndarray        # region index per pool
    pool_slots: np.ndarray         # total slots per pool
    pool_gpus_per_slot: np.ndarray  # gpus_per_replica / slots_per_replica
    workloads: tuple[str, ...]
    slo_ms: tuple[float | None, ...]  # end-to-end objective per workload
    slo_ttft_ms: tuple[float | None, ...] = ()
    slo_tpot_ms: tuple[float | None, ...] = ()
    pool_keys: tuple[str, ...] = ()  # "region.pool"
    batching: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per pool
    pool_gpus_per_replica: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool_replicas: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def of(cls, scenario: Scenario, world: World) -> InferenceLayout:
        names = world.topology.names
        pools = world.pools
        batching = np.array([p.serving is not None for p in pools], dtype=bool)
        # A batching replica's GPUs are busy while it iterates (from the batch log), not
        # per request; its "slots" are its max_batch sequences.
        slots = [p.replicas * (p.serving.max_batch if p.serving else p.slots_per_replica) for p in pools]
        per_slot = [0.0 if p.serving else p.gpus_per_replica / p.slots_per_replica for p in pools]
        wls = scenario.inference
        return cls(regions=tuple(names),
                   pool_region=np.array([names.index(p.region) for p in pools], dtype=np.int64),
                   pool_slots=np.array(slots, dtype=np.int64), pool_gpus_per_slot=np.array(per_slot),
                   workloads=tuple(w.name for w in wls), slo_ms=tuple(w.e2e_slo_ms for w in wls),
                   slo_ttft_ms=tuple(w.slo.ttft_ms for w in wls), slo_tpot_ms=tuple(w.slo.tpot_ms for w in wls),
                   pool_keys=tuple(f"{p.region}.{p.name}" for p in pools), batching=batching,
                   pool_gpus_per_replica=np.array([float(p.gpus_per_replica) for p in pools]),
                   pool_replicas=np.array([p.replicas for p in pools], dtype=np.int64))

    def limits(self) -> np.ndarray:
        """Per workload, the (TTFT, TPOT, end-to-end) objectives in ms, NaN where unset."""
        n = len(self.workloads)
        return objective_limits(list(zip(self.slo_ttft_ms or (None,) * n, self.slo_tpot_ms or (None,) * n,
                                         self.slo_ms, strict=True)))


def objective_limits(objectives: Sequence[tuple[float | None, float | None, float | None]]) -> np.ndarray:
    """``(n_workloads, 3)`` array of (TTFT, TPOT, end-to-end) objectives in ms, NaN where unset."""
    return np.array([[np.nan if v is None else v for v in row] for row in objectives], dtype=float).reshape(-1, 3)


def meets_objectives(latency_ms: np.ndarray, ttft_ms: np.ndarray, tpot_ms: np.ndarray, workload: np.ndarray,
                     limits: np.ndarray) -> np.ndarray:
    """Whether each request met every objective its workload sets (a figure it does not
    have, such as the TPOT of a one-token answer, cannot miss)."""
    per_request = limits[workload] if len(workload) else np.zeros((0, 3))
    met = np.ones(len(workload), dtype=bool)
    for k, value in enumerate((ttft_ms, tpot_ms, latency_ms)):
        limit = per_request[:, k]
        met &= np.isnan(limit) | np.isnan(value) | (value <= np.nan_to_num(limit, nan=np.inf))
    return met


class InferenceObserver:
    """Keeps the request log (and the batching replicas' log); computes the ``inference``
    section, the request columns of the time series and ``latency_cdf.csv`` from them."""

    subscribes = (RequestLog, BatchLog)

    def __init__(self, layout: InferenceLayout, warmup_s: float):
        self.layout, self.warmup_s = layout, warmup_s
        self.log: RequestLog | None = None
        self.batches: BatchLog | None = None

    def __call__(self, record: RequestLog | BatchLog) -> None:
        if isinstance(record, BatchLog):
            self.batches = record
        else:
            self.log = record

    def _require(self) -> RequestLog:
        if self.log is None:
            raise RuntimeError("the run published no request log")
        return self.log

    def summary(self, end_s: float) -> dict[str, Any]:
        summary = inference_summary(self._require(), self.layout, self.warmup_s, end_s)
        if self.batches is not None:
            summary["by_pool"] = pool_summary(self.batches, self.layout, self.warmup_s, end_s)
        return summary

    def columns(self, end_s: float, bucket_s: float) -> dict[str, dict[str, np.ndarray]]:
        columns = inference_timeseries(self._require(), self.layout, end_s, bucket_s)
        edges = bucket_edges(0.0, end_s, bucket_s)
        batching = batch_columns(self.batches, self.layout, edges)
        for region, cols in columns.items():
            extra = batching[region]
            cols["busy_gpus"] = cols["busy_gpus"] + extra.pop("busy_gpus")
            cols.update(extra)
        return columns

    def busy_gpus(self, end_s: float) -> dict[str, float]:
        """Time-average GPUs serving requests per region over [warm-up, end)."""
        busy = busy_gpu_means(self._require(), self.layout, self.warmup_s, end_s)
        if self.batches is None:
            return busy
        edges = np.array([self.warmup_s, end_s])
        extra = batch_columns(self.batches, self.layout, edges)
        return {r: busy[r] + float(extra[r]["busy_gpus"][0]) for r in busy}

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


@dataclass(frozen=True)
class _Requests:
    """The per-request figures every group's statistics are drawn from, computed once."""

    status: np.ndarray
    done: np.ndarray
    dropped: np.ndarray
    measured: np.ndarray
    latency: np.ndarray
    wait_ms: np.ndarray
    ttft: np.ndarray
    tpot: np.ndarray
    met: np.ndarray  # met every objective of its workload
    judged: np.ndarray  # its workload sets an objective

    @classmethod
    def of(cls, log: RequestLog, layout: InferenceLayout, warmup_s: float) -> _Requests:
        latency, ttft, tpot = log.latency_ms, log.ttft_ms, log.tpot_s * 1000.0
        limits = layout.limits()
        judged = ~np.isnan(limits).all(axis=1)
        return cls(status=log.status, done=log.status == RequestStatus.COMPLETED,
                   dropped=np.isin(log.status, _DROPPED), measured=log.t_s >= warmup_s, latency=latency,
                   wait_ms=log.wait_s * 1000.0, ttft=ttft, tpot=tpot,
                   met=meets_objectives(latency, ttft, tpot, log.workload, limits),
                   judged=judged[log.workload] if len(log.workload) else np.zeros(0, dtype=bool))


def _mask_stats(r: _Requests, mask: np.ndarray | slice) -> dict[str, Any]:
    done, dropped, measured = r.done[mask], r.dropped[mask], r.measured[mask]
    counted = done & measured
    ttft, tpot = r.ttft[mask], r.tpot[mask]
    judged = measured & r.judged[mask] & (done | dropped)
    return {
        "arrived": int(done.size), "completed": int(done.sum()), "dropped": int(dropped.sum()),
        "in_flight": int((r.status[mask] == RequestStatus.IN_FLIGHT).sum()),
        "latency_ms": latency_stats(r.latency[mask][counted]),
        "wait_ms": latency_stats(r.wait_ms[mask][counted]),
        "ttft_ms": latency_stats(ttft[counted & ~np.isnan(ttft)]),
        "tpot_ms": latency_stats(tpot[counted & ~np.isnan(tpot)]),
        # Completed within every objective over completed + dropped, for workloads with one.
        "slo_attainment": float((judged & done & r.met[mask]).sum() / judged.sum()) if judged.any() else None,
    }


def goodput_rps(log: RequestLog, layout: InferenceLayout, warmup_s: float, end_s: float) -> float:
    """Completed requests per second (arrived in [warm-up, end)) that met every objective
    their workload sets (all completed requests when it sets none)."""
    r = _Requests.of(log, layout, warmup_s)
    return _goodput(r, warmup_s, end_s)


def _goodput(r: _Requests, warmup_s: float, end_s: float) -> float:
    return float((r.done & r.measured & r.met).sum() / (end_s - warmup_s)) if end_s > warmup_s else 0.0


def prefix_cache_summary(log: RequestLog, r: _Requests) -> dict[str, Any]:
    """How much the replicas' prefix caches saved: over post-warm-up requests that opened
    with a shared prompt and were admitted to a batching replica."""
    admitted = r.measured & (log.prefix >= 0) & ~np.isnan(log.wait_s) & r.done
    hit = admitted & (log.cached_tokens > 0)
    ttft = r.ttft
    return {
        "requests": int(admitted.sum()),
        "hit_rate": float(hit.sum() / admitted.sum()) if admitted.any() else None,
        "prefill_tokens_saved": int(log.cached_tokens[admitted].sum()),
        "ttft_ms_hit": latency_stats(ttft[hit & ~np.isnan(ttft)]),
        "ttft_ms_miss": latency_stats(ttft[admitted & ~hit & ~np.isnan(ttft)]),
    }


def inference_summary(log: RequestLog, layout: InferenceLayout, warmup_s: float, end_s: float) -> dict[str, Any]:
    """The ``inference`` section of summary.json."""
    r = _Requests.of(log, layout, warmup_s)
    summary = _mask_stats(r, slice(None))
    summary["rejected"] = int((log.status == RequestStatus.REJECTED).sum())
    summary["timed_out"] = int((log.status == RequestStatus.TIMED_OUT).sum())
    summary["failed"] = int((log.status == RequestStatus.FAILED).sum())
    summary["goodput_rps"] = _goodput(r, warmup_s, end_s)
    if (log.prefix >= 0).any():
        summary["prefix_cache"] = prefix_cache_summary(log, r)
    summary["by_origin"] = {name: _mask_stats(r, log.origin == i)
                            for i, name in enumerate(layout.regions) if (log.origin == i).any()}
    region_of = np.where(log.pool >= 0, layout.pool_region[np.maximum(log.pool, 0)], -1)
    summary["by_region"] = {name: _mask_stats(r, region_of == i)
                            for i, name in enumerate(layout.regions)
                            if layout.pool_slots[layout.pool_region == i].sum()}
    summary["by_workload"] = {name: _mask_stats(r, log.workload == i)
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
    ttft, tpot = log.ttft_ms, log.tpot_s * 1000.0
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
            "ttft_p50_ms": _bucket_percentile(ttft[mine & completed], done_bucket, len(edges) - 1, 50),
            "ttft_p99_ms": _bucket_percentile(ttft[mine & completed], done_bucket, len(edges) - 1, 99),
            "tpot_mean_ms": _bucket_mean(tpot[mine & completed], done_bucket, len(edges) - 1),
        }
    return result


def _bucket_mean(values, buckets, n_buckets) -> np.ndarray:
    """Mean of the finite values per bucket (NaN where none)."""
    ok = ~np.isnan(values)
    total = np.bincount(buckets[ok], weights=values[ok], minlength=n_buckets)[:n_buckets]
    count = np.bincount(buckets[ok], minlength=n_buckets)[:n_buckets]
    return np.divide(total, count, out=np.full(n_buckets, np.nan), where=count > 0)


def _weighted_cumulative(starts, ends, weights, points):
    """Like interval_means' integral, with each interval counted ``weight`` times."""
    total = np.zeros(len(points))
    for w in np.unique(weights):
        sel = weights == w
        total += w * _cumulative_time(starts[sel], ends[sel], points)
    return total


def _bucket_percentile(values, buckets, n_buckets, q) -> np.ndarray:
    out = np.full(n_buckets, np.nan)
    finite = ~np.isnan(values)
    values, buckets = values[finite], buckets[finite]
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
