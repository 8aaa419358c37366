"""Pure-numpy models: the load model L(t), load profiles, and the allocation model R(t).

Public: ``load_at``, ``linear_load``, ``diurnal_factor``, ``Entity``, ``AllocationResult``,
``resources``, ``allocate``.
"""
from __future__ import annotations

from sim.models.allocation import AllocationResult, Entity, allocate, resources
from sim.models.load import ObservedRate, diurnal_factor, linear_load, load_at

__all__ = ["ObservedRate", "load_at", "linear_load", "diurnal_factor", "Entity", "AllocationResult",
           "resources", "allocate"]
