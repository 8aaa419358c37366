"""Model replicas across regions: new versions roll out over the WAN.

A version is released at scheduled times, periodically, or when a training job of a named
workload completes (from the job's region). It is copied from its source region to every
other region that serves inference, as WAN transfers that share links with every other
transfer (:class:`~sim.engine.transfers.TransferManager`). A region cut off by a partition
gets its copy once a path exists again.

* ``eventual``: each region serves the new version from the moment its copy lands (the
  source at once), so regions serve different versions for a while;
* ``strong``: every region, the source included, keeps serving the previous version until
  the last copy has landed, then all switch together: never mixed versions, but every
  region serves the old version for the longest lag.

Nothing stops serving during a rollout in either mode. One
:class:`~sim.metrics.records.RolloutRecord` per version and region gives the lag; the
requests served by a stale version are counted from the request log afterwards.

Public: ``ConsistencyEngine``.
"""
from __future__ import annotations

import math

import simpy

from sim.engine.transfers import TransferManager
from sim.metrics.records import RolloutRecord

__all__ = ["ConsistencyEngine"]


class ConsistencyEngine:
    """Releases versions and tracks, per region, when each one lands and is served."""

    def __init__(self, env: simpy.Environment, scenario, world, pools, transfers: TransferManager | None):
        self.env, self.config = env, scenario.consistency
        self.world = world
        self.transfers = transfers or TransferManager(env, world, scenario.network.sharing == "rtt_weighted")
        serving = [p.info.region for p in pools if p.info.serves != "training"]
        self.regions = sorted(set(serving), key=world.topology.names.index)
        with_gpus = [p.info.region for p in pools]
        self.default_source = self.config.source or (with_gpus[0] if with_gpus else None)
        self.rows: list[RolloutRecord] = []
        self._pending: list[tuple[int, str, str]] = []  # (version, source, region) waiting for a path
        self._open: dict[int, dict] = {}
        self.versions = 0
        for t in self.config.at:
            env.process(self._release_at(float(t)))
        if self.config.every is not None:
            env.process(self._periodic(float(self.config.every)))

    # -- releases ------------------------------------------------------------------------
    def _release_at(self, t: float):
        yield self.env.timeout(t)
        self.release(self.default_source)

    def _periodic(self, every: float):
        while True:
            yield self.env.timeout(every)
            self.release(self.default_source)

    def job_completed(self, workload: str, region: str) -> None:
        """A training job finished: release its model from its region if configured."""
        if workload in self.config.on_training:
            self.release(region)

    def release(self, source: str | None) -> None:
        if source is None:
            return
        self.versions += 1
        version, now = self.versions, self.env.now
        targets = [r for r in self.regions if r != source]
        state = {"start": now, "source": source, "landed": {}, "waiting": set(targets)}
        self._open[version] = state
        if source in self.regions:
            state["landed"][source] = now
        for region in targets:
            self._copy(version, source, region)
        self._maybe_done(version)

    def _copy(self, version: int, source: str, region: str) -> None:
        if self.transfers.topology.path(source, region) is None:
            self._pending.append((version, source, region))
            return
        _, done, _ = self.transfers.start(source, region, self.config.model_gb * 1e9)
        done.callbacks.append(lambda _event: self._landed(version, region))

    def rerouted(self) -> None:
        """Paths changed (links failed or came back): start copies that were waiting."""
        pending, self._pending = self._pending, []
        for version, source, region in pending:
            self._copy(version, source, region)

    def _landed(self, version: int, region: str) -> None:
        state = self._open[version]
        state["landed"][region] = self.env.now
        state["waiting"].discard(region)
        self._maybe_done(version)

    def _maybe_done(self, version: int) -> None:
        state = self._open[version]
        if state["waiting"]:
            return
        del self._open[version]
        last = max(state["landed"].values(), default=state["start"])
        for region in self.regions:
            landed = state["landed"].get(region, state["start"])
            switched = landed if self.config.mode == "eventual" else last
            self.rows.append(RolloutRecord(version, state["source"], region, state["start"], landed, switched))

    def records(self) -> list[RolloutRecord]:
        """Finished rollouts, then those still under way (landed/switched = inf if not yet)."""
        rows = list(self.rows)
        for version, state in sorted(self._open.items()):
            for region in self.regions:
                landed = state["landed"].get(region, math.inf)
                switched = landed if self.config.mode == "eventual" else math.inf
                rows.append(RolloutRecord(version, state["source"], region, state["start"], landed, switched))
        return sorted(rows, key=lambda r: (r.version, self.regions.index(r.region)))
