"""Unit tests of the served-model catalogue (sim.world.llm_catalogue), figures worked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from sim.world.catalogue import gpu_spec
from sim.world.llm_catalogue import (
    GIB,
    LLM_CATALOGUE,
    LlmSpec,
    gpu_memory_bytes,
    kv_capacity_tokens,
    llm_spec,
    min_tensor_parallel,
)

LLAMA2_70B = llm_spec("Llama-2-70B")
H100 = gpu_spec("H100")


def test_llama2_70b_kv_cache_per_token_by_hand():
    # 2 (key and value) x 80 layers x 8 KV heads x 128 dims x 2 bytes
    assert LLAMA2_70B.kv_bytes_per_token == 2 * 80 * 8 * 128 * 2 == 327_680


def test_llama2_70b_weights_by_hand():
    # 68,976,648,192 parameters x 2 bytes (FP16): the nominal "70B x 2 = 140 GB", 1.5 % less
    assert LLAMA2_70B.weight_bytes == 137_953_296_384
    assert LLAMA2_70B.weight_bytes == pytest.approx(140e9, rel=0.015)


@pytest.mark.parametrize("name,vocab,intermediate,tied", [
    ("Llama-2-70B", 32_000, 28_672, False),
    ("Llama-3.1-8B", 128_256, 14_336, False),
    ("Llama-3.1-70B", 128_256, 28_672, False),
    ("Llama-3.1-405B-FP8", 128_256, 53_248, False),
])
def test_llama_parameter_counts_follow_from_the_config_shapes(name, vocab, intermediate, tied):
    m = llm_spec(name)
    h, kv_width = m.hidden_size, m.kv_heads * m.head_dim
    attention = 2 * h * h + 2 * h * kv_width  # q and o projections; k and v (grouped)
    mlp = 3 * h * intermediate  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two RMSNorm weight vectors
    embeddings = vocab * h * (1 if tied else 2)
    assert m.layers * per_layer + embeddings + h == m.params  # + the final norm


def test_mixtral_expert_split_by_hand():
    m = llm_spec("Mixtral-8x7B")
    expert = 3 * 4096 * 14_336 * 32  # one expert's MLP in all 32 layers
    assert m.expert_params == expert == 5_637_144_576
    assert m.active_params == m.params - (8 - 2) * expert
    assert m.weight_bytes_read(1) == pytest.approx(m.active_params * 2)  # one token: 2 experts
    assert m.weight_bytes_read(1000) == pytest.approx(m.weight_bytes)  # every expert touched
    reads = m.weight_bytes_read(np.array([1.0, 4.0, 16.0]))
    assert np.all(np.diff(reads) > 0)


def test_dense_models_read_all_their_weights():
    assert LLAMA2_70B.weight_bytes_read(1) == LLAMA2_70B.weight_bytes
    assert not LLAMA2_70B.is_moe and LLAMA2_70B.expert_params == 0.0


def test_every_entry_names_its_source_and_is_consistent():
    assert set(LLM_CATALOGUE) >= {"Llama-2-70B", "Llama-3.1-8B", "Llama-3.1-70B",
                                  "Llama-3.1-405B-FP8", "Mixtral-8x7B", "BLOOM-176B"}
    for m in LLM_CATALOGUE.values():
        assert "config.json" in m.source
        assert 0 < m.active_params <= m.params
        assert m.attention_heads % m.kv_heads == 0
        assert (m.experts > 1) == (m.active_params < m.params)


def test_405b_is_fp8_weights_with_a_bf16_kv_cache():
    m = llm_spec("Llama-3.1-405B-FP8")
    assert m.bytes_per_weight == 1 and m.bytes_per_kv == 2
    assert m.kv_bytes_per_token == 2 * 126 * 8 * 128 * 2 == 516_096


def test_lookup_is_case_insensitive():
    assert llm_spec("llama-2-70b") is llm_spec("LLAMA-2-70B") is LLAMA2_70B


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(KeyError) as err:
        llm_spec("GPT-5")
    assert str(err.value) == ("\"unknown model 'GPT-5' (valid: BLOOM-176B, Llama-2-70B, "
                              "Llama-3.1-405B-FP8, Llama-3.1-70B, Llama-3.1-8B, Mixtral-8x7B)\"")


def test_gpu_memory_is_read_as_gib():
    assert gpu_memory_bytes(H100) == 80 * GIB == 85_899_345_920


def test_kv_capacity_on_eight_h100_by_hand():
    # 8 x 80 GiB x 0.9 = 618,475,290,624 B; minus the weights 137,953,296,384 B leaves
    # 480,521,994,240 B = 1,466,436.75 tokens of 327,680 B.
    assert kv_capacity_tokens(LLAMA2_70B, H100, 8, 0.9) == 1_466_436


def test_kv_capacity_on_two_h100_is_tight():
    # 2 x 80 GiB x 0.9 - 137,953,296,384 = 16,665,526,272 B = 50,859.2 tokens: 64 requests of
    # 512 + 128 tokens (40,960) take 81 % of it before any activation memory.
    assert kv_capacity_tokens(LLAMA2_70B, H100, 2) == 50_859


def test_weights_that_do_not_fit_raise_with_the_figures():
    with pytest.raises(ValueError) as err:
        kv_capacity_tokens(LLAMA2_70B, H100, 1, 0.9)
    assert str(err.value) == ("Llama-2-70B weights (138.0 GB) leave no KV cache in 1 x H100 at "
                              "gpu_memory_utilization 0.9 (77.3 GB); tensor_parallel >= 2 fits")


def test_405b_needs_eight_h100_but_four_h200():
    m = llm_spec("Llama-3.1-405B-FP8")
    assert min_tensor_parallel(m, H100) == 8
    assert min_tensor_parallel(m, gpu_spec("H200")) == 4
    with pytest.raises(ValueError, match="4 x H100"):
        kv_capacity_tokens(m, H100, 4)


def test_min_tensor_parallel_is_none_when_nothing_fits():
    huge = LlmSpec("huge", params=10 ** 15, active_params=10 ** 15, layers=1, hidden_size=1,
                   attention_heads=1, kv_heads=1, head_dim=1, bytes_per_weight=2, bytes_per_kv=2,
                   source="test")
    assert min_tensor_parallel(huge, H100) is None
    with pytest.raises(ValueError) as err:
        kv_capacity_tokens(huge, H100, 64)
    assert "tensor_parallel >=" not in str(err.value)


@pytest.mark.parametrize("tp,util,message", [
    (0, 0.9, "tensor_parallel: must be an integer >= 1, got 0"),
    (2.0, 0.9, "tensor_parallel: must be an integer >= 1, got 2.0"),
    (True, 0.9, "tensor_parallel: must be an integer >= 1, got True"),
    (2, 0.0, "gpu_memory_utilization: must be in (0, 1], got 0.0"),
    (2, 1.5, "gpu_memory_utilization: must be in (0, 1], got 1.5"),
])
def test_bad_serving_settings_are_named(tp, util, message):
    with pytest.raises(ValueError) as err:
        kv_capacity_tokens(LLAMA2_70B, H100, tp, util)
    assert str(err.value) == message
