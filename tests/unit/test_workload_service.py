"""Service-time distributions and token counts: moments and supports."""
import math

import numpy as np
import pytest

from sim.scenario.model import (
    ConstantService,
    EmpiricalService,
    ExponentialService,
    LognormalService,
    TokenCount,
    TokenService,
)
from sim.workload import draw_service_s, draw_token_counts


def rng():
    return np.random.default_rng(7)


def test_constant_and_exponential():
    assert draw_service_s(ConstantService(dist="constant", value_s=0.25), 3, rng()).tolist() == [0.25] * 3
    x = draw_service_s(ExponentialService(dist="exponential", mean_s=2.0), 200_000, rng())
    assert x.mean() == pytest.approx(2.0, rel=0.01)
    assert x.std() / x.mean() == pytest.approx(1.0, rel=0.02)


def test_lognormal_mean_and_cv():
    x = draw_service_s(LognormalService(dist="lognormal", mean_s=3.0, cv=0.5), 200_000, rng())
    assert x.mean() == pytest.approx(3.0, rel=0.01)
    assert x.std() / x.mean() == pytest.approx(0.5, rel=0.03)
    assert x.min() > 0


def test_lognormal_heavy_tail_has_the_right_log_spread():
    # With cv 2 the sample cv converges slowly; the log-scale moments do not.
    x = draw_service_s(LognormalService(dist="lognormal", mean_s=1.0, cv=2.0), 200_000, rng())
    sigma2 = math.log(1 + 4.0)
    assert np.log(x).std() == pytest.approx(math.sqrt(sigma2), rel=0.01)
    assert np.log(x).mean() == pytest.approx(-sigma2 / 2, abs=0.01)


def test_empirical_draws_only_the_given_values():
    x = draw_service_s(EmpiricalService(dist="empirical", samples_s=[0.5, 1.5, 4.0]), 30_000, rng())
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [0.5, 1.5, 4.0]
    assert counts / 30_000 == pytest.approx([1 / 3] * 3, abs=0.02)


def test_token_service_has_no_time_of_its_own():
    assert np.isnan(draw_service_s(TokenService(dist="tokens"), 4, rng())).all()


def test_token_counts():
    constant = draw_token_counts(TokenCount(mean=99.6), 5, rng())
    assert constant.dtype == np.int32 and constant.tolist() == [100] * 5
    spread = draw_token_counts(TokenCount(mean=500.0, cv=1.0), 200_000, rng())
    assert spread.mean() == pytest.approx(500.0, rel=0.02)
    assert spread.min() >= 1
    tiny = draw_token_counts(TokenCount(mean=1.0, cv=3.0), 10_000, rng())
    assert tiny.min() == 1   # rounding to zero is lifted to one token
