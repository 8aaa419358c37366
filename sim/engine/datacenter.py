"""Datacenters at run time: each GPU pool's active capacity and use.

A :class:`PoolRuntime` is the live counterpart of a static
:class:`~sim.world.PoolInfo`. The scheduler sets how many replicas are active; every
change is announced to the observers as a :class:`~sim.metrics.PoolState` record.

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
        self.active_replicas = info.replicas
        self.busy_gpus = 0.0
        self.share = 0.0
        self._emit = emit

    @property
    def active_gpus(self) -> int:
        return self.active_replicas * self.info.gpus_per_replica

    def set_state(self, t_s: float, active_replicas: int, busy_gpus: float, share: float) -> None:
        """Apply a scheduler decision and announce it."""
        if not 0 <= active_replicas <= self.info.replicas:
            raise ValueError(f"{self.info.key}: active replicas {active_replicas} outside 0..{self.info.replicas}")
        self.active_replicas = active_replicas
        self.busy_gpus = min(busy_gpus, float(self.active_gpus))
        self.share = share
        self._emit(PoolState(t_s, self.info.region, self.info.name, share, self.active_gpus, self.busy_gpus))
        for listener in self.listeners:
            listener(self.index, t_s)
