"""The ``consistency`` section of summary.json: rollout lags and stale service.

A request is *served stale* when its service starts, in region r, at a time when a newer
version has been released (``start_s``) but r does not serve it yet (before its
``switched_s``). The fraction counts completed requests that arrived after the warm-up.
``mixed_version_s`` is the time during which regions served different versions.

:class:`ConsistencyObserver` collects :class:`~sim.records.VersionReleased` and
:class:`~sim.records.RolloutRecord` records and the request log.

Public: ``ConsistencyObserver``, ``consistency_summary``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.records import ROLLOUT_COLUMNS, RequestLog, RequestStatus, RolloutRecord, VersionReleased

__all__ = ["ConsistencyObserver", "consistency_summary"]


class ConsistencyObserver:
    """Rollouts of model versions, in version order and, within one, in ``regions`` order
    (the regions that serve requests, as the world lists them)."""

    subscribes = (VersionReleased, RolloutRecord, RequestLog)

    def __init__(self, regions: Sequence[str], all_regions: Sequence[str], pool_region: np.ndarray | None,
                 warmup_s: float):
        self.regions, self.all_regions = list(regions), list(all_regions)
        self.pool_region, self.warmup_s = pool_region, warmup_s
        self.versions = 0
        self._rows: list[RolloutRecord] = []
        self._log: RequestLog | None = None

    def __call__(self, record: VersionReleased | RolloutRecord | RequestLog) -> None:
        if isinstance(record, VersionReleased):
            self.versions += 1
        elif isinstance(record, RolloutRecord):
            self._rows.append(record)
        else:
            self._log = record

    @property
    def rows(self) -> list[RolloutRecord]:
        return sorted(self._rows, key=lambda r: (r.version, self.regions.index(r.region)))

    def summary(self, end_s: float) -> dict[str, Any]:
        log = self._log
        return consistency_summary(self.rows, self.versions, end_s, log, self.all_regions,
                                   self.pool_region if log is not None else None, self.warmup_s)

    def tables(self) -> dict[str, tuple[tuple[str, ...], list[Any]]]:
        return {"rollouts.csv": (ROLLOUT_COLUMNS, self.rows)}


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -math.inf
    for a, b in sorted(spans):
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return total


def consistency_summary(rows: Sequence[RolloutRecord], versions: int, end_s: float, log: RequestLog | None = None,
                        regions: Sequence[str] = (), pool_region: np.ndarray | None = None,
                        warmup_s: float = 0.0) -> dict[str, Any]:
    lags = np.array([r.switched_s - r.start_s for r in rows if math.isfinite(r.switched_s)], dtype=float)
    by_version: dict[int, list[RolloutRecord]] = {}
    for r in rows:
        by_version.setdefault(r.version, []).append(r)
    mixed = []
    for group in by_version.values():
        first = min(r.switched_s for r in group)
        last = max(r.switched_s for r in group)
        if first < last:
            mixed.append((min(first, end_s), min(last, end_s)))
    by_region = {}
    for name in dict.fromkeys(r.region for r in rows):
        mine = np.array([r.switched_s - r.start_s for r in rows if r.region == name and math.isfinite(r.switched_s)])
        by_region[name] = {"lag_s_mean": float(mine.mean()) if mine.size else None}
    summary: dict[str, Any] = {
        "rollouts": versions,
        "lag_s": {"mean": float(lags.mean()) if lags.size else None, "max": float(lags.max()) if lags.size else None},
        "not_landed": int(sum(1 for r in rows if not math.isfinite(r.landed_s))),
        "mixed_version_s": _union_length(mixed),
        "stale_fraction": None,
        "by_region": by_region,
    }
    if log is not None and pool_region is not None:
        done = (log.status == RequestStatus.COMPLETED) & (log.t_s >= warmup_s)
        start = log.pool_arrival_s + np.nan_to_num(log.wait_s)
        region = np.where(log.pool >= 0, pool_region[np.maximum(log.pool, 0)], -1)
        stale = np.zeros(len(done), dtype=bool)
        for r in rows:
            k = list(regions).index(r.region)
            stale |= (region == k) & (start >= r.start_s) & (start < r.switched_s)
        summary["stale_fraction"] = float((stale & done).sum() / done.sum()) if done.any() else None
    return summary
