"""The static world: regions, GPU pools, catalogues and the inter-region network (pure data).

Public: ``World``, ``RegionInfo``, ``PoolInfo``, ``build_world``, ``Topology``.
"""
from __future__ import annotations

from sim.world.build import PoolInfo, RegionInfo, World, build_world
from sim.world.topology import Topology

__all__ = ["World", "RegionInfo", "PoolInfo", "build_world", "Topology"]
