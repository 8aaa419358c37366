"""The cost estimate: each term by hand, its wording, and the budget refusals it drives."""
from __future__ import annotations

import importlib.util

import pytest

from sim.scenario import parse_scenario
from sim.workload.cost import (
    AUTOSCALER_TICK,
    BASE_BYTES,
    BATCHING_REQUEST,
    COMPILED_BATCHING_REQUEST,
    ROW,
    SLOT_REQUEST,
    TICK,
    Budget,
    Estimate,
    Term,
    budget_problems,
    estimate_cost,
    format_bytes,
)
from tests.conftest import MINIMAL

ONE_WORKLOAD = MINIMAL + """\
inference:
  - name: w
    origin: {alpha: 1}
    arrival: {process: poisson, rate_per_s: 5}
    service: {dist: exponential, mean_s: 1}
"""


def estimate(text, sets=()):
    loaded = parse_scenario(text, "s.yaml", sets)
    return loaded, estimate_cost(loaded)


def term(est, what):
    return next(t for t in est.terms if t.what == what)


def test_poisson_requests_are_rate_times_duration():
    _, est = estimate(ONE_WORKLOAD)
    requests = term(est, "requests")
    assert requests.path == ("inference", 0, "arrival", "rate_per_s")
    assert requests.count == pytest.approx(5 * 7200)
    assert requests.bytes == pytest.approx(5 * 7200 * SLOT_REQUEST[0])
    # Two regions with GPUs, 2 h in 5-minute buckets: 48 rows.
    assert term(est, "time-series rows").count == 48
    assert est.bytes == pytest.approx(BASE_BYTES + 36_000 * SLOT_REQUEST[0] + 48 * ROW[0])


def test_a_diurnal_profile_averages_to_its_mean_over_whole_days():
    text = ONE_WORKLOAD.replace("rate_per_s: 5}", "rate_per_s: 5, profile: {kind: diurnal, mean: 0.5, "
                                "amplitude: 0.9}}").replace("duration: 2h", "duration: 2d")
    assert estimate(text)[1].requests == pytest.approx(5 * 0.5 * 2 * 86400, rel=1e-3)


def test_a_step_profile_counts_each_side():
    text = ONE_WORKLOAD.replace("rate_per_s: 5}", "rate_per_s: 5, profile: {kind: step, before: 1, after: 3, "
                                "at: 30m}}")
    assert estimate(text)[1].requests == pytest.approx(5 * (1800 + 3 * 5400), rel=1e-3)


def test_batching_replicas_cost_more_per_request():
    text = ONE_WORKLOAD.replace("gpus_per_replica: 8}]", "gpus_per_replica: 8, serving: {model: Llama-2-70B}}]", 1)
    text = text.replace("{dist: exponential, mean_s: 1}", "{dist: tokens}")
    _, est = estimate(text.replace("rate_per_s: 5}", "rate_per_s: 3}"))  # too few for the compiled core
    assert term(est, "requests").bytes == pytest.approx(21_600 * BATCHING_REQUEST[0])
    assert term(est, "batching replicas").count == 4
    # Larger runs of plain pools go on the compiled core where numba is installed
    # (sim/engine/batching_compiled.py); shared prompts behind the prefix cache keep the Python one.
    larger = text.replace("rate_per_s: 5}", "rate_per_s: 50}")
    unit = COMPILED_BATCHING_REQUEST if importlib.util.find_spec("numba") else BATCHING_REQUEST
    assert term(estimate(larger)[1], "requests").seconds == pytest.approx(360_000 * unit[2], rel=0.01)
    shared = larger + "    shared_prefix: {prompts: 4, tokens: {mean: 500}}\n"
    assert term(estimate(shared)[1], "requests").seconds == pytest.approx(360_000 * BATCHING_REQUEST[2], rel=0.01)


def test_scheduler_ticks_failures_and_jobs():
    text = MINIMAL + """\
scheduler:
  interval: 1s
  load_model: {kind: constant, L: 1}
  allocation: {weights: {alpha: 1}, L_max: 1}
failures:
  nodes: [{mttf: 1h}]
training:
  - name: t
    jobs: {source: poisson, rate_per_h: 10, work: {kind: philly}}
    max_jobs: 15
"""
    _, est = estimate(text)
    assert term(est, "scheduler ticks").count == 7200
    assert term(est, "scheduler ticks").bytes == 7200 * TICK[0]
    assert term(est, "replica failures").count == pytest.approx((4 + 2) * 2)  # 6 replicas, 2 h, MTBF 1 h
    assert term(est, "training jobs").count == 15  # 20 expected, capped by max_jobs


def test_trace_requests_are_the_copies_that_fill_the_run(tmp_path):
    (tmp_path / "req.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,2\n5,20,3\n")
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL + """\
inference:
  - name: replay
    origin: {alpha: 1}
    arrival: {process: trace, path: req.csv}
    service: {dist: tokens}
""")
    from sim.scenario import load_scenario
    est = estimate_cost(load_scenario(path))
    # Two requests per 10 s period (span 5 s + mean gap 5 s), looped over 2 h.
    assert est.requests == pytest.approx(2 * 7200 / 10)


def test_describe_rounds_like_an_estimate():
    est = Estimate((Term(("x",), "requests", 691_756, 5.5e8, 4.1e6, 28.0),))
    assert est.describe() == "about 690,000 requests, 4.1 million events, 670 MB of memory, 29 s"
    big = Estimate((Term(("x",), "requests", 8.6e10, 6.9e13, 5.2e11, 3.5e6),))
    assert big.describe() == "about 86 billion requests, 520 billion events, 69 TB of memory, 41 days"
    assert Estimate(()).describe() == "no requests, 0 events, 120 MB of memory, 1 s"
    assert [format_bytes(b) for b in (5e5, 1.25e9, 3.14e12)] == ["0.5 MB", "1.2 GB", "3.1 TB"]


def test_budget_problems_name_the_field_that_costs_most():
    loaded, est = estimate(ONE_WORKLOAD, ["metrics.bucket=1ms"])
    assert [p.format() for p in budget_problems(loaded, est, Budget(max_requests=1e9, max_bytes=8e9))] == [
        "--set metrics.bucket=1ms: metrics.bucket: about 25 GB of memory for 14 million time-series rows "
        "(duration / metrics.bucket, times 2 regions), "
        "over the budget of 8 GB (--max-memory, or --force) (got 0.001)"]
    loaded, est = estimate(ONE_WORKLOAD.replace("rate_per_s: 5}", "rate_per_s: 5000}"))
    assert [p.format() for p in budget_problems(loaded, est, Budget(max_requests=1e6, max_bytes=1e9))] == [
        "s.yaml:15: inference[0].arrival.rate_per_s: about 36 million requests, over the budget of 1 million "
        "(--max-requests, or --force) (got 5000.0)",
        "s.yaml:15: inference[0].arrival.rate_per_s: about 13 GB of memory for 36 million requests, over the "
        "budget of 1 GB (--max-memory, or --force) (got 5000.0)",
    ]
    assert budget_problems(loaded, est, Budget(max_requests=1e8, max_bytes=1e11)) == []


def test_a_wall_time_limit_is_checked_when_given():
    loaded, est = estimate(ONE_WORKLOAD, ["duration=7d"])
    hints = ("the service's --max-requests", "the service's --max-memory", "the service's --max-wall")
    assert [p.format() for p in budget_problems(loaded, est, Budget(1e9, 1e12, 1.0, hints))] == [
        "s.yaml:15: inference[0].arrival.rate_per_s: about 10 s of wall time for 3 million requests, over the "
        "limit of 1 s (the service's --max-wall) (got 5.0)"]


def test_autoscaler_ticks_are_duration_over_interval():
    text = ONE_WORKLOAD.replace("gpus_per_replica: 8}]\n  - name: beta",
                                "gpus_per_replica: 8, autoscale: {weights_gb: 10}}]\n  - name: beta")
    _, est = estimate(text + "scheduler:\n  autoscaling: {interval: 2s}\n")
    ticks = term(est, "autoscaler ticks")
    assert (ticks.count, ticks.seconds) == (3600, 3600 * AUTOSCALER_TICK[2])
    assert ticks.path == ("scheduler", "autoscaling", "interval")
