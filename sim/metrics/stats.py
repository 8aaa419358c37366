"""Confidence intervals over seeds: the statistics that comparisons, sweeps, plans and
reports share.

Each seed is an independent replication, so a metric's per-seed values give a Student-t
interval for its mean (:func:`t_interval`). Two policies run on the same seeds see the same
arrivals and service draws (common random numbers); the interval of their *paired*
per-seed differences (:func:`paired_interval`) is far narrower than either policy's own,
because the shared noise cancels.

Pure functions over plain numbers (numpy, and scipy for the t quantile): the experiment
layer computes these intervals and the report layer recomputes them from result files.

Public: ``Interval``, ``t_interval``, ``paired_interval``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "t_interval", "paired_interval"]


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and its two-sided confidence interval (None when n < 2)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None


def t_interval(values: Iterable[float | None], confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of ``values`` (independent replications).

    Missing (None) and non-finite values are left out; ``n`` counts the values used."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
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
    from scipy.stats import t  # imported late: only intervals need it

    return float(t.ppf(p, dof))
