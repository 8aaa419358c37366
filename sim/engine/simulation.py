"""Building and running one simulation: the only place where SimPy processes are started.

:func:`simulate` creates the environment, the pool runtimes, the scheduler process and,
when the scenario has inference workloads, the request fast path
(:class:`~sim.engine.inference.InferenceEngine`), forwards every record to the observers
and runs to the scenario's duration.

Public: ``SimulationResult``, ``simulate``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sim.engine.core import Environment
from sim.engine.datacenter import PoolRuntime
from sim.engine.inference import InferenceEngine
from sim.engine.scheduler import SchedulerProcess, activate_all
from sim.metrics.records import Record, RequestLog
from sim.policies import create
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.workload import RequestBatch, generate_requests
from sim.world import World

__all__ = ["SimulationResult", "simulate"]

Observer = Callable[[Record], None]


@dataclass(frozen=True)
class SimulationResult:
    end_s: float
    events_processed: int
    requests: RequestLog | None = None
    training: object | None = None  # the TrainingEngine, whose records the runner writes
    failures: object | None = None  # the FailureEngine, likewise
    inference: object | None = None  # the InferenceEngine (retry and loss counts)
    consistency: object | None = None  # the ConsistencyEngine (rollout records)


def _arrival_counter(batch: RequestBatch) -> Callable[[float, float], int]:
    times = batch.t_s

    def count(a: float, b: float) -> int:
        return int(np.searchsorted(times, b, side="left") - np.searchsorted(times, a, side="left"))
    return count


def simulate(scenario: Scenario, world: World, observers: Sequence[Observer],
             streams: Streams | None = None, base_dir: Path = Path("."),
             source: str = "<scenario>") -> SimulationResult:
    """Run ``scenario`` on ``world``, sending every record to each observer."""
    streams = streams or Streams(scenario.seed)

    def emit(record: Record) -> None:
        for observer in observers:
            observer(record)

    env = Environment()
    pools = [PoolRuntime(info, emit, index) for index, info in enumerate(world.pools)]
    engine = None
    arrivals = None
    if scenario.inference:
        batch = generate_requests(scenario, world, streams, base_dir, source=source)
        spec = scenario.scheduler.routing_spec if scenario.scheduler else None
        spec = spec or _default_routing()
        policy = create("routing", spec, streams.get(f"policy/routing/{spec.name}"))
        engine = InferenceEngine(scenario, pools, world.topology.names, world.topology.rtt_ms,
                                 batch, policy, spec.name)
        for pool in pools:
            pool.listeners.append(engine.capacity_changed)
        arrivals = _arrival_counter(batch)
    training = _training_engine(env, scenario, world, pools, streams, base_dir, source, emit)
    config = scenario.scheduler
    scheduler = None
    if config is None or config.load_model is None:
        activate_all(0.0, pools)
    else:
        warmup = scenario.failures.warmup if scenario.failures else 0.0
        spec = config.allocation.policy_spec
        allocation = create("allocation", spec, streams.get(f"policy/allocation/{spec.name}"))
        scheduler = SchedulerProcess(env, config, pools, emit, arrivals, warmup, allocation)
        env.process(scheduler.run())
    failures = None
    if scenario.failures is not None:
        from sim.engine.failures import FailureEngine
        failures = FailureEngine(env, scenario, pools, streams, base_dir, source, engine, training, scheduler,
                                 world.topology)
        if training is not None:
            failures.route_listeners.append(training.rerouted)
    consistency = _consistency_engine(env, scenario, world, pools, training, failures)
    if engine is None:
        env.run(until=scenario.duration)
        return SimulationResult(float(scenario.duration), env.events_processed, None, training, failures,
                                None, consistency)
    engine.run(env, scenario.duration)
    handled = env.events_processed + engine.events_processed
    return SimulationResult(float(scenario.duration), handled, engine.log(), training, failures, engine,
                            consistency)


def _consistency_engine(env, scenario, world, pools, training, failures):
    """Model rollouts, sharing the WAN with training's transfers, or None."""
    if scenario.consistency is None:
        return None
    from sim.engine.consistency import ConsistencyEngine

    engine = ConsistencyEngine(env, scenario, world, pools, training.transfers if training else None)
    if training is not None:
        training.completion_listeners.append(engine.job_completed)
    if failures is not None:
        def rerouted(topology):
            engine.transfers.topology = topology
            engine.rerouted()
        failures.route_listeners.append(rerouted)
    return engine


def _training_engine(env, scenario, world, pools, streams, base_dir, source, emit):
    """The training engine, listening to capacity changes, or None without training."""
    if not scenario.training:
        return None
    from sim.engine.training import TrainingEngine
    from sim.workload.training import generate_jobs

    batch = generate_jobs(scenario, streams, base_dir, source=source)
    spec = scenario.scheduler.placement_spec if scenario.scheduler else _spec("fifo_first_fit")
    policy = create("placement", spec, streams.get(f"policy/placement/{spec.name}"))
    engine = TrainingEngine(env, scenario, world, pools, batch, policy, spec.name, emit,
                            inference_present=bool(scenario.inference))
    for pool in pools:
        pool.listeners.append(engine.capacity_changed)
    return engine


def _spec(name: str):
    from sim.scenario.model import PolicySpec
    return PolicySpec(name=name)


def _default_routing():
    return _spec("nearest")
