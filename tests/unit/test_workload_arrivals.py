"""Poisson arrivals with rate profiles: counts against the integral of the rate."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from sim.models.load import load_at
from sim.scenario.model import DiurnalLoad, LinearLoad, PiecewiseLoad, PoissonArrival, StepLoad
from sim.workload import multiplier_bound, poisson_arrivals, thinned_poisson

Z999 = 3.2905  # two-sided 99.9 % normal quantile; counts here are in the thousands


def within_999(count: int, expected: float) -> bool:
    return abs(count - expected) <= Z999 * math.sqrt(expected)


def arrivals(rate, profile=None, weights=(1.0,), offsets=(0.0,), duration=3600.0, seed=1):
    arrival = PoissonArrival(process="poisson", rate_per_s=rate, profile=profile)
    w = np.asarray(weights, dtype=float)
    return poisson_arrivals(arrival, w / w.sum(), np.asarray(offsets, dtype=float), duration,
                            np.random.default_rng(seed))


def test_constant_rate_count_and_origin_split():
    t, origin = arrivals(20.0, weights=(3.0, 1.0), offsets=(0.0, 0.0), duration=1800.0)
    assert within_999(len(t), 20.0 * 1800)
    assert within_999(int(np.sum(origin == 0)), 15.0 * 1800)
    assert within_999(int(np.sum(origin == 1)), 5.0 * 1800)
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 1800.0
    assert origin.dtype == np.int16


def test_zero_weight_origin_gets_nothing():
    _, origin = arrivals(5.0, weights=(1.0, 0.0), offsets=(0.0, 0.0), duration=600.0)
    assert set(origin.tolist()) == {0}


def peak_utc_hour(t_s: np.ndarray) -> float:
    """Peak hour of the daily cycle from the phase of the first Fourier component."""
    hours = (t_s / 3600.0) % 24.0
    phase = np.angle(np.sum(np.exp(2j * np.pi * hours / 24.0)))
    return float(phase * 24.0 / (2 * np.pi)) % 24.0


def test_diurnal_follows_each_origins_local_clock():
    profile = DiurnalLoad(kind="diurnal", mean=1.0, amplitude=0.9, peak_hour=14.0)
    t, origin = arrivals(2.0, profile, weights=(1.0, 1.0), offsets=(0.0, 8.0), duration=2 * 86400.0)
    # 14:00 local is 14:00 UTC at offset 0 and 06:00 UTC at offset +8.
    assert peak_utc_hour(t[origin == 0]) == pytest.approx(14.0, abs=0.5)
    assert peak_utc_hour(t[origin == 1]) == pytest.approx(6.0, abs=0.5)
    hourly = np.bincount((t[origin == 0] // 3600 % 24).astype(int), minlength=24)
    assert np.argmax(hourly) in (13, 14)   # the bins either side of 14:00 tie in expectation
    assert within_999(int(np.sum(origin == 0)), 2 * 86400.0)  # the profile has mean 1


def test_diurnal_with_its_own_offset_ignores_the_origins():
    profile = DiurnalLoad(kind="diurnal", mean=1.0, amplitude=0.9, peak_hour=14.0, utc_offset_h=-5.0)
    t, origin = arrivals(2.0, profile, weights=(1.0, 1.0), offsets=(0.0, 8.0), duration=86400.0)
    for o in (0, 1):
        assert peak_utc_hour(t[origin == o]) == pytest.approx(19.0, abs=0.75)


def test_step_doubles_the_rate_after_at():
    profile = StepLoad(kind="step", before=1.0, after=2.0, at=1800.0)
    t, _ = arrivals(20.0, profile, duration=3600.0)
    before, after = int(np.sum(t < 1800)), int(np.sum(t >= 1800))
    assert within_999(before, 20.0 * 1800)
    assert within_999(after, 40.0 * 1800)


def test_steep_linear_profile_matches_the_integral():
    # Multiplier 0.01 -> 200.01 over two hours, all inside hour-long chunks: a bound taken
    # at a chunk's start would lose almost every arrival.
    profile = LinearLoad(kind="linear", L0=0.01, alpha=100.0, T0=0.0)
    t, _ = arrivals(0.1, profile, duration=7200.0)
    early, late = int(np.sum(t < 3600)), int(np.sum(t >= 3600))
    assert within_999(early, 0.1 * 3600 * (0.01 + 50.0))
    assert within_999(late, 0.1 * 3600 * (0.01 + 150.0))


def test_falling_linear_profile_stops_at_zero():
    profile = LinearLoad(kind="linear", L0=100.0, alpha=-100.0, T0=0.0)
    t, _ = arrivals(0.1, profile, duration=7200.0)
    assert within_999(len(t), 0.1 * 3600 * 50.0)
    assert t.max() < 3600.0


def test_piecewise_peak_inside_a_chunk():
    profile = PiecewiseLoad(kind="piecewise", points=[
        {"at": 0.0, "L": 0.0}, {"at": 1800.0, "L": 10.0}, {"at": 3600.0, "L": 0.0}])
    t, _ = arrivals(1.0, profile, duration=3600.0)
    assert within_999(len(t), 10.0 * 1800)   # a triangle of height 10 and base 3600 s


def test_thinning_refuses_a_rate_above_its_bound():
    with pytest.raises(RuntimeError, match="exceeds its bound"):
        thinned_poisson(lambda t: np.full_like(t, 2.0), lambda a, b: 1.0, 100.0,
                        np.random.default_rng(0))


profiles = st.one_of(
    st.builds(lambda l0, a, t0: LinearLoad(kind="linear", L0=l0, alpha=a, T0=t0),
              st.floats(-5, 5), st.floats(-10, 10), st.floats(0, 48)),
    st.builds(lambda b, a, at: StepLoad(kind="step", before=b, after=a, at=at),
              st.floats(0, 5), st.floats(0, 5), st.floats(0, 4e4)),
    st.builds(lambda pts: PiecewiseLoad(kind="piecewise", points=[
        {"at": float(i * 2000 + d), "L": v} for i, (d, v) in enumerate(pts)]),
        st.lists(st.tuples(st.floats(0, 1999), st.floats(0, 5)), min_size=1, max_size=8)),
    st.builds(lambda m, a, p, o: DiurnalLoad(kind="diurnal", mean=m, amplitude=a, peak_hour=p, utc_offset_h=o),
              st.floats(0, 5), st.floats(0, 1), st.floats(0, 23.9), st.floats(-12, 14)),
)


TRIANGLE = PiecewiseLoad(kind="piecewise", points=[
    {"at": 0.0, "L": 0.0}, {"at": 5000.0, "L": 5.0}, {"at": 10000.0, "L": 0.0}])


@settings(max_examples=200, deadline=None)
@given(profile=profiles, start=st.floats(0, 2e4), width=st.floats(1, 7200))
@example(profile=TRIANGLE, start=4000.0, width=2000.0)   # the peak is inside, not at an end
def test_bound_is_a_true_upper_bound(profile, start, width):
    t = np.linspace(start, start + width, 257)
    assert load_at(profile, t).max() <= multiplier_bound(profile, start, start + width) * (1 + 1e-9) + 1e-12
