"""Training and network metrics: observers of job and transfer records.

:class:`TrainingObserver` keeps each job's :class:`~sim.records.JobRecord` (published when
the job completes, or when the run ends) and gives the ``training`` section and
``jobs.csv``; :class:`NetworkObserver` keeps transfers, border crossings and residency
violations and gives the ``network`` section, ``transfers.csv`` and
``border_crossings.csv``.

Conventions (docs/metrics.md): ``submitted == completed + running + queued`` counts every
job that arrived during the run; job statistics (``jct_h``, ``wait_h``) cover jobs that
arrived at or after the warm-up; GPU-hours cover the whole run.

Public: ``TrainingObserver``, ``NetworkObserver``, ``training_summary``, ``network_summary``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.records import (
    CROSSING_COLUMNS,
    JOB_COLUMNS,
    TRANSFER_COLUMNS,
    BorderCrossing,
    JobRecord,
    ResidencyViolation,
    TransferRecord,
    TransfersUnfinished,
)

__all__ = ["TrainingObserver", "NetworkObserver", "training_summary", "network_summary"]

Table = tuple[tuple[str, ...], list[Any]]


class TrainingObserver:
    """The final record of every job, in job order."""

    subscribes = (JobRecord,)

    def __init__(self, warmup_s: float):
        self.warmup_s = warmup_s
        self._jobs: dict[int, JobRecord] = {}

    def __call__(self, record: JobRecord) -> None:
        self._jobs[record.job] = record

    @property
    def jobs(self) -> list[JobRecord]:
        return [self._jobs[k] for k in sorted(self._jobs)]

    def summary(self) -> dict[str, Any]:
        return training_summary(self.jobs, self.warmup_s)

    def tables(self) -> dict[str, Table]:
        return {"jobs.csv": (JOB_COLUMNS, self.jobs)}


class NetworkObserver:
    """Copies that landed, the borders they crossed and the residency rules they broke."""

    subscribes = (TransferRecord, BorderCrossing, ResidencyViolation, TransfersUnfinished)

    def __init__(self) -> None:
        self.transfers: list[TransferRecord] = []
        self.crossings: list[BorderCrossing] = []
        self.violations = 0
        self.unfinished = TransfersUnfinished(0.0, 0, 0.0)  # none, unless the run ends with copies under way

    def __call__(self, record: TransferRecord | BorderCrossing | ResidencyViolation | TransfersUnfinished) -> None:
        if isinstance(record, TransferRecord):
            self.transfers.append(record)
        elif isinstance(record, BorderCrossing):
            self.crossings.append(record)
        elif isinstance(record, TransfersUnfinished):
            self.unfinished = record
        else:
            self.violations += 1

    def summary(self) -> dict[str, Any]:
        return {**network_summary(self.transfers, self.crossings, self.violations),
                "unfinished_transfers": self.unfinished.transfers, "unfinished_bytes": self.unfinished.bytes}

    def tables(self) -> dict[str, Table]:
        return {"transfers.csv": (TRANSFER_COLUMNS, self.transfers),
                "border_crossings.csv": (CROSSING_COLUMNS, self.crossings)}


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "p50": None, "p95": None}
    p50, p95 = np.percentile(values, [50, 95])
    return {"mean": float(values.mean()), "p50": float(p50), "p95": float(p95)}


def training_summary(jobs: Sequence[JobRecord], warmup_s: float) -> dict[str, Any]:
    status = np.array([j.status for j in jobs], dtype=object)
    arrival = np.array([j.arrival_s for j in jobs], dtype=float)
    end = np.array([j.end_s for j in jobs], dtype=float)
    start = np.array([j.start_s for j in jobs], dtype=float)
    wait = np.array([j.wait_s for j in jobs], dtype=float)
    measured = arrival >= warmup_s
    done = status == "completed"
    used = sum(j.held_gpu_h for j in jobs)
    useful = sum(j.useful_gpu_h for j in jobs)
    return {
        "submitted": len(jobs), "completed": int(done.sum()),
        "running": int((status == "running").sum()), "queued": int((status == "queued").sum()),
        "jct_h": _stats((end - arrival)[done & measured] / 3600.0),
        "wait_h": _stats(wait[~np.isnan(start) & measured] / 3600.0),
        "gpu_hours_used": used, "gpu_hours_lost": sum(j.lost_gpu_h for j in jobs),
        "goodput": useful / used if used > 0 else None,
        "preemptions": sum(j.preemptions for j in jobs),
        "interruptions": sum(j.interruptions for j in jobs),
    }


def _bytes_by_link(transfers: Sequence[TransferRecord]) -> dict[str, float]:
    """Bytes that crossed each link (``a-b``, ends in name order) along the transfers' routes."""
    by_link: dict[str, float] = {}
    for t in transfers:
        for u, v in zip(t.hops, t.hops[1:], strict=False):
            key = "-".join(sorted((u, v)))
            by_link[key] = by_link.get(key, 0.0) + t.bytes
    return dict(sorted(by_link.items()))


def _region(node: str) -> str:
    """The region of a copy's end: ``region`` or ``region/host``."""
    return node.partition("/")[0]


def network_summary(transfers: Sequence[TransferRecord], crossings: Sequence[BorderCrossing],
                    residency_violations: int) -> dict[str, Any]:
    return {
        "transfers": len(transfers),
        "bytes_cross_region": float(sum(t.bytes for t in transfers if _region(t.src) != _region(t.dst))),
        "transfer_cost_usd": float(sum(t.cost_usd for t in transfers)),
        "border_crossings_bytes": float(sum(c.bytes for c in crossings)),
        "bytes_by_link": _bytes_by_link(transfers),
        "residency_violations": int(residency_violations),
    }
