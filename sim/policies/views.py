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

:class:`AutoscaleView` is what an autoscaling policy decides over at each autoscaler tick:
one entry per autoscaled pool, a fresh read-only snapshot each time (ticks are rare).

Public: ``RoutingView``, ``AutoscaleView``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["RoutingView", "AutoscaleView"]

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
    - ``prefill_backlog``: float per pool, prompt tokens its replicas have still to prefill
      (waiting requests, less what their replica's prefix cache holds, and the rest of
      admitted prompts), as stale as ``queue_len``; NaN on pools that are not batching, or
      when the policy does not ask (class attribute ``reads_backlog``).
    - ``pool_gpu``: tuple of str, the GPU type of each pool (static).
    - ``slo_ttft_ms``, ``slo_tpot_ms``, ``slo_e2e_ms``: float per workload, its objectives
      (``inf``: none set); the request's own are ``slo_ttft_ms[view.workload]`` (static).

    Set for each request only for a policy that asks (class attributes ``reads_tokens`` and
    ``reads_cache``; otherwise left at their defaults):

    - ``input_tokens``, ``output_tokens``: the request's prompt (shared prompt included)
      and answer lengths, tokens;
    - ``prefix``, ``prefix_tokens``: the shared prompt it opens with, or for a later turn of a
      conversation the conversation so far (-1 and 0: none);
    - ``prefix_cached``: bool per pool, some active replica of the pool holds that prefix
      in its prefix cache, as of the last refresh (``scheduler.sync_delay``).
    """

    __slots__ = ("t_s", "origin", "workload", "n_pools", "pool_region", "rtt_ms", "queue_len",
                 "busy_slots", "active_slots", "total_slots", "share", "mean_service_s", "version",
                 "active_replicas", "prefill_ms_per_token", "input_tokens", "output_tokens", "prefix",
                 "prefix_tokens", "prefix_cached", "serves", "key_stride", "prefill_backlog", "pool_gpu",
                 "slo_ttft_ms", "slo_tpot_ms", "slo_e2e_ms")

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
    prefill_backlog: np.ndarray
    pool_gpu: tuple[str, ...]
    slo_ttft_ms: np.ndarray
    slo_tpot_ms: np.ndarray
    slo_e2e_ms: np.ndarray

    @classmethod
    def build(cls, *, pool_region: npt.ArrayLike, rtt_ms: npt.ArrayLike,
              total_slots: Sequence[int], active_slots: Sequence[int] | None = None,
              queue_len: Sequence[int] | None = None, busy_slots: Sequence[int] | None = None,
              share: npt.ArrayLike | None = None, mean_service_s: npt.ArrayLike | None = None,
              t_s: float = 0.0, origin: int = 0, workload: int = 0, version: int = 0,
              active_replicas: Sequence[int] | None = None, prefill_ms_per_token: npt.ArrayLike | None = None,
              prefix_cached: Sequence[bool] | None = None, input_tokens: int = 0, output_tokens: int = 0,
              prefix: int = -1, prefix_tokens: int = 0, serves: npt.ArrayLike | None = None,
              prefill_backlog: npt.ArrayLike | None = None, pool_gpu: Sequence[str] | None = None,
              slo_ttft_ms: npt.ArrayLike | None = None,
              slo_tpot_ms: npt.ArrayLike | None = None, slo_e2e_ms: npt.ArrayLike | None = None) -> RoutingView:
        """A view over fresh read-only copies of plain lists or arrays (for tests and for the engine).

        Defaults: every slot active, empty queues, no busy slots, shares proportional to
        ``total_slots``, a mean service time of 1 s, no known prefill backlog (NaN), GPU type
        ``""`` and no SLO (``inf``) for
        each of the workloads ``serves`` has rows for. Each array owns its data, so its owner
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
        _set_serving(view, n_pools, active_replicas, prefill_ms_per_token, prefix_cached, prefill_backlog)
        view.input_tokens, view.output_tokens = int(input_tokens), int(output_tokens)
        view.prefix, view.prefix_tokens = int(prefix), int(prefix_tokens)
        _set_models(view, n_pools, serves, pool_gpu, (slo_ttft_ms, slo_tpot_ms, slo_e2e_ms))
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


def _set_serving(view: RoutingView, n_pools: int, active_replicas, prefill_ms_per_token, prefix_cached,
                 prefill_backlog) -> None:
    """The per-pool serving figures of :meth:`RoutingView.build` (defaults: one active
    replica, no prefill cost, nothing cached, no known backlog)."""
    view.active_replicas = _frozen("active_replicas", _or(active_replicas, [1] * n_pools), np.int64, (n_pools,))
    view.prefill_ms_per_token = _frozen("prefill_ms_per_token", _or(prefill_ms_per_token, [0.0] * n_pools),
                                        np.float64, (n_pools,))
    view.prefix_cached = _frozen("prefix_cached", _or(prefix_cached, [False] * n_pools), np.bool_, (n_pools,))
    view.prefill_backlog = _frozen("prefill_backlog", _or(prefill_backlog, [math.nan] * n_pools), np.float64,
                                   (n_pools,))


def _set_models(view: RoutingView, n_pools: int, serves, pool_gpu, slos: tuple) -> None:
    """Which pools serve each workload's model, each pool's GPU type and each workload's
    objectives, for :meth:`RoutingView.build` (defaults: every pool, ``""``, no SLO)."""
    mask = np.ones((1, n_pools), dtype=np.bool_) if serves is None else np.array(serves, dtype=np.bool_, ndmin=2)
    view.serves = _frozen("serves", mask, np.bool_, (mask.shape[0], n_pools))
    # Availability depends on the workload only when some pool does not serve them all.
    view.key_stride = 0 if mask.all() else view.rtt_ms.shape[0]
    view.pool_gpu = tuple(str(g) for g in _or(pool_gpu, [""] * n_pools))
    if len(view.pool_gpu) != n_pools:
        raise ValueError(f"pool_gpu: must have {n_pools} entries, got {len(view.pool_gpu)}")
    given = [len(np.atleast_1d(v)) for v in slos if v is not None]
    n_workloads = mask.shape[0] if serves is not None or not given else given[0]
    for name, value in zip(("slo_ttft_ms", "slo_tpot_ms", "slo_e2e_ms"), slos, strict=True):
        setattr(view, name, _frozen(name, _or(value, [math.inf] * n_workloads), np.float64, (n_workloads,)))


_AUTOSCALE_INT = ("pool_index", "ready", "starting", "active", "min_replicas", "max_replicas", "slots_per_replica",
                  "queue_len", "running", "arrivals", "planned")
_AUTOSCALE_FLOAT = ("kv_fraction", "wait_mean_s", "ttft_p99_ms", "cold_start_s")


@dataclass(frozen=True, eq=False)
class AutoscaleView:
    """Read-only snapshot of the autoscaled pools at one autoscaler tick.

    Entries ``0 .. n - 1`` are the autoscaled pools in world order (``keys``,
    ``pool_index``). Per pool (numpy arrays, writeable=False):

    - ``ready``: replicas provisioned and warm; ``starting``: replicas in a cold start;
      ``active``: replicas serving now (ready ones less failed ones, and at most what the
      allocation model asks for when there is one);
    - ``min_replicas``, ``max_replicas``: the bounds a decision must respect;
    - ``slots_per_replica``: requests one replica runs at once (``max_batch`` on batching pools);
    - ``queue_len``, ``running``: requests waiting and in service now;
    - ``kv_fraction``: KV cache in use over the active replicas' KV capacity (NaN: not a
      batching pool, or no active replica);
    - ``arrivals``: requests routed to the pool that arrived over the last ``interval_s``;
    - ``wait_mean_s``, ``ttft_p99_ms``: their mean wait and p99 TTFT so far, a request still
      waiting counting its age (NaN: no arrivals; TTFT only on batching pools);
    - ``cold_start_s``: provisioning plus weight load of one replica, s;
    - ``planned``: the replicas the scheduler's allocation model asks for now
      (``max_replicas`` without one).

    Scalars: ``t_s`` (now), ``interval_s`` (time to the next tick).
    """

    t_s: float
    interval_s: float
    keys: tuple[str, ...]
    pool_index: np.ndarray
    ready: np.ndarray
    starting: np.ndarray
    active: np.ndarray
    min_replicas: np.ndarray
    max_replicas: np.ndarray
    slots_per_replica: np.ndarray
    queue_len: np.ndarray
    running: np.ndarray
    kv_fraction: np.ndarray
    arrivals: np.ndarray
    wait_mean_s: np.ndarray
    ttft_p99_ms: np.ndarray
    cold_start_s: np.ndarray
    planned: np.ndarray

    @classmethod
    def build(cls, *, keys: Sequence[str], t_s: float = 0.0, interval_s: float = 60.0, **per_pool) -> AutoscaleView:
        """A view over read-only copies of plain lists (for tests and for the engine).

        Defaults: pool indices 0..n-1, one ready replica, nothing starting, ``active`` = ready,
        bounds 0..ready (at least 1), one slot per replica, no load, NaN KV use, wait and
        TTFT, no cold start, ``planned`` = max_replicas."""
        n = len(keys)
        ready = per_pool.get("ready", [1] * n)
        top = per_pool.get("max_replicas", [max(int(r), 1) for r in ready])
        defaults = {"pool_index": list(range(n)), "ready": ready, "starting": [0] * n, "active": ready,
                    "min_replicas": [0] * n, "max_replicas": top, "slots_per_replica": [1] * n,
                    "queue_len": [0] * n, "running": [0] * n, "arrivals": [0] * n, "planned": top,
                    "kv_fraction": [math.nan] * n, "wait_mean_s": [math.nan] * n, "ttft_p99_ms": [math.nan] * n,
                    "cold_start_s": [0.0] * n}
        unknown = set(per_pool) - set(defaults)
        if unknown:
            raise TypeError(f"unknown AutoscaleView fields: {', '.join(sorted(unknown))}")
        arrays = {name: _frozen(name, per_pool.get(name, default),
                                np.int64 if name in _AUTOSCALE_INT else np.float64, (n,))
                  for name, default in defaults.items()}
        return cls(t_s=float(t_s), interval_s=float(interval_s), keys=tuple(keys), **arrays)

    @property
    def n(self) -> int:
        return len(self.keys)

    def clamp(self, replicas: npt.ArrayLike) -> np.ndarray:
        """``replicas`` rounded up to whole replicas and held within each pool's bounds."""
        wanted = np.ceil(np.asarray(replicas, dtype=np.float64) - 1e-9)
        return np.clip(wanted, self.min_replicas, self.max_replicas).astype(np.int64)


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
