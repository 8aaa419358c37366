"""Uncertain inputs: found where numbers are expected, drawn by Latin hypercube, and the
probability of meeting a target against the closed form.

The M/M/8 queue with an arrival rate uniform on [6.0, 7.6] /s and mean service 1 s has
utilisation lambda / 8, so utilisation <= 0.85 holds exactly when lambda <= 6.8: with
probability (6.8 - 6.0) / 1.6 = 0.5. A Latin hypercube puts one sample in each of N equal
strata of lambda, so the share of samples meeting the target is within about one stratum
of 0.5 (the runs' own noise can flip a sample next to the threshold).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from sim.errors import ScenarioError
from sim.experiment.uncertainty import Input, draw_samples, find_inputs, plan_uncertainty, run_uncertainty
from sim.scenario.yaml_io import load_yaml_text

MMC = """\
name: mmc-uncertain
seed: 3
duration: 2h
warmup: 10m
regions:
  - name: solo
    lat: 0.0
    lon: 0.0
    intra_rtt_ms: 0
    pools:
      - {{name: gpu, gpu: H100, replicas: {replicas}, slots_per_replica: 1}}
inference:
  - name: req
    origin: {{solo: 1.0}}
    arrival: {{process: poisson, rate_per_s: {{dist: uniform, low: 6.0, high: 7.6}}}}
    service: {{dist: exponential, mean_s: 1.0}}
scheduler:
  routing: nearest
"""


def erlang_c_wait_s(lam: float, c: int, mu: float = 1.0) -> float:
    """Mean queueing delay of M/M/c (Erlang C), written here from the formula (inf at or
    above saturation)."""
    a = lam / mu
    if a >= c:
        return math.inf
    below = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - a / c)
    return top / (below + top) / (c * mu - lam)


def test_inputs_are_distributions_with_their_own_keys():
    data, _ = load_yaml_text(MMC.format(replicas="{dist: choice, values: [8, 9], weights: [3, 1]}"), "s.yaml")
    data["inference"][0]["service"] = {"dist": "lognormal", "mean": 1.0, "cv": 0.5}  # a service time law, not one
    found = find_inputs(data)
    assert [(i.path, i.dist) for i in found] == [("regions.0.pools.0.replicas", "choice"),
                                                 ("inference.0.arrival.rate_per_s", "uniform")]


def test_bad_parameters_are_located_errors():
    text = MMC.format(replicas=8).replace("low: 6.0, high: 7.6", "low: 7.6, high: 6.0")
    data, lines = load_yaml_text(text, "s.yaml")
    with pytest.raises(ScenarioError) as err:
        find_inputs(data, "s.yaml", lines)
    assert str(err.value).startswith("s.yaml:15: inference[0].arrival.rate_per_s: a uniform distribution needs "
                                     "low <= high")


def test_latin_hypercube_puts_one_sample_in_each_stratum():
    inputs = [Input("a", "uniform", {"low": 0.0, "high": 1.0}), Input("b", "normal", {"mean": 5.0, "sd": 2.0}),
              Input("c", "uniform", {"low": 8, "high": 12})]
    samples = np.array(draw_samples(inputs, 50, seed=7), dtype=float)
    assert sorted(np.floor(samples[:, 0] * 50).astype(int).tolist()) == list(range(50))
    from scipy.stats import norm
    strata = np.floor(norm.cdf(samples[:, 1], 5.0, 2.0) * 50).astype(int)
    assert sorted(strata.tolist()) == list(range(50))
    assert set(samples[:, 2].tolist()) <= set(range(8, 13))  # integer bounds: integer draws
    assert draw_samples(inputs, 50, seed=7) == draw_samples(inputs, 50, seed=7)  # seeded


def test_probability_of_a_target_matches_the_closed_form(tmp_path):
    path = tmp_path / "mmc.yaml"
    path.write_text(MMC.format(replicas=8))
    plan = plan_uncertainty(path, samples=20, metrics=["utilization.mean"],
                            targets=["utilization.mean<=0.85", "inference.wait_ms.mean<=500"], out=tmp_path / "study")
    report = run_uncertainty(plan, workers=1)
    util, wait = report["targets"]
    assert util["probability"] == pytest.approx(0.5, abs=0.1)
    assert util["ci"][0] < 0.5 < util["ci"][1]
    # Erlang C: the mean wait is 500 ms at lambda* = 6.834 /s, so P = (6.834 - 6.0) / 1.6 = 0.521.
    exact = (brentq(lambda lam: erlang_c_wait_s(lam, 8, 1.0) - 0.5, 6.0, 7.6) - 6.0) / 1.6
    assert exact == pytest.approx(0.521, abs=0.001)
    assert wait["probability"] == pytest.approx(exact, abs=0.15)
    kpi = report["kpis"]["utilization.mean"]
    assert kpi["median"] == pytest.approx(6.8 / 8, abs=0.02)  # the median rate's utilisation
    assert kpi["band_90"][0] < kpi["band_50"][0] < kpi["median"] < kpi["band_50"][1] < kpi["band_90"][1]
    assert kpi["sensitivity"]["inference.0.arrival.rate_per_s"] > 0.9
    assert (tmp_path / "study" / "samples.csv").read_text().count("\n") == 21
    # A second run of the same study reuses every finished run.
    again = run_uncertainty(plan_uncertainty(path, samples=20, metrics=["utilization.mean"],
                                             targets=["utilization.mean<=0.85", "inference.wait_ms.mean<=500"],
                                             out=tmp_path / "study"))
    assert again["kpis"] == report["kpis"]


def test_sensitivity_says_which_input_moves_a_kpi(tmp_path):
    path = tmp_path / "mmc.yaml"
    path.write_text(MMC.format(replicas="{dist: uniform, low: 8, high: 14}"))
    report = run_uncertainty(plan_uncertainty(path, samples=12, metrics=["utilization.mean"], out=tmp_path / "s"))
    rho = report["kpis"]["utilization.mean"]["sensitivity"]
    assert rho["regions.0.pools.0.replicas"] < -0.5 and rho["inference.0.arrival.rate_per_s"] > 0
