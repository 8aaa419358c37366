"""The seed's allocation model R(t) = sum_i r_i * L(t) / L_max, and how it maps to GPUs.

``R(t)`` is the share of the *weighted fleet* to keep active: with weights summing to 1 it
is simply ``L(t) / L_max``, so ``L_max`` is the load that the non-standby capacity carries
when fully active. Entity i (a region or a ``region/pool``) gets the part
``r_i * L / L_max`` of R, that is the fraction ``s_i = r_i / sum r`` of it, which is what
the seed's table shows (each of three nodes keeps 33.3 % whatever the load).

Mapping to capacity (documented in docs/models.md):

1. demand in GPUs ``D = L / L_max * C_w``, with ``C_w`` the GPUs of weighted entities;
2. entity i is asked for ``s_i * D`` GPUs; what exceeds its capacity spills over to the
   other weighted entities in proportion to their weights (water-filling), then to the
   standbys (``r_i = 0``) in proportion to their capacity; what is still left is ``unmet``;
3. inside an entity the GPUs are split between its pools in proportion to their size, and
   each pool activates ``ceil(gpus / gpus_per_replica)`` replicas (never fewer than asked).

So ``L > L_max`` first saturates the weighted fleet, then wakes the standbys, then is
reported as unmet demand; it is never silently dropped.

:func:`allocate_packed` is the alternative the ``packed`` allocation policy uses: the same
demand, but each weighted entity is filled to capacity in order of decreasing weight
before the next is touched (fewer GPUs awake, more idle ones off), then the standbys.

Public: ``Entity``, ``Allocation``, ``resources``, ``allocate``, ``allocate_packed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Entity", "AllocationResult", "resources", "allocate", "allocate_packed"]

_EPS = 1e-9


@dataclass(frozen=True)
class Entity:
    """A weighted unit of capacity: a region or one pool, with its pools' sizes in GPUs."""

    key: str
    weight: float
    pool_gpus: tuple[int, ...]
    gpus_per_replica: tuple[int, ...]

    @property
    def capacity_gpus(self) -> int:
        return sum(self.pool_gpus)


@dataclass(frozen=True)
class AllocationResult:
    """Outcome of one allocation decision."""

    load: float
    resources: float
    shares: tuple[float, ...]
    demand_gpus: float
    target_gpus: tuple[float, ...]  # per entity, after spill-over
    active_replicas: tuple[tuple[int, ...], ...]  # per entity, per pool
    unmet_gpus: float


def resources(weights: list[float] | tuple[float, ...], load: float, L_max: float) -> float:
    """The seed's R(t) = sum_i r_i * L(t) / L_max."""
    return sum(r * load / L_max for r in weights)


def _water_fill(amount: float, caps: list[float], weights: list[float]) -> tuple[list[float], float]:
    """Spread ``amount`` over entities in proportion to ``weights``, capped at ``caps``."""
    given = [0.0] * len(caps)
    open_ = [i for i, w in enumerate(weights) if w > 0 and caps[i] > 0]
    while amount > _EPS and open_:
        total_w = sum(weights[i] for i in open_)
        offer = {i: amount * weights[i] / total_w for i in open_}
        amount = 0.0
        for i in list(open_):
            take = min(offer[i], caps[i] - given[i])
            given[i] += take
            amount += offer[i] - take
            if caps[i] - given[i] <= _EPS:
                open_.remove(i)
    return given, amount


def _replicas(gpus: float, entity: Entity) -> tuple[int, ...]:
    cap = entity.capacity_gpus
    result = []
    for pool_gpus, per in zip(entity.pool_gpus, entity.gpus_per_replica, strict=True):
        share = gpus * pool_gpus / cap if cap else 0.0
        result.append(min(pool_gpus // per, math.ceil(share / per - _EPS)))
    return tuple(result)


def allocate(entities: list[Entity], load: float, L_max: float,
             nominal: list[Entity] | None = None) -> AllocationResult:
    """Active replicas per entity and pool for load ``load`` (see the module docstring).

    ``entities`` give the capacity that can run now; ``nominal`` (the same entities at full
    size, default ``entities``) sets the demand, so failed capacity spills over instead of
    shrinking the demand."""
    weights, caps, demand = _inputs(entities, load, L_max, nominal)
    served, rest = _water_fill(demand, caps, weights)
    standby = [c if w == 0 else 0.0 for c, w in zip(caps, weights, strict=True)]
    extra, unmet = _water_fill(rest, standby, standby)
    return _result(entities, load, L_max, demand, [a + b for a, b in zip(served, extra, strict=True)], unmet)


def _inputs(entities: list[Entity], load: float, L_max: float,
            nominal: list[Entity] | None) -> tuple[list[float], list[float], float]:
    """Weights, capacities now, and the demand in GPUs (from the nominal capacities)."""
    weights = [e.weight for e in entities]
    caps = [float(e.capacity_gpus) for e in entities]
    full = [float(e.capacity_gpus) for e in (nominal if nominal is not None else entities)]
    return weights, caps, load / L_max * sum(c for c, w in zip(full, weights, strict=True) if w > 0)


def _result(entities: list[Entity], load: float, L_max: float, demand: float, target: list[float],
            unmet: float) -> AllocationResult:
    weights = [e.weight for e in entities]
    total_w = sum(weights)
    return AllocationResult(
        load=load, resources=resources(weights, load, L_max),
        shares=tuple(w / total_w for w in weights), demand_gpus=demand,
        target_gpus=tuple(target), unmet_gpus=unmet,
        active_replicas=tuple(_replicas(t, e) for t, e in zip(target, entities, strict=True)))


def _fill_in_order(amount: float, caps: list[float], order: list[int]) -> tuple[list[float], float]:
    """Give ``amount`` to entities in ``order``, each up to its cap; return (given, left)."""
    given = [0.0] * len(caps)
    for i in order:
        take = min(amount, caps[i])
        given[i] = take
        amount -= take
    return given, max(amount, 0.0) if amount > _EPS else 0.0


def allocate_packed(entities: list[Entity], load: float, L_max: float,
                    nominal: list[Entity] | None = None) -> AllocationResult:
    """Like :func:`allocate`, but filling weighted entities one at a time by decreasing
    weight (ties: declaration order), then standbys by decreasing capacity."""
    weights, caps, demand = _inputs(entities, load, L_max, nominal)
    weighted = sorted((i for i, w in enumerate(weights) if w > 0), key=lambda i: (-weights[i], i))
    served, rest = _fill_in_order(demand, caps, weighted)
    standby = sorted((i for i, w in enumerate(weights) if w == 0), key=lambda i: (-caps[i], i))
    extra, unmet = _fill_in_order(rest, caps, standby)
    return _result(entities, load, L_max, demand, [a + b for a, b in zip(served, extra, strict=True)], unmet)
