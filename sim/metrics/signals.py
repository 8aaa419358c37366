"""Piecewise-constant signals and their exact averages over time buckets.

Capacity, load and busy GPUs change only at events, so between events they are constant.
A :class:`StepSignal` stores the change points; :meth:`StepSignal.mean_over` integrates it
exactly over any interval, so bucket means are exact, not sampled.

Public: ``StepSignal``, ``bucket_edges``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["StepSignal", "bucket_edges"]


def bucket_edges(start_s: float, end_s: float, bucket_s: float) -> np.ndarray:
    """Edges ``start, start+b, ..., end`` (the last bucket may be shorter)."""
    count = int(np.ceil((end_s - start_s) / bucket_s - 1e-9))
    edges = start_s + bucket_s * np.arange(count + 1, dtype=float)
    edges[-1] = end_s
    return edges


class StepSignal:
    """A right-continuous step function of time, 0 before its first change."""

    def __init__(self) -> None:
        self._t: list[float] = []
        self._v: list[float] = []

    def set(self, t_s: float, value: float) -> None:
        """From ``t_s`` on the signal is ``value`` (a later set at the same time wins)."""
        if self._t and t_s < self._t[-1]:
            raise ValueError(f"signal set back in time: {t_s} < {self._t[-1]}")
        if self._t and t_s == self._t[-1]:
            self._v[-1] = float(value)
        else:
            self._t.append(float(t_s))
            self._v.append(float(value))

    def _cumulative(self, points: np.ndarray) -> np.ndarray:
        """Integral of the signal from -inf (where it is 0) to each point."""
        if not self._t:
            return np.zeros_like(points, dtype=float)
        t = np.asarray(self._t)
        v = np.asarray(self._v)
        areas = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(t))))
        idx = np.searchsorted(t, points, side="right") - 1
        inside = idx >= 0
        result = np.zeros_like(points, dtype=float)
        j = idx[inside]
        result[inside] = areas[j] + v[j] * (points[inside] - t[j])
        return result

    def means(self, edges: np.ndarray) -> np.ndarray:
        """Time-average of the signal over each interval ``[edges[k], edges[k+1])``."""
        cum = self._cumulative(np.asarray(edges, dtype=float))
        return np.diff(cum) / np.diff(edges)

    def mean_over(self, start_s: float, end_s: float) -> float:
        return float(self.means(np.array([start_s, end_s]))[0])

    def values_between(self, start_s: float, end_s: float) -> np.ndarray:
        """Values the signal takes on ``[start_s, end_s)``, including the one in force at start."""
        if not self._t:
            return np.zeros(1)
        t = np.asarray(self._t)
        first = max(int(np.searchsorted(t, start_s, side="right")) - 1, 0)
        last = int(np.searchsorted(t, end_s, side="left"))
        return np.asarray(self._v[first:max(last, first + 1)])
