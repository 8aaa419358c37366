"""Building and running one simulation: the only place where SimPy processes are started.

:func:`simulate` creates the environment, the pool runtimes and the scheduler process for a
scenario and its world, forwards every record to the observers, and runs to the scenario's
duration.

Public: ``SimulationResult``, ``simulate``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from sim.engine.core import Environment
from sim.engine.datacenter import PoolRuntime
from sim.engine.scheduler import activate_all, scheduler_process
from sim.metrics.records import Record
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.world import World

__all__ = ["SimulationResult", "simulate"]

Observer = Callable[[Record], None]


@dataclass(frozen=True)
class SimulationResult:
    end_s: float
    events_processed: int


def simulate(scenario: Scenario, world: World, observers: Sequence[Observer],
             streams: Streams | None = None) -> SimulationResult:
    """Run ``scenario`` on ``world``, sending every record to each observer."""
    streams = streams or Streams(scenario.seed)  # no stream is drawn from yet (foundation)

    def emit(record: Record) -> None:
        for observer in observers:
            observer(record)

    env = Environment()
    pools = [PoolRuntime(info, emit) for info in world.pools]
    if scenario.scheduler is None:
        activate_all(0.0, pools)
    else:
        env.process(scheduler_process(env, scenario.scheduler, pools, emit))
    env.run(until=scenario.duration)
    return SimulationResult(end_s=float(env.now), events_processed=env.events_processed)
