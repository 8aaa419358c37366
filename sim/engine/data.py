"""Datasets and checkpoints: where their copies are, and the WAN copies that move them.

A :class:`DataMover` knows which regions hold each dataset (its home, its replicas and
every copy made during the run) and, per job, where its checkpoint copies are. It starts
copies on the :class:`~sim.engine.network.TransferManager` (sharing links with every other
transfer) from the nearest region holding one, along the routes of the moment, and
publishes a :class:`~sim.records.TransferRecord` per copy that lands, a
:class:`~sim.records.BorderCrossing` per jurisdiction border it crossed, and a
:class:`~sim.records.ResidencyViolation` when a soft residency rule is broken.

Public: ``DataMover``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import simpy

from sim.engine.bus import Bus
from sim.engine.datacenter import PoolRuntime
from sim.engine.job import Job
from sim.engine.network import TransferBook, TransferManager
from sim.records import ResidencyViolation
from sim.scenario.checks import residency_allows
from sim.scenario.model import Scenario
from sim.world import World

__all__ = ["DataMover"]


class DataMover:
    """Copies of datasets and checkpoints over the WAN."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, world: World, pools: Sequence[PoolRuntime],
                 transfers: TransferManager, bus: Bus):
        self.env, self.scenario, self.pools, self.transfers, self.bus = env, scenario, list(pools), transfers, bus
        self.workloads = scenario.training
        self.datasets = {d.name: d for d in scenario.datasets}
        self.copies = {d.name: {d.home, *d.replicas} for d in scenario.datasets}
        self._copying: dict[tuple[str, str], simpy.Event] = {}
        self.book = TransferBook(scenario, world, bus)
        self.route_changed = env.event()  # fires when links fail or come back

    def rerouted(self) -> None:
        """Links failed or came back: wake the jobs waiting for a route."""
        waiting, self.route_changed = self.route_changed, self.env.event()
        waiting.succeed()

    # -- datasets --------------------------------------------------------------------------
    def source_for(self, dataset: str, region: str) -> str | None:
        """Nearest region (by path RTT) holding a copy, or None if ``region`` has one."""
        copies = self.copies[dataset]
        if region in copies:
            return None
        topo = self.transfers.topology  # the routes of the moment (links may be cut)
        reachable = [c for c in copies if topo.path(c, region) is not None]
        return min(reachable, key=lambda c: (topo.path_rtt_ms(c, region), c)) if reachable else None

    def egress(self, src: str, dst: str) -> float:
        return self.book.egress(src, dst)


    def unreachable(self, job: Job) -> bool:
        """Some region of the job lacks its dataset and no copy can reach it now."""
        wl = self.workloads[job.workload]
        if wl.dataset is None:
            return False
        name = wl.dataset
        return any(r not in self.copies[name] and (name, r) not in self._copying and self.source_for(name, r) is None
                   for r in job.regions)

    def data_ready(self, job: Job):
        """Events to wait for so that every region of the job holds its dataset."""
        wl = self.workloads[job.workload]
        if wl.dataset is None:
            return []
        ds = self.datasets[wl.dataset]
        events = []
        for region in job.regions:
            if region in self.copies[ds.name]:
                continue
            key = (ds.name, region)
            if key not in self._copying:
                self._copying[key] = self._copy(ds, region, job)
            events.append(self._copying[key])
        return events

    def _copy(self, ds, region: str, job: Job) -> simpy.Event:
        src = self.source_for(ds.name, region)
        if src is None:  # placement only picks regions that hold a copy or can reach one
            raise ValueError(f"dataset {ds.name!r}: no reachable copy to send to {region}")
        size = ds.size_gb * 1e9
        flow_id, done, _ = self.transfers.start(src, region, size)
        started = self.env.now
        cost = ds.size_gb * self.egress(src, region)
        if not residency_allows(self.scenario, ds, region):
            self.bus.emit(ResidencyViolation(self.env.now, ds.name, region))
        finished = self.env.event()

        def landed(event):
            self.copies[ds.name].add(region)
            del self._copying[(ds.name, region)]
            self.book.landed(flow_id, ds.name, job.id, size, started, cost, event.value, self.env.now)
            finished.succeed()
        done.callbacks.append(landed)
        return finished

    # -- checkpoints (checkpoint.size_gb > 0) ----------------------------------------------
    def dark(self, region: str) -> bool:
        pools = [p for p in self.pools if p.info.region == region]
        return bool(pools) and all(p.dark for p in pools)

    def checkpointed(self, job: Job) -> None:
        """A checkpoint was written (or taken on preemption) where the job runs: it is the
        newest copy there; replicate it to the configured regions over the WAN."""
        ckpt = self.workloads[job.workload].checkpoint
        if ckpt.size_gb <= 0 or not job.home:
            return
        here, value = job.home, job.saved
        job.copies[here] = min(job.copies.get(here, math.inf), value)
        for target in ckpt.replicate_to:
            if target != here and self.transfers.topology.path(here, target) is not None:
                self._ship_checkpoint(job, here, target, value)

    def _ship_checkpoint(self, job: Job, src: str, dst: str, value: float) -> simpy.Event:
        ckpt = self.workloads[job.workload].checkpoint
        size = ckpt.size_gb * 1e9
        flow_id, done, _ = self.transfers.start(src, dst, size)
        started, cost = self.env.now, ckpt.size_gb * self.egress(src, dst)

        def landed(event):
            job.copies[dst] = min(job.copies.get(dst, math.inf), value)
            self.book.landed(flow_id, f"checkpoint:{job.id}", job.id, size, started, cost, event.value, self.env.now)
        done.callbacks.append(landed)
        return done

    def best_copy(self, job: Job, region: str, total: float) -> tuple[float, str | None]:
        """The most advanced checkpoint copy a restart in ``region`` can use (not in a dark
        region, reachable), nearest on a tie: ``(remaining work, its region)``, or
        ``(total, None)`` when there is none (start again)."""
        topology = self.transfers.topology
        usable = [(value, where != region, topology.path_rtt_ms(where, region), where)
                  for where, value in job.copies.items()
                  if not self.dark(where) and (where == region or topology.path(where, region) is not None)]
        value, _, _, source = min(usable) if usable else (total, False, 0.0, None)
        return value, source

    def resume_s(self, job: Job, region: str, total: float, rate: float) -> float:
        """What restarting in ``region`` costs beyond resuming from the newest checkpoint:
        fetching the best usable copy over the WAN, and computing again the work between it
        and the newest (at ``rate`` work units per second). 0 for a job with no located
        checkpoint."""
        if self.workloads[job.workload].checkpoint.size_gb <= 0 or not job.copies:
            return 0.0
        value, source = self.best_copy(job, region, total)
        redo = (value - job.saved) / rate if rate > 0 else math.inf
        if source is None or source == region:
            return redo
        topology = self.transfers.topology
        size_gb = self.workloads[job.workload].checkpoint.size_gb
        return redo + topology.path_rtt_ms(source, region) / 2000 + size_gb * 8 / topology.bottleneck_gbps(source,
                                                                                                          region)

    def restore(self, job: Job, total: float):
        """Before a restart at ``job.home``: resume from the most advanced copy that is
        reachable and not in a dark region, fetching it over the WAN if it is elsewhere;
        with no such copy, start again from the beginning."""
        here = job.home
        value, source = self.best_copy(job, here, total)
        if value > job.saved:  # older than the newest checkpoint: more work is lost
            job.lost_gpu_s += (value - job.saved) / job.rate * job.gpus if job.rate > 0 else 0.0
        job.remaining = job.saved = value
        if source is not None and source != here:
            began = self.env.now
            yield self._ship_checkpoint(job, source, here, value)
            job.transfer_s += self.env.now - began

