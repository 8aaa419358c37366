"""The placement policy's view of the training engine: a frozen snapshot built per decision.

For every queued job and every pool it gives the job's run time there, whether its data
may go there (hard residency, a copy reachable now), what moving its dataset would cost in
bytes, dollars and seconds, the soft-residency penalty, and what resuming there costs
beyond the newest checkpoint (fetching the best copy it can reach, computing again what that
copy lacks), with the regions holding its newest checkpoint; for every pool its free GPUs
and the region's price, carbon and PUE; and the running jobs' expected ends.

Public: ``PlacementViews``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sim.engine.data import DataMover
from sim.engine.datacenter import PoolRuntime
from sim.engine.job import Job
from sim.policies import PlacementView, PoolSlot, QueuedJob, RunningJob
from sim.scenario.checks import residency_allows
from sim.scenario.model import Scenario
from sim.workload.training import JobBatch
from sim.world import World

__all__ = ["PlacementViews"]


class PlacementViews:
    """Builds :class:`~sim.policies.PlacementView` snapshots (``free(p)``: free GPUs of pool p)."""

    def __init__(self, scenario: Scenario, world: World, pools: Sequence[PoolRuntime], batch: JobBatch,
                 data: DataMover, free: Callable[[int], int]):
        self.scenario, self.world, self.pools, self.batch, self.data, self.free = \
            scenario, world, list(pools), batch, data, free
        self._col = {name: k for k, name in enumerate(batch.gpu_types)}

    def rate(self, job: Job, p: int) -> float:
        """Work units per second of ``job`` on pool ``p``'s GPU type (0: it cannot run there)."""
        col = self._col.get(self.pools[p].info.gpu.name)
        return 0.0 if col is None else float(self.batch.rate_table[self.batch.kind[job.index], col])

    def _queued_view(self, job: Job) -> QueuedJob:
        wl = self.scenario.training[job.workload]
        ds = self.data.datasets.get(wl.dataset) if wl.dataset else None
        rule = ds.residency if ds is not None else None  # not None wherever ``ok`` is False
        durations, allowed, gb, cost, secs, penalty, resume = [], [], [], [], [], [], []
        total = float(self.batch.work[job.index])
        for p, pool in enumerate(self.pools):
            region = pool.info.region
            rate = self.rate(job, p) if pool.info.serves != "inference" else 0.0
            durations.append(job.remaining / rate if rate > 0 else math.inf)
            ok = ds is None or residency_allows(self.scenario, ds, region)
            src = self.data.source_for(ds.name, region) if ds is not None else None
            cut_off = ds is not None and src is None and region not in self.data.copies[ds.name]
            allowed.append((ok or (rule is not None and rule.mode == "soft")) and not cut_off)
            size = ds.size_gb if ds is not None and src is not None else 0.0
            gb.append(size)
            cost.append(size * self.data.egress(src, region) if src else 0.0)
            topo = self.data.transfers.topology
            secs.append(topo.path_rtt_ms(src, region) / 2000 + size * 8 / topo.bottleneck_gbps(src, region)
                        if src else 0.0)
            penalty.append(0.0 if ok or rule is None else size * rule.penalty_usd_per_gb)
            resume.append(self.data.resume_s(job, region, total, rate) if rate > 0 else 0.0)
        newest = min(job.copies.values(), default=math.inf)
        return QueuedJob(id=job.id, workload=job.workload, gpus=job.gpus, arrival_s=job.arrival_s,
                         priority=job.priority, deadline_s=job.deadline_s, dataset=wl.dataset,
                         span_regions=wl.span_regions, duration_s=tuple(durations), allowed=tuple(allowed),
                         transfer_gb=tuple(gb), transfer_cost_usd=tuple(cost), transfer_s=tuple(secs),
                         penalty_usd=tuple(penalty), resume_s=tuple(resume),
                         checkpoint_regions=tuple(sorted(r for r, v in job.copies.items() if v == newest)))

    def view(self, now: float, queue: Sequence[Job], jobs: Sequence[Job]) -> PlacementView:
        """The frozen view the placement policy decides over (``jobs``: those holding GPUs,
        in id order; the running and transferring ones are in the view)."""
        pools = tuple(PoolSlot(index=p, region=r.info.region, name=r.info.name, gpu=r.info.gpu.name,
                               free_gpus=self.free(p), total_gpus=r.info.total_gpus,
                               gpus_per_replica=r.info.gpus_per_replica,
                               price_usd_per_kwh=self._region(r).price_usd_per_kwh,
                               carbon_g_per_kwh=self._region(r).carbon_g_per_kwh,
                               pue=self._region(r).pue, tdp_w=r.info.gpu.tdp_w)
                      for p, r in enumerate(self.pools))
        running = tuple(RunningJob(id=j.id, pools=j.parts, expected_end_s=self._expected_end(j, now),
                                   priority=j.priority)
                        for j in jobs if j.status in ("running", "transferring"))
        return PlacementView(t_s=now, queue=tuple(self._queued_view(j) for j in queue),
                             pools=pools, running=running)

    def _region(self, runtime):
        return self.world.region(runtime.info.region)

    @staticmethod
    def _expected_end(job: Job, now: float) -> float:
        rate = job.rate
        return now + (job.remaining / rate if rate > 0 else math.inf)
