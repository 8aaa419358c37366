"""The batching replica at its limits, against figures it does not produce itself.

- ``max_batch: 1``: one request at a time, each taking its prefill and one decode per
  further token: the batch-1 token model (fitted separately, on the batch-1 rows only);
- saturation: a replica kept full decodes ``B / token_time(B)`` tokens per second at the
  batch its ``max_batch`` or its KV cache allows;
- memory: concurrency stops where the KV cache is full, which never overflows;
- Little's law per pool: sequence-time in the batches equals the time requests spent in
  them.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.engine.batching import serving_spec
from sim.records import BatchLog, RequestStatus
from sim.scenario import parse_scenario
from sim.workload.token_model import MEASURED, token_service_s
from sim.world import build_world
from tests.traced import traced

POOL = """\
name: limits
seed: 3
duration: {duration}
regions:
  - name: a
    lat: 0
    lon: 0
    intra_rtt_ms: 0
    pools: [{{name: p, gpu: {gpu}, replicas: {replicas}, gpus_per_replica: {tp},
              serving: {{model: {model}, max_batch: {max_batch}{extra}}}}}]
inference:
  - name: w
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: {prompt}, cv: {cv}}}, output_tokens: {{mean: {out}, cv: {cv}}}}}
"""


def run(**kw):
    args = {"duration": "1h", "gpu": "H100", "replicas": 1, "tp": 8, "model": "Llama-2-70B", "max_batch": 256,
            "extra": "", "rate": 1.0, "prompt": 1000, "out": 200, "cv": 0.0}
    args.update(kw)
    scenario = parse_scenario(POOL.format(**args)).scenario
    result = traced(scenario)
    (batch,) = result.of(BatchLog)
    return scenario, result, batch


@pytest.mark.parametrize("prompt,out", [(200, 50), (1000, 250), (3000, 400)])
def test_max_batch_one_is_the_batch_one_token_model(prompt, out):
    # Arrivals far apart: every request finds the replica idle and is served alone.
    scenario, result, batch = run(max_batch=1, rate=0.01, prompt=prompt, out=out, duration="10h")
    log = result.log
    done = log.status == RequestStatus.COMPLETED
    assert done.sum() > 100 and batch.seqs.max() == 1
    served = (log.wait_s + log.service_s)[done]
    token_model = token_service_s(MEASURED["H100"], np.array([prompt]), np.array([out]))[0]
    assert np.median(served) == pytest.approx(token_model, rel=0.05)
    assert np.median(log.tpot_s[done]) * 1000 == pytest.approx(MEASURED["H100"].decode_ms_per_token, rel=0.05)


@pytest.mark.parametrize("gpu,tp,max_batch", [("H100", 8, 16), ("A100", 4, 32), ("H200", 8, 8)])
def test_a_full_replica_decodes_b_over_token_time(gpu, tp, max_batch):
    # Short prompts, long answers, arrivals well beyond capacity: max_batch sequences always run.
    prompt, out = 16, 2000
    scenario, result, batch = run(gpu=gpu, tp=tp, max_batch=max_batch, rate=20.0, prompt=prompt, out=out,
                                  duration="30m")
    spec = serving_spec(build_world(scenario).pools[0])
    steady = batch.start_s > 600
    busy = (batch.end_s - batch.start_s)[steady]
    assert (batch.seqs[steady] == max_batch).mean() > 0.99
    measured = batch.output_tokens[steady].sum() / busy.sum()
    # Sequences are spread evenly through their answers: the mean context is prompt + out / 2.
    token_time_s = spec.iteration.decode_ms(max_batch, prompt + out / 2) / 1000.0
    assert measured == pytest.approx(max_batch / token_time_s, rel=0.02)


def test_concurrency_stops_at_the_kv_capacity():
    # Llama-2-70B on 2 x H100 at 0.86 holds ~29,900 tokens: ~9 sequences of 3,200 tokens.
    scenario, result, batch = run(tp=2, rate=2.0, prompt=3000, out=200, extra=", gpu_memory_utilization: 0.86",
                                  duration="20m")
    capacity = int(batch.kv_capacity[0])
    assert batch.kv_tokens.max() <= capacity
    assert batch.seqs.max() <= capacity // 3000 + 1  # a tenth fits only as a prompt chunk
    assert batch.kv_tokens.max() > 0.95 * capacity  # and it does fill up
    assert batch.seqs.max() < 256  # max_batch is not what binds


def test_sequence_time_in_batches_equals_the_time_requests_spent_in_them():
    # Little's law per pool, exactly: without preemption each request runs in a batch from
    # its admission to its last token; censored at the end for those still running.
    scenario, result, batch = run(replicas=3, rate=6.0, prompt=800, out=300, cv=1.0, duration="30m")
    log, end = result.log, scenario.duration
    assert int(batch.preemptions.sum()) == 0
    admitted = log.pool_arrival_s + log.wait_s
    started = ~np.isnan(log.wait_s) & (log.status != RequestStatus.TIMED_OUT)
    finish = np.where(log.status == RequestStatus.COMPLETED, admitted + log.service_s, end)
    in_batches = (finish - admitted)[started].sum()
    sequence_time = (batch.seqs * (batch.end_s - batch.start_s)).sum()
    # The last iteration of each replica may run past the end: at most one iteration each.
    assert sequence_time == pytest.approx(in_batches, rel=1e-3)
