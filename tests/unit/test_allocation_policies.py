"""Allocation policies: the packed split by hand, the registry, the scenario key, compare --kind."""
import json

import numpy as np
import pytest

from sim.models.allocation import Entity, allocate, allocate_packed
from sim.policies import create
from sim.scenario.model import PolicySpec
from tests.conftest import SCENARIOS, run_cli

ENTITIES = [Entity("a", 0.5, (64,), (8,)), Entity("b", 0.3, (32,), (8,)), Entity("c", 0.2, (32,), (8,)),
            Entity("s", 0.0, (16,), (8,))]


def test_packed_fills_the_heaviest_entity_first():
    # Weighted capacity 128 GPUs; L / L_max = 0.75 -> 96 GPUs: a takes 64, b 32, c none.
    r = allocate_packed(ENTITIES, 75.0, 100.0)
    assert r.demand_gpus == 96.0 and r.target_gpus == (64.0, 32.0, 0.0, 0.0)
    assert r.active_replicas == ((8,), (4,), (0,), (0,)) and r.unmet_gpus == 0.0
    # The proportional split of the same demand: 48, 28.8, 19.2.
    p = allocate(ENTITIES, 75.0, 100.0)
    assert p.target_gpus == pytest.approx((48.0, 28.8, 19.2, 0.0))


def test_packed_spills_to_the_standby_then_reports_unmet():
    # 1.25 x 128 = 160 GPUs: the fleet takes 128, the standby 16, 16 unmet.
    r = allocate_packed(ENTITIES, 125.0, 100.0)
    assert r.target_gpus == (64.0, 32.0, 32.0, 16.0) and r.unmet_gpus == pytest.approx(16.0)
    # With a down to 16 GPUs (failures) the nominal demand is unchanged and spills on.
    down = [Entity("a", 0.5, (16,), (8,))] + ENTITIES[1:]
    r = allocate_packed(down, 75.0, 100.0, nominal=ENTITIES)
    assert r.demand_gpus == 96.0 and r.target_gpus == (16.0, 32.0, 32.0, 16.0)


def test_allocation_policies_are_registered_and_delegate():
    for name, function in (("proportional", allocate), ("packed", allocate_packed)):
        policy = create("allocation", PolicySpec(name=name), np.random.default_rng(0))
        assert policy.allocate(ENTITIES, 60.0, 100.0, ENTITIES) == function(ENTITIES, 60.0, 100.0, ENTITIES)


def test_unknown_allocation_policy_is_an_input_error():
    result = run_cli("validate", str(SCENARIOS / "default.yaml"), "--set", "scheduler.allocation.policy=nope")
    assert result.code == 2
    assert "scheduler.allocation.policy: unknown allocation policy 'nope' (valid: packed, proportional)" in result.err


def test_compare_allocation_policies_on_common_seeds(tmp_path):
    out = tmp_path / "cmp"
    result = run_cli("compare", str(SCENARIOS / "seed_case.yaml"), "--kind", "allocation", "--policy", "proportional",
                     "--policy", "packed", "--seeds", "2", "--set", "duration=2h", "--out", str(out))
    assert result.code == 0, result.err
    report = json.load(open(out / "comparison.json"))
    assert [p["name"] for p in report["policies"]] == ["proportional", "packed"]
    resolved = (out / "packed-s1" / "resolved.yaml").read_text()
    assert "policy:\n      name: packed" in resolved or "name: packed" in resolved
