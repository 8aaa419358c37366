"""The batching iteration-time model: by hand, its invariants, and against Splitwise data.

The first group needs no data: unit costs worked by hand, the single formula shared by
the fit and the per-iteration path, and properties the engine relies on. The second
group refits ``shared/data/splitwise_perf_model.csv`` and compares every Llama2-70B row
on A100 and H100 (tensor parallel 2, 4, 8): the prefill of B prompts of P tokens against
``prompt_time`` (TTFT) and one decode iteration at batch B with context P + generated/2
(P + 64 for 128 output tokens) against ``token_time`` (TPOT). Tolerance 15 %; which
configurations fall outside, and why, is pinned below and in docs/serving_model.md.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.workload import batching_model as bm
from sim.workload.batching_model import (
    KNEE_TOKENS,
    MEASURED,
    IterationModel,
    decode_context_tokens,
    error_summary,
    excluded_reason,
    fit_for_gpu,
    iteration_model,
    median_points,
    point_errors,
    prefill_attention_pairs,
    read_measurements,
    row_errors,
)
from sim.workload.token_model import MEASURED as TOKEN_MEASURED
from sim.world.catalogue import gpu_spec
from sim.world.llm_catalogue import kv_capacity_tokens, llm_spec
from tests.conftest import SHARED_DATA

TOLERANCE = 0.15
needs_data = pytest.mark.skipif(not (SHARED_DATA / bm.SPLITWISE_FILE).is_file(),
                                reason=f"{SHARED_DATA / bm.SPLITWISE_FILE} is not present; "
                                       "these tests refit from it")
H100_70B = iteration_model("Llama-2-70B", "H100", 8)

# Configuration medians (GPU, TP, batch, prompt) whose prefill misses by more than 15 %.
# All A100: there B prompts of 512 take 10-35 % longer than one prompt of B x 512 tokens
# (TP8: 16 x 512 in 2,084 ms, 1 x 8192 in 1,550 ms), which no per-token or per-FLOP term
# reproduces, so the fit splits the difference; TP2 P128 sits above the launch floor.
PREFILL_OUTLIERS = {
    ("A100", 2, 1, 128), ("A100", 2, 1, 8192), ("A100", 4, 4, 512), ("A100", 4, 8, 512),
    ("A100", 4, 16, 512), ("A100", 8, 1, 4096), ("A100", 8, 16, 512),
}


# -- by hand and invariants (no data) ---------------------------------------------------------

def test_prefill_attention_pairs_by_hand():
    assert prefill_attention_pairs(4) == 1 + 2 + 3 + 4
    assert prefill_attention_pairs(2, cached_tokens=3) == 4 + 5  # a chunk after 3 cached tokens
    assert prefill_attention_pairs(6) == prefill_attention_pairs(3) + prefill_attention_pairs(3, 3)


def test_decode_iteration_by_hand():
    f = MEASURED["H100"]
    fixed = 80 * (f.overhead_ms_per_layer + 3 * f.tp_overhead_ms_per_layer)  # log2 8 = 3
    weights = 1e3 * 137_953_296_384 / (8 * 3.35e12 * f.weight_read_efficiency)
    kv = 1e3 * 327_680 * 576 / (8 * 3.35e12 * f.kv_read_efficiency)
    comm = (2 * 80 * 8192 * 2 * 2 * 7 / 8) / 1e9 * f.allreduce_ms_per_gb  # one token, TP8 ring
    expected = fixed + f.per_sequence_ms + weights + kv + comm  # weights beat compute at batch 1
    assert H100_70B.decode_ms(1, 576) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(29.82, abs=0.01)


def test_scalar_and_array_paths_agree():
    rng = np.random.default_rng(7)
    pre = rng.integers(0, 9000, 500) * rng.integers(0, 2, 500)
    pairs = np.array([prefill_attention_pairs(p, c) for p, c in zip(pre, rng.integers(0, 4000, 500), strict=True)])
    seqs = rng.integers(0, 128, 500)
    ctx = seqs * rng.integers(1, 8000, 500)
    for spec_name, tp in (("Llama-2-70B", 8), ("Mixtral-8x7B", 2)):
        it = iteration_model(spec_name, "H100", tp)
        vector = it.iteration_ms_array(pre, pairs, seqs, ctx)
        scalar = [it.iteration_ms(*map(float, args)) for args in zip(pre, pairs, seqs, ctx, strict=True)]
        np.testing.assert_allclose(vector, scalar, rtol=1e-12)


def _theta(fit: bm.IterationFit) -> np.ndarray:
    return np.array([fit.overhead_ms_per_layer, fit.tp_overhead_ms_per_layer,
                     fit.launch_floor_ms_per_layer, fit.tp_launch_floor_ms_per_layer,
                     fit.per_sequence_ms, 1 / fit.weight_read_efficiency, 1 / fit.flop_efficiency,
                     1 / fit.kv_read_efficiency, fit.allreduce_ms_per_gb,
                     fit.allreduce_ms_per_gb_above_knee])


@pytest.mark.parametrize("gpu,tp", [("A100", 2), ("H100", 4), ("H100", 8)])
def test_the_engine_path_is_the_fitted_formula(gpu, tp):
    spec, g = llm_spec("Llama-2-70B"), gpu_spec(gpu)
    it = IterationModel.build(spec, g, tp)
    works = [(128.0, prefill_attention_pairs(128), 0.0, 0.0), (8192.0, prefill_attention_pairs(8192), 0.0, 0.0),
             (0.0, 0.0, 64.0, 64 * 576.0), (512.0, prefill_attention_pairs(512, 1000), 32.0, 32 * 3000.0)]
    for work in works:
        fitted = bm._predict(_theta(MEASURED[gpu]), bm._basis(spec, g, tp, work, KNEE_TOKENS), work[0] > 0)
        assert it.iteration_ms(*work) == pytest.approx(fitted, rel=1e-12)


def test_an_empty_iteration_takes_no_time():
    assert H100_70B.iteration_ms(0, 0, 0, 0) == 0.0


def test_short_prefills_sit_on_the_launch_floor_and_decodes_have_none():
    assert H100_70B.prefill_ms(1, 16) == H100_70B.launch_floor_ms
    assert H100_70B.decode_ms(1, 16) < H100_70B.launch_floor_ms


def test_one_mixed_iteration_is_cheaper_than_a_prefill_and_a_decode_apart():
    mixed = H100_70B.iteration_ms(512, prefill_attention_pairs(512), 32, 32 * 1000)
    apart = H100_70B.prefill_ms(1, 512) + H100_70B.decode_ms(32, 1000)
    assert H100_70B.prefill_ms(1, 512) < mixed < apart


def test_more_work_never_takes_less_time():
    tokens = np.arange(0, 20_000, 64, dtype=float)
    prefill = H100_70B.iteration_ms_array(tokens, [prefill_attention_pairs(t) for t in tokens], 0, 0)
    decode = H100_70B.iteration_ms_array(0, 0, tokens[1:], tokens[1:] * 1000)
    assert np.all(np.diff(prefill[1:]) >= 0) and np.all(np.diff(decode) > 0)


def test_unmeasured_gpus_scale_the_h100_constants_by_their_peaks():
    assert fit_for_gpu(gpu_spec("H200")) is MEASURED["H100"]
    h200, b200 = iteration_model("Llama-2-70B", "H200", 8), iteration_model("Llama-2-70B", "B200", 8)
    assert h200.prefill_ms(1, 4096) == pytest.approx(H100_70B.prefill_ms(1, 4096), rel=1e-3)  # same TFLOPS
    assert b200.decode_ms(64, 1024) < h200.decode_ms(64, 1024) < H100_70B.decode_ms(64, 1024)
    assert b200.prefill_ms(1, 4096) < H100_70B.prefill_ms(1, 4096)


def test_moe_decode_reads_more_experts_as_the_batch_grows():
    mixtral = iteration_model("Mixtral-8x7B", "H100", 2)
    spec = llm_spec("Mixtral-8x7B")
    assert mixtral._weights_ms(1) == pytest.approx(mixtral.ms_per_weight_byte * spec.active_params * 2)
    assert mixtral._weights_ms(64) == pytest.approx(mixtral.weight_ms, rel=1e-6)
    assert mixtral.decode_ms(8, 1000) > 1.5 * mixtral.decode_ms(1, 1000)


def test_tensor_parallel_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="tensor_parallel: must be an integer >= 1, got 0"):
        IterationModel.build(llm_spec("Llama-2-70B"), gpu_spec("H100"), 0)


# -- against the Splitwise measurements ---------------------------------------------------------

@pytest.fixture(scope="module")
def rows() -> list[tuple[bm.Measurement, float, float]]:
    return row_errors(SHARED_DATA)


@needs_data
def test_shipped_constants_are_the_refit():
    knee, fits = bm.fit_splitwise(SHARED_DATA)
    assert knee == KNEE_TOKENS
    assert set(fits) == set(MEASURED)
    for name, fit in fits.items():
        for field, value in vars(fit).items():
            assert getattr(MEASURED[name], field) == pytest.approx(value, rel=1e-4, abs=1e-6), (name, field)


@needs_data
def test_error_table_and_bulk_within_15_percent(rows):
    table = error_summary(rows)
    for r in table:
        print(f"{r.gpu} TP{r.tp} {r.phase:7s} rows {r.rows:3d} median {100 * r.median:+5.1f} % "
              f"worst {100 * r.worst:+6.1f} % ({r.worst_at}) within 15 %: {r.within}/{r.rows}")
    assert len(table) == 12 and sum(r.rows for r in table) == 2 * 560
    for r in table:
        assert abs(r.median) < 0.05
        if r.phase == "decode" or r.gpu == "H100":
            assert r.within >= 0.95 * r.rows, r
        else:
            assert r.within >= 0.85 * r.rows, r


@needs_data
def test_every_decode_row_is_within_15_percent(rows):
    worst = max((abs(dec), m) for m, _, dec in rows if excluded_reason(m) is None)
    assert worst[0] <= TOLERANCE, worst


@needs_data
def test_prefill_misses_only_the_documented_configurations():
    outside = {(bm.SPLITWISE_HARDWARE[m.hardware], m.tensor_parallel, m.batch, m.prompt_tokens)
               for m, pre, _ in point_errors(SHARED_DATA)
               if excluded_reason(m) is None and abs(pre) > TOLERANCE}
    assert outside == PREFILL_OUTLIERS


@needs_data
def test_tp2_batch64_is_excluded_as_the_memory_edge():
    points = {(m.hardware, m.tensor_parallel, m.batch): m for m in median_points(read_measurements(SHARED_DATA))
              if m.model == "llama2-70b" and m.prompt_tokens == 512 and m.token_size == 128}
    spec = llm_spec("Llama-2-70B")
    for hardware, gpu in (("a100-80gb", "A100"), ("h100-80gb", "H100")):
        b64, b32 = points[(hardware, 2, 64)], points[(hardware, 2, 32)]
        assert excluded_reason(b64) and excluded_reason(b32) is None
        assert b64.prompt_ms < b32.prompt_ms / 5  # the batch did not run as 64 prompts
        need = 64 * (512 + 128)
        assert 0.8 < need / kv_capacity_tokens(spec, gpu_spec(gpu), 2) < 0.85  # before activations
        assert need / kv_capacity_tokens(spec, gpu_spec(gpu), 4) < 0.1


@needs_data
def test_power_capped_rows_are_the_h100_rows_rescaled():
    by_key: dict[tuple, dict[str, list[bm.Measurement]]] = {}
    for m in read_measurements(SHARED_DATA):
        by_key.setdefault(m.key[:1] + m.key[2:], {}).setdefault(m.hardware, []).append(m)
    pairs = [(h, p) for group in by_key.values() if "h100-80gb-pcap" in group
             for h, p in zip(sorted(group["h100-80gb"], key=lambda m: m.e2e_ms),
                             sorted(group["h100-80gb-pcap"], key=lambda m: m.e2e_ms), strict=True)]
    assert len(pairs) > 300
    for h, p in pairs:
        assert p.prompt_ms == pytest.approx(1.3 * h.prompt_ms, rel=1e-9)
        assert p.token_ms == h.token_ms
        assert excluded_reason(p)


@needs_data
def test_batch_one_agrees_with_the_token_model():
    # The batch-1 slot model (docs/workload.md) decodes at 30.50 / 45.13 ms per token.
    for gpu, within in (("H100", 0.03), ("A100", 0.03)):
        it = iteration_model("Llama-2-70B", gpu, 8)
        assert it.decode_ms(1, 512 + 64) == pytest.approx(TOKEN_MEASURED[gpu].decode_ms_per_token, rel=within)


@needs_data
def test_bloom_is_predicted_from_its_architecture_alone():
    table = error_summary(row_errors(SHARED_DATA, "bloom-176b"))
    for r in table:
        limit = 0.10 if r.gpu == "H100" else 0.20  # A100 decode: +17 %, see the docs
        assert abs(r.median) < limit, r


@needs_data
def test_h100_constants_on_the_a100_show_the_extrapolation_error():
    errors = row_errors(SHARED_DATA, fits={"A100": MEASURED["H100"], "H100": MEASURED["H100"]})
    table = [r for r in error_summary(errors) if r.gpu == "A100"]
    decode = [r.median for r in table if r.phase == "decode"]
    prefill = [r.median for r in table if r.phase == "prefill"]
    assert all(-0.25 < e < 0 for e in decode)  # too fast: the A100's overheads are larger
    assert all(abs(e) < 0.15 for e in prefill)


@needs_data
def test_decode_context_is_the_prompt_plus_half_the_output():
    m = next(m for m in read_measurements(SHARED_DATA)
             if (m.model, m.hardware, m.tensor_parallel, m.batch, m.prompt_tokens, m.token_size)
             == ("llama2-70b", "h100-80gb", 8, 1, 512, 128))
    assert decode_context_tokens(m) == 512 + 64
