"""Training jobs on GPU pools: gangs, datasets, transfers, checkpoints and preemption.

A job is a gang: all its GPUs start together, in one region unless it may span regions.
Jobs queue in priority order (higher first, then arrival). Whenever something changes (a
job arrives, GPUs free up, inference capacity moves) the placement policy sees a frozen
:class:`~sim.policies.PlacementView` and returns assignments, which the engine validates
(capacity, gang size, GPU types, hard residency) before applying them.

A placed job first copies its dataset from the nearest region holding one, if its region
has none (a WAN transfer sharing links with other transfers), then restarts from its last
checkpoint if it had run before, then computes in segments of ``checkpoint.interval``
separated by checkpoint writes. Training GPUs are those of replicas that inference does
not hold: when inference's allocation grows on a shared pool, the engine preempts training
there (lowest priority, then most recently started first); a preempted job checkpoints and
requeues with its progress. :meth:`TrainingEngine.interrupt` is the failure model's entry
point: the job loses the work since its last checkpoint and requeues.

The engine reacts to records: :class:`~sim.records.CapacityChanged` (preempt what no longer
fits; a shrink caused by a failure interrupts instead), :class:`~sim.records.ReplicaFailed`
and :class:`~sim.records.RegionDown` (interrupt the jobs struck), and
:class:`~sim.records.RoutesChanged` (copies wait for a route). It publishes
:class:`~sim.records.TrainingUsage`, :class:`~sim.records.JobChanged`, a
:class:`~sim.records.JobRecord` per job (when it completes, the others when the run ends),
and for every copy :class:`~sim.records.TransferRecord`, :class:`~sim.records.BorderCrossing`
and :class:`~sim.records.ResidencyViolation`.

Public: ``TrainingEngine``, ``Job``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import simpy

from sim.engine.bus import Bus
from sim.engine.network import TransferManager
from sim.records import (BorderCrossing, CapacityChanged, JobChanged, JobEvent, JobRecord, RegionDown,
                         ReplicaFailed, ResidencyViolation, RoutesChanged, TrainingUsage, TransferRecord)
from sim.policies import (PlacementView, PoolSlot, QueuedJob, RunningJob, validate_assignments)
from sim.scenario.checks import residency_allows
from sim.scenario.model import Scenario
from sim.workload.training import JobBatch
from sim.world import World
from sim.world.egress import egress_usd_per_gb

__all__ = ["TrainingEngine", "Job"]

_EPS = 1e-9


@dataclass
class Job:
    """A training job's live state (the engine's, never a policy's)."""

    id: int
    index: int  # row in the JobBatch
    workload: int
    gpus: int
    arrival_s: float
    priority: int
    deadline_s: float | None
    remaining: float  # work units still to do
    saved: float  # work units still to do as of the last checkpoint
    status: str = "pending"
    parts: tuple[tuple[int, int], ...] = ()
    process: simpy.Process | None = None
    segment: tuple[float, float] | None = None  # (start, rate) of the compute segment running
    queued_since: float = 0.0
    first_start_s: float = math.nan
    end_s: float = math.nan
    wait_s: float = 0.0
    transfer_s: float = 0.0
    lost_gpu_s: float = 0.0
    compute_gpu_s: float = 0.0
    held_gpu_s: float = 0.0
    held_since: float = 0.0
    preemptions: int = 0
    interruptions: int = 0
    ran_before: bool = False
    stopping: bool = False  # interrupted, not yet stopped (same instant)
    rate: float = 0.0  # work units per second on the pools it holds (its slowest part)
    copies: dict[str, float] = field(default_factory=dict)  # region -> remaining work of its checkpoint copy
    home: str = ""  # region of the first part of its placement
    regions: list[str] = field(default_factory=list)


class TrainingEngine:
    """Queues, places and runs the jobs of one :class:`JobBatch`."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, world: World, pools: Sequence,
                 batch: JobBatch, policy, policy_name: str, bus: Bus, transfers: TransferManager,
                 inference_present: bool):
        self.env, self.scenario, self.world, self.pools = env, scenario, world, list(pools)
        self.batch, self.policy, self.policy_name, self.bus = batch, policy, policy_name, bus
        self.inference_present = inference_present
        self.transfers = transfers
        self.used = [0] * len(self.pools)
        self.jobs: list[Job] = []
        self.queue: list[Job] = []
        self.datasets = {d.name: d for d in scenario.datasets}
        self.copies = {d.name: {d.home, *d.replicas} for d in scenario.datasets}
        self._copying: dict[tuple[str, str], simpy.Event] = {}
        self._placing = False
        self._route_changed = env.event()  # fires when links fail or come back
        self._col = {name: k for k, name in enumerate(batch.gpu_types)}
        self._jurisdiction = {r.name: r.jurisdiction for r in world.regions}
        env.process(self._arrivals())
        interval = scenario.scheduler.placement_interval
        if interval:
            env.process(self._periodic(interval))
        bus.subscribe(self.capacity_changed, (CapacityChanged,))
        bus.subscribe(self.replica_failed, (ReplicaFailed,))
        bus.subscribe(self.region_down, (RegionDown,))
        bus.subscribe(self.rerouted, (RoutesChanged,))

    # -- capacity ------------------------------------------------------------------------
    def reserved(self, p: int) -> int:
        """GPUs inference holds on pool ``p`` (its active replicas), where it runs at all."""
        pool = self.pools[p]
        if pool.info.serves == "training" or not self.inference_present:
            return 0
        if pool.info.serves == "inference":
            return pool.info.total_gpus
        return pool.active_replicas * pool.info.gpus_per_replica

    def up_gpus(self, p: int) -> int:
        """GPUs of pool ``p`` on replicas that are up."""
        pool = self.pools[p]
        return pool.up * pool.info.gpus_per_replica

    def free(self, p: int) -> int:
        if self.pools[p].info.serves == "inference":
            return 0
        return max(self.up_gpus(p) - self.reserved(p) - self.used[p], 0)

    def capacity_changed(self, record: CapacityChanged) -> None:
        """Inference capacity moved, or replicas failed, on a pool: stop training that no
        longer fits (jobs already stopping by failure have let go). When a failure shrank
        the pool the jobs are interrupted (they lose work), otherwise preempted (they
        checkpoint first)."""
        p = record.pool_index
        cause = "failure" if record.cause in ("failure", "outage") else "preempt"
        if self.reserved(p) + self.used[p] <= self.up_gpus(p):
            self.request_placement()
            return
        on_pool = [j for j in self.jobs if j.process is not None and not j.stopping
                   and any(q == p for q, _ in j.parts)]
        stopping = sum(g for j in self.jobs if j.process is not None and j.stopping for q, g in j.parts if q == p)
        overflow = self.reserved(p) + self.used[p] - stopping - self.up_gpus(p)
        # Lowest priority first, then the most recently placed (it has the least to lose).
        victims = sorted(on_pool, key=lambda j: (j.priority, -j.held_since, -j.id))
        for job in victims:
            if overflow <= 0:
                break
            overflow -= sum(g for q, g in job.parts if q == p)
            self.interrupt(job.id, cause)
        self.request_placement()

    def _set_used(self, p: int, delta: int) -> None:
        self.used[p] += delta
        pool = self.pools[p].info
        self.bus.emit(TrainingUsage(self.env.now, pool.region, pool.name, self.used[p]))

    def _announce(self, job: Job, event: JobEvent) -> None:
        self.bus.emit(JobChanged(self.env.now, job.id, self.scenario.training[job.workload].name, event, job.home))

    # -- arrivals and placement ----------------------------------------------------------
    def _arrivals(self):
        b = self.batch
        for i in range(len(b)):
            delay = float(b.arrival_s[i]) - self.env.now
            if delay > 0:
                yield self.env.timeout(delay)
            wl = self.scenario.training[int(b.workload[i])]
            job = Job(id=i, index=i, workload=int(b.workload[i]), gpus=int(b.gpus[i]),
                      arrival_s=float(b.arrival_s[i]), priority=wl.priority,
                      deadline_s=float(b.arrival_s[i]) + wl.deadline if wl.deadline else None,
                      remaining=float(b.work[i]), saved=float(b.work[i]))
            self.jobs.append(job)
            self._enqueue(job)
            self._announce(job, "submitted")
            self.request_placement()

    def _periodic(self, interval: float):
        while True:
            yield self.env.timeout(interval)
            self.request_placement()

    def _enqueue(self, job: Job) -> None:
        job.status = "queued"
        job.queued_since = self.env.now
        self.queue.append(job)
        self.queue.sort(key=lambda j: (-j.priority, j.arrival_s, j.id))

    def request_placement(self) -> None:
        """Run the placement policy once at the current time (several requests coalesce)."""
        if not self._placing:
            self._placing = True
            self.env.process(self._place_soon())

    def _place_soon(self):
        yield self.env.timeout(0)
        self._placing = False
        if not self.queue:
            return
        view = self.view()
        assignments = self.policy.place(view)
        validate_assignments(view, assignments, self.policy_name)
        by_id = {j.id: j for j in self.queue}
        for job_id, parts in assignments:
            self._start(by_id[job_id], tuple(parts))

    # -- the frozen view -----------------------------------------------------------------
    def _rate(self, job: Job, p: int) -> float:
        col = self._col.get(self.pools[p].info.gpu.name)
        return 0.0 if col is None else float(self.batch.rate_table[self.batch.kind[job.index], col])

    def _source_for(self, dataset: str, region: str) -> str | None:
        """Nearest region (by path RTT) holding a copy, or None if ``region`` has one."""
        copies = self.copies[dataset]
        if region in copies:
            return None
        topo = self.transfers.topology  # the routes of the moment (links may be cut)
        reachable = [c for c in copies if topo.path(c, region) is not None]
        return min(reachable, key=lambda c: (topo.path_rtt_ms(c, region), c)) if reachable else None

    def _egress(self, src: str, dst: str) -> float:
        flat = self.scenario.network.egress_usd_per_gb
        if flat is not None:
            return flat
        return egress_usd_per_gb(src, dst, self._jurisdiction[src], self._jurisdiction[dst])

    def _queued_view(self, job: Job) -> QueuedJob:
        wl = self.scenario.training[job.workload]
        ds = self.datasets.get(wl.dataset) if wl.dataset else None
        durations, allowed, gb, cost, secs, penalty = [], [], [], [], [], []
        for p, pool in enumerate(self.pools):
            region = pool.info.region
            rate = self._rate(job, p) if pool.info.serves != "inference" else 0.0
            durations.append(job.remaining / rate if rate > 0 else math.inf)
            ok = ds is None or residency_allows(self.scenario, ds, region)
            src = self._source_for(ds.name, region) if ds is not None else None
            cut_off = ds is not None and src is None and region not in self.copies[ds.name]
            allowed.append((ok or ds.residency.mode == "soft") and not cut_off)
            size = ds.size_gb if src is not None else 0.0
            gb.append(size)
            cost.append(size * self._egress(src, region) if src else 0.0)
            topo = self.transfers.topology
            secs.append(topo.path_rtt_ms(src, region) / 2000 + size * 8 / topo.bottleneck_gbps(src, region)
                        if src else 0.0)
            penalty.append(0.0 if ok or ds is None else size * ds.residency.penalty_usd_per_gb)
        return QueuedJob(id=job.id, workload=job.workload, gpus=job.gpus, arrival_s=job.arrival_s,
                         priority=job.priority, deadline_s=job.deadline_s, dataset=wl.dataset,
                         span_regions=wl.span_regions, duration_s=tuple(durations), allowed=tuple(allowed),
                         transfer_gb=tuple(gb), transfer_cost_usd=tuple(cost), transfer_s=tuple(secs),
                         penalty_usd=tuple(penalty))

    def view(self) -> PlacementView:
        pools = tuple(PoolSlot(index=p, region=r.info.region, name=r.info.name, gpu=r.info.gpu.name,
                               free_gpus=self.free(p), total_gpus=r.info.total_gpus,
                               gpus_per_replica=r.info.gpus_per_replica,
                               price_usd_per_kwh=self._region(r).price_usd_per_kwh,
                               carbon_g_per_kwh=self._region(r).carbon_g_per_kwh,
                               pue=self._region(r).pue, tdp_w=r.info.gpu.tdp_w)
                      for p, r in enumerate(self.pools))
        running = tuple(RunningJob(id=j.id, pools=j.parts, expected_end_s=self._expected_end(j),
                                   priority=j.priority)
                        for j in self.jobs if j.status in ("running", "transferring"))
        return PlacementView(t_s=self.env.now, queue=tuple(self._queued_view(j) for j in self.queue),
                             pools=pools, running=running)

    def _region(self, runtime):
        return self.world.region(runtime.info.region)

    def _expected_end(self, job: Job) -> float:
        rate = job.rate
        return self.env.now + (job.remaining / rate if rate > 0 else math.inf)

    # -- running a job -------------------------------------------------------------------
    def _start(self, job: Job, parts: tuple[tuple[int, int], ...]) -> None:
        self.queue.remove(job)
        job.wait_s += self.env.now - job.queued_since
        job.parts = parts
        job.rate = min(self._rate(job, p) for p, _ in parts)
        job.status = "transferring"
        job.held_since = self.env.now
        for p, g in parts:
            self._set_used(p, g)
        job.regions = sorted({self.pools[p].info.region for p, _ in parts})
        job.home = self.pools[parts[0][0]].info.region  # where its checkpoints are written
        job.process = self.env.process(self._run(job))
        self._announce(job, "placed")

    def rerouted(self, record: RoutesChanged) -> None:
        """Links failed or came back: wake jobs waiting for a route; place again."""
        waiting, self._route_changed = self._route_changed, self.env.event()
        waiting.succeed()
        self.request_placement()

    def _unreachable(self, job: Job) -> bool:
        """Some region of the job lacks its dataset and no copy can reach it now."""
        wl = self.scenario.training[job.workload]
        if wl.dataset is None:
            return False
        name = wl.dataset
        return any(r not in self.copies[name] and (name, r) not in self._copying and self._source_for(name, r) is None
                   for r in job.regions)

    def _data_ready(self, job: Job):
        """Events to wait for so that every region of the job holds its dataset."""
        wl = self.scenario.training[job.workload]
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
        src = self._source_for(ds.name, region)
        size = ds.size_gb * 1e9
        flow_id, done, route = self.transfers.start(src, region, size)
        started = self.env.now
        cost = ds.size_gb * self._egress(src, region)
        if not residency_allows(self.scenario, ds, region):
            self.bus.emit(ResidencyViolation(self.env.now, ds.name, region))
        finished = self.env.event()

        def landed(event):
            self.copies[ds.name].add(region)
            del self._copying[(ds.name, region)]
            self._record_transfer(flow_id, ds.name, job.id, route, size, started, cost)
            finished.succeed()
        done.callbacks.append(landed)
        return finished

    def _record_transfer(self, flow_id: int, what: str, job_id: int, route: tuple[str, ...], size: float,
                         started: float, cost: float) -> None:
        """A copy landed: one transfers.csv row, and an audit row per border it crossed."""
        self.bus.emit(TransferRecord(flow_id, what, job_id, route[0], route[-1], "-".join(route),
                                     size, started, self.env.now, cost))
        for u, v in zip(route, route[1:]):
            if self._jurisdiction[u] != self._jurisdiction[v]:
                self.bus.emit(BorderCrossing(self.env.now, what, u, v, size,
                                             self._jurisdiction[u], self._jurisdiction[v]))

    # -- checkpoint copies (checkpoint.size_gb > 0) ----------------------------------------
    def _dark(self, region: str) -> bool:
        pools = [p for p in self.pools if p.info.region == region]
        return bool(pools) and all(p.dark for p in pools)

    def _checkpointed(self, job: Job) -> None:
        """A checkpoint was written (or taken on preemption) where the job runs: it is the
        newest copy there; replicate it to the configured regions over the WAN."""
        ckpt = self.scenario.training[job.workload].checkpoint
        if ckpt.size_gb <= 0 or not job.home:
            return
        here, value = job.home, job.saved
        job.copies[here] = min(job.copies.get(here, math.inf), value)
        for target in ckpt.replicate_to:
            if target != here and self.transfers.topology.path(here, target) is not None:
                self._ship_checkpoint(job, here, target, value)

    def _ship_checkpoint(self, job: Job, src: str, dst: str, value: float) -> simpy.Event:
        ckpt = self.scenario.training[job.workload].checkpoint
        size = ckpt.size_gb * 1e9
        flow_id, done, route = self.transfers.start(src, dst, size)
        started, cost = self.env.now, ckpt.size_gb * self._egress(src, dst)

        def landed(event):
            job.copies[dst] = min(job.copies.get(dst, math.inf), value)
            self._record_transfer(flow_id, f"checkpoint:{job.id}", job.id, route, size, started, cost)
        done.callbacks.append(landed)
        return done

    def _restore(self, job: Job):
        """Before a restart at ``job.home``: resume from the most advanced copy that is
        reachable and not in a dark region, fetching it over the WAN if it is elsewhere;
        with no such copy, start again from the beginning."""
        here, topology = job.home, self.transfers.topology
        usable = [(value, region != here, topology.path_rtt_ms(region, here), region)
                  for region, value in job.copies.items()
                  if not self._dark(region) and (region == here or topology.path(region, here) is not None)]
        total = float(self.batch.work[job.index])
        value, _, _, source = min(usable) if usable else (total, False, 0.0, None)
        if value > job.saved:  # older than the newest checkpoint: more work is lost
            job.lost_gpu_s += (value - job.saved) / job.rate * job.gpus if job.rate > 0 else 0.0
        job.remaining = job.saved = value
        if source is not None and source != here:
            began = self.env.now
            yield self._ship_checkpoint(job, source, here, value)
            job.transfer_s += self.env.now - began

    def _run(self, job: Job):
        env, wl = self.env, self.scenario.training[job.workload]
        ckpt = wl.checkpoint
        try:
            while self._unreachable(job):  # placed, then cut off: wait for a route
                began = env.now
                yield self._route_changed
                job.transfer_s += env.now - began
            waits = self._data_ready(job)
            if waits:
                began = env.now
                yield env.all_of(waits)
                job.transfer_s += env.now - began
            job.status = "running"
            self._announce(job, "started")
            if math.isnan(job.first_start_s):
                job.first_start_s = env.now
            if job.ran_before and ckpt.size_gb > 0:
                yield from self._restore(job)
            if job.ran_before and ckpt.restart > 0:
                yield env.timeout(ckpt.restart)
            job.ran_before = True
            rate = job.rate
            while job.remaining > _EPS * max(job.saved, 1.0):
                span = job.remaining / rate
                if ckpt.interval is not None:
                    span = min(span, ckpt.interval)
                job.segment = (env.now, rate)
                yield env.timeout(span)
                job.segment = None
                job.compute_gpu_s += span * job.gpus
                job.remaining = max(job.remaining - span * rate, 0.0)
                if job.remaining > _EPS * max(job.saved, 1.0) and ckpt.interval is not None:
                    yield env.timeout(ckpt.write)
                    job.saved = job.remaining
                    self._checkpointed(job)
            job.remaining = job.saved = 0.0
            self._finish(job, "completed")
            self.bus.emit(self._record(job, self.env.now))
            self._announce(job, "completed")
        except simpy.Interrupt as stop:
            self._stopped(job, stop.cause)

    def _release(self, job: Job) -> None:
        job.held_gpu_s += (self.env.now - job.held_since) * job.gpus
        for p, g in job.parts:
            self._set_used(p, -g)

    def _finish(self, job: Job, status: str) -> None:
        self._release(job)
        job.status = status
        job.end_s = self.env.now
        job.process = None
        self.request_placement()

    def _stopped(self, job: Job, cause: str) -> None:
        if job.segment is not None:  # compute done in the interrupted segment
            start, rate = job.segment
            job.remaining = max(job.remaining - (self.env.now - start) * rate, 0.0)
            job.compute_gpu_s += (self.env.now - start) * job.gpus
            job.segment = None
        if cause == "preempt":
            job.preemptions += 1
            job.saved = job.remaining  # a preempted job checkpoints before it lets go
            self._checkpointed(job)
        else:
            job.interruptions += 1
            rate = job.rate
            job.lost_gpu_s += (job.saved - job.remaining) / rate * job.gpus if rate > 0 else 0.0
            job.remaining = job.saved
        self._release(job)
        job.parts, job.process, job.stopping = (), None, False
        self._enqueue(job)
        self._announce(job, "preempted" if cause == "preempt" else "interrupted")
        self.request_placement()

    # -- the failure model's entry point -------------------------------------------------
    def interrupt(self, job_id: int, cause: str = "failure") -> None:
        """Stop a running job: ``failure`` loses the work since its last checkpoint,
        ``preempt`` keeps it (checkpoint on preemption); either way the job requeues."""
        job = self.jobs[job_id]
        if job.process is not None and job.process.is_alive and not job.stopping:
            job.stopping = True
            job.process.interrupt(cause)

    def replica_failed(self, record: ReplicaFailed) -> int | None:
        """A replica failed under training GPU number ``offset_gpus`` of its pool (counted
        over the pool's training GPUs, jobs in id order): interrupt the job there, if any.
        Returns the job id."""
        if record.hit != "training":
            return None
        p, offset_gpus = record.pool_index, record.offset_gpus
        for job in sorted((j for j in self.jobs if j.process is not None and not j.stopping), key=lambda j: j.id):
            held = sum(g for q, g in job.parts if q == p)
            if offset_gpus < held:
                self.interrupt(job.id, "failure")
                return job.id
            offset_gpus -= held
        return None

    def region_down(self, record: RegionDown) -> None:
        """Every replica of these pools goes down (a region outage): interrupt their jobs."""
        pools = set(record.pool_indices)
        for job in self.jobs:
            if job.process is not None and any(q in pools for q, _ in job.parts):
                self.interrupt(job.id, "failure")

    def training_gpus(self, p: int) -> int:
        """GPUs of pool ``p`` that running (not stopping) jobs hold."""
        return sum(g for j in self.jobs if j.process is not None and not j.stopping for q, g in j.parts if q == p)

    # -- results -------------------------------------------------------------------------
    def close(self, end_s: float) -> None:
        """The run ends: publish the totals of every job that did not complete."""
        for job in self.jobs:
            if job.status != "completed":
                self.bus.emit(self._record(job, end_s))

    def _record(self, job: Job, end_s: float) -> JobRecord:
        """The job's totals as of ``end_s`` (work in progress counted up to then)."""
        compute = job.compute_gpu_s
        if job.segment is not None:  # still computing at the end
            compute += (end_s - job.segment[0]) * job.gpus
        held = job.held_gpu_s + ((end_s - job.held_since) * job.gpus if job.process is not None else 0.0)
        wait = job.wait_s + (end_s - job.queued_since if job.status == "queued" else 0.0)
        status = {"transferring": "running"}.get(job.status, job.status)
        pools = ";".join(f"{self.pools[p].info.key}:{g}" for p, g in job.parts)
        return JobRecord(job.id, self.scenario.training[job.workload].name, job.arrival_s,
                         job.first_start_s, job.end_s, ";".join(job.regions), pools, job.gpus,
                         wait, job.transfer_s, job.lost_gpu_s / 3600.0, held / 3600.0,
                         (compute - job.lost_gpu_s) / 3600.0,
                         job.preemptions, job.interruptions, status,
                         float(self.batch.work[job.index]), job.remaining)
