"""Batching-replica metrics: how full the batches were, how much KV cache they used, how
many tokens came out, from the :class:`~sim.records.BatchLog` the engine publishes once.

Each log row is a segment of one replica's work: one iteration, or a run of decode
iterations of an unchanged batch, with its sequences, prompt tokens prefilled, output
tokens generated and the KV tokens in use at its end. A replica is busy (its GPUs draw
power and count as used) while it iterates. Definitions (docs/metrics.md):

- ``batch_mean``: sequences per iteration, weighted by iteration time, over busy time;
- ``batch_max``: the most sequences one iteration ran;
- ``kv_peak_fraction``: the most KV tokens in use on one replica / its KV capacity;
- ``tokens_per_s``: output tokens per second, the whole pool;
- ``busy_fraction``: busy replica-time / (replicas x window);
- ``preemptions``: sequences preempted (and recomputed) over the whole run.

Statistics cover ``[warm-up, end)`` (segments are clipped to it), except ``preemptions``.

Public: ``pool_summary``, ``batch_columns``, ``weighted_time``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sim.records import BatchLog

__all__ = ["pool_summary", "batch_columns", "weighted_time"]


def weighted_time(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point x: the integral up to x of the sum of weights of intervals open at
    that time (each interval [s, e) contributing w_i x its overlap with (-inf, x))."""
    points = np.asarray(points, dtype=float)
    result = np.zeros(len(points))
    for edge, sign in ((starts, 1.0), (ends, -1.0)):
        order = np.argsort(edge, kind="stable")
        t, w = edge[order], weights[order]
        cw = np.concatenate(([0.0], np.cumsum(w)))
        cwt = np.concatenate(([0.0], np.cumsum(w * t)))
        k = np.searchsorted(t, points, side="left")
        result += sign * (cw[k] * points - cwt[k])
    return result


def _overlap(batches: BatchLog, start_s: float, end_s: float) -> np.ndarray:
    return np.clip(np.minimum(batches.end_s, end_s) - np.maximum(batches.start_s, start_s), 0.0, None)


def pool_summary(batches: BatchLog, layout, warmup_s: float, end_s: float) -> dict[str, Any]:
    """``inference.by_pool``: per batching pool (``REGION.POOL``), its batching figures."""
    overlap = _overlap(batches, warmup_s, end_s)
    window = end_s - warmup_s
    result = {}
    for k, p in enumerate(batches.pools.tolist()):
        mine = batches.pool == p
        busy = overlap[mine]
        seqs = batches.seqs[mine]
        full = np.divide(busy, batches.end_s[mine] - batches.start_s[mine], out=np.zeros(busy.size),
                         where=batches.end_s[mine] > batches.start_s[mine])
        inside = busy > 0
        replicas = int(layout.pool_replicas[p])
        result[layout.pool_keys[p]] = {
            "batch_mean": float((seqs * busy).sum() / busy.sum()) if busy.sum() > 0 else None,
            "batch_max": int(seqs[inside].max()) if inside.any() else 0,
            "kv_peak_fraction": (float(batches.kv_tokens[mine][inside].max() / batches.kv_capacity[k])
                                 if inside.any() else 0.0),
            "tokens_per_s": float((batches.output_tokens[mine] * full).sum() / window) if window > 0 else 0.0,
            "busy_fraction": float(busy.sum() / (replicas * window)) if window > 0 and replicas else 0.0,
            "preemptions": int(batches.preemptions[k]),
        }
    return result


def batch_columns(batches: BatchLog | None, layout, edges: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per region and bucket: ``busy_gpus`` of batching replicas (time average),
    ``batch_size`` (sequences per iteration while busy) and ``kv_fraction`` (KV tokens in
    use over the KV capacity of the region's batching replicas); NaN without batching."""
    n = len(edges) - 1
    width = np.diff(edges)
    result = {}
    for r, name in enumerate(layout.regions):
        cols = {"busy_gpus": np.zeros(n), "batch_size": np.full(n, np.nan), "kv_fraction": np.full(n, np.nan)}
        result[name] = cols
        pools = [int(p) for p in np.flatnonzero((layout.pool_region == r) & layout.batching)]
        if batches is None or not pools:
            continue
        mine = np.isin(batches.pool, pools)
        s, e = batches.start_s[mine], batches.end_s[mine]
        gpus = layout.pool_gpus_per_replica[batches.pool[mine]]
        busy = np.diff(weighted_time(s, e, np.ones(s.size), edges))
        cols["busy_gpus"] = np.diff(weighted_time(s, e, gpus, edges)) / width
        seqs = np.diff(weighted_time(s, e, batches.seqs[mine].astype(float), edges))
        cols["batch_size"] = np.divide(seqs, busy, out=np.full(n, np.nan), where=busy > 0)
        # KV grows through a segment to its end value: count its midpoint level.
        level = batches.kv_tokens[mine] - (batches.prefill_tokens[mine] + batches.output_tokens[mine]) / 2.0
        capacity = sum(int(batches.kv_capacity[list(batches.pools).index(p)]) * int(layout.pool_replicas[p])
                       for p in pools)
        cols["kv_fraction"] = np.diff(weighted_time(s, e, np.maximum(level, 0.0), edges)) / width / capacity
    return result
