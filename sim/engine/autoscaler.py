"""The autoscaler: every ``interval`` its policy sets how many replicas each autoscaled
pool keeps provisioned, and new replicas pay a real cold start.

At each tick (t = 0, interval, 2 x interval, ...) the autoscaler reads the pools' signals
from the request fast path, hands its policy an
:class:`~sim.policies.views.AutoscaleView`, checks the answer (whole replicas within each
pool's ``min .. max``) and applies it:

- above the replicas ready or starting, the extra replicas begin a cold start together
  (:class:`~sim.records.ColdStart`): ``provisioning_s + weight bytes / load bandwidth``
  (:mod:`sim.world.cold_start`); when it ends they are warm and serve
  (:class:`~sim.records.ReplicasReady`), unless a scale-down abandoned them meanwhile;
- below, once ``scale_down_cooldown`` has passed since the pool's last scale-up or
  scale-down, the pool shrinks to the largest wish of that past cooldown (so one quiet
  tick does not undo a surge's scale-up: Kubernetes' stabilization window); replicas still
  starting are abandoned first (newest first), then warm ones are released; a released
  replica finishes the requests it holds but admits no more.

Pools of a region that share a GPU group (``autoscale.group``: several models on one
cluster) never hold more than the group's GPUs between them, ready or starting: at a tick
the scale-downs go first, then each scale-up takes what the group has free (pools in
scenario order), so a model grows into GPUs another released and pays its own cold start.

Scale-ups wait ``scale_up_cooldown`` after the previous one began. The pool's serving
replicas are ``min(scheduler target, up, provisioned)`` (:class:`PoolRuntime`): without a
load model the scheduler asks for every replica, so the autoscaler alone decides. Every
change of ready or starting replicas is published as :class:`~sim.records.ProvisionChanged`.

Public: ``Autoscaler``.
"""
from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine.bus import Bus
from sim.engine.datacenter import PoolRuntime
from sim.engine.inference import PoolSignals
from sim.errors import PolicyError
from sim.policies import AutoscaleView
from sim.records import ColdStart, ProvisionCause, ProvisionChanged, ReplicasReady
from sim.scenario.model import Autoscaling
from sim.world import World
from sim.world.cold_start import ColdStartSpec, cold_start_spec

__all__ = ["Autoscaler"]


@dataclass
class _Starting:
    """Replicas whose cold start began together (``replicas`` falls when some are abandoned)."""

    started_s: float
    replicas: int


@dataclass
class _Scaled:
    """The autoscaler's state of one pool."""

    pool: PoolRuntime
    spec: ColdStartSpec
    low: int
    high: int
    ready: int
    desired: int
    starting: list[_Starting]
    wishes: deque[tuple[float, int]] = field(default_factory=deque)  # (t, desired) over the last cooldown
    last_up: float = -np.inf
    last_change: float = -np.inf

    @property
    def pending(self) -> int:
        return sum(s.replicas for s in self.starting)


class Autoscaler:
    """Applies an autoscaling policy to the pools that have an ``autoscale`` section."""

    def __init__(self, env: simpy.Environment, config: Autoscaling, world: World, pools: Sequence[PoolRuntime],
                 bus: Bus, policy, policy_name: str, signals: Callable[[float, float], PoolSignals],
                 groups: Mapping[tuple[str, str], int] | None = None):
        self.env, self.config, self.bus = env, config, bus
        self.scale, self.policy_name, self.signals = policy.scale, policy_name, signals
        self.pools = [self._state(p, world) for p in pools if p.info.autoscale is not None]
        # Shared GPU groups: (region, group) -> GPUs; each pool's group key (None: its own).
        self.group_gpus = dict(groups or {})
        self.group_of = [(s.pool.info.region, s.pool.info.autoscale.group)  # type: ignore[union-attr]
                         if s.pool.info.autoscale.group is not None else None  # type: ignore[union-attr]
                         for s in self.pools]
        for state in self.pools:
            state.pool.provision(env.now, state.ready)
            self._announce(state, "initial")

    @staticmethod
    def _state(pool: PoolRuntime, world: World) -> _Scaled:
        config = pool.info.autoscale
        assert config is not None
        high = pool.info.replicas if config.max is None else config.max
        ready = config.min if config.initial is None else config.initial
        return _Scaled(pool, cold_start_spec(pool.info, world), config.min, high, ready, ready, [])

    def run(self) -> Generator[simpy.Event, None, None]:
        while True:
            self.tick()
            yield self.env.timeout(self.config.interval)

    def tick(self) -> None:
        """One decision: observe, ask the policy, apply its answer pool by pool."""
        view = self.view(self.signals(self.env.now, self.config.interval))
        wanted = self._checked(self.scale(view), view)
        now, window = self.env.now, self.config.scale_down_cooldown
        ups = []
        for state, n in zip(self.pools, wanted, strict=True):
            state.desired = n
            state.wishes.append((now, n))
            while state.wishes[0][0] < now - window:
                state.wishes.popleft()
            if n > state.ready + state.pending:
                ups.append((state, n))
            elif n < state.ready + state.pending:
                self._scale_down(state, n)
        for state, n in ups:  # after the scale-downs: a group's freed GPUs are there to take
            group = self.group_of[self.pools.index(state)]
            if group is not None:
                gpr = state.pool.info.gpus_per_replica
                free = self.group_gpus[group] - self._group_used(group)
                n = min(n, state.ready + state.pending + max(free, 0) // gpr)
                if n <= state.ready + state.pending:
                    continue  # the group is full: wait for another model to release GPUs
            self._scale_up(state, n)

    def view(self, signals: PoolSignals) -> AutoscaleView:
        """The policy's snapshot of the autoscaled pools."""
        index = [s.pool.index for s in self.pools]
        return AutoscaleView.build(
            keys=[s.pool.info.key for s in self.pools], t_s=self.env.now, interval_s=self.config.interval,
            pool_index=index, ready=[s.ready for s in self.pools], starting=[s.pending for s in self.pools],
            active=[s.pool.active_replicas for s in self.pools], min_replicas=[s.low for s in self.pools],
            max_replicas=[s.high for s in self.pools], slots_per_replica=signals.slots_per_replica[index],
            queue_len=signals.queue_len[index], running=signals.running[index],
            kv_fraction=signals.kv_fraction[index], arrivals=signals.arrivals[index],
            wait_mean_s=signals.wait_mean_s[index], ttft_p99_ms=signals.ttft_p99_ms[index],
            cold_start_s=[s.spec.total_s for s in self.pools],
            planned=[s.pool.desired for s in self.pools])

    def _checked(self, answer, view: AutoscaleView) -> list[int]:
        """The policy's answer as whole replicas, or a PolicyError saying what is wrong."""
        try:
            values = [operator.index(v) for v in answer]
        except TypeError:
            raise PolicyError(self.policy_name, f"returned {answer!r}, not one whole number of replicas per "
                              f"autoscaled pool ({view.n})") from None
        if len(values) != view.n:
            raise PolicyError(self.policy_name, f"returned {len(values)} replica counts for {view.n} autoscaled pools")
        for key, v, low, high in zip(view.keys, values, view.min_replicas, view.max_replicas, strict=True):
            if not low <= v <= high:
                raise PolicyError(self.policy_name, f"asked for {v} replicas of {key}, outside its bounds "
                                  f"{low}..{high} (use view.clamp)")
        return values

    def _group_used(self, group: tuple[str, str]) -> int:
        """GPUs the group's pools hold now, ready or starting."""
        return sum((s.ready + s.pending) * s.pool.info.gpus_per_replica
                   for s, g in zip(self.pools, self.group_of, strict=True) if g == group)

    def _scale_up(self, state: _Scaled, n: int) -> None:
        now = self.env.now
        if now - state.last_up < self.config.scale_up_cooldown:
            return
        batch = _Starting(now, n - state.ready - state.pending)
        state.starting.append(batch)
        state.last_up = state.last_change = now
        info, spec = state.pool.info, state.spec
        self.bus.emit(ColdStart(now, info.region, info.name, state.pool.index, batch.replicas, spec.provisioning_s,
                                spec.load_s, spec.weights_bytes, spec.load_gbps, spec.source))
        self._announce(state, "scale_up")
        self.env.process(self._cold_start(state, batch))

    def _cold_start(self, state: _Scaled, batch: _Starting) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(state.spec.total_s)
        state.starting.remove(batch)
        if batch.replicas == 0:  # every replica of it was abandoned
            return
        now = self.env.now
        info = state.pool.info
        state.ready += batch.replicas
        self.bus.emit(ReplicasReady(now, info.region, info.name, state.pool.index, batch.replicas, batch.started_s))
        state.pool.provision(now, state.ready)
        self._announce(state, "ready")

    def _scale_down(self, state: _Scaled, n: int) -> None:
        now = self.env.now
        if now - state.last_change < self.config.scale_down_cooldown:
            return
        n = max(w for _, w in state.wishes)
        if n >= state.ready + state.pending:
            return
        drop = state.ready + state.pending - n
        for batch in reversed(state.starting):  # the newest cold starts are furthest from serving
            cut = min(drop, batch.replicas)
            batch.replicas -= cut
            drop -= cut
        state.last_change = now
        if state.ready + state.pending > n:  # the cuts did not reach n: release warm replicas
            state.ready -= drop
            state.pool.provision(now, state.ready)
            self._announce(state, "scale_down")
        else:
            self._announce(state, "cancelled")

    def _announce(self, state: _Scaled, cause: ProvisionCause) -> None:
        info = state.pool.info
        self.bus.emit(ProvisionChanged(self.env.now, info.region, info.name, state.pool.index, state.ready,
                                       state.pending, state.desired, cause))
