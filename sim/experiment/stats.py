"""Metrics picked out of ``summary.json`` and the intervals a comparison reports.

A metric is a dotted path into a run's summary (``inference.latency_ms.p99``). The
default list names the key results; a path a summary does not have is simply absent
(training, energy or cost sections appear only in runs that produce them).

Confidence intervals are Student-t intervals over seeds: for one policy, the mean of its
per-seed values; for a policy against the baseline, the mean of the *paired* per-seed
differences (same seed, same arrivals), whose spread is far smaller than either policy's
own because common random numbers cancel most of the noise.

Public: ``DEFAULT_METRICS``, ``lookup``, ``select``, ``Interval``, ``t_interval``,
``paired_interval``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_METRICS", "lookup", "select", "Interval", "t_interval", "paired_interval"]

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


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and its two-sided confidence interval (None when n < 2)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of ``values`` (independent replications)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Interval(0, None, None, None)
    mean = float(data.mean())
    if n < 2:
        return Interval(1, mean, None, None)
    half = _t_quantile(0.5 + confidence / 2, n - 1) * float(data.std(ddof=1)) / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half)


def paired_interval(values: Mapping[int, float], baseline: Mapping[int, float],
                    confidence: float = 0.95) -> Interval:
    """Interval of ``value - baseline`` over the seeds both have (a paired t interval)."""
    seeds = sorted(set(values) & set(baseline))
    return t_interval([values[s] - baseline[s] for s in seeds], confidence)


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t  # imported late: only comparisons need it

    return float(t.ppf(p, dof))
