"""Placement policies: which queued training jobs start now, and on which GPU pools.

The engine calls ``policy.place(view)`` whenever something changes for training, with a
frozen :class:`~sim.policies.placement_view.PlacementView`, and gets back a list of
assignments ``(job id, ((pool, gpus), ...))``. Jobs left out stay queued. The engine checks
the answer with :func:`~sim.policies.placement_view.validate_assignments` before applying
it, so a policy must keep its own count of the GPUs it hands out within one call.

A job is a gang: all its GPUs start together. Every built-in puts a gang in ONE pool when
some pool it may run on has room; only a job with ``span_regions`` is split, and only when
no single pool has room: it then takes GPUs greedily from the pools in the policy's order
of preference (:func:`gang_fit`). A job that cannot be placed is skipped and the next one
tried, except under ``fifo_first_fit`` (strict FIFO) and ``backfill`` (EASY). Ties always
go to the lower pool index; no built-in draws random numbers.

Built-ins: ``fifo_first_fit``, ``data_local``, ``least_loaded``, ``cheapest``,
``greenest``, ``backfill``.

Public: ``PlacementPolicy``, ``RankedPlacement``, ``gang_fit``, ``expected_end_s``,
``Reservation``, ``easy_reservation`` and the built-in classes ``FifoFirstFit``,
``DataLocal``, ``LeastLoadedPlacement``, ``Cheapest``, ``Greenest``, ``EasyBackfill``.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from sim.policies.placement_view import Assignment, PlacementView, QueuedJob
from sim.policies.registry import PolicyParams, declare_kind, register
from sim.units import HOUR

__all__ = ["PlacementPolicy", "RankedPlacement", "gang_fit", "expected_end_s", "Reservation",
           "easy_reservation", "FifoFirstFit", "DataLocal", "LeastLoadedPlacement", "Cheapest",
           "Greenest", "EasyBackfill"]

declare_kind("placement", ("place",))

Parts = tuple[tuple[int, int], ...]


class PlacementPolicy:
    """Base class of placement policies: start queued training jobs on free GPUs."""

    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(self, params: PolicyParams, rng: np.random.Generator):
        self.params = params
        self.rng = rng

    @abstractmethod  # a flag the registry reads: a subclass must define its own place
    def place(self, view: PlacementView) -> list[Assignment]:
        """Assignments ``(job id, ((pool, gpus), ...))`` to start now; GPUs within ``free_gpus``."""
        raise NotImplementedError


# -- building blocks -------------------------------------------------------------------------
def gang_fit(job: QueuedJob, order: Sequence[int], free: Sequence[int],
             limited: Iterable[int] = (), budget: float = math.inf) -> Parts | None:
    """Where ``job`` fits now, trying pools in ``order`` (runnable pools only), or None.

    The first pool with room for the whole gang; else, if the job may span regions, GPUs
    taken greedily from the pools in ``order``. GPUs taken from pools in ``limited`` may not
    exceed ``budget`` in total (backfilling uses this to protect a reservation).
    """
    limited = frozenset(limited)
    for pool in order:
        if free[pool] >= job.gpus and (pool not in limited or job.gpus <= budget):
            return ((pool, job.gpus),)
    return _spread(job, order, free, limited, budget) if job.span_regions else None


def _spread(job: QueuedJob, order: Sequence[int], free: Sequence[int], limited: frozenset[int],
            budget: float) -> Parts | None:
    need: float = job.gpus  # typed float by the budget (default inf); the values stay whole
    parts: list[tuple[int, int]] = []
    for pool in order:
        gpus = min(need, free[pool], budget if pool in limited else need)
        if gpus > 0:
            parts.append((pool, int(gpus)))
            need -= gpus
            budget -= gpus if pool in limited else 0
        if need == 0:
            return tuple(parts)
    return None


def expected_end_s(view: PlacementView, job: QueuedJob, parts: Parts) -> float:
    """When ``job`` would finish if started now on ``parts``: copy, then compute (slowest part)."""
    return view.t_s + max(job.transfer_s[p] + job.duration_s[p] for p, _ in parts)


def _take(free: list[int], parts: Parts) -> None:
    for pool, gpus in parts:
        free[pool] -= gpus


# -- policies that rank pools ----------------------------------------------------------------
class WaitParams(PolicyParams):
    max_wait_h: float | None = Field(
        None, gt=0, description="A job queued longer than this (since arrival), h, is no longer "
                                "skipped: while it cannot start, nothing behind it starts (none: never).")


class RankedPlacement(PlacementPolicy):
    """Jobs in queue order, each on its best-ranked pool with room; a job that cannot start is skipped."""

    Params: ClassVar[type[PolicyParams]] = WaitParams
    strict_fifo: ClassVar[bool] = False  # True: stop at the first job that cannot start

    def rank(self, view: PlacementView, job: QueuedJob, pool: int, free: Sequence[int]) -> Any:
        """Sort key of ``pool`` for ``job`` (lower is better; ties go to the lower index)."""
        return 0

    def order(self, view: PlacementView, job: QueuedJob, free: Sequence[int]) -> list[int]:
        """The pools ``job`` may run on, best first."""
        return sorted(view.eligible(job), key=lambda pool: (self.rank(view, job, pool, free), pool))

    def place(self, view: PlacementView) -> list[Assignment]:
        free = [slot.free_gpus for slot in view.pools]
        placed: list[Assignment] = []
        for job in view.queue:
            parts = gang_fit(job, self.order(view, job, free), free)
            if parts is None:
                if self.blocks(view, job):
                    break
                continue
            _take(free, parts)
            placed.append((job.id, parts))
        return placed

    def blocks(self, view: PlacementView, job: QueuedJob) -> bool:
        """Whether ``job``, unable to start, holds back every job behind it."""
        max_wait_h = getattr(self.params, "max_wait_h", None)
        return self.strict_fifo or (max_wait_h is not None and view.t_s - job.arrival_s > max_wait_h * HOUR)


@register("placement", "fifo_first_fit")
class FifoFirstFit(RankedPlacement):
    """Strict FIFO: each job in queue order on the first pool with room; stops at the first that cannot start."""

    Params = PolicyParams
    strict_fifo = True


@register("placement", "data_local")
class DataLocal(RankedPlacement):
    """Pools whose region holds the job's data first, then least time to get going there (its
    dataset's copy, plus what resuming from the checkpoint copies it can reach there costs);
    skips jobs that cannot start."""

    def rank(self, view: PlacementView, job: QueuedJob, pool: int, free: Sequence[int]) -> tuple[bool, float]:
        return job.transfer_gb[pool] > 0, job.transfer_s[pool] + job.resume_s[pool]


@register("placement", "least_loaded")
class LeastLoadedPlacement(RankedPlacement):
    """Pool with the largest free fraction (free / total GPUs, counting this call's starts); skips jobs that cannot start."""  # noqa: E501  (one-line summary: `simulate.py policies`)

    def rank(self, view: PlacementView, job: QueuedJob, pool: int, free: Sequence[int]) -> float:
        total = view.pools[pool].total_gpus
        return -free[pool] / total if total > 0 else 0.0


@register("placement", "cheapest")
class Cheapest(RankedPlacement):
    """Lowest energy cost + transfer (egress) cost + soft residency penalty, USD; skips jobs that cannot start."""

    def rank(self, view: PlacementView, job: QueuedJob, pool: int, free: Sequence[int]) -> float:
        return view.energy_cost_usd(job, pool) + job.transfer_cost_usd[pool] + job.penalty_usd[pool]


@register("placement", "greenest")
class Greenest(RankedPlacement):
    """Lowest carbon of the job's energy, kg (ties: cheaper, as cheapest counts it); skips jobs that cannot start."""

    def rank(self, view: PlacementView, job: QueuedJob, pool: int, free: Sequence[int]) -> tuple[float, float]:
        cost = view.energy_cost_usd(job, pool) + job.transfer_cost_usd[pool] + job.penalty_usd[pool]
        return view.carbon_kg(job, pool), cost


# -- EASY backfilling ------------------------------------------------------------------------
@dataclass(frozen=True)
class Reservation:
    """The blocked head job's guaranteed start: the shadow time and the extra GPUs then."""

    time_s: float  # earliest time the head job can start if nothing else starts
    pools: frozenset[int]  # the pools it will start on (all its runnable pools if it spans)
    extra: int  # GPUs free in ``pools`` at ``time_s`` beyond what the head job needs


def easy_reservation(view: PlacementView, job: QueuedJob, free: Sequence[int],
                     releases: Iterable[tuple[float, int, int]]) -> Reservation | None:
    """The earliest start of ``job`` as running jobs end, or None if it can never start.

    ``releases`` are ``(end time, pool, gpus)`` of every job holding GPUs. A job that may
    not span regions needs the gang in one pool: the earliest over its runnable pools
    (ties: lower index). A job that may span needs the gang over all its runnable pools
    together. Every release at the shadow time counts towards the extra GPUs.
    """
    releases = sorted(releases)
    runnable = view.eligible(job)
    groups = [runnable] if job.span_regions else [(pool,) for pool in runnable]
    best: Reservation | None = None
    for group in groups:
        found = _earliest(job.gpus, group, free, releases, view.t_s)
        if found is not None and (best is None or found[0] < best.time_s):
            best = Reservation(found[0], frozenset(group), found[1] - job.gpus)
    return best


def _earliest(gpus: int, group: Sequence[int], free: Sequence[int],
              releases: list[tuple[float, int, int]], now: float) -> tuple[float, int] | None:
    """(time, GPUs free in ``group`` then) when ``group`` first holds ``gpus`` free GPUs."""
    have = sum(free[pool] for pool in group)
    if have >= gpus:
        return now, have
    events = [(end, g) for end, pool, g in releases if pool in group and math.isfinite(end)]
    for k, (end, g) in enumerate(events):
        have += g
        if have >= gpus and (k + 1 == len(events) or events[k + 1][0] > end):
            return max(end, now), have
    return None


@register("placement", "backfill")
class EasyBackfill(PlacementPolicy):
    """EASY backfilling: FIFO first fit; later jobs may start early only if they cannot delay the blocked head job."""

    def place(self, view: PlacementView) -> list[Assignment]:
        free = [slot.free_gpus for slot in view.pools]
        releases = [(run.expected_end_s, pool, gpus) for run in view.running for pool, gpus in run.pools]
        placed: list[Assignment] = []
        head: Reservation | None = None
        for job in view.queue:
            runnable = view.eligible(job)
            if head is None:
                parts = gang_fit(job, runnable, free)
                if parts is None:
                    # A job that can never start holds no reservation: the next one is the head.
                    head = easy_reservation(view, job, free, releases)
                    continue
                end = expected_end_s(view, job, parts)
                releases.extend((end, pool, gpus) for pool, gpus in parts)
            else:
                parts = self._backfill(view, job, runnable, free, head)
                if parts is None:
                    continue
                head = _spend(view, job, parts, head)
            _take(free, parts)
            placed.append((job.id, parts))
        return placed

    @staticmethod
    def _backfill(view: PlacementView, job: QueuedJob, runnable: Sequence[int], free: Sequence[int],
                  head: Reservation) -> Parts | None:
        """Parts on which ``job`` starts now without delaying ``head``, or None."""
        for pool in runnable:  # a single pool first, like gang_fit
            single = ((pool, job.gpus),)
            if free[pool] >= job.gpus and _shadow_gpus(view, job, single, head) <= head.extra:
                return single
        if not job.span_regions:
            return None
        parts = gang_fit(job, runnable, free)
        if parts is not None and expected_end_s(view, job, parts) <= head.time_s:
            return parts
        return gang_fit(job, runnable, free, limited=head.pools, budget=head.extra)


def _shadow_gpus(view: PlacementView, job: QueuedJob, parts: Parts, head: Reservation) -> int:
    """GPUs of ``parts`` still held at the shadow time in the head job's pools."""
    if expected_end_s(view, job, parts) <= head.time_s:
        return 0
    return sum(gpus for pool, gpus in parts if pool in head.pools)


def _spend(view: PlacementView, job: QueuedJob, parts: Parts, head: Reservation) -> Reservation:
    return Reservation(head.time_s, head.pools, head.extra - _shadow_gpus(view, job, parts, head))
