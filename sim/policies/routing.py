"""Routing policies: which serving pool takes an inference request.

The engine calls ``policy.choose(view)`` once per request with a read-only
:class:`~sim.policies.views.RoutingView` and gets back a pool index, or ``None`` to reject
the request (it is dropped). The engine checks the answer: an index out of range or an
unreachable pool raises :class:`~sim.errors.PolicyError` naming the policy.

A pool is *available* to the request's origin when its RTT is finite and it has an active
slot; every built-in policy picks among available pools only and rejects when there is
none. Calls are hot (hundreds of thousands per run), so whatever depends only on
availability is computed once per ``(origin, view.version)`` and reused.

``reads_load`` tells the engine whether a policy looks at ``queue_len`` / ``busy_slots``;
when it is False the engine may skip refreshing them before each call.

``reads_tokens`` and ``reads_cache`` ask the engine to set the request's token counts and
shared prompt, and which pools hold that prompt in a prefix cache, on the view;
``reads_backlog`` asks for the batching pools' prefill backlogs.

Built-ins: ``nearest``, ``round_robin``, ``weighted``, ``least_loaded``, ``latency_aware``,
``power_of_two``, ``ttft_aware`` (RTT plus the prefill work ahead, cache-blind) and
``cache_aware`` (the same, counting a cached shared prompt as done).

Public: ``RoutingPolicy`` and the built-in classes ``Nearest``, ``RoundRobin``,
``Weighted``, ``LeastLoaded``, ``LatencyAware``, ``PowerOfTwo``, ``TtftAware``, ``CacheAware``.
"""
from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_right
from itertools import accumulate
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from sim.policies.registry import PolicyParams, declare_kind, register
from sim.policies.views import RoutingView

__all__ = ["RoutingPolicy", "Nearest", "RoundRobin", "Weighted", "LeastLoaded",
           "LatencyAware", "PowerOfTwo", "TtftAware", "CacheAware"]

declare_kind("routing", ("choose",))

_MISSING = object()


class RoutingPolicy:
    """Base class of routing policies: choose a serving pool for each request."""

    Params: ClassVar[type[PolicyParams]] = PolicyParams
    reads_load: ClassVar[bool] = True

    def __init__(self, params: PolicyParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng
        self._view: RoutingView | None = None
        self._version = -1
        self._per_origin: dict[int, Any] = {}

    @abstractmethod  # a flag the registry reads: a subclass must define its own choose
    def choose(self, view: RoutingView) -> int | None:
        """The index of the pool that serves the request, or None to reject it."""
        raise NotImplementedError

    def prepare(self, view: RoutingView, origin: int) -> Any:
        """What this policy caches for ``origin`` while availability stays the same."""
        return None

    def cached(self, view: RoutingView) -> Any:
        """``prepare(view, view.origin)``, recomputed only when the view or its version changes
        (kept per origin, and per workload where pools serve different workloads)."""
        if view.version != self._version or view is not self._view:
            self._per_origin = {}
            self._view, self._version = view, view.version
        key = view.origin + view.key_stride * view.workload
        entry = self._per_origin.get(key, _MISSING)
        if entry is _MISSING:
            entry = self._per_origin[key] = self.prepare(view, view.origin)
        return entry


def by_distance(view: RoutingView, origin: int) -> np.ndarray:
    """Available pools for ``origin`` ordered by RTT, ties by index."""
    pools = view.available(origin)
    return pools[np.argsort(view.rtt_ms[origin, pools], kind="stable")]


@register("routing", "nearest")
class Nearest(RoutingPolicy):
    """Lowest-RTT available pool (ties: lowest index); ignores load."""

    reads_load = False
    # The answer depends only on (origin, availability): the engine may reuse it per origin
    # until the view's version changes, without calling choose again.
    decision_per_origin = True

    def prepare(self, view: RoutingView, origin: int) -> int | None:
        pools = by_distance(view, origin)
        return int(pools[0]) if len(pools) else None

    def choose(self, view: RoutingView) -> int | None:
        return self.cached(view)


@register("routing", "round_robin")
class RoundRobin(RoutingPolicy):
    """Cycles over the available pools in index order, one cycle per origin region."""

    reads_load = False

    def __init__(self, params: PolicyParams, rng: np.random.Generator):
        super().__init__(params, rng)
        self._last: dict[int, int] = {}

    def prepare(self, view: RoutingView, origin: int) -> list[int]:
        return view.available(origin).tolist()

    def choose(self, view: RoutingView) -> int | None:
        pools = self.cached(view)
        if not pools:
            return None
        # Remembering the last pool (not a position) keeps index order when pools come and go.
        k = bisect_right(pools, self._last.get(view.origin, -1))
        pool = pools[k if k < len(pools) else 0]
        self._last[view.origin] = pool
        return pool


@register("routing", "weighted")
class Weighted(RoutingPolicy):
    """The seed's dispatch: a random available pool, with probability proportional to its share."""

    reads_load = False

    def prepare(self, view: RoutingView, origin: int) -> tuple[list[int], list[float]] | None:
        pools = view.available(origin)
        weights = view.share[pools]
        if not weights.sum() > 0:
            weights = view.active_slots[pools].astype(np.float64)
        keep = weights > 0  # a zero-weight pool must never be drawn, even at the edges
        if not keep.any():
            return None
        return pools[keep].tolist(), list(accumulate(weights[keep].tolist()))

    def choose(self, view: RoutingView) -> int | None:
        entry = self.cached(view)
        if entry is None:
            return None
        pools, cumulative = entry
        k = bisect_right(cumulative, self.rng.random() * cumulative[-1])
        return pools[k] if k < len(pools) else pools[-1]


@register("routing", "least_loaded")
class LeastLoaded(RoutingPolicy):
    """Smallest (queued + busy) / active slots (ties: lower RTT, then lower index)."""

    def prepare(self, view: RoutingView, origin: int) -> tuple[np.ndarray, np.ndarray] | None:
        pools = by_distance(view, origin)
        return (pools, view.active_slots[pools]) if len(pools) else None

    def choose(self, view: RoutingView) -> int | None:
        entry = self.cached(view)
        if entry is None:
            return None
        pools, active = entry
        load = (view.queue_len[pools] + view.busy_slots[pools]) / active
        return int(pools[load.argmin()])  # argmin takes the first minimum: the nearest


@register("routing", "latency_aware")
class LatencyAware(RoutingPolicy):
    """Minimises rtt_weight * RTT + expected FCFS queueing delay at the pool."""

    class Params(PolicyParams):
        rtt_weight: float = Field(1.0, ge=0, description="Multiplier of the RTT term (0 ignores distance).")

    params: Params  # the registry validates them with the class above

    # Below this many available pools a plain loop beats numpy's per-call overhead.
    vector_from: ClassVar[int] = 32

    def prepare(self, view: RoutingView, origin: int) -> tuple | None:
        pools = by_distance(view, origin)
        if not len(pools):
            return None
        active = view.active_slots[pools]
        rtt_term = self.params.rtt_weight * view.rtt_ms[origin, pools]
        if len(pools) >= self.vector_from:
            return True, pools, rtt_term, active, 1 - active
        return False, list(zip(pools.tolist(), rtt_term.tolist(), active.tolist(), strict=True))

    def choose(self, view: RoutingView) -> int | None:
        entry = self.cached(view)
        if entry is None:
            return None
        return self._vector(view, *entry[1:]) if entry[0] else self._loop(view, entry[1])

    @staticmethod
    def _loop(view: RoutingView, pools: list[tuple[int, float, int]]) -> int:
        queue, busy, service = view.queue_len, view.busy_slots, view.mean_service_s
        best, best_cost = pools[0][0], np.inf
        for pool, rtt_term, active in pools:  # nearest first, so strict < breaks ties by RTT
            if rtt_term >= best_cost:
                break  # this pool and every farther one cost at least their RTT term: none beats the best
            ahead = int(queue[pool]) + int(busy[pool]) + 1 - active
            cost = (ahead * float(service[pool]) / active * 1000.0 if ahead > 0 else 0.0) + rtt_term
            if cost < best_cost:
                best, best_cost = pool, cost
        return best

    @staticmethod
    def _vector(view: RoutingView, pools: np.ndarray, rtt_term: np.ndarray, active: np.ndarray,
                one_minus_active: np.ndarray) -> int:
        # Position in the queue beyond the free slots, times the mean inter-completion time.
        ahead = view.queue_len[pools] + view.busy_slots[pools] + one_minus_active
        np.maximum(ahead, 0, out=ahead)
        cost = ahead * view.mean_service_s[pools] / active * 1000.0 + rtt_term
        return int(pools[cost.argmin()])


@register("routing", "power_of_two")
class PowerOfTwo(RoutingPolicy):
    """Samples d distinct available pools at random and takes the least loaded of them."""

    class Params(PolicyParams):
        d: int = Field(2, ge=1, description="Pools sampled per request (>= 1; 1 is uniform random).")

    params: Params  # the registry validates them with the class above

    def prepare(self, view: RoutingView, origin: int) -> tuple[list[int], list[float], list[int]]:
        pools = view.available(origin)
        return pools.tolist(), view.rtt_ms[origin].tolist(), view.active_slots.tolist()

    def choose(self, view: RoutingView) -> int | None:
        pools, rtt, active = self.cached(view)
        n = len(pools)
        if n <= 1:
            return pools[0] if n else None
        queue, busy, random = view.queue_len, view.busy_slots, self.rng.random
        best = best_key = None
        candidates = list(pools)
        for k in range(min(self.params.d, n)):
            # Partial Fisher-Yates; random() < 1 so int(random() * m) < m for the m here.
            j = k + int(random() * (n - k))
            pool = candidates[j]
            candidates[j] = candidates[k]
            candidates[k] = pool
            key = ((queue.item(pool) + busy.item(pool)) / active[pool], rtt[pool], pool)
            if best_key is None or key < best_key:
                best, best_key = pool, key
        return best


@register("routing", "ttft_aware")
class TtftAware(RoutingPolicy):
    """Minimises RTT + the prefill work ahead of and for the request (cache-blind)."""

    class Params(PolicyParams):
        rtt_weight: float = Field(1.0, ge=0, description="Multiplier of the RTT term (0 ignores distance).")

    params: Params  # the registry validates them with the class above
    reads_tokens: ClassVar[bool] = True
    reads_backlog: ClassVar[bool] = True
    uses_cache: ClassVar[bool] = False

    def prepare(self, view: RoutingView, origin: int) -> list[tuple[int, float]]:
        pools = by_distance(view, origin)
        rtt = view.rtt_ms[origin]
        return [(int(p), self.params.rtt_weight * float(rtt[p])) for p in pools]

    def choose(self, view: RoutingView) -> int | None:
        pools = self.cached(view)
        if not pools:
            return None
        queue, replicas, backlog = view.queue_len, view.active_replicas, view.prefill_backlog
        per_token, cached = view.prefill_ms_per_token, view.prefix_cached
        tokens, saved = view.input_tokens, view.prefix_tokens if self.uses_cache else 0
        best, best_cost = pools[0][0], np.inf
        for pool, rtt_term in pools:  # nearest first, so strict < breaks ties by RTT
            own = tokens - saved if saved and cached[pool] else tokens
            # The prompt tokens still to prefill per replica (where not known, the prompts
            # waiting taken as long as this one), then this one's.
            ahead = backlog[pool]
            if ahead != ahead:  # NaN: not a batching pool
                ahead = queue[pool] * tokens
            cost = rtt_term + per_token[pool] * (ahead / max(int(replicas[pool]), 1) + own)
            if cost < best_cost:
                best, best_cost = pool, cost
        return best


@register("routing", "cache_aware")
class CacheAware(TtftAware):
    """ttft_aware, counting a shared prompt cached at the pool as prefill already done."""

    reads_cache: ClassVar[bool] = True
    uses_cache: ClassVar[bool] = True
