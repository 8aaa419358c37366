"""The ``failures`` section of summary.json and ``failures.csv``.

:class:`FailuresObserver` reads failure records, the pools' capacity changes caused by
failures (it integrates each pool's up GPUs between them for availability), displaced
requests, route changes (the spans during which an origin reached no serving pool), the
jobs' final records (training work lost) and the request log (requests dropped while cut
off).

Public: ``FailuresObserver``, ``failures_summary``, ``cut_off_requests``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.records import (
    FAILURE_CAUSES,
    FAILURE_COLUMNS,
    CapacityChanged,
    FailureRecord,
    JobRecord,
    RequestLog,
    RequestsDisplaced,
    RequestStatus,
    RoutesChanged,
)

__all__ = ["FailuresObserver", "failures_summary", "cut_off_requests"]


class FailuresObserver:
    """Collects what the failure model did and what it cost.

    ``pools``: ``(region, pool, installed GPUs)`` of every pool in the world's order."""

    subscribes = (FailureRecord, CapacityChanged, RequestsDisplaced, RoutesChanged, JobRecord, RequestLog)

    def __init__(self, pools: Sequence[tuple[str, str, int]], regions: Sequence[str], training: bool = False):
        self.pools = list(pools)
        self.training = training  # jobs exist (their lost work is summed, else it is 0.0)
        self.regions = list(regions)
        self.records: list[FailureRecord] = []
        self._index = {f"{region}/{pool}": k for k, (region, pool, _) in enumerate(self.pools)}
        self._up_area = [0.0] * len(self.pools)
        self._since = [0.0] * len(self.pools)
        self._up_now = [gpus for _, _, gpus in self.pools]
        self.retried = self.lost = 0
        self.cut_off: dict[str, list[list[float]]] = {}  # origin -> [start, end] with no reachable pool
        self._jobs: dict[int, JobRecord] = {}
        self._log: RequestLog | None = None

    def __call__(self, record) -> None:
        if isinstance(record, CapacityChanged):
            if record.cause in FAILURE_CAUSES:
                self._account(record)
        elif isinstance(record, FailureRecord):
            self.records.append(record)
        elif isinstance(record, RequestsDisplaced):
            self.retried += record.retried
            self.lost += record.lost
        elif isinstance(record, RoutesChanged):
            self._routes(record)
        elif isinstance(record, JobRecord):
            self._jobs[record.job] = record
        else:
            self._log = record

    def _account(self, record: CapacityChanged) -> None:
        """Integrate the pool's up GPUs until now; from now on they are ``up_gpus``."""
        p = self._index[f"{record.region}/{record.pool}"]
        self._up_area[p] += self._up_now[p] * (record.t_s - self._since[p])
        self._since[p] = record.t_s
        self._up_now[p] = record.up_gpus if record.up_gpus is not None else self.pools[p][2]

    def _routes(self, record: RoutesChanged) -> None:
        cut = set(record.unreachable)
        for origin in self.regions:
            spans = self.cut_off.setdefault(origin, [])
            alone = origin in cut
            if alone and (not spans or spans[-1][1] < record.t_s):
                spans.append([record.t_s, float("inf")])
            elif not alone and spans and spans[-1][1] == float("inf"):
                spans[-1][1] = record.t_s

    def _areas(self, end_s: float) -> list[float]:
        return [self._up_area[p] + self._up_now[p] * (end_s - self._since[p]) for p in range(len(self.pools))]

    def availability(self, end_s: float) -> dict[str, float]:
        """Per region: time-average fraction of its GPUs that were up over [0, end_s]."""
        up: dict[str, float] = {}
        total: dict[str, float] = {}
        for (region, _, gpus), area in zip(self.pools, self._areas(end_s), strict=True):
            up[region] = up.get(region, 0.0) + area
            total[region] = total.get(region, 0.0) + gpus * end_s
        return {r: up[r] / total[r] for r in up if total[r] > 0}

    def gpu_hours_down(self, end_s: float) -> float:
        return (sum(gpus for _, _, gpus in self.pools) * end_s - sum(self._areas(end_s))) / 3600.0

    def summary(self, end_s: float, total_gpus: Mapping[str, int]) -> dict[str, Any]:
        lost_h = sum(self._jobs[k].lost_gpu_h for k in sorted(self._jobs)) if self.training else 0.0
        cut_off = 0
        log = self._log
        if log is not None:
            dropped = (log.status == RequestStatus.REJECTED) | (log.status == RequestStatus.FAILED)
            cut_off = cut_off_requests(log.t_s, log.origin, dropped, self.regions, self.cut_off)
        return failures_summary(self.records, self.availability(end_s), total_gpus, self.gpu_hours_down(end_s),
                                self.retried, self.lost, cut_off, lost_h, end_s)

    def tables(self) -> dict[str, tuple[tuple[str, ...], list[Any]]]:
        return {"failures.csv": (FAILURE_COLUMNS, self.records)}


def failures_summary(records: Sequence[FailureRecord], availability: Mapping[str, float], total_gpus: Mapping[str, int],
                     gpu_hours_down: float, requests_retried: int, requests_lost: int, requests_cut_off: int,
                     training_gpu_hours_lost: float, end_s: float) -> dict[str, Any]:
    """Counts, availability (GPU-time up / GPU-time, per region and overall), repairs.

    ``domain_failures`` counts events of failure domains (each takes several replicas down);
    ``failures_hit`` counts what every replica failure struck, a domain's members included.

    ``requests_cut_off`` counts requests dropped (rejected or lost) while their origin could
    reach no region with GPUs.

    ``mttr_h_observed`` averages the repair times of node failures repaired by ``end_s``."""
    nodes = [r for r in records if r.kind == "node"]
    repaired = np.array([r.end_s - r.start_s for r in nodes if r.end_s <= end_s and r.hit != "down"], dtype=float)
    weights = {r: total_gpus[r] for r in availability}
    overall = (sum(availability[r] * w for r, w in weights.items()) / sum(weights.values())) if weights else None
    struck = nodes + [r for r in records if r.domain]
    hits = {kind: sum(1 for r in struck if r.hit == kind) for kind in ("inference", "training", "idle")}
    return {
        "node_failures": len(nodes),
        "domain_failures": len({(r.domain, r.start_s) for r in records if r.domain}),
        "region_outages": sum(1 for r in records if r.kind == "region"),
        "link_failures": sum(1 for r in records if r.kind == "link"),
        "partitions": sum(1 for r in records if r.kind == "partition"),
        "failures_hit": hits,
        "availability": {"mean": overall, "by_region": dict(sorted(availability.items()))},
        "gpu_hours_down": gpu_hours_down,
        "requests_retried": requests_retried,
        "requests_lost": requests_lost,
        "requests_cut_off": requests_cut_off,
        "gpu_hours_lost": training_gpu_hours_lost,
        "mttr_h_observed": float(repaired.mean() / 3600.0) if repaired.size else None,
    }


def cut_off_requests(t_s: np.ndarray, origin: np.ndarray, dropped: np.ndarray, regions: Sequence[str],
                     spans: Mapping[str, list]) -> int:
    """Dropped requests that arrived while their origin was cut off from every pool."""
    count = 0
    for o, name in enumerate(regions):
        for start, end in spans.get(name, []):
            count += int((dropped & (origin == o) & (t_s >= start) & (t_s < end)).sum())
    return count
