"""Metrics picked out of ``summary.json`` and the intervals a comparison reports.

A metric is a dotted path into a run's summary (``inference.latency_ms.p99``). The
default list names the key results; a path a summary does not have is simply absent
(training, energy or cost sections appear only in runs that produce them).

Confidence intervals are Student-t intervals over seeds: for one policy, the mean of its
per-seed values; for a policy against the baseline, the mean of the *paired* per-seed
differences (same seed, same arrivals), whose spread is far smaller than either policy's
own because common random numbers cancel most of the noise. They live in
:mod:`sim.metrics.stats` (reports compute them too) and are re-exported here.

Public: ``DEFAULT_METRICS``, ``lookup``, ``select``, ``Interval``, ``t_interval``,
``paired_interval``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sim.metrics.stats import Interval, paired_interval, t_interval

__all__ = ["DEFAULT_METRICS", "lookup", "select", "Interval", "t_interval", "paired_interval", "wilson_interval"]

DEFAULT_METRICS: tuple[str, ...] = (
    "inference.latency_ms.mean", "inference.latency_ms.p50", "inference.latency_ms.p95",
    "inference.latency_ms.p99", "inference.wait_ms.mean", "inference.slo_attainment",
    "inference.dropped", "utilization.mean", "allocation.unmet_gpu_hours",
    "training.jct_h.mean", "training.wait_h.mean", "training.goodput",
    "energy.kwh", "energy.co2_kg", "energy.cost_usd",
)


def lookup(summary: Mapping[str, Any], path: str) -> float | None:
    """The number at dotted ``path`` in ``summary``, or None when absent or not a number."""
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    return float(node)


def select(summary: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, float]:
    """``{path: value}`` for each metric the summary has."""
    found = {path: lookup(summary, path) for path in metrics}
    return {path: value for path, value in found.items() if value is not None}


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # All or none: the interval ends at 1 (or 0) exactly, not a rounding error short of it.
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))
