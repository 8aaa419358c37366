"""The seed's formulas, checked by hand calculation."""
import numpy as np
import pytest

from sim.models import Entity, allocate, diurnal_factor, linear_load, load_at, resources
from sim.scenario.model import DiurnalLoad, LinearLoad, PiecewiseLoad, StepLoad


def test_linear_load_by_hand():
    # L(t) = L0 + alpha (t - T0): 100 + 0.2 * (1 - 0) = 100.2
    assert linear_load(1.0, 100, 0.2, 0) == pytest.approx(100.2)
    assert linear_load(10.0, 50, -2.0, 4.0) == pytest.approx(50 - 12.0)


def test_seed_predict_by_hand():
    load = linear_load(1.0, 100, 0.2, 0)
    # R = sum of 4 x 0.25 x 100.2 / 100 = 1.002 (the seed's printed 0.25 contradicts this)
    assert resources([0.25] * 4, load, 100) == pytest.approx(1.002)


def test_load_at_uses_seconds_and_clips_at_zero():
    model = LinearLoad(kind="linear", L0=10, alpha=-1.0, T0=0)
    assert load_at(model, np.array([0.0, 3600.0, 36000.0, 72000.0])).tolist() == [10.0, 9.0, 0.0, 0.0]


def test_diurnal_peaks_at_local_peak_hour():
    # peak 14:00 local at UTC-5 is 19:00 UTC
    factor = diurnal_factor(np.array([19 * 3600.0, 7 * 3600.0]), 0.5, 14.0, -5.0)
    assert factor.tolist() == pytest.approx([1.5, 0.5])
    model = DiurnalLoad(kind="diurnal", mean=100, amplitude=0.5, peak_hour=14, utc_offset_h=-5)
    day = load_at(model, np.arange(0, 86400, 60.0))
    assert day.mean() == pytest.approx(100.0)


def test_step_and_piecewise():
    step = StepLoad(kind="step", before=1, after=5, at=3600)
    assert load_at(step, np.array([3599.0, 3600.0])).tolist() == [1.0, 5.0]
    pw = PiecewiseLoad(kind="piecewise", points=[{"at": 0, "L": 0}, {"at": 100, "L": 10}])
    assert load_at(pw, np.array([-1.0, 50.0, 200.0])).tolist() == [0.0, 5.0, 10.0]


def _entity(key, weight, gpus=128, per=8):
    return Entity(key, weight, (gpus,), (per,))


def test_shares_follow_weights_whatever_the_load():
    entities = [_entity("a", 1 / 3), _entity("b", 1 / 3), _entity("c", 1 / 3), _entity("d", 0)]
    for load in (10, 100, 150):
        decision = allocate(entities, load, 200)
        assert decision.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3, 0))
        assert decision.active_replicas[3] == (0,)


def test_demand_maps_to_gpus_and_rounds_up():
    # D = L / L_max * C_w = 100 / 200 * 384 = 192 GPUs; 64 each = 8 replicas of 8
    entities = [_entity("a", 1), _entity("b", 1), _entity("c", 1)]
    decision = allocate(entities, 100, 200)
    assert decision.demand_gpus == pytest.approx(192)
    assert decision.active_replicas == ((8,), (8,), (8,))
    # 101 / 200 * 384 / 3 = 64.64 GPUs each -> 9 replicas (never under-provision)
    assert allocate(entities, 101, 200).active_replicas == ((9,), (9,), (9,))


def test_overflow_fills_other_weighted_then_standby_then_unmet():
    # a is small: its 3/4 share of D cannot fit and spills to b, then to the standby s.
    entities = [_entity("a", 3, gpus=64), _entity("b", 1, gpus=192), _entity("s", 0, gpus=64)]
    half = allocate(entities, 100, 200)  # D = 128: a asks 96 -> 64, b takes 32 + 32
    assert half.target_gpus == pytest.approx((64, 64, 0))
    full = allocate(entities, 300, 200)  # D = 384: weighted 256 full, standby 64, unmet 64
    assert full.target_gpus == pytest.approx((64, 192, 64))
    assert full.unmet_gpus == pytest.approx(64)


def test_pools_inside_an_entity_split_by_size():
    entity = Entity("r", 1.0, (64, 192), (8, 8))
    decision = allocate([entity], 50, 100)  # D = 128 -> 32 and 96 GPUs
    assert decision.active_replicas == ((4, 12),)
