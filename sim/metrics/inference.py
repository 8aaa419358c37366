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

from sim.metrics.arrays import (
    consume_stats,
    coverage,
    coverage_means,
    group_percentiles,
    histogram,
    sorted_quantiles,
)
from sim.metrics.serving import batch_columns, pool_summary
from sim.metrics.signals import bucket_edges
from sim.records import BatchLog, RequestLog, RequestStatus
from sim.scenario.model import Scenario
from sim.world import World

__all__ = ["busy_gpu_means", "LATENCY_CDF_COLUMNS", "latency_cdf_rows", "InferenceLayout", "InferenceObserver",
           "objective_limits", "meets_objectives",
           "inference_summary", "inference_timeseries", "interval_means", "latency_stats", "INFERENCE_COLUMNS",
           "subset_stats"]

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
    met = np.ones(len(workload), dtype=bool)
    for w, k in zip(*np.nonzero(~np.isnan(limits)), strict=True):
        value = (ttft_ms, tpot_ms, latency_ms)[k]
        rows = workload == w
        if rows.all():  # one workload: no masked copies
            met &= np.isnan(value) | (value <= limits[w, k])
        else:
            met[rows] &= np.isnan(value[rows]) | (value[rows] <= limits[w, k])
    return met


class InferenceObserver:
    """Keeps the request log (and the batching replicas' log); computes the ``inference``
    section, the request columns of the time series and ``latency_cdf.csv`` from them."""

    subscribes = (RequestLog, BatchLog)

    def __init__(self, layout: InferenceLayout, warmup_s: float):
        self.layout, self.warmup_s = layout, warmup_s
        self.log: RequestLog | None = None
        self.batches: BatchLog | None = None
        self._busy_means: tuple[float, dict[str, float]] | None = None

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
        edges = bucket_edges(0.0, end_s, bucket_s)
        # The busy GPUs of the summary come from the same sorted intervals: kept for busy_gpus.
        window = np.array([self.warmup_s, end_s])
        columns, busy = _series(self._require(), self.layout, end_s, edges, window)
        self._busy_means = (end_s, busy)
        batching = batch_columns(self.batches, self.layout, edges)
        for region, cols in columns.items():
            extra = batching[region]
            cols["busy_gpus"] = cols["busy_gpus"] + extra.pop("busy_gpus")
            cols.update(extra)
        return columns

    def busy_gpus(self, end_s: float) -> dict[str, float]:
        """Time-average GPUs serving requests per region over [warm-up, end)."""
        if self._busy_means is not None and self._busy_means[0] == end_s:
            busy = dict(self._busy_means[1])
        else:
            busy = busy_gpu_means(self._require(), self.layout, self.warmup_s, end_s)
        if self.batches is None:
            return busy
        edges = np.array([self.warmup_s, end_s])
        extra = batch_columns(self.batches, self.layout, edges, busy_only=True)
        return {r: busy[r] + float(extra[r]["busy_gpus"][0]) for r in busy}

    def latency_cdf(self) -> list[dict[str, Any]]:
        return latency_cdf_rows(self._require(), self.layout, self.warmup_s)


def latency_stats(values_ms: np.ndarray) -> dict[str, float | None]:
    return consume_stats(np.array(values_ms, dtype=float))


def _cumulative_time(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point x: total time the intervals [s, e) cover below x."""
    return coverage(np.array(starts, dtype=float), np.array(ends, dtype=float), points)


def interval_means(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean number of open intervals over each bucket [edges[k], edges[k+1])."""
    return np.diff(_cumulative_time(starts, ends, edges)) / np.diff(edges)


def _retried(log: RequestLog) -> bool:
    """Whether any request was routed again; when none was, ``x + retry_s`` is ``x`` and is
    not computed (the same numbers, without a full-length temporary)."""
    return bool(log.retry_s.any())


def _has_values(column: np.ndarray) -> bool:
    """Whether a per-request figure that may be absent (NaN) exists for any request."""
    return not bool(np.isnan(column).all())


def _pool_arrival(log: RequestLog, mask: np.ndarray | None = None) -> np.ndarray:
    """``log.pool_arrival_s`` (of the masked requests)."""
    pick = (lambda a: a) if mask is None else (lambda a: a[mask])
    if _retried(log):
        return pick(log.t_s) + pick(log.retry_s) + pick(log.rtt_ms) / 2000.0
    return pick(log.t_s) + pick(log.rtt_ms) / 2000.0


def _owned(column: np.ndarray, mask: np.ndarray | slice) -> np.ndarray:
    """``column[mask]`` as an array of its own (a slice is copied), to compute in place."""
    picked = column[mask]
    return picked.copy() if np.may_share_memory(picked, column) else picked


def _latency(log: RequestLog, mask: np.ndarray | slice) -> np.ndarray:
    """``log.latency_ms[mask]`` (``rtt + (retry + wait + service) * 1000``), computed for the
    masked requests in one array: the same operations in the same order, in place."""
    terms = (log.retry_s, log.wait_s, log.service_s) if _retried(log) else (log.wait_s, log.service_s)
    out = _owned(terms[0], mask)
    for term in terms[1:]:
        np.add(out, term[mask], out=out)
    out *= 1000.0
    return np.add(log.rtt_ms[mask], out, out=out)


def _ttft(log: RequestLog, mask: np.ndarray | slice) -> np.ndarray:
    """``log.ttft_ms[mask]`` (``rtt + (retry + first token) * 1000``), computed likewise."""
    out = _owned(log.first_token_s, mask)
    if _retried(log):
        np.add(log.retry_s[mask], out, out=out)
    out *= 1000.0
    return np.add(log.rtt_ms[mask], out, out=out)


def _region_of(log: RequestLog, layout: InferenceLayout) -> np.ndarray:
    """The region index of each request's pool, -1 if never routed (int16: a small column)."""
    pool_region = layout.pool_region.astype(np.int16)
    return np.where(log.pool >= 0, pool_region[np.maximum(log.pool, 0)], np.int16(-1))


def _groups(keys: np.ndarray, n: int) -> list[np.ndarray]:
    """For each key ``0 .. n-1``, the indices of the requests with that key in ascending
    order (``np.flatnonzero(keys == k)``), from one stable sort: a group's columns are then
    picked in time proportional to its size, not to the whole log's, in the same order."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1), side="left")
    return [order[bounds[k]:bounds[k + 1]] for k in range(n)]


def _queued_until(log: RequestLog, arrive: np.ndarray, end_s: float) -> np.ndarray:
    """When each request left its queue (started, or timed out); the end while still queued."""
    return np.where(np.isnan(log.wait_s), end_s, arrive + np.nan_to_num(log.wait_s))


def _started(log: RequestLog, reached: np.ndarray) -> np.ndarray:
    return reached & ~np.isnan(log.wait_s) & (log.status != RequestStatus.TIMED_OUT)


@dataclass(frozen=True)
class _Requests:
    """The per-request flags every group's statistics are drawn from, computed once, and
    the full latency; TTFT and TPOT only when some request has them."""

    log: RequestLog
    done: np.ndarray
    dropped: np.ndarray
    measured: np.ndarray
    latency: np.ndarray
    ttft: np.ndarray | None
    tpot: np.ndarray | None
    met: np.ndarray  # met every objective of its workload
    judged: np.ndarray  # its workload sets an objective

    @classmethod
    def of(cls, log: RequestLog, layout: InferenceLayout, warmup_s: float) -> _Requests:
        latency = _latency(log, slice(None))
        ttft = _ttft(log, slice(None)) if _has_values(log.first_token_s) else None
        tpot = log.tpot_s * 1000.0 if _has_values(log.tpot_s) else None
        absent = np.broadcast_to(np.nan, latency.shape)
        limits = layout.limits()
        judged = ~np.isnan(limits).all(axis=1)
        met = meets_objectives(latency, absent if ttft is None else ttft, absent if tpot is None else tpot,
                               log.workload, limits)
        return cls(log=log, done=log.status == RequestStatus.COMPLETED, dropped=np.isin(log.status, _DROPPED),
                   measured=log.t_s >= warmup_s, latency=latency, ttft=ttft, tpot=tpot, met=met,
                   judged=judged[log.workload] if len(log.workload) else np.zeros(0, dtype=bool))


def _mask_stats(r: _Requests, mask: np.ndarray | None) -> dict[str, Any]:
    """The statistics of the requests in ``mask`` (a boolean mask, or their indices in
    ascending order; None: every request)."""
    if mask is not None and mask.dtype == np.bool_:
        mask = np.flatnonzero(mask)
    pick = (lambda a: a) if mask is None else (lambda a: a[mask])
    done, dropped, measured = pick(r.done), pick(r.dropped), pick(r.measured)
    counted = r.done & r.measured if mask is None else mask[done & measured]
    judged = measured & pick(r.judged) & (done | dropped)
    return {
        "arrived": int(done.size), "completed": int(done.sum()), "dropped": int(dropped.sum()),
        "in_flight": int((pick(r.log.status) == RequestStatus.IN_FLIGHT).sum()),
        "latency_ms": consume_stats(r.latency[counted]),
        "wait_ms": consume_stats(_times_1000(r.log.wait_s[counted])),
        "ttft_ms": _present_stats(r.ttft, counted),
        "tpot_ms": _present_stats(r.tpot, counted),
        # Completed within every objective over completed + dropped, for workloads with one.
        "slo_attainment": float((judged & done & pick(r.met)).sum() / judged.sum()) if judged.any() else None,
    }


def _times_1000(seconds: np.ndarray) -> np.ndarray:
    """Milliseconds, in place (``seconds`` is a copy of the caller's)."""
    seconds *= 1000.0
    return seconds


def _present_stats(values: np.ndarray | None, counted: np.ndarray) -> dict[str, float | None]:
    if values is None:
        return consume_stats(np.empty(0))
    chosen = values[counted]
    return consume_stats(chosen[~np.isnan(chosen)])


def _group_stats(r: _Requests, rows: np.ndarray, everyone: dict[str, Any]) -> dict[str, Any]:
    """``_mask_stats`` of the requests ``rows`` (a group of :func:`_groups`); when that is
    every request, a copy of ``everyone`` (the same figures, not computed again)."""
    if len(rows) == len(r.done):
        return {k: dict(v) if isinstance(v, dict) else v for k, v in everyone.items()}
    return _mask_stats(r, rows)


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
    ttft = r.ttft if r.ttft is not None else np.full(len(log.t_s), np.nan)
    return {
        "requests": int(admitted.sum()),
        "hit_rate": float(hit.sum() / admitted.sum()) if admitted.any() else None,
        "prefill_tokens_saved": int(log.cached_tokens[admitted].sum()),
        "ttft_ms_hit": latency_stats(ttft[hit & ~np.isnan(ttft)]),
        "ttft_ms_miss": latency_stats(ttft[admitted & ~hit & ~np.isnan(ttft)]),
    }


def disaggregation_summary(log: RequestLog, r: _Requests, layout: InferenceLayout) -> dict[str, Any]:
    """Requests (after the warm-up) whose KV cache went from a prefill to a decode pool:
    how many, how long the copies took, where they decoded, and their TTFT had the decode
    pool streamed the first token (once the cache landed, on its own way back)."""
    moved = r.measured & (log.decode_pool >= 0)
    landed = moved & ~np.isnan(log.kv_transfer_s)
    via_decode = landed & r.done & ~np.isnan(log.first_token_s)
    ttft_via_decode = (log.rtt_ms[via_decode] / 2 + log.decode_rtt_ms[via_decode] / 2
                       + (log.retry_s[via_decode] + log.first_token_s[via_decode]
                          + log.kv_transfer_s[via_decode]) * 1000.0)
    across = landed & (layout.pool_region[np.maximum(log.decode_pool, 0)]
                       != layout.pool_region[np.maximum(log.pool, 0)])
    return {
        "requests": int(moved.sum()),
        "kv_transferred": int(landed.sum()),
        "across_regions": int(across.sum()),
        "kv_transfer_ms": latency_stats(log.kv_transfer_s[landed] * 1000.0),
        "ttft_ms_via_decode": latency_stats(ttft_via_decode),
        "by_decode_pool": {layout.pool_keys[p]: int((landed & (log.decode_pool == p)).sum())
                           for p in np.unique(log.decode_pool[landed]).tolist()},
    }


def sessions_summary(log: RequestLog, r: _Requests) -> dict[str, Any]:
    """Conversations whose first turn arrived after the warm-up: how many, how many turns
    they sent, and how the later turns fared (their prompts carry the conversation)."""
    first = r.measured & (log.turn == 1)
    mine = np.isin(log.session, log.session[first]) & (log.session >= 0)
    later = mine & (log.turn > 1)
    admitted = later & r.done & ~np.isnan(log.wait_s)
    ttft = r.ttft if r.ttft is not None else np.full(len(log.t_s), np.nan)
    sessions = int(first.sum())
    return {
        "sessions": sessions,
        "turns": int(mine.sum()),
        "turns_per_session": float(mine.sum() / sessions) if sessions else None,
        "later_turns": int(later.sum()),
        "later_turn_hit_rate": float((admitted & (log.cached_tokens > 0)).sum() / admitted.sum())
        if admitted.any() else None,
        "later_turn_ttft_ms": latency_stats(ttft[admitted & ~np.isnan(ttft)]),
    }


def subset_stats(log: RequestLog, layout: InferenceLayout, warmup_s: float, mask: np.ndarray) -> dict[str, Any]:
    """The statistics of the ``inference`` section (counts, latency, TTFT, TPOT, SLO
    attainment) over the requests in ``mask``, with the same definitions."""
    return _mask_stats(_Requests.of(log, layout, warmup_s), mask)


def inference_summary(log: RequestLog, layout: InferenceLayout, warmup_s: float, end_s: float) -> dict[str, Any]:
    """The ``inference`` section of summary.json."""
    r = _Requests.of(log, layout, warmup_s)
    summary = _mask_stats(r, None)
    everyone = {k: dict(v) if isinstance(v, dict) else v for k, v in summary.items()}
    summary["rejected"] = int((log.status == RequestStatus.REJECTED).sum())
    summary["timed_out"] = int((log.status == RequestStatus.TIMED_OUT).sum())
    summary["failed"] = int((log.status == RequestStatus.FAILED).sum())
    summary["goodput_rps"] = _goodput(r, warmup_s, end_s)
    if (log.prefix >= 0).any():
        summary["prefix_cache"] = prefix_cache_summary(log, r)
    if len(log.session):
        summary["sessions"] = sessions_summary(log, r)
    if len(log.decode_pool):
        summary["disaggregation"] = disaggregation_summary(log, r, layout)
    origins = _groups(log.origin, len(layout.regions))
    summary["by_origin"] = {name: _group_stats(r, origins[i], everyone)
                            for i, name in enumerate(layout.regions) if len(origins[i])}
    del origins
    regions = _groups(_region_of(log, layout), len(layout.regions))
    summary["by_region"] = {name: _group_stats(r, regions[i], everyone)
                            for i, name in enumerate(layout.regions)
                            if layout.pool_slots[layout.pool_region == i].sum()}
    del regions
    workloads = _groups(log.workload, len(layout.workloads))
    summary["by_workload"] = {name: _group_stats(r, workloads[i], everyone)
                              for i, name in enumerate(layout.workloads)}
    return summary


def inference_timeseries(log: RequestLog, layout: InferenceLayout, end_s: float,
                         bucket_s: float) -> dict[str, dict[str, np.ndarray]]:
    """Per region, per bucket: arrivals, completions, dropped, queue length, busy slots and
    busy GPUs (time averages), latency p50/p99 of the requests completing in the bucket."""
    return _series(log, layout, end_s, bucket_edges(0.0, end_s, bucket_s), None)[0]


def _series(log: RequestLog, layout: InferenceLayout, end_s: float, edges: np.ndarray,
            window: np.ndarray | None) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:
    """The time-series columns per region and, over ``window`` (two points) if given, the
    time-average busy GPUs per region (the same intervals, sorted once for both).

    Phases (arrivals and queues, then service, then completions) keep at most a few
    full-length columns alive at a time."""
    regions = _groups(_region_of(log, layout), len(layout.regions))  # each region's requests
    arrive = _pool_arrival(log)
    queued_until = _queued_until(log, arrive, end_s)
    reached = (log.pool >= 0) & (arrive < end_s)
    columns: dict[str, dict[str, np.ndarray]] = {}
    for rows, name in zip(regions, layout.regions, strict=True):
        q = rows[reached[rows]]
        columns[name] = {"arrivals": histogram(arrive[q], edges),
                         "queue_len": coverage_means(arrive[q], queued_until[q], edges)}
    del arrive
    started = _started(log, reached)
    busy_means = {}
    for rows, name in zip(regions, layout.regions, strict=True):
        busy, gpu_time, means = _busy(log, layout, rows[started[rows]], queued_until, end_s, edges, window)
        columns[name].update(busy_slots=busy, busy_gpus=gpu_time)
        busy_means[name] = means
    del started
    completed = log.status == RequestStatus.COMPLETED
    dropped = np.isin(log.status, _DROPPED)
    tokens = _has_values(log.first_token_s), _has_values(log.tpot_s)
    for rows, name in zip(regions, layout.regions, strict=True):
        columns[name].update(_completions(log, rows[completed[rows]], rows[dropped[rows]], queued_until, edges,
                                          tokens))
    return {name: _in_order(cols) for name, cols in columns.items()}, busy_means


def _finish_at(log: RequestLog, queued_until: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """When each masked request's service ends (if it ran to completion):
    ``queued_until + nan_to_num(service)``, computed in one array."""
    out = np.nan_to_num(_owned(log.service_s, mask), copy=False)
    return np.add(queued_until[mask], out, out=out)


def _ended_by(finish: np.ndarray, end_s: float) -> np.ndarray:
    """Service ends censored at the end of the run (in place)."""
    return np.minimum(finish, end_s, out=finish)


def _busy(log: RequestLog, layout: InferenceLayout, b: np.ndarray, queued_until: np.ndarray, end_s: float,
          edges: np.ndarray, window: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Busy slots and busy GPUs per bucket, and the busy GPUs' mean over ``window``, of the
    service intervals ``[queued_until, min(finish, end))`` of the requests in ``b`` (a mask
    or indices; GPUs weigh each interval by its pool)."""
    pool = np.maximum(log.pool[b], 0)
    present = np.bincount(pool, minlength=len(layout.pool_gpus_per_slot)) > 0
    weights = np.unique(layout.pool_gpus_per_slot[present])  # the distinct weights of the intervals
    points = edges if window is None else np.concatenate((edges, window))
    slots = coverage(queued_until[b], _ended_by(_finish_at(log, queued_until, b), end_s), points)
    total = np.zeros(len(points))
    for w in weights:
        if len(weights) == 1:  # every interval has this weight: the same intervals
            total += w * slots
        else:
            sel = layout.pool_gpus_per_slot[pool] == w
            total += w * coverage(queued_until[b][sel], _ended_by(_finish_at(log, queued_until, b)[sel], end_s),
                                  points)
    n = len(edges)
    gpu_time = np.diff(total[:n]) / np.diff(edges)
    means = 0.0
    if window is not None:
        means = float(np.diff(total[n:])[0] / (window[1] - window[0])) if window[1] > window[0] else 0.0
    return np.diff(slots[:n]) / np.diff(edges), gpu_time, means


def _completions(log: RequestLog, c: np.ndarray, d: np.ndarray, queued_until: np.ndarray,
                 edges: np.ndarray, tokens: tuple[bool, bool] | None = None) -> dict[str, np.ndarray]:
    """Completions and drops per bucket, and latency figures of the requests completing in
    each bucket, for completed requests ``c`` and dropped ones ``d`` of a region (masks or
    indices). ``tokens``: whether any request has a first-token time and a TPOT (None:
    look)."""
    has_ttft, has_tpot = tokens if tokens is not None else (_has_values(log.first_token_s), _has_values(log.tpot_s))
    n = len(edges) - 1
    done_at = _finish_at(log, queued_until, c)
    timed_out = log.status[d] == RequestStatus.TIMED_OUT
    drop_time = np.where(timed_out, queued_until[d], log.t_s[d])
    bucket = np.searchsorted(edges, done_at, side="right").astype(np.int32)  # buckets fit; half the bytes
    bucket -= 1
    columns = {"completions": histogram(done_at, edges), "dropped": histogram(drop_time, edges)}
    del done_at, drop_time
    columns["latency_p50_ms"], columns["latency_p99_ms"] = group_percentiles(_latency(log, c), bucket, n, (50, 99))
    nan = np.full(n, np.nan)
    if has_ttft:
        columns["ttft_p50_ms"], columns["ttft_p99_ms"] = group_percentiles(_ttft(log, c), bucket, n, (50, 99))
    else:
        columns["ttft_p50_ms"], columns["ttft_p99_ms"] = nan, nan.copy()
    columns["tpot_mean_ms"] = _bucket_mean(log.tpot_s[c] * 1000.0, bucket, n) if has_tpot else nan.copy()
    return columns


_SERIES_ORDER = ("arrivals", "completions", "dropped", "queue_len", "busy_slots", "busy_gpus", "latency_p50_ms",
                 "latency_p99_ms", "ttft_p50_ms", "ttft_p99_ms", "tpot_mean_ms")


def _in_order(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: columns[k] for k in _SERIES_ORDER}


def _bucket_mean(values, buckets, n_buckets) -> np.ndarray:
    """Mean of the finite values per bucket (NaN where none)."""
    ok = ~np.isnan(values)
    total = np.bincount(buckets[ok], weights=values[ok], minlength=n_buckets)[:n_buckets]
    count = np.bincount(buckets[ok], minlength=n_buckets)[:n_buckets]
    return np.divide(total, count, out=np.full(n_buckets, np.nan), where=count > 0)


def latency_cdf_rows(log: RequestLog, layout: InferenceLayout, warmup_s: float) -> list[dict[str, Any]]:
    """Latency quantiles of completed, post-warm-up requests, per origin and for all ('*')."""
    done = (log.status == RequestStatus.COMPLETED) & (log.t_s >= warmup_s)
    n_done = int(done.sum())
    origins = _groups(log.origin, len(layout.regions))
    everyone = None
    rows = []
    for i, name in [(-1, "*")] + list(enumerate(layout.regions)):
        mask = done if i < 0 else origins[i][done[origins[i]]]  # a mask, or an origin's indices
        if (len(mask) if i >= 0 else n_done) == 0:
            continue
        if i >= 0 and everyone is not None and len(mask) == n_done:
            values = everyone  # this origin sent every request: the same quantiles
        else:
            values = _latency(log, mask)
            values.sort()
            values = sorted_quantiles(values, _CDF_QUANTILES)
        if i < 0:
            everyone = values
        rows += [{"origin": name, "quantile": q, "latency_ms": v} for q, v in zip(_CDF_QUANTILES, values, strict=True)]
    return rows


def busy_gpu_means(log: RequestLog, layout: InferenceLayout, start_s: float, end_s: float) -> dict[str, float]:
    """Exact time-average of GPUs serving requests in [start_s, end_s), per region."""
    arrive = _pool_arrival(log)
    queued_until = _queued_until(log, arrive, end_s)
    reached = (log.pool >= 0) & (arrive < end_s)
    del arrive
    started = _started(log, reached)
    region_of = _region_of(log, layout)
    window = np.array([start_s, end_s])
    return {name: _busy(log, layout, (region_of == r) & started, queued_until, end_s, window, window)[2]
            for r, name in enumerate(layout.regions)}
