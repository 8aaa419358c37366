"""What a placement policy sees, what it answers, and how the engine checks the answer.

Whenever something changes for training (a job arrives, GPUs free up, inference capacity
moves) the engine freezes its state into a :class:`PlacementView`: the GPU pools
(:class:`PoolSlot`), the waiting jobs in queue order (:class:`QueuedJob`, with everything
that depends on where a job goes already worked out per pool: run time, residency,
transfer size, time and cost, soft penalty, the cost of resuming from the checkpoint copies
it can reach there) and the running jobs (:class:`RunningJob`).
Everything is frozen dataclasses and tuples, so a policy can read it all and change nothing.

A policy answers with a list of :data:`Assignment`\\ s, ``(job id, ((pool, gpus), ...))``;
jobs it leaves out stay queued. :func:`validate_assignments` is the engine's check of that
answer (habit 6: the policy decides, the engine validates); every bad decision becomes a
:class:`~sim.errors.PolicyError` naming the policy.

Public: ``PoolSlot``, ``QueuedJob``, ``RunningJob``, ``PlacementView``, ``Assignment``,
``validate_assignments``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import PolicyError

__all__ = ["PoolSlot", "QueuedJob", "RunningJob", "PlacementView", "Assignment",
           "validate_assignments"]

Assignment = tuple[int, tuple[tuple[int, int], ...]]
"""``(job id, ((pool index, gpus), ...))``; the GPUs sum to the job's gang size."""

_PER_POOL = ("duration_s", "allowed", "transfer_gb", "transfer_cost_usd", "transfer_s", "penalty_usd", "resume_s")
_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class PoolSlot:
    """One GPU pool as placement sees it (``free_gpus``: what training may take now)."""

    index: int
    region: str
    name: str
    gpu: str
    free_gpus: int  # not used by inference nor by running training
    total_gpus: int
    gpus_per_replica: int
    price_usd_per_kwh: float
    carbon_g_per_kwh: float
    pue: float
    tdp_w: float

    @property
    def key(self) -> str:
        return f"{self.region}/{self.name}"


@dataclass(frozen=True)
class QueuedJob:
    """A waiting gang job; every tuple has one entry per pool, in pool index order."""

    id: int
    workload: int
    gpus: int
    arrival_s: float
    priority: int
    deadline_s: float | None  # absolute time
    dataset: str | None
    span_regions: bool
    duration_s: tuple[float, ...]  # run time if placed there; inf: cannot run on that GPU type
    allowed: tuple[bool, ...]  # False where a HARD residency rule forbids the pool's region
    transfer_gb: tuple[float, ...]  # GB to copy first; 0 where the region holds a copy
    transfer_cost_usd: tuple[float, ...]  # egress cost of that copy
    transfer_s: tuple[float, ...]  # estimated time of that copy alone
    penalty_usd: tuple[float, ...]  # SOFT residency penalty; 0 where allowed
    # Restarting there costs this much more than resuming from its newest checkpoint:
    # fetching the best copy it can reach, and computing again what that copy lacks (s);
    # 0 for a job that never wrote a located checkpoint (checkpoint.size_gb 0 or none yet).
    resume_s: tuple[float, ...] = ()
    checkpoint_regions: tuple[str, ...] = ()  # regions holding a copy of its newest checkpoint


@dataclass(frozen=True)
class RunningJob:
    """A job holding GPUs (computing or copying its data)."""

    id: int
    pools: tuple[tuple[int, int], ...]  # (pool index, gpus)
    expected_end_s: float
    priority: int


@dataclass(frozen=True)
class PlacementView:
    """Frozen snapshot for one placement decision (time, queue, pools, running jobs)."""

    t_s: float
    queue: tuple[QueuedJob, ...]  # priority desc, then arrival
    pools: tuple[PoolSlot, ...]
    running: tuple[RunningJob, ...] = ()

    def __post_init__(self) -> None:
        for i, pool in enumerate(self.pools):
            if pool.index != i:
                raise ValueError(f"pools[{i}].index: must equal its position {i}, got {pool.index}")
        n = len(self.pools)
        for i, job in enumerate(self.queue):
            for name in _PER_POOL:
                if len(getattr(job, name)) != n:
                    raise ValueError(f"queue[{i}].{name}: must have {n} entries (one per pool), "
                                     f"got {len(getattr(job, name))}")

    def energy_kwh(self, job: QueuedJob, pool: int) -> float:
        """Energy of running ``job`` on ``pool`` at TDP, facility overhead (PUE) included, kWh."""
        slot = self.pools[pool]
        return job.gpus * slot.tdp_w * slot.pue * job.duration_s[pool] / _J_PER_KWH

    def energy_cost_usd(self, job: QueuedJob, pool: int) -> float:
        return self.energy_kwh(job, pool) * self.pools[pool].price_usd_per_kwh

    def carbon_kg(self, job: QueuedJob, pool: int) -> float:
        return self.energy_kwh(job, pool) * self.pools[pool].carbon_g_per_kwh / 1000.0

    def runnable(self, job: QueuedJob, pool: int) -> bool:
        """The job may run on the pool at all: allowed there and its GPU type usable."""
        return job.allowed[pool] and math.isfinite(job.duration_s[pool])

    def eligible(self, job: QueuedJob) -> tuple[int, ...]:
        """Pools the job may run on (ignoring free GPUs), in index order."""
        return tuple(p for p in range(len(self.pools)) if self.runnable(job, p))

    def feasible(self, job: QueuedJob, pool: int) -> bool:
        """Runnable on ``pool`` and enough free GPUs there now for the whole gang."""
        return self.runnable(job, pool) and self.pools[pool].free_gpus >= job.gpus

    @staticmethod
    def build(*, pools: Sequence[Mapping[str, Any] | PoolSlot], queue: Sequence[Mapping[str, Any] | QueuedJob] = (),
              running: Sequence[Mapping[str, Any] | RunningJob] = (), t_s: float = 0.0) -> PlacementView:
        """A view from plain mappings with defaults (for tests and examples).

        Pools default to region ``"r0"``, name ``"p<index>"``, 8 H100 GPUs all free, one
        replica, 0.10 USD/kWh, 300 g/kWh, PUE 1.2, 700 W; ``index`` is the position.
        Jobs default to 1 GPU, 1 h everywhere, allowed everywhere, no dataset, no transfer;
        a per-pool field may be given as one number (the same for every pool). Running jobs
        need ``id``, ``pools`` and ``expected_end_s``.
        """
        slots = tuple(p if isinstance(p, PoolSlot) else _pool(i, p) for i, p in enumerate(pools))
        jobs = tuple(j if isinstance(j, QueuedJob) else _job(i, j, len(slots)) for i, j in enumerate(queue))
        busy = tuple(r if isinstance(r, RunningJob) else _running(r) for r in running)
        return PlacementView(t_s=float(t_s), queue=jobs, pools=slots, running=busy)


def _pool(index: int, spec: Mapping[str, Any]) -> PoolSlot:
    total = spec.get("total_gpus", 8)
    values = {"index": index, "region": "r0", "name": f"p{index}", "gpu": "H100", "free_gpus": total,
              "total_gpus": total, "gpus_per_replica": total, "price_usd_per_kwh": 0.10,
              "carbon_g_per_kwh": 300.0, "pue": 1.2, "tdp_w": 700.0}
    return PoolSlot(**{**values, **spec})


def _job(position: int, spec: Mapping[str, Any], n_pools: int) -> QueuedJob:
    defaults = {"id": position, "workload": 0, "gpus": 1, "arrival_s": 0.0, "priority": 0,
                "deadline_s": None, "dataset": None, "span_regions": False, "duration_s": 3600.0,
                "allowed": True, "transfer_gb": 0.0, "transfer_cost_usd": 0.0, "transfer_s": 0.0,
                "penalty_usd": 0.0, "resume_s": 0.0}
    values = {**defaults, **spec}
    for name in _PER_POOL:
        value = values[name]
        values[name] = tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else (value,) * n_pools
    return QueuedJob(**values)


def _running(spec: Mapping[str, Any]) -> RunningJob:
    values = {"priority": 0, **spec}
    values["pools"] = tuple((int(p), int(g)) for p, g in values["pools"])
    return RunningJob(**values)


# -- the engine's check of a policy's answer ---------------------------------------------------
def validate_assignments(view: PlacementView, assignments: Any, policy_name: str) -> None:
    """Raise :class:`PolicyError` naming ``policy_name`` unless every assignment can be applied.

    Checks, in order: the answer's shape; per assignment, a queued job not already assigned,
    existing pools each listed once with >= 1 GPU, GPUs summing to the gang size, one region
    unless the job may span regions, a usable GPU type and no hard residency rule broken;
    finally that no pool receives more GPUs than it has free, summed over the whole answer.
    """
    if not isinstance(assignments, (list, tuple)):
        raise PolicyError(policy_name, f"place() must return a list of (job id, ((pool, gpus), ...)), "
                                       f"got {type(assignments).__name__}")
    queued = {job.id: job for job in view.queue}
    seen: set[int] = set()
    used = [0] * len(view.pools)
    for k, assignment in enumerate(assignments):
        job_id, parts = _unpack(k, assignment, policy_name)
        if job_id not in queued:
            raise PolicyError(policy_name, f"assignment {k}: job {job_id} is not in the queue")
        if job_id in seen:
            raise PolicyError(policy_name, f"job {job_id} is assigned twice")
        seen.add(job_id)
        _check_job(view, queued[job_id], parts, policy_name)
        for pool, gpus in parts:
            used[pool] += gpus
    for pool, slot in enumerate(view.pools):
        if used[pool] > slot.free_gpus:
            raise PolicyError(policy_name, f"pool {pool} ({slot.key}) over capacity: assigned {used[pool]} "
                                           f"GPUs in total, {slot.free_gpus} free")


def _unpack(k: int, assignment: Any, policy_name: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    shape = f"assignment {k}: must be (job id, ((pool, gpus), ...)), got {assignment!r}"
    try:
        job_id, parts = assignment
        parts = tuple((pool, gpus) for pool, gpus in parts)
    except (TypeError, ValueError):
        raise PolicyError(policy_name, shape) from None
    if not _is_int(job_id) or not parts or not all(_is_int(p) and _is_int(g) for p, g in parts):
        raise PolicyError(policy_name, shape)
    return int(job_id), tuple((int(p), int(g)) for p, g in parts)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_job(view: PlacementView, job: QueuedJob, parts: tuple[tuple[int, int], ...], policy_name: str) -> None:
    def fail(message: str) -> None:
        raise PolicyError(policy_name, f"job {job.id}: {message}")

    pools = [p for p, _ in parts]
    for pool, gpus in parts:
        if not 0 <= pool < len(view.pools):
            fail(f"pool {pool} does not exist (pools are 0..{len(view.pools) - 1})")
        if gpus < 1:
            fail(f"pool {pool} given {gpus} GPUs (must be >= 1)")
    if len(set(pools)) != len(pools):
        fail(f"a pool is listed more than once ({', '.join(map(str, pools))})")
    total = sum(g for _, g in parts)
    if total != job.gpus:
        fail(f"gang of {job.gpus} GPUs assigned {total}")
    regions = sorted({view.pools[p].region for p in pools})
    if len(regions) > 1 and not job.span_regions:
        fail(f"may not span regions, assigned to {', '.join(regions)}")
    for pool in pools:
        slot = view.pools[pool]
        if not math.isfinite(job.duration_s[pool]):
            fail(f"cannot run on pool {pool} ({slot.key}): its duration there is inf "
                 f"(GPU type {slot.gpu} not usable by its workload, or the pool takes no training)")
        if not job.allowed[pool]:
            fail(f"dataset {job.dataset!r} may not be processed in region {slot.region!r} "
                 f"(hard residency rule), assigned pool {pool} ({slot.key})")
