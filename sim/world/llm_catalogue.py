"""Catalogue of served language models and the KV-cache memory they leave (pure data).

A batching replica serves one model with its weights split over ``tensor_parallel`` GPUs.
What the replica can hold follows from a handful of architecture facts per model, taken
from the published Hugging Face ``config.json`` (or the model's paper) and named in each
entry's ``source``:

* the KV cache of one token, ``kv_bytes_per_token = 2 x layers x kv_heads x head_dim x
  bytes_per_kv`` (a key and a value vector per layer and KV head), and
* the weights, ``weight_bytes = params x bytes_per_weight``.

Both are derived, never typed. Admission to a replica is bounded like vLLM bounds it: the
KV cache gets what is left of ``GPU memory x gpu_memory_utilization x tensor_parallel``
once the weights are in (:func:`kv_capacity_tokens`). GPU memory comes from the GPU
catalogue (:mod:`sim.world.catalogue`); its ``memory_gb`` is the vendor's figure, which for
HBM is GiB (an "80 GB" A100 or H100 has 80 x 2**30 bytes), so it is read as GiB here.

A mixture-of-experts model (``experts > 1``) computes with ``active_params`` per token but
stores all ``params``; :meth:`LlmSpec.weight_bytes_read` is the expected bytes an iteration
reads when its tokens are routed to ``experts_per_token`` of ``experts`` experts each.

Public: ``LlmSpec``, ``LLM_CATALOGUE``, ``llm_spec``, ``gpu_memory_bytes``,
``kv_capacity_tokens``, ``min_tensor_parallel``, ``check_tensor_parallel``, ``GIB``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from sim.world.catalogue import GpuSpec

__all__ = ["LlmSpec", "LLM_CATALOGUE", "llm_spec", "gpu_memory_bytes", "kv_capacity_tokens",
           "min_tensor_parallel", "check_tensor_parallel", "GIB"]

GIB = 2 ** 30
_MAX_TENSOR_PARALLEL = 64


@dataclass(frozen=True)
class LlmSpec:
    """Architecture facts of one served model; sizes in bytes, counts in units."""

    name: str
    params: int  # total, as stored
    active_params: int  # used per token (== params unless mixture of experts)
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    bytes_per_weight: float
    bytes_per_kv: int  # bytes per element of the KV cache
    source: str
    experts: int = 1  # routed experts per layer; 1 = dense
    experts_per_token: int = 1

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one token occupies (all layers, keys and values)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_kv

    @property
    def weight_bytes(self) -> float:
        """Bytes of weights held in GPU memory."""
        return self.params * self.bytes_per_weight

    @property
    def attention_dim(self) -> int:
        """Width of the query projection, ``attention_heads x head_dim``."""
        return self.attention_heads * self.head_dim

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def expert_params(self) -> float:
        """Parameters of one routed expert summed over layers (0 for a dense model)."""
        if not self.is_moe:
            return 0.0
        return (self.params - self.active_params) / (self.experts - self.experts_per_token)

    def weight_bytes_read(self, tokens: float | np.ndarray) -> float | np.ndarray:
        """Expected weight bytes one forward pass over ``tokens`` tokens reads.

        Dense: all weights. Mixture of experts: the shared part plus each expert with the
        probability that at least one token is routed to it, assuming uniform routing.
        Works elementwise on numpy arrays.
        """
        if not self.is_moe:
            return self.weight_bytes
        untouched = (1.0 - self.experts_per_token / self.experts) ** tokens
        shared = self.params - self.experts * self.expert_params
        return (shared + self.experts * self.expert_params * (1.0 - untouched)) * self.bytes_per_weight


_HF = "Hugging Face config.json of"
_COUNTED = "params counted from these shapes"

_MODELS = (
    LlmSpec("Llama-2-70B", params=68_976_648_192, active_params=68_976_648_192, layers=80,
            hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
            bytes_per_weight=2, bytes_per_kv=2,
            source=f"{_HF} meta-llama/Llama-2-70b-hf: hidden 8192, intermediate 28672, 80 layers, "
                   f"64 heads, 8 KV heads, vocab 32000, untied embeddings, float16; {_COUNTED}"),
    LlmSpec("Llama-3.1-8B", params=8_030_261_248, active_params=8_030_261_248, layers=32,
            hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
            bytes_per_weight=2, bytes_per_kv=2,
            source=f"{_HF} meta-llama/Llama-3.1-8B: hidden 4096, intermediate 14336, 32 layers, "
                   f"32 heads, 8 KV heads, vocab 128256, untied, bfloat16; {_COUNTED}"),
    LlmSpec("Llama-3.1-70B", params=70_553_706_496, active_params=70_553_706_496, layers=80,
            hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
            bytes_per_weight=2, bytes_per_kv=2,
            source=f"{_HF} meta-llama/Llama-3.1-70B: hidden 8192, intermediate 28672, 80 layers, "
                   f"64 heads, 8 KV heads, vocab 128256, untied, bfloat16; {_COUNTED}"),
    # FP8 on every linear layer (llm-compressor FP8-dynamic checkpoints); Meta's own FP8
    # recipe keeps attention and the first and last layers in BF16 (~1.2 B/param, 487 GB).
    # KV cache in BF16: vLLM's kv_cache_dtype "auto" follows the activations; FP8 KV is opt-in.
    LlmSpec("Llama-3.1-405B-FP8", params=405_853_388_800, active_params=405_853_388_800,
            layers=126, hidden_size=16384, attention_heads=128, kv_heads=8, head_dim=128,
            bytes_per_weight=1, bytes_per_kv=2,
            source=f"{_HF} meta-llama/Llama-3.1-405B: hidden 16384, intermediate 53248, 126 layers, "
                   f"128 heads, 8 KV heads, vocab 128256, untied; {_COUNTED}; weights FP8 "
                   "(1 B/param, assumed on all linear layers), KV cache BF16 (assumed)"),
    LlmSpec("Mixtral-8x7B", params=46_702_792_704, active_params=12_879_925_248, layers=32,
            hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
            bytes_per_weight=2, bytes_per_kv=2, experts=8, experts_per_token=2,
            source=f"{_HF} mistralai/Mixtral-8x7B-v0.1: hidden 4096, intermediate 14336, 32 layers, "
                   "32 heads, 8 KV heads, 8 local experts, 2 per token, vocab 32000, bfloat16; "
                   f"{_COUNTED} (46.7B total, 12.9B active as Mistral AI states)"),
    LlmSpec("BLOOM-176B", params=176_247_271_424, active_params=176_247_271_424, layers=70,
            hidden_size=14336, attention_heads=112, kv_heads=112, head_dim=128,
            bytes_per_weight=2, bytes_per_kv=2,
            source=f"{_HF} bigscience/bloom: n_layer 70, n_head 112 (multi-head, no GQA), "
                   "hidden 14336, vocab 250880, tied embeddings; 176,247,271,424 params as in "
                   "the BLOOM paper (arXiv 2211.05100); float16 serving assumed"),
)

LLM_CATALOGUE: Mapping[str, LlmSpec] = MappingProxyType({m.name: m for m in _MODELS})
_BY_LOWER = {name.lower(): spec for name, spec in LLM_CATALOGUE.items()}


def llm_spec(name: str) -> LlmSpec:
    """The catalogue entry called ``name`` (case-insensitive); ``KeyError`` lists the valid names."""
    spec = _BY_LOWER.get(name.lower())
    if spec is None:
        raise KeyError(f"unknown model {name!r} (valid: {', '.join(sorted(LLM_CATALOGUE))})")
    return spec


def gpu_memory_bytes(gpu: GpuSpec) -> float:
    """Memory of one GPU in bytes (the catalogue's ``memory_gb`` read as GiB)."""
    return gpu.memory_gb * GIB


def _kv_budget_bytes(model: LlmSpec, gpu: GpuSpec, tensor_parallel: int,
                     gpu_memory_utilization: float) -> float:
    return gpu_memory_bytes(gpu) * gpu_memory_utilization * tensor_parallel - model.weight_bytes


def check_tensor_parallel(tensor_parallel: object) -> None:
    """``ValueError`` unless ``tensor_parallel`` is an integer >= 1 (``True`` is not)."""
    if isinstance(tensor_parallel, bool) or not isinstance(tensor_parallel, int) or tensor_parallel < 1:
        raise ValueError(f"tensor_parallel: must be an integer >= 1, got {tensor_parallel!r}")


def _check_serving(tensor_parallel: int, gpu_memory_utilization: float) -> None:
    check_tensor_parallel(tensor_parallel)
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise ValueError(f"gpu_memory_utilization: must be in (0, 1], got {gpu_memory_utilization!r}")


def kv_capacity_tokens(model: LlmSpec, gpu: GpuSpec, tensor_parallel: int,
                       gpu_memory_utilization: float = 0.9) -> int:
    """Tokens of KV cache a replica can hold once its weights are loaded.

    ``floor((memory x utilization x tensor_parallel - weight_bytes) / kv_bytes_per_token)``.
    An upper bound: a real server also reserves activation and CUDA-graph memory.
    Raises ``ValueError`` when the weights leave no room for a single token.
    """
    _check_serving(tensor_parallel, gpu_memory_utilization)
    free = _kv_budget_bytes(model, gpu, tensor_parallel, gpu_memory_utilization)
    if free < model.kv_bytes_per_token:
        raise ValueError(_no_room_message(model, gpu, tensor_parallel, gpu_memory_utilization))
    return int(free // model.kv_bytes_per_token)


def min_tensor_parallel(model: LlmSpec, gpu: GpuSpec, gpu_memory_utilization: float = 0.9) -> int | None:
    """Smallest power-of-two ``tensor_parallel`` (up to 64) leaving room for any KV cache."""
    tp = 1
    while tp <= _MAX_TENSOR_PARALLEL:
        if _kv_budget_bytes(model, gpu, tp, gpu_memory_utilization) >= model.kv_bytes_per_token:
            return tp
        tp *= 2
    return None


def _no_room_message(model: LlmSpec, gpu: GpuSpec, tensor_parallel: int,
                     gpu_memory_utilization: float) -> str:
    budget = gpu_memory_bytes(gpu) * gpu_memory_utilization * tensor_parallel
    need = min_tensor_parallel(model, gpu, gpu_memory_utilization)
    hint = f"; tensor_parallel >= {need} fits" if need else ""
    return (f"{model.name} weights ({model.weight_bytes / 1e9:.1f} GB) leave no KV cache in "
            f"{tensor_parallel} x {gpu.name} at gpu_memory_utilization {gpu_memory_utilization} "
            f"({budget / 1e9:.1f} GB){hint}")
