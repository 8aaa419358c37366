"""Serving metrics from hand-made records, no engine: TTFT and TPOT statistics, SLO
attainment over several objectives, goodput, the batching figures per pool and the batch
columns of the time series; and the scenario checks of a ``serving`` section."""
from __future__ import annotations

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.metrics import InferenceLayout, InferenceObserver
from sim.metrics.serving import BucketIntervals, batch_columns
from sim.records import BatchLog, RequestLog
from sim.scenario import parse_scenario

# One region, one batching pool of 2 replicas (8 GPUs, max_batch 4); one workload with a
# TTFT objective of 1 s and a TPOT objective of 50 ms.
LAYOUT = InferenceLayout(
    regions=("a",), pool_region=np.array([0]), pool_slots=np.array([8]), pool_gpus_per_slot=np.array([0.0]),
    workloads=("w",), slo_ms=(None,), slo_ttft_ms=(1000.0,), slo_tpot_ms=(50.0,), pool_keys=("a.p",),
    batching=np.array([True]), pool_gpus_per_replica=np.array([8.0]), pool_replicas=np.array([2]))


def log(**overrides) -> RequestLog:
    # Four requests: 0 meets both, 1 misses TPOT, 2 misses TTFT, 3 was dropped (rejected).
    base = {"t_s": np.array([0.0, 1.0, 2.0, 3.0]), "origin": np.zeros(4, dtype=np.int16),
            "workload": np.zeros(4, dtype=np.int16), "pool": np.array([0, 0, 0, -1], dtype=np.int16),
            "rtt_ms": np.array([10.0, 10.0, 10.0, 0.0]), "wait_s": np.array([0.1, 0.0, 1.5, np.nan]),
            "service_s": np.array([2.0, 3.0, 1.0, np.nan]), "status": np.array([1, 1, 1, 2], dtype=np.int8),
            "retry_s": np.zeros(4), "first_token_s": np.array([0.3, 0.2, 1.6, np.nan]),
            "tpot_s": np.array([0.04, 0.06, 0.01, np.nan]), "prefix": np.full(4, -1, np.int32),
            "cached_tokens": np.zeros(4, np.int32)}
    base.update(overrides)
    return RequestLog(**base)


def test_ttft_tpot_slo_and_goodput_by_hand():
    observer = InferenceObserver(LAYOUT, warmup_s=0.0)
    observer(log())
    summary = observer.summary(end_s=10.0)
    # TTFT = RTT + first token: 310, 210, 1610 ms; TPOT 40, 60, 10 ms.
    assert summary["ttft_ms"]["mean"] == pytest.approx((310 + 210 + 1610) / 3)
    assert summary["ttft_ms"]["p50"] == pytest.approx(310)
    assert summary["tpot_ms"]["mean"] == pytest.approx(110 / 3)
    # Met every objective: only request 0, of 3 completed + 1 dropped.
    assert summary["slo_attainment"] == pytest.approx(1 / 4)
    assert summary["goodput_rps"] == pytest.approx(1 / 10)


def test_a_one_token_answer_cannot_miss_its_tpot_objective():
    observer = InferenceObserver(LAYOUT, warmup_s=0.0)
    observer(log(tpot_s=np.array([np.nan, np.nan, np.nan, np.nan])))
    assert observer.summary(end_s=10.0)["slo_attainment"] == pytest.approx(2 / 4)  # 2 still misses TTFT


def batches() -> BatchLog:
    # Replica 0 busy 0-10 s with 2 then 4 sequences; replica 1 busy 10-20 s with 3; KV
    # capacity 1,000 tokens a replica; 100 output tokens per second of busy replica.
    return BatchLog(pool=np.array([0, 0, 0], dtype=np.int16), replica=np.array([0, 0, 1], dtype=np.int32),
                    start_s=np.array([0.0, 4.0, 10.0]), end_s=np.array([4.0, 10.0, 20.0]),
                    seqs=np.array([2, 4, 3], dtype=np.int32), prefill_tokens=np.zeros(3),
                    output_tokens=np.array([400.0, 600.0, 1000.0]), kv_tokens=np.array([300, 800, 500]),
                    pools=np.array([0], dtype=np.int16), kv_capacity=np.array([1000]), preemptions=np.array([7]))


def test_pool_figures_by_hand():
    observer = InferenceObserver(LAYOUT, warmup_s=0.0)
    observer(batches())
    observer(log())
    pool = observer.summary(end_s=20.0)["by_pool"]["a.p"]
    assert pool["batch_mean"] == pytest.approx((2 * 4 + 4 * 6 + 3 * 10) / 20)
    assert pool["batch_max"] == 4
    assert pool["kv_peak_fraction"] == pytest.approx(0.8)
    assert pool["tokens_per_s"] == pytest.approx(2000 / 20)
    assert pool["busy_fraction"] == pytest.approx(20 / (2 * 20))
    assert pool["preemptions"] == 7


def test_batch_columns_by_hand():
    cols = batch_columns(batches(), LAYOUT, np.array([0.0, 10.0, 20.0]))["a"]
    assert cols["busy_gpus"] == pytest.approx([8.0, 8.0])  # one replica of 8 GPUs busy throughout
    assert cols["batch_size"] == pytest.approx([(2 * 4 + 4 * 6) / 10, 3.0])
    # KV at the midpoint of each segment (no growth recorded here) over 2 x 1,000 tokens.
    assert cols["kv_fraction"] == pytest.approx([(300 * 4 + 800 * 6) / 10 / 2000 - 0.5 * (
        (400 * 4 + 600 * 6) / 10) / 2000, (500 - 500) / 2000])
    assert np.isnan(batch_columns(None, LAYOUT, np.array([0.0, 10.0]))["a"]["batch_size"]).all()


def weighted_time(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The reference the bucket integrals are checked against, written independently of them:
    for each point x: the integral up to x of the sum of weights of intervals open at
    that time (each interval [s, e) contributing w_i x its overlap with (-inf, x))."""
    points = np.asarray(points, dtype=float)
    result = np.zeros(len(points))
    for edge, sign in ((starts, 1.0), (ends, -1.0)):
        order = np.argsort(edge, kind="stable")
        t, w = edge[order], weights[order]
        cw = np.concatenate(([0.0], np.cumsum(w)))
        cwt = np.concatenate(([0.0], np.cumsum(w * t)))
        k = np.searchsorted(t, points, side="left")
        result += sign * (cw[k] * points - cwt[k])
    return result


def test_weighted_time_is_the_integral_of_the_weighted_count():
    starts, ends, weights = np.array([0.0, 2.0]), np.array([4.0, 3.0]), np.array([1.0, 10.0])
    assert weighted_time(starts, ends, weights, np.array([1.0, 2.5, 5.0])) == pytest.approx([1.0, 7.5, 14.0])


SERVING = """\
name: s
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 1, gpus_per_replica: %d, serving: %s}]}
inference:
  - {name: w, origin: {a: 1}, arrival: {process: poisson, rate_per_s: 1}, service: {dist: tokens}}
"""


@pytest.mark.parametrize("gpus,serving,message", [
    (8, "{model: GPT-9}", "regions[0].pools[0].serving.model: unknown model (valid: BLOOM-176B, Llama-2-70B,"),
    (8, "{model: Llama-2-70B, tensor_parallel: 4}",
     "regions[0].pools[0].serving.tensor_parallel: must equal gpus_per_replica (8): a replica is one server (got 4)"),
    (1, "{model: Llama-2-70B}", "leave no KV cache in 1 x H100 at gpu_memory_utilization 0.9 (77.3 GB); "
                                "tensor_parallel >= 2 fits"),
    (8, "{model: Llama-2-70B, gpu_memory_utilization: 1.5}",
     "x.yaml:3: regions[0].pools[0].serving.gpu_memory_utilization: must be <= 1 (got 1.5)"),
])
def test_serving_sections_that_cannot_work_are_errors(gpus, serving, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(SERVING % (gpus, serving), "x.yaml")
    assert message in str(caught.value)


def test_a_batching_pool_needs_token_workloads():
    text = (SERVING % (8, "{model: Llama-2-70B}")).replace("service: {dist: tokens}",
                                                           "service: {dist: exponential, mean_s: 1}")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "x.yaml")
    assert "inference[0].service.dist: batching pools serve token workloads only" in str(caught.value)


def test_slo_ms_is_an_alias_of_slo_e2e_ms():
    text = (SERVING % (8, "{model: Llama-2-70B}")).replace("service: {dist: tokens}",
                                                           "service: {dist: tokens}, slo_ms: 900")
    assert parse_scenario(text).scenario.inference[0].e2e_slo_ms == 900
    both = text.replace("slo_ms: 900", "slo_ms: 900, slo: {e2e_ms: 800}")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(both, "x.yaml")
    assert "inference[0].slo_ms: is an alias of slo.e2e_ms: give one of them" in str(caught.value)


@pytest.mark.parametrize("edges", [[0.0, 100.0], [5.0, 60.0], [*range(0, 100, 10), 97.0], list(range(101))],
                         ids=["one bucket", "a window inside", "uneven last bucket", "unit buckets"])
def test_bucket_integrals_equal_differences_of_the_weighted_integral(edges):
    """The per-bucket integrals the time series use (each interval adds its own pieces)
    against differences of ``weighted_time`` (running sums over sorted ends), on intervals
    that start before, end after and span several buckets."""
    rng = np.random.default_rng(3)
    edges = np.sort(np.asarray(edges, dtype=float))
    starts = rng.uniform(-5.0, 105.0, 20_000)
    ends = starts + rng.exponential(3.0, starts.size)
    weights = rng.uniform(0.0, 3.0, starts.size)
    got = BucketIntervals(starts, ends, edges).integrals(weights)
    np.testing.assert_allclose(got, np.diff(weighted_time(starts, ends, weights, edges)), rtol=1e-9, atol=1e-7)
