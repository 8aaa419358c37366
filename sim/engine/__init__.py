"""The engine: the only package that uses SimPy (datacenters, scheduler, later network,
failures and jobs).

Public: ``simulate``, ``SimulationResult``, ``Environment``.
"""
from __future__ import annotations

from sim.engine.core import Environment
from sim.engine.simulation import SimulationResult, simulate

__all__ = ["simulate", "SimulationResult", "Environment"]
