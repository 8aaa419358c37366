"""Model replicas across regions: new versions roll out over the WAN.

A version is released at scheduled times, periodically, or when a training job of a named
workload completes (from the job's region). It is copied from its source region to every
other region that serves inference, as WAN transfers that share links with every other
transfer (:class:`~sim.engine.network.TransferManager`). A region cut off by a partition
gets its copy once a path exists again (on :class:`~sim.records.RoutesChanged`).

* ``eventual``: each region serves the new version from the moment its copy lands (the
  source at once), so regions serve different versions for a while;
* ``strong``: every region, the source included, keeps serving the previous version until
  the last copy has landed, then all switch together: never mixed versions, but every
  region serves the old version for the longest lag.

Nothing stops serving during a rollout in either mode. The engine publishes
:class:`~sim.records.VersionReleased` at each release and one
:class:`~sim.records.RolloutRecord` per version and region when the version has landed
everywhere (the rest when the run ends); the requests served by a stale version are
counted from the request log afterwards.

Public: ``ConsistencyEngine``, ``rollout_regions``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

from sim.engine.bus import Bus
from sim.engine.network import TransferManager
from sim.records import JobChanged, RolloutRecord, RoutesChanged, VersionReleased

__all__ = ["ConsistencyEngine", "rollout_regions"]


@dataclass
class _Rollout:
    """One version on its way: released at ``start`` from ``source``; when its copy landed
    in each region so far, and the regions still waiting for one."""

    start: float
    source: str
    waiting: set[str]
    landed: dict[str, float] = field(default_factory=dict)


class ConsistencyEngine:
    """Releases versions and tracks, per region, when each one lands and is served."""

    def __init__(self, env: simpy.Environment, scenario, world, transfers: TransferManager, bus: Bus):
        self.env, self.config, self.bus = env, scenario.consistency, bus
        self.world = world
        self.transfers = transfers
        self.regions = rollout_regions(world)
        with_gpus = [p.region for p in world.pools]
        self.default_source = self.config.source or (with_gpus[0] if with_gpus else None)
        self._pending: list[tuple[int, str, str]] = []  # (version, source, region) waiting for a path
        self._open: dict[int, _Rollout] = {}
        self.versions = 0
        for t in self.config.at:
            env.process(self._release_at(float(t)))
        if self.config.every is not None:
            env.process(self._periodic(float(self.config.every)))
        bus.subscribe(self.job_changed, (JobChanged,))
        bus.subscribe(self.rerouted, (RoutesChanged,))

    # -- releases ------------------------------------------------------------------------
    def _release_at(self, t: float):
        yield self.env.timeout(t)
        self.release(self.default_source)

    def _periodic(self, every: float):
        while True:
            yield self.env.timeout(every)
            self.release(self.default_source)

    def job_changed(self, record: JobChanged) -> None:
        """A training job finished: release its model from its region if configured."""
        if record.event == "completed" and record.workload in self.config.on_training:
            self.release(record.region)

    def release(self, source: str | None) -> None:
        if source is None:
            return
        self.versions += 1
        version, now = self.versions, self.env.now
        self.bus.emit(VersionReleased(now, version, source))
        targets = [r for r in self.regions if r != source]
        state = _Rollout(now, source, set(targets))
        self._open[version] = state
        if source in self.regions:
            state.landed[source] = now
        for region in targets:
            self._copy(version, source, region)
        self._maybe_done(version)

    def _copy(self, version: int, source: str, region: str) -> None:
        if self.transfers.topology.path(source, region) is None:
            self._pending.append((version, source, region))
            return
        _, done, _ = self.transfers.start(source, region, self.config.model_gb * 1e9)
        done.callbacks.append(lambda _event: self._landed(version, region))

    def rerouted(self, record: RoutesChanged) -> None:
        """Paths changed (links failed or came back): start copies that were waiting."""
        pending, self._pending = self._pending, []
        for version, source, region in pending:
            self._copy(version, source, region)

    def _landed(self, version: int, region: str) -> None:
        state = self._open[version]
        state.landed[region] = self.env.now
        state.waiting.discard(region)
        self._maybe_done(version)

    def _maybe_done(self, version: int) -> None:
        state = self._open[version]
        if state.waiting:
            return
        del self._open[version]
        last = max(state.landed.values(), default=state.start)
        for region in self.regions:
            landed = state.landed.get(region, state.start)
            switched = landed if self.config.mode == "eventual" else last
            self.bus.emit(RolloutRecord(version, state.source, region, state.start, landed, switched))

    def close(self) -> None:
        """The run ends: publish the rollouts still under way (landed/switched = inf if not yet)."""
        for version, state in sorted(self._open.items()):
            for region in self.regions:
                landed = state.landed.get(region, math.inf)
                switched = landed if self.config.mode == "eventual" else math.inf
                self.bus.emit(RolloutRecord(version, state.source, region, state.start, landed, switched))


def rollout_regions(world) -> list[str]:
    """Regions that serve requests, in the world's order: where every version must land."""
    serving = {p.region for p in world.pools if p.serves != "training"}
    return sorted(serving, key=world.topology.names.index)
