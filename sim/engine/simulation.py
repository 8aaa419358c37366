"""Building and running one simulation: the only place where the engines are wired.

:func:`simulate` creates the environment and the record stream (:class:`~sim.engine.bus.Bus`),
subscribes the caller's observers first, then builds the engines the scenario needs:
pools, the request fast path (:class:`~sim.engine.inference.InferenceEngine`), training,
the scheduler, the autoscaler, failures, rollouts and plain copies. Engines react to each other only through records.
It runs to the scenario's duration, lets each engine publish what is still open, and
returns what the engine alone knows: the end time and the number of events processed.

An observer is a callable taking a record; its ``subscribes`` attribute (a tuple of record
types) narrows what it receives, otherwise it receives everything (a tracer).

Public: ``SimulationResult``, ``simulate``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.engine.bus import Bus, Subscriber
from sim.engine.core import Environment
from sim.engine.datacenter import PoolRuntime
from sim.engine.network import Routes, TransferBook, TransferManager
from sim.models.flows import flow_model
from sim.policies import create
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.workload import RequestBatch, generate_requests
from sim.world import World

if TYPE_CHECKING:
    from sim.engine.inference import InferenceEngine

__all__ = ["SimulationResult", "simulate"]

ProgressHook = Callable[[float, int], None]  # (simulated seconds, events processed so far)
_PROGRESS_TICKS = 500


@dataclass(frozen=True)
class SimulationResult:
    """What only the engine knows: when the run ended and how many events it processed."""

    end_s: float
    events_processed: int


def _arrival_counter(batch: RequestBatch, engine: InferenceEngine) -> Callable[[float, float], int]:
    """``count(a, b)``: requests that reached their origin in [a, b), called by the scheduler
    with b = now and a = its previous call's b. The first turns are known in advance, in
    time order; later turns of conversations are counted as the engine sends them."""
    times = batch.t_s[:batch.first_turns]
    sessions = batch.first_turns < len(batch.t_s)
    last_b, last_arrived = -np.inf, 0  # the previous call's b, and the later turns arrived before it

    def count(a: float, b: float) -> int:
        n = int(np.searchsorted(times, b, side="left") - np.searchsorted(times, a, side="left"))
        nonlocal last_b, last_arrived
        if sessions:
            arrived = engine.turns.arrived()
            n += arrived - (last_arrived if a == last_b else 0)
            last_b, last_arrived = b, arrived
        return n
    return count


def _policy(kind: str, spec, streams: Streams):
    return create(kind, spec, streams.get(f"policy/{kind}/{spec.name}"))


def simulate(scenario: Scenario, world: World, observers: Sequence[Subscriber],
             streams: Streams | None = None, base_dir: Path = Path("."),
             source: str = "<scenario>", fluid_arrivals: Callable[[float, float], int] | None = None,
             progress: ProgressHook | None = None) -> SimulationResult:
    """Run ``scenario`` on ``world``, publishing every record to the observers.

    ``fluid_arrivals`` (the fluid mode): the inference requests are not simulated; this
    counts their expected arrivals for the scheduler, and the pools, scheduler and failures
    behave as with request-level workloads. ``progress(t, events so far)``, if given, is
    called about every 1/500 of the duration of simulated time, from outside the event
    queue (it changes no result)."""
    streams = streams or Streams(scenario.seed)
    bus = Bus()
    for observer in observers:
        bus.subscribe(observer, getattr(observer, "subscribes", None))
    env = Environment()
    pools = [PoolRuntime(info, bus, index) for index, info in enumerate(world.pools)]
    routes = Routes(env, world, bus)
    if fluid_arrivals is None:
        serving, arrivals = _inference_engine(scenario, world, streams, base_dir, source, bus)
    else:
        serving, arrivals = None, fluid_arrivals
    transfers = _transfers(env, scenario, routes) if scenario.training else None
    training = _training_engine(env, scenario, world, pools, streams, base_dir, source, bus, transfers)
    scheduler = _scheduler(env, scenario, pools, streams, bus, arrivals)
    if scenario.scheduler.autoscaling is not None and serving is not None:
        _autoscaler(env, scenario, world, pools, streams, bus, serving)
    if scenario.failures is not None:
        requests = serving is not None or fluid_arrivals is not None
        _failure_engine(env, scenario, world, pools, streams, bus, routes, base_dir, source, requests, training)
    consistency, transfers = _data_movers(env, scenario, world, routes, transfers, bus, streams, base_dir, source,
                                          serving)
    del scheduler  # it runs as a SimPy process
    handled = _run(env, serving, scenario.duration, progress)
    end = float(scenario.duration)
    if training is not None:
        training.close(end)
    if consistency is not None:
        consistency.close()
    if transfers is not None:
        transfers.close(end)
    return SimulationResult(end, handled)


def _run(env: Environment, serving, until, progress: ProgressHook | None) -> int:
    """Run to ``until`` (SimPy alone, or SimPy and the request fast path together); the
    number of events processed. Progress is heard about every 1/500 of ``until``, and at
    the end."""
    every_s = until / _PROGRESS_TICKS
    if serving is None:
        if progress is not None:
            env.watch(progress, every_s)
        env.run(until=until)
        handled = env.events_processed
    else:
        serving.run(env, until, progress, every_s)
        handled = env.events_processed + serving.events_processed
    if progress is not None:
        progress(float(until), handled)
    return handled


def _failure_engine(env, scenario, world, pools, streams, bus, routes, base_dir, source, requests, training):
    """The failure engine, with its trace's rows read (``requests``: request-level or fluid
    inference is present)."""
    from sim.engine.failures import FailureEngine
    from sim.workload.failure_trace import read_failure_trace

    trace = scenario.failures.trace
    rows = read_failure_trace(base_dir / trace, trace, source, {p.key for p in world.pools}) if trace else []
    return FailureEngine(env, scenario, pools, streams, bus, routes, rows, requests,
                         training.training_gpus if training is not None else None)


def _data_movers(env, scenario, world, routes, transfers, bus, streams, base_dir, source, serving):
    """What moves data besides training, in this order on one transfer manager (made here
    if training made none): model rollouts, plain copies, KV caches leaving prefill pools.
    Returns the consistency engine (closed when the run ends), or None, and the transfer
    manager, or None."""
    consistency = None
    if scenario.consistency is not None:
        from sim.engine.consistency import ConsistencyEngine
        transfers = transfers or _transfers(env, scenario, routes)
        consistency = ConsistencyEngine(env, scenario, world, transfers, bus)
    if scenario.transfers is not None:
        transfers = transfers or _transfers(env, scenario, routes)
        _copies(env, scenario, world, transfers, bus, streams, base_dir, source)
    if serving is not None and serving.disaggregated:  # KV caches cross the network
        transfers = transfers or _transfers(env, scenario, routes)
        jurisdictions = [r.jurisdiction or r.name for r in world.regions]
        serving.connect(env, transfers, TransferBook(scenario, world, bus), jurisdictions)
    return consistency, transfers


def _inference_engine(scenario: Scenario, world: World, streams: Streams, base_dir: Path, source: str,
                      bus: Bus):
    """The request fast path and an arrival counter, or (None, None) without inference."""
    if not scenario.inference:
        return None, None
    from sim.engine.inference import InferenceEngine

    batch = generate_requests(scenario, world, streams, base_dir, source=source)
    spec = scenario.scheduler.routing
    engine = InferenceEngine(scenario, world.pools, world.topology.names, world.topology.rtt_ms, batch,
                             _policy("routing", spec, streams), spec.name, bus)
    return engine, _arrival_counter(batch, engine)


def _transfers(env: Environment, scenario: Scenario, routes: Routes) -> TransferManager:
    network = scenario.network
    nics = {f"{r.name}/{h.name}": h.nic_gbps * 1e9 for r in scenario.regions for h in r.hosts}
    return TransferManager(env, routes, network.sharing == "rtt_weighted", flow_model(network), network.on_cut, nics)


def _copies(env, scenario, world, transfers, bus, streams, base_dir, source):
    """The copies of the ``transfers`` section (and its trace)."""
    from sim.engine.copies import CopyEngine
    from sim.workload.copy_trace import read_copy_trace

    trace = scenario.transfers.trace
    rows = read_copy_trace(base_dir / trace, trace, scenario) if trace else []
    return CopyEngine(env, scenario, world, transfers, bus, streams, rows)


def _training_engine(env, scenario, world, pools, streams, base_dir, source, bus, transfers):
    """The training engine, or None without training."""
    if not scenario.training:
        return None
    from sim.engine.training import TrainingEngine
    from sim.workload.training import generate_jobs

    batch = generate_jobs(scenario, streams, base_dir, source=source)
    spec = scenario.scheduler.placement
    return TrainingEngine(env, scenario, world, pools, batch, _policy("placement", spec, streams), spec.name,
                          bus, transfers, inference_present=bool(scenario.inference))


def _scheduler(env, scenario, pools, streams, bus, arrivals):
    """The scheduler process, or None (then every replica is active from the start)."""
    from sim.engine.scheduler import SchedulerProcess, activate_all

    config = scenario.scheduler
    if config.load_model is None:
        activate_all(0.0, pools)
        return None
    warmup = scenario.failures.warmup if scenario.failures else 0.0
    allocation = _policy("allocation", config.allocation.policy, streams)
    scheduler = SchedulerProcess(env, config, pools, bus, allocation, arrivals, warmup)
    env.process(scheduler.run())
    return scheduler


def _autoscaler(env, scenario, world, pools, streams, bus, serving):
    """The autoscaler process (after the scheduler: at a shared instant it sees the
    scheduler's decision)."""
    from sim.engine.autoscaler import Autoscaler

    config = scenario.scheduler.autoscaling
    spec = config.policy
    groups = {(r.name, g.name): g.gpus for r in scenario.regions for g in r.gpu_groups}
    autoscaler = Autoscaler(env, config, world, pools, bus, _policy("autoscaling", spec, streams), spec.name,
                            serving.signals, groups)
    env.process(autoscaler.run())
    return autoscaler
