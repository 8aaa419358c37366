"""Engine runs for tests: every record the engine published, and the run's observers.

``traced(scenario)`` runs the engine with the runner's observers plus a tracer that keeps
every record in the order it was emitted, so a test can assert an event log
(``[(r.t_s, r.active_gpus) for r in run.of(CapacityChanged)]``) or a summary figure.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.engine import SimulationResult, simulate
from sim.records import FailureRecord, JobRecord, RequestLog, RequestsDisplaced, RequestStatus
from sim.runner import RunObservers
from sim.scenario import parse_scenario
from sim.streams import Streams
from sim.world import World, build_world


@dataclass
class Traced:
    result: SimulationResult
    observers: RunObservers
    records: list[Any] = field(default_factory=list)

    @property
    def end_s(self) -> float:
        return self.result.end_s

    def of(self, *types: type) -> list[Any]:
        return [r for r in self.records if isinstance(r, types)]

    @property
    def log(self) -> RequestLog:
        (log,) = self.of(RequestLog)
        return log

    @property
    def jobs(self) -> list[JobRecord]:
        final = {r.job: r for r in self.of(JobRecord)}
        return [final[k] for k in sorted(final)]

    @property
    def failures(self) -> list[FailureRecord]:
        return self.of(FailureRecord)

    def count_failures(self, kind: str) -> int:
        return sum(1 for r in self.failures if r.kind == kind)

    @property
    def retries(self) -> int:
        return sum(r.retried for r in self.of(RequestsDisplaced))

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.of(RequestsDisplaced))

    def count(self, status: RequestStatus) -> int:
        return int((self.log.status == status).sum())

    def availability(self) -> dict[str, float]:
        assert self.observers.failures is not None
        return self.observers.failures.availability(self.end_s)

    def gpu_hours_down(self) -> float:
        assert self.observers.failures is not None
        return self.observers.failures.gpu_hours_down(self.end_s)


def traced(scenario, world: World | None = None, extra: Sequence[Any] = ()) -> Traced:
    """Run ``scenario`` (a validated Scenario) with the runner's observers and a tracer."""
    world = world or build_world(scenario)
    observers = RunObservers.of(scenario, world)
    records: list[Any] = []
    result = simulate(scenario, world, [*observers.all(), records.append, *extra], Streams(scenario.seed))
    return Traced(result, observers, records)


def traced_text(text: str, overrides: Sequence[str] = ()) -> Traced:
    """Like :func:`traced` for scenario YAML text."""
    return traced(parse_scenario(text, overrides=overrides).scenario)
