"""Autoscaling policies: how many replicas each autoscaled pool should keep provisioned.

At every autoscaler tick the engine calls ``policy.scale(view)`` with an
:class:`~sim.policies.views.AutoscaleView` (one entry per autoscaled pool) and expects one
whole number of replicas per entry, within ``min_replicas .. max_replicas`` (use
``view.clamp``). The engine applies the answer: replicas beyond those ready or starting
begin a cold start (provisioning plus weight load) and serve only when it ends; a
decision below that releases starting replicas first, then warm ones, once the pool's
scale-down cooldown has passed. Policies never see the engine.

Built-ins:

- ``target_utilization``: enough replicas that the load (requests running and queued,
  over what one replica runs at once: its slots, or what its KV cache fits) fills
  ``target`` of them;
- ``ttft_slo``: grow by a factor when the recent p99 TTFT exceeds the objective, shrink
  by one when it is well below and nothing queues;
- ``allocation_model``: the replicas the seed's allocation model R(t) asks for
  (``planned``), so the seed's scheduler becomes one autoscaler among others, now paying
  cold starts on the way up.

Public: ``AutoscalingPolicy``, ``TargetUtilization``, ``TtftSlo``, ``AllocationModel``.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
from pydantic import Field

from sim.policies.registry import PolicyParams, declare_kind, register
from sim.policies.views import AutoscaleView

__all__ = ["AutoscalingPolicy", "TargetUtilization", "TtftSlo", "AllocationModel"]

declare_kind("autoscaling", ("scale",))


class AutoscalingPolicy:
    """Base class of autoscaling policies."""

    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(self, params: PolicyParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng

    @abstractmethod  # a flag the registry reads: a subclass must define its own scale
    def scale(self, view: AutoscaleView) -> np.ndarray:
        """Replicas to keep provisioned, one whole number per entry of ``view``."""
        raise NotImplementedError


def load_replicas(view: AutoscaleView) -> np.ndarray:
    """The load of each pool in replica units: requests running and queued over what one
    replica runs at once. That is ``slots_per_replica``, or fewer where the KV cache is the
    limit: a batching replica whose running sequences fill the fraction ``kv_fraction`` of
    its KV cache fits ``running / (active x kv_fraction)`` of them."""
    slots = np.maximum(view.slots_per_replica, 1).astype(np.float64)
    kv = np.nan_to_num(view.kv_fraction, nan=0.0)
    measured = (kv > 0) & (view.running > 0) & (view.active > 0)
    fit = np.divide(view.running, view.active * kv, out=slots.copy(), where=measured)
    per_replica = np.maximum(np.minimum(slots, fit), 1.0)
    return (view.running + view.queue_len) / per_replica


class TargetUtilizationParams(PolicyParams):
    target: float = Field(0.7, gt=0, le=1, description="Utilization each provisioned replica is sized for.")


@register("autoscaling", "target_utilization")
class TargetUtilization(AutoscalingPolicy):
    """Replicas = ceil(load / target), load = running + queued requests over what a replica runs (slots or KV)."""

    Params = TargetUtilizationParams
    params: TargetUtilizationParams  # the registry validates them with the class above

    def scale(self, view: AutoscaleView) -> np.ndarray:
        wanted = load_replicas(view) / self.params.target
        # A queue at a pool with nothing serving needs a replica, however small it is.
        wanted = np.where((view.queue_len > 0) & (wanted < 1), 1.0, wanted)
        return view.clamp(wanted)


class TtftSloParams(PolicyParams):
    ttft_ms: float = Field(2000.0, gt=0, description="p99 TTFT objective, ms.")
    growth: float = Field(1.5, gt=1, description="Factor the replicas grow by when the p99 exceeds the objective "
                          "(at least one more replica).")
    low: float = Field(0.5, gt=0, lt=1, description="Shrink by one replica when the p99 is below low x ttft_ms "
                       "and nothing queues.")


@register("autoscaling", "ttft_slo")
class TtftSlo(AutoscalingPolicy):
    """Grow by `growth` while the recent p99 TTFT misses the objective, shrink by one when far below it."""

    Params = TtftSloParams
    params: TtftSloParams  # the registry validates them with the class above

    def scale(self, view: AutoscaleView) -> np.ndarray:
        p = self.params
        now = (view.ready + view.starting).astype(np.float64)
        p99 = view.ttft_p99_ms  # NaN (no arrivals) is neither slow nor fast
        slow = p99 > p.ttft_ms
        idle = np.isnan(p99) & (view.running == 0)  # nothing arrived and nothing runs
        fast = ((p99 < p.low * p.ttft_ms) | idle) & (view.queue_len == 0)
        wanted = np.where(slow, np.maximum(np.ceil(now * p.growth), now + 1), np.where(fast, now - 1, now))
        return view.clamp(wanted)


@register("autoscaling", "allocation_model")
class AllocationModel(AutoscalingPolicy):
    """The seed's allocation model R(t): the replicas it asks for (`planned`), now with cold starts."""

    def scale(self, view: AutoscaleView) -> np.ndarray:
        return view.clamp(view.planned)
