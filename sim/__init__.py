"""Meridian: a discrete-event simulator of global AI clusters.

A run goes scenario file -> validated :class:`~sim.scenario.Scenario` -> pure-data
:class:`~sim.world.World` -> SimPy engine -> event records -> summary, time series and
charts in a self-describing run folder.

Public: ``load_scenario``, ``Scenario``, ``build_world``, ``World``, ``run_scenario``,
``simulate``, ``ScenarioError``, ``PolicyError``, ``MeridianError``, ``__version__``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from sim.engine import simulate
from sim.errors import MeridianError, PolicyError, ScenarioError
from sim.runner import run_scenario
from sim.scenario import Scenario, load_scenario
from sim.world import World, build_world

__all__ = [
    "__version__", "MeridianError", "PolicyError", "ScenarioError", "Scenario",
    "load_scenario", "World", "build_world", "simulate", "run_scenario",
]
