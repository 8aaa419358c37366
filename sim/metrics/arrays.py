"""Statistics over a run's per-request columns without per-request objects or full copies.

A fleet's day has millions of requests; each full-length temporary costs 8 bytes a
request. These helpers give exactly numpy's figures (bit for bit: same values in the same
order through the same operations) with fewer passes and copies:

- :func:`consume_stats`: mean and p50/p95/p99 of an array the caller owns (sorted in place
  instead of copied; :func:`sorted_quantiles` reads any quantiles off a sorted array);
- :func:`histogram`: ``np.histogram(values, edges)[0]`` by binary search, without sorting;
- :func:`coverage`: how much time a set of intervals ``[start, end)`` covers up to each of
  some points, from the sorted ends and their running sums (computed in place);
- :func:`group_percentiles`: ``np.percentile`` of each group of values (a time bucket),
  all groups at once, from groups sorted in place.

Public: ``consume_stats``, ``sorted_quantiles``, ``histogram``, ``coverage``, ``coverage_means``,
``group_percentiles``, ``sorted_percentiles``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["consume_stats", "histogram", "coverage", "coverage_means", "group_percentiles", "sorted_percentiles",
           "sorted_quantiles"]

_NONE = {"mean": None, "p50": None, "p95": None, "p99": None}


def consume_stats(values: np.ndarray) -> dict[str, float | None]:
    """Mean, p50, p95 and p99 of ``values`` (as ``np.percentile`` gives them); sorts
    ``values``, which must be the caller's own array."""
    if values.size == 0:
        return dict(_NONE)
    mean = float(values.mean())  # before the sort: a sum depends on the order
    values.sort()
    p50, p95, p99 = sorted_quantiles(values, _STATS_FRACTIONS)
    return {"mean": mean, "p50": float(p50), "p95": float(p95), "p99": float(p99)}


def sorted_quantiles(ordered: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """``np.quantile(ordered, fractions)`` of a sorted, non-empty array (a sort costs less
    than numpy's partitions around many quantiles)."""
    if np.isnan(ordered[-1]):  # NaN sorts last; numpy's answer is NaN then
        return np.full(np.shape(fractions), np.nan)
    return _linear(ordered, np.zeros(np.shape(fractions), dtype=np.intp), len(ordered), fractions)


_STATS_FRACTIONS = np.true_divide(np.array([50, 95, 99]), 100)  # as np.percentile turns them into fractions


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` as floats: bins ``[e_k, e_k+1)``, the last one
    closed; values outside (and NaN) are not counted."""
    n = len(edges) - 1
    slot = np.searchsorted(edges, values, side="right")  # k: in [e_k-1, e_k); 0 and n+1 outside
    slot[values == edges[-1]] = n
    return np.bincount(slot, minlength=n + 2)[1:n + 1].astype(float)


def coverage(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The time the intervals ``[starts[i], ends[i])`` cover below each point x (the sum of
    their overlaps with ``(-inf, x)``). Takes ownership of both arrays (sorted, then
    overwritten by their running sums: no other full-length array is made)."""
    return _below(starts, points) - _below(ends, points)


def coverage_means(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean number of open intervals over each bucket ``[edges[k], edges[k+1])``."""
    return np.diff(coverage(starts, ends, edges)) / np.diff(edges)


def _below(times: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``k * x - (t_0 + ... + t_k-1)`` at each point x, k the number of times below x: the
    time the half-lines ``[t, inf)`` cover below x."""
    times.sort()
    k = np.searchsorted(times, points, side="left")
    if times.size == 0:
        return k * points - 0.0
    np.cumsum(times, out=times)  # running sums, added in order as a [0, cumsum] array would be
    before = np.where(k > 0, times[np.maximum(k - 1, 0)], 0.0)
    return k * points - before


def group_percentiles(values: np.ndarray, groups: np.ndarray, n_groups: int,
                      qs: tuple[float, ...]) -> list[np.ndarray]:
    """For each q in ``qs``, ``np.percentile`` of the non-NaN values of each group
    ``0..n_groups-1`` (NaN for a group without any); groups outside that range are ignored."""
    finite = ~np.isnan(values)
    if not finite.all():
        values, groups = values[finite], groups[finite]
    del finite
    order = np.argsort(groups, kind="stable")
    ordered = values[order]
    groups = groups[order]
    del order
    bounds = np.searchsorted(groups, np.arange(n_groups + 1))
    for k in np.flatnonzero(np.diff(bounds) > 1):
        ordered[bounds[k]:bounds[k + 1]].sort()
    return [sorted_percentiles(ordered, bounds, q) for q in qs]


def sorted_percentiles(ordered: np.ndarray, bounds: np.ndarray, q: float) -> np.ndarray:
    """``np.percentile(ordered[bounds[k]:bounds[k+1]], q)`` for every k, each slice sorted
    ascending and free of NaN (NaN for an empty slice)."""
    sizes = np.diff(bounds)
    out = np.full(sizes.size, np.nan)
    has = sizes > 0
    out[has] = _linear(ordered, bounds[:-1][has], sizes[has], np.true_divide(q, 100))
    return out


def _linear(ordered: np.ndarray, first, m, fraction) -> np.ndarray:
    """The quantile ``fraction`` of the sorted slices ``ordered[first:first + m]`` (arrays
    or numbers, broadcast together) by numpy's linear method: the same operations on the
    same numbers as ``numpy.quantile``, vectorised, so the same bits."""
    virtual = np.asarray((m - 1) * fraction, dtype=float)
    previous = np.floor(virtual)
    following = previous + 1
    last = virtual >= m - 1
    previous[last] = following[last] = -1  # numpy's index of the last element
    previous, following = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - previous
    a = ordered[first + np.where(previous < 0, m - 1, previous)]
    b = ordered[first + np.where(following < 0, m - 1, following)]
    diff = b - a
    result = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=result, where=gamma >= 0.5)
    return result
