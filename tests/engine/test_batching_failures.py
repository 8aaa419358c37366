"""Batching replicas under failures, outages, capacity changes and timeouts: every request
is counted once, a failed replica loses exactly the requests it held, KV never overflows."""
from __future__ import annotations

import numpy as np
import pytest

from sim.records import BatchLog, RequestsDisplaced, RequestStatus
from tests.traced import traced_text

STRESS = """\
name: batching-stress
seed: 8
duration: 3h
warmup: 10m
regions:
  - name: a
    lat: 0
    lon: 0
    pools: [{name: p, gpu: H100, replicas: 3, gpus_per_replica: 8,
             serving: {model: Llama-2-70B, dispatch: cache_affinity, prefix_cache_tokens: 30000}}]
  - name: b
    lat: 0
    lon: 20
    pools: [{name: q, gpu: H100, replicas: 2, gpus_per_replica: 2,
             serving: {model: Llama-2-70B, gpu_memory_utilization: 0.86, chunked_prefill: false}}]
links:
  - {a: a, b: b, rtt_ms: 60, bandwidth_gbps: 100}
inference:
  - name: chat
    origin: {a: 0.6, b: 0.4}
    arrival: {process: poisson, rate_per_s: 3, profile: {kind: diurnal, mean: 1.0, amplitude: 0.6, peak_hour: 1}}
    service: {dist: tokens, input_tokens: {mean: 800, cv: 1.0}, output_tokens: {mean: 200, cv: 1.0}}
    shared_prefix: {prompts: 30, tokens: {mean: 1500, cv: 0.3}}
    timeout_ms: 60000
scheduler:
  interval: 10m
  routing: cache_aware
  sync_delay: 5s
  load_model: {kind: diurnal, mean: 3, amplitude: 0.6, peak_hour: 1}
  allocation: {weights: {a: 0.6, b: 0.4}, L_max: 5}
failures:
  nodes: [{mttf: 2h, repair: {mean: 20m}}]
  outages: [{region: b, at: 90m, duration: 20m}]
  inference: retry
  max_retries: 2
  detection: 30s
  warmup: 2m
"""


@pytest.mark.parametrize("mode", ["retry", "drop"])
def test_batching_pools_keep_their_books_under_failures(mode):
    run = traced_text(STRESS, [f"failures.inference={mode}"])
    log = run.log
    counts = {s.name.lower(): run.count(s) for s in RequestStatus}
    assert counts["pending"] == 0 and sum(counts.values()) == len(log.status)
    assert counts["completed"] > 10000 and counts["failed"] == run.lost
    hits = [f for f in run.failures if f.hit == "inference"]
    assert len(hits) >= 5 and run.count_failures("region") == 1
    displaced = run.of(RequestsDisplaced)
    assert displaced and (run.retries > 0) == (mode == "retry")
    (batch,) = run.of(BatchLog)
    for k, pool in enumerate(batch.pools.tolist()):
        assert batch.kv_tokens[batch.pool == pool].max() <= batch.kv_capacity[k]
    done = log.status == RequestStatus.COMPLETED
    # Completed requests have every figure; a TTFT never exceeds the end-to-end latency.
    assert not np.isnan(log.first_token_s[done]).any()
    assert (log.ttft_ms[done] <= log.latency_ms[done] + 1e-6).all()
    timed_out = log.status == RequestStatus.TIMED_OUT
    assert (log.wait_s[timed_out] > 60.0).all()


ONE_REPLICA = """\
name: batching-failure
duration: 10m
regions:
  - name: a
    lat: 0
    lon: 0
    intra_rtt_ms: 0
    pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}}]
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
failures:
  trace: {failures}
  inference: drop
"""


def test_a_failed_batching_replica_loses_exactly_the_requests_it_held(tmp_path, write_yaml):
    # A request every 2 s, 2,000 output tokens each (about a minute); the only replica fails
    # at 100 s: the requests that arrived before and had not finished are lost, no other.
    requests = tmp_path / "requests.csv"
    rows = "".join(f"{2 * k},500,2000\n" for k in range(150))
    requests.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows)
    failures = tmp_path / "failures.csv"
    failures.write_text("time_s,region,pool,replicas,duration_s\n100,a,p,1,60\n")
    run = traced_text(ONE_REPLICA.format(trace=requests, failures=failures))
    log = run.log
    held = (log.t_s < 100) & ~((log.status == RequestStatus.COMPLETED) & (log.t_s + log.wait_s + log.service_s < 100))
    assert held.sum() > 20
    np.testing.assert_array_equal(log.status == RequestStatus.FAILED, held)
    assert run.lost == held.sum()
