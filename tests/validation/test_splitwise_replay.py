"""The Splitwise experiment replayed through the engine: B identical requests of prompt P
arrive together at one Llama-2-70B replica; its simulated TTFT and TPOT against the
measured ``prompt_time`` and ``token_time`` (splitwise_perf_model.csv), per (GPU, TP, B, P).

Each configuration runs through the whole path a scenario takes: a trace of B requests at
t = 0, routing, the batching replica (no chunked prefill, so the B prompts are prefilled in
one iteration, as measured), decode iterations with growing context, the request log. The
output length is the tokens the run actually generated (``token_size`` caps it; some runs
stop early). Print the table with ``python -m tests.validation.test_splitwise_replay``.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.scenario import parse_scenario
from sim.workload.batching_model import (
    SPLITWISE_HARDWARE,
    excluded_reason,
    generated_tokens,
    median_points,
    read_measurements,
)
from tests.conftest import SHARED_DATA
from tests.traced import traced

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "splitwise_perf_model.csv").is_file(),
                                reason="needs ../shared/data/splitwise_perf_model.csv")

SCENARIO = """\
name: splitwise-replay
duration: 1h
regions:
  - name: lab
    lat: 0
    lon: 0
    intra_rtt_ms: 0
    pools:
      - name: server
        gpu: {gpu}
        replicas: 1
        gpus_per_replica: {tp}
        serving: {{model: Llama-2-70B, max_batch: {batch}, max_batched_tokens: {budget}, chunked_prefill: false}}
inference:
  - name: replay
    origin: {{lab: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
"""

# The A100 configurations whose prefill the iteration model misses by more than 15 %
# (docs/serving_model.md: there B prompts of 512 take 10-35 % longer than one prompt of
# B x 512 tokens, which no term in tokens or FLOPs reproduces).
A100_PREFILL_OUTLIERS = {(2, 1, 128), (2, 1, 8192), (4, 4, 512), (4, 8, 512), (4, 16, 512), (8, 1, 4096),
                         (8, 16, 512)}


def replay(m, folder: Path) -> tuple[float, float]:
    """Simulated (TTFT ms, TPOT ms) of one Splitwise configuration."""
    trace = folder / f"{m.hardware}-{m.tensor_parallel}-{m.batch}-{m.prompt_tokens}.csv"
    out = generated_tokens(m)
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     + "".join(f"0,{m.prompt_tokens},{out}\n" for _ in range(m.batch)))
    text = SCENARIO.format(gpu=SPLITWISE_HARDWARE[m.hardware], tp=m.tensor_parallel, batch=m.batch,
                           budget=m.batch * m.prompt_tokens, trace=trace)
    log = traced(parse_scenario(text, str(folder / "replay.yaml")).scenario).log
    assert (log.status == 1).all(), "every request completes"
    return float(np.mean(log.ttft_ms)), float(np.nanmean(log.tpot_s) * 1000.0 if out > 1 else np.nan)


def configurations():
    points = [m for m in median_points(read_measurements(SHARED_DATA)) if m.model == "llama2-70b"]
    return [m for m in points if excluded_reason(m) is None]


def errors(folder: Path) -> list[tuple]:
    """``(gpu, tp, batch, prompt, ttft error, tpot error)`` of every configuration."""
    rows = []
    for m in configurations():
        ttft, tpot = replay(m, folder)
        rows.append((SPLITWISE_HARDWARE[m.hardware], m.tensor_parallel, m.batch, m.prompt_tokens,
                     ttft / m.prompt_ms - 1.0, tpot / m.token_ms - 1.0))
    return rows


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    return errors(tmp_path_factory.mktemp("splitwise"))


def test_every_configuration_is_replayed(replayed):
    # 18-19 measured (batch, prompt) configurations per GPU and TP (TP2 batch 64 excluded).
    assert len(replayed) >= 110
    assert {(g, tp) for g, tp, *_ in replayed} == {(g, tp) for g in ("A100", "H100") for tp in (2, 4, 8)}


def test_tpot_within_15_percent_everywhere(replayed):
    worst = max(replayed, key=lambda r: abs(r[5]))
    assert abs(worst[5]) <= 0.15, worst


def test_ttft_within_15_percent_but_the_documented_a100_configurations(replayed):
    misses = {(tp, b, p) for g, tp, b, p, e, _ in replayed if abs(e) > 0.15}
    h100 = {(tp, b, p) for g, tp, b, p, e, _ in replayed if abs(e) > 0.15 and g == "H100"}
    assert h100 == set()
    assert misses <= A100_PREFILL_OUTLIERS


def test_median_errors_are_small(replayed):
    for gpu in ("A100", "H100"):
        for tp in (2, 4, 8):
            mine = [r for r in replayed if r[0] == gpu and r[1] == tp]
            assert abs(statistics.median(r[4] for r in mine)) < 0.05, (gpu, tp)
            assert abs(statistics.median(r[5] for r in mine)) < 0.05, (gpu, tp)


def main() -> None:
    """The error table VALIDATION.md quotes (signed relative errors, simulated / measured - 1)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = errors(Path(tmp))
    print("| GPU | TP | configurations | TTFT median | TTFT worst | TPOT median | TPOT worst |")
    print("|---|---|---|---|---|---|---|")
    for gpu in ("A100", "H100"):
        for tp in (2, 4, 8):
            mine = [r for r in rows if r[0] == gpu and r[1] == tp]
            t = [r[4] for r in mine]
            d = [r[5] for r in mine]
            print(f"| {gpu} | {tp} | {len(mine)} | {statistics.median(t):+.1%} | {max(t, key=abs):+.1%} | "
                  f"{statistics.median(d):+.1%} | {max(d, key=abs):+.1%} |")
    if "-v" in sys.argv:
        for r in rows:
            print(f"{r[0]} TP{r[1]} B{r[2]} P{r[3]}: TTFT {r[4]:+.1%}  TPOT {r[5]:+.1%}")


if __name__ == "__main__":
    main()
