"""Autoscaling mistakes are located errors (file, line, path, rule, value)."""
import numpy as np
import pytest

from sim.errors import PolicyError
from sim.policies import create
from sim.scenario import parse_scenario
from sim.scenario.model import PolicySpec
from tests.unit.test_scenario_errors import problems

TEXT = """\
name: s
duration: 1h
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: 4
        autoscale: {min: 1, max: 4, weights_gb: 10}
inference:
  - name: api
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 1}
    service: {dist: constant, value_s: 1}
scheduler:
  autoscaling: {policy: target_utilization}
"""


def test_the_example_is_valid():
    assert parse_scenario(TEXT, "s.yaml").scenario.scheduler.autoscaling.interval == 60.0


def test_a_pool_autoscale_needs_the_autoscaler():
    assert problems(TEXT.split("scheduler:")[0]) == [
        "s.yaml:11: regions[0].pools[0].autoscale: needs scheduler.autoscaling (the autoscaler that applies it)"]


def test_bounds_are_checked_against_the_pool():
    assert problems(TEXT.replace("max: 4", "max: 5")) == [
        "s.yaml:11: regions[0].pools[0].autoscale.max: must be <= the pool's replicas (4) (got 5)"]
    assert problems(TEXT.replace("min: 1, max: 4", "min: 3, max: 2")) == [
        "s.yaml:11: regions[0].pools[0].autoscale.min: must be <= max (2) (got 3)"]


def test_weights_need_a_size():
    assert problems(TEXT.replace(", weights_gb: 10", "")) == [
        "s.yaml:11: regions[0].pools[0].autoscale.weights_gb: is required without a serving section "
        "(no model to size the weights)"]


def test_weights_from_nearest_needs_a_holder():
    text = TEXT.replace("        replicas: 4\n", "        replicas: 4\n        serving: {model: Llama-3.1-8B}\n")
    text = text.replace("weights_gb: 10", "weights_from: nearest").replace(
        "service: {dist: constant, value_s: 1}", "service: {dist: tokens}")
    assert problems(text) == [
        "s.yaml:12: regions[0].pools[0].autoscale.weights_from: nearest: no other region has a pool serving "
        "Llama-3.1-8B (got 'nearest')"]


def test_an_unknown_autoscaling_policy_lists_the_valid_ones():
    with pytest.raises(PolicyError, match="valid: allocation_model, target_utilization, ttft_slo"):
        create("autoscaling", PolicySpec(name="nope"), np.random.default_rng(0))
