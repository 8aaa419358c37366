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

Public: ``pool_summary``, ``batch_columns``, ``BucketIntervals``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sim.records import BatchLog

__all__ = ["pool_summary", "batch_columns", "BucketIntervals"]


def _bucket(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each ``x`` in ``[edges[0], edges[-1]]``: the ``k`` with ``edges[k] <= x < edges[k+1]``
    (the last bucket for ``edges[-1]``), as ``searchsorted`` finds it. Buckets of one width
    (the last may be shorter) are found by division, then put right where rounding erred."""
    n = len(edges) - 1
    width = edges[1] - edges[0]
    if n < 2 or not np.allclose(np.diff(edges[:-1]), width, rtol=1e-12, atol=0.0):
        return np.minimum(np.searchsorted(edges, x, side="right") - 1, n - 1)
    k = ((x - edges[0]) / width).astype(np.int64)
    np.clip(k, 0, n - 1, out=k)
    k -= edges[k] > x
    k += (k < n - 1) & (edges[np.minimum(k + 1, n)] <= x)
    return k


class BucketIntervals:
    """Intervals ``[s, e)`` placed in the buckets ``[edges[k], edges[k+1])`` once, for
    :meth:`integrals` over several weights: per bucket, the sum of ``w_i`` x the interval's
    overlap with it. Each interval adds its pieces to the buckets it touches (no running
    sums over the whole log, whose differences would lose digits late in a long run): its
    head in the bucket it starts in, and, for the few that go on, whole buckets and a tail."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, edges: np.ndarray):
        edges = np.asarray(edges, dtype=float)
        n = len(edges) - 1
        self.n, self.edges = n, edges
        s = np.clip(starts, edges[0], edges[-1])
        e = np.clip(ends, edges[0], edges[-1])
        self._a = a = np.zeros(len(s), dtype=np.int64) if n == 1 else _bucket(edges, s)
        upper = edges[a + 1]  # the end of the bucket each interval starts in
        self._head = np.minimum(e, upper) - s
        self._many = many = np.flatnonzero(e > upper)
        self._ma, self._mb = a[many], _bucket(edges, e[many])
        self._tail = e[many] - edges[self._mb]

    def integrals(self, weights: np.ndarray) -> np.ndarray:
        n = self.n
        out = np.bincount(self._a, weights=weights * self._head, minlength=n).astype(float)
        if self._many.size:
            w = weights[self._many]
            out += np.bincount(self._mb, weights=w * self._tail, minlength=n)
            inner = np.bincount(self._ma + 1, weights=w, minlength=n + 1)[:n]  # whole buckets a+1 .. b-1
            inner -= np.bincount(self._mb, weights=w, minlength=n + 1)[:n]
            out += np.cumsum(inner) * np.diff(self.edges)
        return out


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


def batch_columns(batches: BatchLog | None, layout, edges: np.ndarray,
                  busy_only: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Per region and bucket: ``busy_gpus`` of batching replicas (time average),
    ``batch_size`` (sequences per iteration while busy) and ``kv_fraction`` (KV tokens in
    use over the KV capacity of the region's batching replicas); NaN without batching.
    ``busy_only``: the first alone."""
    n = len(edges) - 1
    width = np.diff(edges)
    result = {}
    for r, name in enumerate(layout.regions):
        cols = {"busy_gpus": np.zeros(n), "batch_size": np.full(n, np.nan), "kv_fraction": np.full(n, np.nan)}
        result[name] = cols
        pools = [int(p) for p in np.flatnonzero((layout.pool_region == r) & layout.batching)]
        if batches is None or not pools:
            continue
        mine = np.isin(batches.pool, pools) if len(pools) < len(batches.pools) else slice(None)
        s, e = batches.start_s[mine], batches.end_s[mine]
        integrals = BucketIntervals(s, e, edges).integrals
        gpus = layout.pool_gpus_per_replica[batches.pool[mine]]
        cols["busy_gpus"] = integrals(gpus) / width
        if busy_only:
            continue
        busy = integrals(np.ones(s.size))
        seqs = integrals(batches.seqs[mine].astype(float))
        cols["batch_size"] = np.divide(seqs, busy, out=np.full(n, np.nan), where=busy > 0)
        # KV grows through a segment to its end value: count its midpoint level.
        level = batches.kv_tokens[mine] - (batches.prefill_tokens[mine] + batches.output_tokens[mine]) / 2.0
        capacity = sum(int(batches.kv_capacity[list(batches.pools).index(p)]) * int(layout.pool_replicas[p])
                       for p in pools)
        cols["kv_fraction"] = integrals(np.maximum(level, 0.0)) / width / capacity
    return result
