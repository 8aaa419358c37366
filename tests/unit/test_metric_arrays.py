"""sim/metrics/arrays.py gives numpy's own figures, bit for bit: the summaries and time
series of every run depend on it (same_outputs compares them byte for byte)."""
import numpy as np
import pytest

from sim.metrics.arrays import (
    consume_stats,
    coverage,
    coverage_means,
    group_percentiles,
    histogram,
    sorted_percentiles,
    sorted_quantiles,
)


def samples(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    """Continuous values, rounded ones (ties) and small integers (many ties)."""
    if kind == 0:
        return rng.lognormal(5.0, 2.0, n)
    if kind == 1:
        return np.round(rng.exponential(100.0, n), 1)
    return rng.integers(0, 5, n).astype(float)


@pytest.mark.parametrize("seed", range(40))
def test_group_percentiles_are_numpys_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n, groups_n = int(rng.integers(1, 2000)), int(rng.integers(1, 30))
    values = samples(rng, n, seed % 3)
    values[rng.random(n) < 0.05] = np.nan  # left out, as numpy's caller filters them
    groups = rng.integers(-1, groups_n + 1, n)  # -1 and groups_n: outside, ignored
    qs = (50, 99, 95, 0, 100, 37.5)
    for q, got in zip(qs, group_percentiles(values, groups, groups_n, qs), strict=True):
        for g in range(groups_n):
            chunk = values[(groups == g) & ~np.isnan(values)]
            expected = np.percentile(chunk, q) if chunk.size else np.nan
            assert np.array_equal(got[g], expected, equal_nan=True), (q, g)


def test_the_comparison_catches_a_plain_interpolation():
    # numpy interpolates from the upper neighbour when the fraction is >= 0.5; a plain
    # a + (b - a) * g differs in the last bits on some inputs, and the check above sees it.
    rng = np.random.default_rng(1)
    differs = 0
    for _ in range(200):
        chunk = np.sort(rng.lognormal(5.0, 2.0, int(rng.integers(2, 200))))
        v = (chunk.size - 1) * 0.99
        lo = int(np.floor(v))
        plain = chunk[lo] + (chunk[lo + 1] - chunk[lo]) * (v - lo)
        differs += plain != np.percentile(chunk, 99)
        assert sorted_percentiles(chunk, np.array([0, chunk.size]), 99)[0] == np.percentile(chunk, 99)
    assert differs > 0


@pytest.mark.parametrize("seed", range(10))
def test_histogram_counts_like_numpy_including_both_end_edges(seed):
    rng = np.random.default_rng(seed)
    edges = np.sort(rng.uniform(0, 100, int(rng.integers(2, 40))))
    values = rng.uniform(-10, 110, 5000)
    values[:5], values[5:10], values[10] = edges[-1], edges[0], np.nan
    assert np.array_equal(histogram(values, edges), np.histogram(values, edges)[0].astype(float))


def test_coverage_by_hand():
    # [0, 2) and [1, 4): below 1 -> 1; below 3 -> 2 + 2 = 4; below 10 -> 2 + 3 = 5.
    below = coverage(np.array([1.0, 0.0]), np.array([4.0, 2.0]), np.array([1.0, 3.0, 10.0]))
    assert below.tolist() == [1.0, 4.0, 5.0]
    means = coverage_means(np.array([1.0, 0.0]), np.array([4.0, 2.0]), np.array([0.0, 2.0, 4.0]))
    assert means.tolist() == [1.5, 1.0]
    assert coverage(np.empty(0), np.empty(0), np.array([0.0, 5.0])).tolist() == [0.0, 0.0]


def test_coverage_adds_in_the_order_a_running_sum_array_would():
    # The same bits as [0, cumsum(sorted)] indexed at the points (the metrics' old form).
    rng = np.random.default_rng(5)
    starts = rng.uniform(0, 1000, 50_000)
    ends = starts + rng.exponential(3.0, starts.size)
    points = np.linspace(0, 1100, 97)

    def below(t):
        s = np.sort(t)
        sums = np.concatenate(([0.0], np.cumsum(s)))
        k = np.searchsorted(s, points, side="left")
        return k * points - sums[k]
    assert np.array_equal(coverage(starts.copy(), ends.copy(), points), below(starts) - below(ends))


def test_consume_stats_matches_mean_and_percentile_of_the_original_order():
    values = np.random.default_rng(3).lognormal(3.0, 1.5, 10_001)
    expected = {"mean": float(values.mean()),
                **dict(zip(("p50", "p95", "p99"), map(float, np.percentile(values, [50, 95, 99])), strict=True))}
    assert consume_stats(values.copy()) == expected
    assert consume_stats(np.empty(0)) == {"mean": None, "p50": None, "p95": None, "p99": None}


@pytest.mark.parametrize("seed", range(20))
def test_sorted_quantiles_are_numpys_quantiles(seed):
    rng = np.random.default_rng(seed)
    values = samples(rng, int(rng.integers(1, 5000)), seed % 3)
    fractions = np.round(np.concatenate((np.linspace(0, 0.99, 100), np.linspace(0.991, 1.0, 10))), 6)
    expected = np.quantile(values, fractions)
    ordered = np.sort(values)
    assert np.array_equal(sorted_quantiles(ordered, fractions), expected)
    ordered[-1] = np.nan  # numpy answers NaN when a value is NaN
    assert np.isnan(sorted_quantiles(ordered, fractions)).all()
