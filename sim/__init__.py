"""Meridian: a discrete-event simulator of global AI clusters.

A run goes scenario file -> validated :class:`~sim.scenario.Scenario` -> pure-data
:class:`~sim.world.World` -> SimPy engine -> event records -> summary, time series and
charts in a self-describing run folder.

The package is lazy (PEP 562): ``import sim`` loads nothing else, and each public name
imports its module on first use, so a command pays only for what it uses (``predict``
and ``validate`` never load SimPy or matplotlib).

Public: ``load_scenario``, ``Scenario``, ``build_world``, ``World``, ``run_scenario``,
``simulate``, ``ScenarioError``, ``PolicyError``, ``MeridianError``, ``__version__``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_attributes

__version__ = "0.1.0"

# Public name -> the module that defines it.
_HOMES = {
    "MeridianError": "sim.errors", "PolicyError": "sim.errors", "ScenarioError": "sim.errors",
    "Scenario": "sim.scenario", "load_scenario": "sim.scenario",
    "World": "sim.world", "build_world": "sim.world",
    "simulate": "sim.engine", "run_scenario": "sim.runner",
}

__all__ = [
    "__version__", "MeridianError", "PolicyError", "ScenarioError", "Scenario",
    "load_scenario", "World", "build_world", "simulate", "run_scenario",
]

if TYPE_CHECKING:
    from sim.engine import simulate
    from sim.errors import MeridianError, PolicyError, ScenarioError
    from sim.runner import run_scenario
    from sim.scenario import Scenario, load_scenario
    from sim.world import World, build_world


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)
