"""Scale from zero: where a request waits when no available pool can take it.

An autoscaled pool may hold zero warm replicas (``autoscale.min: 0``). A request that the
routing policy cannot place anywhere (it returns ``None``) then waits at the nearest
reachable such pool of its model whose region is up, as a serverless activator holds
requests for a service scaled to zero; that queue is what the autoscaler's policy sees,
and the request is served after the cold start. A warm pool that the policy can choose is
always preferred.

Public: ``WaitingRooms``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from sim.world import PoolInfo

__all__ = ["WaitingRooms"]


class WaitingRooms:
    """The autoscaled pools held at zero warm replicas in a region that is up (``cold``)."""

    def __init__(self, pools: Sequence[PoolInfo], serves_requests: Sequence[bool]):
        # Warm replicas the autoscaler holds per autoscaled pool (-1: not heard of yet).
        self._ready = {i: -1 for i, p in enumerate(pools) if p.autoscale is not None and serves_requests[i]}
        self._up = [True] * len(pools)
        self.cold: list[int] = []

    def up_changed(self, p: int, up: bool) -> bool:
        """Pool ``p``'s region or replicas went down or came back; whether ``cold`` changed."""
        if p not in self._ready:
            return False
        self._up[p] = up
        return self._recompute()

    def ready_changed(self, p: int, ready: int) -> bool:
        """The autoscaler holds ``ready`` warm replicas of pool ``p``; whether ``cold`` changed."""
        if p not in self._ready:
            return False
        self._ready[p] = ready
        return self._recompute()

    def _recompute(self) -> bool:
        cold = [p for p, ready in self._ready.items() if ready == 0 and self._up[p]]
        changed, self.cold = cold != self.cold, cold
        return changed

    def choose(self, rtt: Sequence[float], serves: Sequence[bool] | None) -> int | None:
        """The nearest reachable cold pool (``rtt``: from the origin to each pool) that serves
        the request's model (``serves``: per pool; None: every pool does), if any."""
        rooms = [(rtt[p], p) for p in self.cold if rtt[p] != math.inf and (serves is None or serves[p])]
        return min(rooms)[1] if rooms else None
