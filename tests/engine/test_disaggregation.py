"""Prefill/decode disaggregation: a prefill pool computes the prompt and the first token,
the KV cache crosses the network to a decode pool, which produces the rest.

References: the network model's exact figure for one copy on an idle link (one-way latency
plus bytes x 8 / bandwidth, with bytes = KV bytes per token x (prompt + 1) from the model's
architecture), the iteration model's decode time for one sequence, and cases whose winner
is known: across a long link with short answers disaggregation must lose end-to-end; with
whole-prompt prefills that stall colocated decodes, it must win on time per output token.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.engine.batching import run_time_ms, serving_spec
from sim.errors import ScenarioError
from sim.scenario import parse_scenario
from sim.world import build_world
from sim.world.llm_catalogue import llm_spec
from tests.traced import traced

TWO_REGIONS = """\
name: pd
seed: {seed}
duration: {duration}
regions:
  - {{name: a, lat: 0, lon: 0, intra_rtt_ms: 1, jurisdiction: EU, pools: [{a_pools}]}}
  - {{name: b, lat: 0, lon: 10, intra_rtt_ms: 1, jurisdiction: {b_law}, pools: [{b_pools}]}}
  - {{name: c, lat: 0, lon: 20, intra_rtt_ms: 1, jurisdiction: EU, pools: [{c_pools}]}}
links:
  - {{a: a, b: b, rtt_ms: {rtt_ab}, bandwidth_gbps: {gbps}}}
  - {{a: a, b: c, rtt_ms: {rtt_ac}, bandwidth_gbps: 10}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {arrival}
    service: {{dist: tokens, input_tokens: {{mean: {prompt}, cv: {cv}}}, output_tokens: {{mean: {out}, cv: {cv}}}}}
    kv_residency: {residency}
"""
H100 = "gpu: H100, replicas: {n}, gpus_per_replica: 8"


def pool(name, role, n=1, extra=""):
    return f"{{name: {name}, {H100.format(n=n)}, serving: {{model: Llama-2-70B, role: {role}{extra}}}}}"


def scenario(a_pools, b_pools="", c_pools="", seed=1, duration="10m", rtt_ab=40, rtt_ac=80, b_law="EU",
             arrival="{process: poisson, rate_per_s: 0.2}", prompt=2000, out=50, cv=0, residency="none",
             gbps=10):
    text = TWO_REGIONS.format(seed=seed, duration=duration, a_pools=a_pools, b_pools=b_pools, c_pools=c_pools,
                              rtt_ab=rtt_ab, rtt_ac=rtt_ac, gbps=gbps, b_law=b_law, arrival=arrival, prompt=prompt,
                              out=out, cv=cv, residency=residency)
    return parse_scenario(text, "pd.yaml").scenario


def test_one_kv_cache_crosses_an_idle_link_as_the_network_model_says(tmp_path):
    trace = tmp_path / "one.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n10,2000,50\n")
    sc = scenario(pool("p", "prefill"), pool("d", "decode"), arrival=f"{{process: trace, path: {trace}, loop: false}}")
    run = traced(sc)
    log = run.log
    assert log.status.tolist() == [1] and log.decode_pool.tolist() == [1]
    size = llm_spec("Llama-2-70B").kv_bytes_per_token * 2001
    assert size == 327_680 * 2001
    assert log.kv_transfer_s[0] == pytest.approx(0.040 / 2 + size * 8 / 10e9, rel=1e-9)
    # After the first token: the copy, then 49 decode iterations of one sequence on the
    # decode replica, and the tokens travel back from b (20 ms) instead of from a (0.5 ms).
    spec = serving_spec(build_world(sc).pools[1])
    decode_s = run_time_ms(spec.iteration.decode_terms(1), 1, 2001, 49) / 1000.0
    rtt_a, rtt_b = 1.0, 40.0  # origin a to its own pool (intra-region), to pool d in b
    assert log.rtt_ms[0] == rtt_a
    after_first = log.service_s[0] - log.first_token_s[0]
    assert after_first == pytest.approx(log.kv_transfer_s[0] + decode_s + (rtt_b - rtt_a) / 2000.0, rel=1e-9)
    assert log.tpot_s[0] == pytest.approx(after_first / 49, rel=1e-12)
    # The copy is on the books: one transfer over a-b, its bytes on that link.
    summary = run.observers.network.summary()
    assert summary["transfers"] == 1 and summary["bytes_by_link"] == {"a-b": pytest.approx(size)}
    # TTFT as streamed by the prefill pool (a: 0.5 ms out and back), and as it would be if
    # the decode pool streamed it once the cache landed (back from b: 20 ms).
    ttft = rtt_a + log.first_token_s[0] * 1000.0
    assert log.ttft_ms[0] == pytest.approx(ttft, rel=1e-12)
    via_decode = run.observers.inference.summary(run.end_s)["disaggregation"]["ttft_ms_via_decode"]
    assert log.decode_rtt_ms.tolist() == [rtt_b]
    assert via_decode["p50"] == pytest.approx(ttft - rtt_a / 2 + log.kv_transfer_s[0] * 1000.0 + rtt_b / 2,
                                              rel=1e-12)


def test_decode_pools_take_no_routed_requests_and_all_are_served():
    sc = scenario(pool("p", "prefill", 2), pool("d", "decode", 2), arrival="{process: poisson, rate_per_s: 1}",
                  cv=0.5)
    log = traced(sc).log
    assert (log.pool == 0).all() and (log.decode_pool[log.status == 1] == 1).all()
    assert (log.status == 1).mean() > 0.97
    # One-token answers finish at the prefill pool: no copy.
    short = traced(scenario(pool("p", "prefill"), pool("d", "decode"), out=1)).log
    assert (short.decode_pool == -1).all() and np.isnan(short.kv_transfer_s).all()


def test_the_nearest_decode_pool_takes_the_kv_cache_unless_a_hard_rule_keeps_it_home():
    near_abroad = {"a_pools": pool("p", "prefill"), "b_pools": pool("d", "decode"), "c_pools": pool("d", "decode"),
                   "b_law": "US", "rtt_ab": 40, "rtt_ac": 80}
    free = traced(scenario(**near_abroad, residency="soft"))
    assert set(free.log.decode_pool.tolist()) == {1}  # b: nearer, in the US
    assert free.observers.network.summary()["residency_violations"] == len(free.log.t_s)
    home = traced(scenario(**near_abroad, residency="hard"))
    assert set(home.log.decode_pool.tolist()) == {2}  # c: farther, in the EU like the users
    assert home.observers.network.summary()["residency_violations"] == 0
    assert np.nanmean(home.log.kv_transfer_s) > np.nanmean(free.log.kv_transfer_s)


def test_across_a_long_link_with_short_answers_disaggregation_loses():
    kw = {"rtt_ab": 150, "prompt": 1000, "out": 8, "arrival": "{process: poisson, rate_per_s: 0.5}", "duration": "20m"}
    together = traced(scenario(pool("both", "both", 2), **kw)).log
    apart = traced(scenario(pool("p", "prefill"), pool("d", "decode"), **kw)).log
    e2e = [np.median(log.latency_ms[log.status == 1]) for log in (together, apart)]
    assert e2e[1] > e2e[0] + 75  # at least the extra 75 ms of the answer's way back, and the copy


def test_with_stalling_prefills_disaggregation_wins_on_time_per_token():
    # Long prompts prefilled whole (no chunking) stall every colocated decode; on separate
    # replicas a short, wide link away (a metro interconnect: 2 GB of KV cache in 20 ms),
    # decodes never wait for a prefill.
    kw = {"rtt_ab": 10, "gbps": 800, "prompt": 6000, "out": 300, "cv": 0.5,
          "arrival": "{process: poisson, rate_per_s: 2.5}", "duration": "30m"}
    whole = ", chunked_prefill: false"
    together = traced(scenario(pool("both", "both", 4, whole), **kw)).log
    apart = traced(scenario(pool("p", "prefill", 2, whole), pool("d", "decode", 2, whole), **kw)).log
    tpot = [np.nanpercentile(log.tpot_s[log.status == 1], 99) for log in (together, apart)]
    assert tpot[1] < 0.7 * tpot[0]


def test_a_prefill_pool_needs_a_decode_pool():
    with pytest.raises(ScenarioError, match="decode"):
        scenario(pool("p", "prefill"))


def test_kv_bytes_are_conserved():
    # Bytes on the books = KV caches that landed across regions, each 327,680 B x (prompt + 1);
    # every request is served, lost, or still in flight at the end.
    from pathlib import Path

    from sim.streams import Streams
    from sim.workload.requests import generate_requests

    sc = scenario(pool("p", "prefill", 2), pool("d", "decode", 2), arrival="{process: poisson, rate_per_s: 1}",
                  cv=0.5)
    run = traced(sc)
    log = run.log
    r = generate_requests(sc, build_world(sc), Streams(sc.seed), Path("."))
    landed = ~np.isnan(log.kv_transfer_s)
    expected = float((327_680 * (r.input_tokens[landed].astype(np.int64) + 1)).sum())
    assert run.observers.network.summary()["bytes_cross_region"] == pytest.approx(expected, rel=1e-12)
    assert ((log.status == 1) | (log.status == 4)).all()  # completed or in flight: nothing lost
    assert (log.status[landed] == 1).mean() > 0.99


def test_every_kv_copy_starts_when_its_first_token_is_done():
    # A busy pair of pools: the request loop runs ahead of SimPy's clock between SimPy
    # events; each copy must still start at its own first token, not at the next hand-over.
    from sim.records import TransferRecord

    sc = scenario(pool("p", "prefill", 2), pool("d", "decode", 2), arrival="{process: poisson, rate_per_s: 2}",
                  cv=0.5, duration="20m")
    run = traced(sc)
    log = run.log
    landed = ~np.isnan(log.kv_transfer_s) & (log.kv_transfer_s > 0)
    first_token_at = log.t_s + log.rtt_ms / 2000 + log.first_token_s  # from reaching the pool
    starts = sorted(r.start_s for r in run.of(TransferRecord) if r.dataset.startswith("kv:"))
    assert len(starts) == int(landed.sum()) > 500
    assert np.allclose(starts, np.sort(first_token_at[landed]), rtol=0, atol=1e-9)


def test_the_clock_never_runs_backwards_in_a_busy_run():
    # The request loop runs ahead of SimPy between SimPy's events. A KV cache leaving a
    # prefill replica adds a SimPy event at the loop's time, so the loop must hand over
    # then; otherwise caches land on decode replicas that have already moved past the
    # landing time (the engine refuses that: RuntimeError).
    from sim.scenario import load_scenario
    from tests.conftest import SCENARIOS

    log = traced(load_scenario(SCENARIOS / "disaggregated.yaml", ["duration=30m"]).scenario).log
    assert (log.decode_pool >= 0).sum() > 500 and (log.status == 1).mean() > 0.95
