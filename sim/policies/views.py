"""Read-only views that policies decide over.

A policy never sees the engine. For each decision the engine hands it a *view*: plain
attributes and numpy arrays that are the engine's own live state marked
``writeable=False``, so a policy can read everything at no copying cost and change nothing.
Routing decisions happen once per inference request, so the engine keeps ONE
:class:`RoutingView` for the whole run and only updates ``t_s``, ``origin`` and
``workload`` (and the load arrays) before each call. Whatever depends only on which pools
are available may be cached by a policy per ``(origin, version)``: the engine bumps
``version`` whenever ``active_slots``, ``share`` or reachability change.

A pool is *available* to an origin when its RTT from that origin is finite, it has at
least one active slot and it serves the request's workload (its model is loaded there).
What a policy caches is kept per ``cache_key`` (the origin; with several models, the origin
and the workload).

Public: ``RoutingView``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["RoutingView"]

_PER_POOL_INT = ("pool_region", "queue_len", "busy_slots", "active_slots", "total_slots")
_PER_POOL_FLOAT = ("share", "mean_service_s")


class RoutingView:
    """Read-only view of serving pools for one request (arrays are the engine's live state, writeable=False).

    Attributes (pools are indexed ``0 .. n_pools - 1``, regions ``0 .. n_regions - 1``):

    - ``t_s``: current simulated time, s.
    - ``origin``: index of the request's origin region.
    - ``workload``: index of the request's inference workload.
    - ``n_pools``: number of serving pools.
    - ``pool_region``: int, the region index of each pool (static).
    - ``rtt_ms``: float, ``n_regions x n_pools``, path RTT from each origin region to each
      pool's region, ms; ``inf`` when unreachable.
    - ``queue_len``: int per pool, requests waiting.
    - ``busy_slots``: int per pool, slots serving a request.
    - ``active_slots``: int per pool, 0 when the pool is switched off or failed.
    - ``total_slots``: int per pool, slots when every replica is active.
    - ``share``: float per pool, the allocation model's share (sums to 1 over pools;
      proportional to ``total_slots`` without an allocation model).
    - ``mean_service_s``: float per pool, the engine's running estimate of mean service time.
    - ``version``: bumped by the engine whenever ``active_slots``, ``share`` or
      reachability change.
    - ``active_replicas``: int per pool, replicas active now.
    - ``prefill_ms_per_token``: float per pool, the time one prompt token takes to prefill
      on one replica (a batching replica at batch 1; the token model on slot pools; 0 when
      the service is not token-based), ms (static).
    - ``serves``: bool, ``n_workloads x n_pools``, whether the pool serves the workload: a
      workload that names a ``model`` is served only where that model is loaded (static).
    - ``cache_key``: what availability depends on besides the version: ``origin``, or
      ``origin + n_regions x workload`` when workloads are served by different pools.

    Set for each request only for a policy that asks (class attributes ``reads_tokens`` and
    ``reads_cache``; otherwise left at their defaults):

    - ``input_tokens``, ``output_tokens``: the request's prompt (shared prompt included)
      and answer lengths, tokens;
    - ``prefix``, ``prefix_tokens``: the shared prompt it opens with (-1 and 0: none);
    - ``prefix_cached``: bool per pool, some active replica of the pool holds that shared
      prompt in its prefix cache, as of the last refresh (``scheduler.sync_delay``).
    """

    __slots__ = ("t_s", "origin", "workload", "n_pools", "pool_region", "rtt_ms", "queue_len",
                 "busy_slots", "active_slots", "total_slots", "share", "mean_service_s", "version",
                 "active_replicas", "prefill_ms_per_token", "input_tokens", "output_tokens", "prefix",
                 "prefix_tokens", "prefix_cached", "serves", "key_stride")

    t_s: float
    origin: int
    workload: int
    n_pools: int
    pool_region: np.ndarray
    rtt_ms: np.ndarray
    queue_len: np.ndarray
    busy_slots: np.ndarray
    active_slots: np.ndarray
    total_slots: np.ndarray
    share: np.ndarray
    mean_service_s: np.ndarray
    version: int
    active_replicas: np.ndarray
    prefill_ms_per_token: np.ndarray
    input_tokens: int
    output_tokens: int
    prefix: int
    prefix_tokens: int
    prefix_cached: np.ndarray
    serves: np.ndarray
    key_stride: int

    @classmethod
    def build(cls, *, pool_region: npt.ArrayLike, rtt_ms: npt.ArrayLike,
              total_slots: Sequence[int], active_slots: Sequence[int] | None = None,
              queue_len: Sequence[int] | None = None, busy_slots: Sequence[int] | None = None,
              share: npt.ArrayLike | None = None, mean_service_s: npt.ArrayLike | None = None,
              t_s: float = 0.0, origin: int = 0, workload: int = 0, version: int = 0,
              active_replicas: Sequence[int] | None = None, prefill_ms_per_token: npt.ArrayLike | None = None,
              prefix_cached: Sequence[bool] | None = None, input_tokens: int = 0, output_tokens: int = 0,
              prefix: int = -1, prefix_tokens: int = 0, serves: npt.ArrayLike | None = None) -> RoutingView:
        """A view over fresh read-only copies of plain lists or arrays (for tests and for the engine).

        Defaults: every slot active, empty queues, no busy slots, shares proportional to
        ``total_slots``, a mean service time of 1 s. Each array owns its data, so its owner
        may flip ``flags.writeable`` to update it in place.
        """
        n_pools = len(total_slots)
        values = {
            "pool_region": pool_region, "queue_len": _or(queue_len, [0] * n_pools),
            "busy_slots": _or(busy_slots, [0] * n_pools), "total_slots": total_slots,
            "active_slots": _or(active_slots, total_slots), "mean_service_s": _or(mean_service_s, [1.0] * n_pools),
            "share": _or(share, _proportional(total_slots)),
        }
        view = cls()
        for name, value in values.items():
            dtype = np.int64 if name in _PER_POOL_INT else np.float64
            setattr(view, name, _frozen(name, value, dtype, (n_pools,)))
        rtt = np.array(rtt_ms, dtype=np.float64, ndmin=2)
        view.rtt_ms = _frozen("rtt_ms", rtt, np.float64, (rtt.shape[0], n_pools))
        view.n_pools, view.t_s, view.origin = n_pools, float(t_s), int(origin)
        view.workload, view.version = int(workload), int(version)
        view.active_replicas = _frozen("active_replicas", _or(active_replicas, [1] * n_pools), np.int64, (n_pools,))
        view.prefill_ms_per_token = _frozen("prefill_ms_per_token", _or(prefill_ms_per_token, [0.0] * n_pools),
                                            np.float64, (n_pools,))
        view.prefix_cached = _frozen("prefix_cached", _or(prefix_cached, [False] * n_pools), np.bool_, (n_pools,))
        view.input_tokens, view.output_tokens = int(input_tokens), int(output_tokens)
        view.prefix, view.prefix_tokens = int(prefix), int(prefix_tokens)
        mask = np.ones((1, n_pools), dtype=np.bool_) if serves is None else np.array(serves, dtype=np.bool_, ndmin=2)
        view.serves = _frozen("serves", mask, np.bool_, (mask.shape[0], n_pools))
        # Availability depends on the workload only when some pool does not serve them all.
        view.key_stride = 0 if mask.all() else view.rtt_ms.shape[0]
        return view

    @property
    def cache_key(self) -> int:
        return self.origin + self.key_stride * self.workload

    def available(self, origin: int | None = None) -> np.ndarray:
        """Indices of the pools available to ``origin`` (default: the current request's)
        for the current request's workload."""
        row = self.rtt_ms[self.origin if origin is None else origin]
        ok = np.isfinite(row) & (self.active_slots > 0)
        if self.key_stride:
            ok &= self.serves[self.workload]
        return np.flatnonzero(ok)

    def __repr__(self) -> str:
        origin = getattr(self, "origin", None)
        return (f"RoutingView(n_pools={getattr(self, 'n_pools', None)}, origin={origin}, "
                f"version={getattr(self, 'version', None)})")


def _or(value, default):
    return default if value is None else value


def _proportional(total_slots: Sequence[int]) -> np.ndarray:
    total = np.asarray(total_slots, dtype=np.float64)
    return total / total.sum() if total.sum() > 0 else total


def _frozen(name: str, value, dtype, shape: tuple[int, ...]) -> np.ndarray:
    array = np.array(value, dtype=dtype)  # always a copy that owns its data
    if array.shape != shape:
        raise ValueError(f"{name}: must have shape {shape}, got {array.shape}")
    array.flags.writeable = False
    return array
