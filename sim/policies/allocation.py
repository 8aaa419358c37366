"""Allocation policies: how the scheduler turns the load into active replicas per pool.

The scheduler calls ``policy.allocate(entities, load, L_max, nominal)`` at every tick and on
failover, with the weighted entities (regions or ``region/pool``, standbys with weight 0)
at the capacity it knows to be up, and applies the returned
:class:`~sim.models.allocation.AllocationResult`. The demand is always
``L / L_max x`` the nominal weighted capacity; policies differ in how they spread it.

Built-ins: ``proportional`` (the seed's model: shares in proportion to ``r_i``, spill-over
by water-filling, then standbys) and ``packed`` (fill the highest-weight entity first).

Public: ``AllocationPolicy``, ``Proportional``, ``Packed``.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from sim.models.allocation import AllocationResult, Entity, allocate, allocate_packed
from sim.policies.registry import PolicyParams, declare_kind, register

__all__ = ["AllocationPolicy", "Proportional", "Packed"]

declare_kind("allocation", ("allocate",))


class AllocationPolicy:
    """Base class of allocation policies."""

    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(self, params: PolicyParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng

    @abstractmethod  # a flag the registry reads: a subclass must define its own allocate
    def allocate(self, entities: list[Entity], load: float, L_max: float,
                 nominal: list[Entity]) -> AllocationResult:
        """Active replicas per entity and pool for ``load``."""
        raise NotImplementedError


@register("allocation", "proportional")
class Proportional(AllocationPolicy):
    """The seed's R(t) = sum r_i L / L_max split in proportion to r_i; overflow spills by weight, then to standbys."""

    def allocate(self, entities, load, L_max, nominal):
        return allocate(entities, load, L_max, nominal)


@register("allocation", "packed")
class Packed(AllocationPolicy):
    """The same demand, filling the highest-weight entity to capacity first (fewest regions awake), then standbys."""

    def allocate(self, entities, load, L_max, nominal):
        return allocate_packed(entities, load, L_max, nominal)
