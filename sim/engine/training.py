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
point: the job loses the work since its last checkpoint and requeues. A requeued job whose
newest checkpoint lies only in a dark region waits for that region (it is not offered to
placement) when the outage is expected to end sooner than the time it would take to compute
again the work between that checkpoint and the best one it can reach now.

The engine reacts to records: :class:`~sim.records.CapacityChanged` (preempt what no longer
fits; a shrink caused by a failure interrupts instead), :class:`~sim.records.ReplicaFailed`
and :class:`~sim.records.RegionDown` (interrupt the jobs struck), and
:class:`~sim.records.RoutesChanged` (copies wait for a route). It publishes
:class:`~sim.records.TrainingUsage`, :class:`~sim.records.JobChanged`, a
:class:`~sim.records.JobRecord` per job (when it completes, the others when the run ends),
and, through its :class:`~sim.engine.data.DataMover`, the copies of datasets and checkpoints.

Public: ``TrainingEngine``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import simpy

from sim.engine.bus import Bus
from sim.engine.data import DataMover
from sim.engine.job import Job
from sim.engine.network import TransferManager
from sim.engine.training_view import PlacementViews
from sim.policies import validate_assignments
from sim.records import (
    CapacityChanged,
    JobChanged,
    JobEvent,
    JobRecord,
    RegionDown,
    ReplicaFailed,
    RoutesChanged,
    TrainingUsage,
)
from sim.scenario.model import Scenario
from sim.workload.training import JobBatch
from sim.world import World

__all__ = ["TrainingEngine"]

_EPS = 1e-9


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
        # The jobs that hold GPUs (their process runs), by id: placement and failures look
        # at these only, so their cost does not grow with the jobs that have finished.
        self.placed: dict[int, Job] = {}
        self.queue: list[Job] = []
        self.data = DataMover(env, scenario, world, self.pools, transfers, bus)
        self.views = PlacementViews(scenario, world, self.pools, batch, self.data, self.free)
        self._placing = False
        self._back_by: dict[str, float] = {}  # region -> when its outage is expected to end
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
        on_pool = [j for j in self.placed.values() if not j.stopping and any(q == p for q, _ in j.parts)]
        stopping = sum(g for j in self.placed.values() if j.stopping for q, g in j.parts if q == p)
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
        offered = [job for job in self.queue if not self._waits_for_checkpoint(job)]
        if not offered:
            return
        view = self.views.view(self.env.now, offered, self._held())
        assignments = self.policy.place(view)
        validate_assignments(view, assignments, self.policy_name)
        by_id = {j.id: j for j in self.queue}
        for job_id, parts in assignments:
            self._start(by_id[job_id], tuple(parts))

    def _waits_for_checkpoint(self, job: Job) -> bool:
        """Whether ``job`` should wait for its newest checkpoint (only in dark regions)
        rather than restart from the best copy it can reach now: the outage is expected to
        end before the work in between could be computed again."""
        if self.scenario.training[job.workload].checkpoint.size_gb <= 0 or not job.copies or job.rate <= 0:
            return self._stop_waiting(job)
        newest = min(job.copies.values())
        holders = [r for r, v in job.copies.items() if v == newest]
        if not all(self.data.dark(r) for r in holders):
            return self._stop_waiting(job)
        total = float(self.batch.work[job.index])
        reachable = min(self.data.best_copy(job, region, total)[0] for region in self._regions())
        wait = min(self._back_by.get(r, math.inf) for r in holders) - self.env.now
        if not 0 < wait < (reachable - newest) / job.rate:
            return self._stop_waiting(job)
        if not job.waiting:
            job.waiting = True
            self._announce(job, "waiting")
            self.env.process(self._wake_at(self.env.now + wait))
        return True

    def _stop_waiting(self, job: Job) -> bool:
        job.waiting = False
        return False

    def _wake_at(self, t: float):
        yield self.env.timeout(t - self.env.now)
        self.request_placement()

    def _regions(self) -> list[str]:
        return sorted({p.info.region for p in self.pools if p.info.serves != "inference"})

    # -- running a job -------------------------------------------------------------------
    def _start(self, job: Job, parts: tuple[tuple[int, int], ...]) -> None:
        self.queue.remove(job)
        job.wait_s += self.env.now - job.queued_since
        job.parts = parts
        job.rate = min(self.views.rate(job, p) for p, _ in parts)
        job.status = "transferring"
        job.held_since = self.env.now
        for p, g in parts:
            self._set_used(p, g)
        job.regions = sorted({self.pools[p].info.region for p, _ in parts})
        job.home = self.pools[parts[0][0]].info.region  # where its checkpoints are written
        job.process = self.env.process(self._run(job))
        self.placed[job.id] = job
        self._announce(job, "placed")

    def rerouted(self, record: RoutesChanged) -> None:
        """Links failed or came back: wake jobs waiting for a route; place again."""
        self.data.rerouted()
        self.request_placement()

    def _run(self, job: Job):
        """A placed job's life: its data, its restart, its compute, until it completes or
        is interrupted."""
        env = self.env
        try:
            yield from self._fetch_data(job)
            job.status = "running"
            self._announce(job, "started")
            if math.isnan(job.first_start_s):
                job.first_start_s = env.now
            ckpt = self.scenario.training[job.workload].checkpoint
            if job.ran_before and ckpt.size_gb > 0:
                yield from self.data.restore(job, float(self.batch.work[job.index]))
            if job.ran_before and ckpt.restart > 0:
                yield env.timeout(ckpt.restart)
            job.ran_before = True
            yield from self._compute(job)
            self._finish(job, "completed")
            self.bus.emit(self._record(job, self.env.now))
            self._announce(job, "completed")
        except simpy.Interrupt as stop:
            self._stopped(job, stop.cause)

    def _fetch_data(self, job: Job):
        """Wait until every region of the job holds its dataset (time counted as transfer)."""
        env = self.env
        while self.data.unreachable(job):  # placed, then cut off: wait for a route
            began = env.now
            yield self.data.route_changed
            job.transfer_s += env.now - began
        waits = self.data.data_ready(job)
        if waits:
            began = env.now
            yield env.all_of(waits)
            job.transfer_s += env.now - began

    def _compute(self, job: Job):
        """Compute the remaining work in segments of ``checkpoint.interval``, each followed
        by a checkpoint write."""
        env, ckpt, rate = self.env, self.scenario.training[job.workload].checkpoint, job.rate
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
                self.data.checkpointed(job)
        job.remaining = job.saved = 0.0

    def _release(self, job: Job) -> None:
        job.held_gpu_s += (self.env.now - job.held_since) * job.gpus
        for p, g in job.parts:
            self._set_used(p, -g)

    def _finish(self, job: Job, status: str) -> None:
        self._release(job)
        job.status = status
        job.end_s = self.env.now
        job.process = None
        del self.placed[job.id]
        self.request_placement()

    def _stopped(self, job: Job, cause: str | None) -> None:
        if job.segment is not None:  # compute done in the interrupted segment
            start, rate = job.segment
            job.remaining = max(job.remaining - (self.env.now - start) * rate, 0.0)
            job.compute_gpu_s += (self.env.now - start) * job.gpus
            job.segment = None
        if cause == "preempt":
            job.preemptions += 1
            job.saved = job.remaining  # a preempted job checkpoints before it lets go
            self.data.checkpointed(job)
        else:
            job.interruptions += 1
            rate = job.rate
            job.lost_gpu_s += (job.saved - job.remaining) / rate * job.gpus if rate > 0 else 0.0
            job.remaining = job.saved
        self._release(job)
        job.parts, job.process, job.stopping = (), None, False
        del self.placed[job.id]
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
        for job in (j for j in self._held() if not j.stopping):
            held = sum(g for q, g in job.parts if q == p)
            if offset_gpus < held:
                self.interrupt(job.id, "failure")
                return job.id
            offset_gpus -= held
        return None

    def region_down(self, record: RegionDown) -> None:
        """Every replica of these pools goes down (a region outage): interrupt their jobs."""
        self._back_by[record.region] = record.expected_end_s
        pools = set(record.pool_indices)
        for job in self._held():
            if any(q in pools for q, _ in job.parts):
                self.interrupt(job.id, "failure")

    def training_gpus(self, p: int) -> int:
        """GPUs of pool ``p`` that running (not stopping) jobs hold."""
        return sum(g for j in self.placed.values() if not j.stopping for q, g in j.parts if q == p)

    def _held(self) -> list[Job]:
        """The jobs that hold GPUs, in id order."""
        return [self.placed[i] for i in sorted(self.placed)]

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
