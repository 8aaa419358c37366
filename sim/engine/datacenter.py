"""Datacenters at run time: each GPU pool's active capacity and use.

A :class:`PoolRuntime` is the live counterpart of a static
:class:`~sim.world.PoolInfo`. The scheduler sets how many replicas should be active (its
target); failures take replicas down. The replicas that serve are
``min(target - lost, up)``: ``up`` counts replicas not failed (0 while the region is dark)
and ``lost`` counts serving replicas that failed and whose failure is not yet detected
(then a healthy replica is asked for in their place, serving after the warm-up). Every change is announced to the observers as a
:class:`~sim.metrics.PoolState` record and to the listeners.

Public: ``PoolRuntime``.
"""
from __future__ import annotations

from typing import Callable

from sim.metrics.records import PoolState, Record
from sim.world import PoolInfo

__all__ = ["PoolRuntime"]


class PoolRuntime:
    """Active replicas and busy GPUs of one pool."""

    def __init__(self, info: PoolInfo, emit: Callable[[Record], None], index: int = 0):
        self.info = info
        self.index = index
        self.listeners: list[Callable[[int, float], None]] = []
        self.active_replicas = info.replicas  # serving now
        self.target = info.replicas  # what the scheduler asked for (applied)
        self.desired = info.replicas  # its latest wish (held back while warming)
        self.warm_until = -1.0  # until then the target may fall but not rise (replicas warming)
        self.hold_until = -1.0  # until then it may rise but not fall (others warming to take over)
        self.down = 0  # failed replicas
        self.dark = 0  # outages of the region in progress
        self.known_down = 0  # what the scheduler knows (after the detection delay)
        self.known_dark = 0
        self.lost = 0
        self.busy_gpus = 0.0
        self._busy_wish = 0.0  # busy GPUs the scheduler's fluid model asks for
        self.share = 0.0
        self._emit = emit

    @property
    def up(self) -> int:
        """Replicas able to run (not failed, region not dark)."""
        return 0 if self.dark else max(self.info.replicas - self.down, 0)

    @property
    def known_up(self) -> int:
        """Replicas the scheduler believes are up (failures reach it after a detection delay)."""
        return 0 if self.known_dark else max(self.info.replicas - self.known_down, 0)

    @property
    def active_gpus(self) -> int:
        return self.active_replicas * self.info.gpus_per_replica

    def set_state(self, t_s: float, active_replicas: int, busy_gpus: float, share: float) -> None:
        """Apply a scheduler decision and announce it. While the pool warms up after a
        failover (``t_s < warm_until``) the target may fall but not rise; while others warm
        up to take its load (``t_s < hold_until``) it may rise but not fall."""
        if not 0 <= active_replicas <= self.info.replicas:
            raise ValueError(f"{self.info.key}: active replicas {active_replicas} outside 0..{self.info.replicas}")
        self.desired = active_replicas
        if t_s < self.warm_until:
            self.target = min(active_replicas, self.target)
        elif t_s < self.hold_until:
            self.target = max(active_replicas, self.target)
        else:
            self.target = active_replicas
        self._busy_wish = busy_gpus
        self.share = share
        self.refresh(t_s)

    def refresh(self, t_s: float) -> None:
        """Recompute the serving replicas after a decision, a failure or a repair; announce."""
        self.active_replicas = max(min(self.target - self.lost, self.up), 0)
        self.busy_gpus = min(self._busy_wish, float(self.active_gpus))
        self._emit(PoolState(t_s, self.info.region, self.info.name, self.share, self.active_gpus, self.busy_gpus,
                             self.up * self.info.gpus_per_replica))
        for listener in self.listeners:
            listener(self.index, t_s)

    def warmed(self, t_s: float) -> None:
        """A failover warm-up (or a hold) ended: apply the scheduler's latest wish."""
        if t_s >= self.warm_until and t_s >= self.hold_until and self.desired != self.target:
            self.target = self.desired
            self.refresh(t_s)

    def replace_lost(self, until: float) -> None:
        """A failed serving replica was detected: it stops counting as lost and a healthy
        replica is asked for in its place, serving from ``until`` (the scheduler's next
        decision sees the failure too, so nothing is taken out twice)."""
        if self.lost > 0:
            self.lost -= 1
            self.target = max(self.target - 1, 0)
            self.warm_until = max(self.warm_until, until)
