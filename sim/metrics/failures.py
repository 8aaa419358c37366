"""The ``failures`` section of summary.json, from the failure records and the engine's counts.

Public: ``failures_summary``, ``cut_off_requests``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from sim.metrics.records import FailureRecord

__all__ = ["failures_summary", "cut_off_requests"]


def failures_summary(records: Sequence[FailureRecord], availability: Mapping[str, float], total_gpus: Mapping[str, int],
                     gpu_hours_down: float, requests_retried: int, requests_lost: int, requests_cut_off: int,
                     training_gpu_hours_lost: float, end_s: float) -> dict[str, Any]:
    """Counts, availability (GPU-time up / GPU-time, per region and overall), repairs.

    ``requests_cut_off`` counts requests dropped (rejected or lost) while their origin could
    reach no region with GPUs.

    ``mttr_h_observed`` averages the repair times of node failures repaired by ``end_s``."""
    nodes = [r for r in records if r.kind == "node"]
    repaired = np.array([r.end_s - r.start_s for r in nodes if r.end_s <= end_s and r.hit != "down"], dtype=float)
    weights = {r: total_gpus[r] for r in availability}
    overall = (sum(availability[r] * w for r, w in weights.items()) / sum(weights.values())) if weights else None
    hits = {kind: sum(1 for r in nodes if r.hit == kind) for kind in ("inference", "training", "idle")}
    return {
        "node_failures": len(nodes),
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
