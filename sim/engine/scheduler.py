"""The scheduler process: every ``interval`` it applies the load and allocation models.

At each tick it evaluates ``L(t)``, asks the allocation policy for the active replicas of
every pool, applies them and publishes a :class:`~sim.records.LoadSample`. Regions and
pools the allocation weights do not name are standbys (``r_i = 0``). Without request-level
workloads, the demand the allocation places on a pool is also its busy GPU count, and the
scheduler keeps that demand on capacity that serves: whenever pools' active capacity
changes (a failure, a warm-up ending, a pool held while others warm), the demand pools
cannot carry moves to active capacity with room, in proportion to the room
(:meth:`SchedulerProcess.rebalance`). So the busy GPUs sum to
``min(placed demand, active GPUs)`` at every instant, and what is left is unmet.

The scheduler knows of failures only through :class:`~sim.records.FailureDetected`
records (after the detection delay): it keeps its own count of the replicas it believes
are up, and re-allocates at once on that capacity (failover).

Public: ``entities_for``, ``SchedulerProcess``, ``activate_all``.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence

import simpy

from sim.engine.bus import Bus
from sim.engine.datacenter import PoolRuntime
from sim.models import Entity, ObservedRate, load_at
from sim.records import CapacityChanged, FailureDetected, LoadSample
from sim.scenario.model import LoadModel, ObservedLoad, Scheduler

__all__ = ["entities_for", "SchedulerProcess", "activate_all"]

_EPS = 1e-9  # GPUs: less unplaced demand than this is rounding, not a shortfall


def entities_for(weights: dict[str, float], pools: Sequence[PoolRuntime],
                 known_up: Callable[[PoolRuntime], int] | None = None) -> list[tuple[Entity, list[PoolRuntime]]]:
    """Group pools into weighted entities (named regions/pools, then unnamed standbys).

    With ``known_up`` each pool counts only the replicas the scheduler knows are up."""
    groups: list[tuple[str, float, list[PoolRuntime]]] = []
    claimed: set[str] = set()
    for key, weight in weights.items():
        members = [p for p in pools if p.info.key == key or ("/" not in key and p.info.region == key)]
        claimed.update(p.info.key for p in members)
        groups.append((key, weight, members))
    groups += [(p.info.key, 0.0, [p]) for p in pools if p.info.key not in claimed]

    def gpus(p: PoolRuntime) -> int:
        return (known_up(p) if known_up is not None else p.info.replicas) * p.info.gpus_per_replica
    return [(Entity(key, weight, tuple(gpus(p) for p in members),
                    tuple(p.info.gpus_per_replica for p in members)), members)
            for key, weight, members in groups]


def _apply(t_s: float, groups, decision, fluid_busy: bool, cause: str) -> None:
    for (entity, members), share, target, replicas in zip(
            groups, decision.shares, decision.target_gpus, decision.active_replicas, strict=True):
        cap = entity.capacity_gpus
        for pool, pool_gpus, n in zip(members, entity.pool_gpus, replicas, strict=True):
            fraction = pool_gpus / cap if cap else 0.0
            pool.set_state(t_s, n, target * fraction if fluid_busy else 0.0, share * fraction, cause)


class SchedulerProcess:
    """Applies the models at t = 0, interval, 2 * interval, ... until the run ends, and
    again on :meth:`failover` when a failure or recovery is detected.

    ``arrivals(a, b)`` counts inference requests that arrived in ``[a, b)``; it feeds the
    ``observed`` load model and, when given, means request-level workloads make pools busy
    (so the allocation's demand is not also counted as busy GPUs)."""

    def __init__(self, env: simpy.Environment, config: Scheduler, pools: Sequence[PoolRuntime], bus: Bus,
                 policy, arrivals: Callable[[float, float], int] | None = None, warmup_s: float = 0.0):
        if config.load_model is None or config.allocation is None:
            raise ValueError("SchedulerProcess needs scheduler.load_model and scheduler.allocation")
        self.env, self.config, self.pools, self.bus = env, config, list(pools), bus
        self._load_model, self._allocation = config.load_model, config.allocation
        self.allocate = policy.allocate
        self.arrivals = arrivals
        self.warmup_s = warmup_s
        self.weights = dict(config.allocation.weights)
        self.nominal = [entity for entity, _ in entities_for(self.weights, self.pools)]
        self.load: float | None = None
        # What the scheduler knows of failed replicas and dark regions, per pool.
        self._known_down = [0] * len(self.pools)
        self._known_dark = [0] * len(self.pools)
        self._quiet = False  # deciding or rebalancing: pools' changes are not reacted to one by one
        bus.subscribe(self.failure_detected, (FailureDetected,))
        if arrivals is None:
            bus.subscribe(self.capacity_changed, (CapacityChanged,))

    def known_up(self, pool: PoolRuntime) -> int:
        """Replicas the scheduler believes are up (failures reach it after a detection delay)."""
        p = pool.index
        return 0 if self._known_dark[p] else max(pool.info.replicas - self._known_down[p], 0)

    def failure_detected(self, record: FailureDetected) -> None:
        for p in record.pool_indices:
            self._known_down[p] += record.down
            self._known_dark[p] += record.dark
        self.failover()

    def capacity_changed(self, record: CapacityChanged) -> None:
        """A pool's active capacity changed outside a decision (a failure, a repair, a
        warm-up ending): carry the demand on what serves now."""
        if not self._quiet:
            self.rebalance()

    def rebalance(self) -> None:
        """Busy GPUs from the demand placed on each pool: a pool carries its own demand up
        to its active GPUs; what pools cannot carry (warming up, failed) goes to pools with
        active room, in proportion to the room, as far as it fits."""
        if self.arrivals is not None:
            return
        pools, now = self.pools, self.env.now
        room = [max(p.active_gpus - p.demand_gpus, 0.0) for p in pools]
        short = sum(max(p.demand_gpus - p.active_gpus, 0.0) for p in pools)
        spare = sum(room)
        moved = min(short, spare) if short > _EPS and spare > 0 else 0.0
        self._quiet = True
        try:
            # A pool short of capacity keeps asking for its own demand, so it carries it
            # again the moment its capacity returns (and the next rebalance takes the
            # spill back from the others).
            for pool, r in zip(pools, room, strict=True):
                pool.carry(now, pool.demand_gpus + moved * r / spare if moved else pool.demand_gpus)
        finally:
            self._quiet = False

    def _decide(self, load: float, warm: bool):
        groups = entities_for(self.weights, self.pools, self.known_up)
        decision = self.allocate([e for e, _ in groups], load, self._allocation.L_max, self.nominal)
        if warm and self.warmup_s > 0:
            now = self.env.now
            until = now + self.warmup_s
            wishes = [(p, n) for (_, members), replicas in zip(groups, decision.active_replicas, strict=True)
                      for p, n in zip(members, replicas, strict=True)]
            rising = [p for p, n in wishes if p.rises_to(n, now)]
            for pool in rising:
                pool.warm_up_until(until)
            # While they warm, pools the decision shrinks keep serving (no gap on failback).
            falling = [p for p, n in wishes if n < p.target] if rising else []
            for pool in falling:
                pool.hold_until_time(until)
            if rising:
                self.env.process(self._warmed(rising + falling, until))
        self._quiet = True
        try:
            _apply(self.env.now, groups, decision, self.arrivals is None, "failover" if warm else "scheduler")
        finally:
            self._quiet = False
        self.rebalance()
        return decision

    def _warmed(self, pools: list[PoolRuntime], until: float):
        yield self.env.timeout(until - self.env.now)
        self._quiet = True
        try:
            for pool in pools:
                pool.warmed(self.env.now)
        finally:
            self._quiet = False
        self.rebalance()

    def failover(self) -> None:
        """Re-allocate now, on the capacity that is up; replicas it activates serve after
        the warm-up."""
        if self.load is not None:
            decision = self._decide(self.load, warm=True)
            nan = float("nan")
            self.bus.emit(LoadSample(self.env.now, self.load, decision.resources, decision.demand_gpus,
                                     decision.unmet_gpus, nan, nan))

    def run(self) -> Generator[simpy.Event, None, None]:
        config, env = self.config, self.env
        measure = self._measure(self._load_model)
        while True:
            load, forecast, seen = measure(env.now)
            self.load = load
            decision = self._decide(load, warm=False)
            self.bus.emit(LoadSample(env.now, load, decision.resources, decision.demand_gpus, decision.unmet_gpus,
                                     forecast, seen))
            yield env.timeout(config.interval)

    def _measure(self, model: LoadModel) -> Callable[[float], tuple[float, float, float]]:
        """``now -> (load, forecast, seen)``: the load the allocation is given and, for an
        observed model, its forecast and the observed load (else NaN)."""
        nan = float("nan")
        if not isinstance(model, ObservedLoad):
            return lambda now: (float(load_at(model, now)), nan, nan)
        arrivals = self.arrivals
        if arrivals is None:
            raise ValueError("an observed load model needs the request arrivals to observe")
        observed = ObservedRate(model.window, model.initial / model.scale)

        def measure(now: float) -> tuple[float, float, float]:
            load = seen = model.scale * observed.update(now, arrivals)
            forecast = nan
            if model.forecast is not None:
                forecast = float(load_at(model.forecast, now))
                load = forecast if model.drive == "forecast" else seen
            return load, forecast, seen
        return measure


def activate_all(t_s: float, pools: Sequence[PoolRuntime]) -> None:
    """Without a scheduler every replica is active, each pool's share its size."""
    total = sum(p.info.total_gpus for p in pools)
    for pool in pools:
        pool.set_state(t_s, pool.info.replicas, 0.0, pool.info.total_gpus / total if total else 0.0, "start")
