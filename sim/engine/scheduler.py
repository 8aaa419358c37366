"""The scheduler process: every ``interval`` it applies the load and allocation models.

At each tick it evaluates ``L(t)``, asks :func:`~sim.models.allocate` for the active
replicas of every pool, applies them and records load, shares and capacity. Regions and
pools the allocation weights do not name are standbys (``r_i = 0``). Until request-level
workloads exist, the demand the allocation places on a pool is also its busy GPU count.

Public: ``entities_for``, ``scheduler_process``, ``activate_all``.
"""
from __future__ import annotations

from typing import Callable, Generator, Sequence

import simpy

from sim.engine.datacenter import PoolRuntime
from sim.metrics.records import LoadSample, Record
from sim.models import Entity, ObservedRate, allocate, load_at
from sim.scenario.model import ObservedLoad, Scheduler

__all__ = ["entities_for", "scheduler_process", "activate_all"]


def entities_for(weights: dict[str, float], pools: Sequence[PoolRuntime]) -> list[tuple[Entity, list[PoolRuntime]]]:
    """Group pools into weighted entities (named regions/pools, then unnamed standbys)."""
    groups: list[tuple[str, float, list[PoolRuntime]]] = []
    claimed: set[str] = set()
    for key, weight in weights.items():
        members = [p for p in pools if p.info.key == key or ("/" not in key and p.info.region == key)]
        claimed.update(p.info.key for p in members)
        groups.append((key, weight, members))
    groups += [(p.info.key, 0.0, [p]) for p in pools if p.info.key not in claimed]
    return [(Entity(key, weight, tuple(p.info.total_gpus for p in members),
                    tuple(p.info.gpus_per_replica for p in members)), members)
            for key, weight, members in groups]


def _apply(t_s: float, groups, decision, fluid_busy: bool) -> None:
    for (entity, members), share, target, replicas in zip(
            groups, decision.shares, decision.target_gpus, decision.active_replicas):
        cap = entity.capacity_gpus
        for pool, n in zip(members, replicas):
            fraction = pool.info.total_gpus / cap if cap else 0.0
            pool.set_state(t_s, n, target * fraction if fluid_busy else 0.0, share * fraction)


def scheduler_process(env: simpy.Environment, config: Scheduler, pools: Sequence[PoolRuntime],
                      emit: Callable[[Record], None],
                      arrivals: Callable[[float, float], int] | None = None) -> Generator[simpy.Event, None, None]:
    """Apply the models at t = 0, interval, 2 * interval, ... until the run ends.

    ``arrivals(a, b)`` counts inference requests that arrived in ``[a, b)``; it feeds the
    ``observed`` load model and, when given, means request-level workloads make pools busy
    (so the allocation's demand is not also counted as busy GPUs)."""
    groups = entities_for(dict(config.allocation.weights), pools)
    entities = [entity for entity, _ in groups]
    model = config.load_model
    observed = ObservedRate(model.window, model.initial / model.scale) if isinstance(model, ObservedLoad) else None
    while True:
        forecast = seen = float("nan")
        if observed is not None:
            load = seen = model.scale * observed.update(env.now, arrivals)
            if model.forecast is not None:
                forecast = float(load_at(model.forecast, env.now))
                load = forecast if model.drive == "forecast" else seen
        else:
            load = float(load_at(model, env.now))
        decision = allocate(entities, load, config.allocation.L_max)
        emit(LoadSample(env.now, load, decision.resources, decision.demand_gpus, decision.unmet_gpus,
                        forecast, seen))
        _apply(env.now, groups, decision, fluid_busy=arrivals is None)
        yield env.timeout(config.interval)


def activate_all(t_s: float, pools: Sequence[PoolRuntime]) -> None:
    """Without a scheduler every replica is active, each pool's share its size."""
    total = sum(p.info.total_gpus for p in pools)
    for pool in pools:
        pool.set_state(t_s, pool.info.replicas, 0.0, pool.info.total_gpus / total if total else 0.0)
