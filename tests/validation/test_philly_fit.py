"""Validation of the Philly run-time fit against the shared public data.

The shipped mixture in :mod:`sim.workload.philly_fit` must be what a refit of
``philly_runtime_from_alibaba.csv`` gives today, and it must describe the data: KS distance
below 0.03 (the 3-component fit reaches 0.030, the shipped 4-component 0.027), quantiles
p10..p90 within 6 % of the empirical ones and p99 within 5 %, and the mean of the clipped
draws within 10 % of the empirical mean (the tail carries most GPU-hours).
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.workload import philly_fit
from sim.workload.philly_fit import (
    SHIPPED,
    draw_philly_runtime_s,
    fit_mixture,
    ks_distance,
    load_runtimes,
    mixture_quantile,
)
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / philly_fit.PHILLY_FILE).is_file(),
    reason=f"shared public data not found at {SHARED_DATA}; these tests refit from it")


@pytest.fixture(scope="module")
def runtimes() -> np.ndarray:
    return load_runtimes(SHARED_DATA)


@pytest.fixture(scope="module")
def positive(runtimes) -> np.ndarray:
    return runtimes[runtimes > 0]


def test_the_data_is_what_provenance_says(runtimes, positive):
    assert len(runtimes) == 83154 and len(positive) == 83152  # two zero run times dropped
    assert np.median(runtimes) == 1186 and np.quantile(runtimes, 0.9) == pytest.approx(12860, abs=1)
    assert (positive.min(), positive.max()) == (philly_fit.PHILLY_MIN_S, philly_fit.PHILLY_MAX_S)


@pytest.mark.slow  # long statistics: the slow tier (CI runs it with -m slow)
def test_shipped_constants_match_the_refit(runtimes):
    refit = fit_mixture(runtimes)
    for name in ("weights", "mu", "sigma"):
        assert getattr(refit, name) == pytest.approx(getattr(SHIPPED, name), abs=1e-7), name


def test_ks_distance_is_small(runtimes):
    assert ks_distance(runtimes) < 0.03


@pytest.mark.parametrize("q, rel", [(0.10, 0.06), (0.25, 0.06), (0.50, 0.06), (0.75, 0.06),
                                    (0.90, 0.06), (0.99, 0.05)])
def test_quantiles_match_the_data(positive, q, rel):
    assert mixture_quantile(q) == pytest.approx(np.quantile(positive, q), rel=rel)


def test_clipped_draws_keep_the_mean_and_the_range(positive):
    draws = draw_philly_runtime_s(1_000_000, np.random.default_rng(7))
    assert draws.mean() == pytest.approx(positive.mean(), rel=0.10)
    assert draws.min() >= philly_fit.PHILLY_MIN_S and draws.max() <= philly_fit.PHILLY_MAX_S
    assert np.median(draws) == pytest.approx(1186, rel=0.05)


@pytest.mark.slow
def test_the_command_prints_the_shipped_constants(capsys):
    assert philly_fit.main([str(SHARED_DATA)]) == 0
    out = capsys.readouterr().out
    assert f"PHILLY_WEIGHTS = ({', '.join(f'{v:.8f}' for v in philly_fit.PHILLY_WEIGHTS)})" in out
    assert f"PHILLY_MU = ({', '.join(f'{v:.8f}' for v in philly_fit.PHILLY_MU)})" in out
    assert f"PHILLY_SIGMA = ({', '.join(f'{v:.8f}' for v in philly_fit.PHILLY_SIGMA)})" in out
