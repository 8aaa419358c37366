"""Iteration-time model of a batching replica: how long one forward pass over a batch takes.

A replica that batches like vLLM runs in *iterations*: each one decodes one token for every
running sequence and prefills (whole, or a chunk of) newly admitted prompts. Its duration,
in milliseconds, for ``P`` prefill tokens, ``B`` decoding sequences holding ``C`` context
tokens in all, and the attention work of the prefill (``pairs`` query-key pairs), is a
roofline with overheads::

    T       = P + B                                             tokens in the pass
    compute = (2 x active_params x T + 4 x layers x attention_dim x (pairs + C))
              / (TP x peak_flops x flop_efficiency)
    weights = weight_bytes_read(T) / (TP x memory_bw x weight_read_efficiency)
    kv      = kv_bytes_per_token x C / (TP x memory_bw x kv_read_efficiency)
    comm    = allreduce_bytes(TP) x (T x ms_per_gb + max(0, T - KNEE_TOKENS) x ms_per_gb_above_knee)
    body    = layers x (overhead + tp_overhead x log2 TP) + per_sequence x B
              + max(weights, compute) + kv + comm
    time    = max(layers x (launch_floor + tp_launch_floor x log2 TP), body)   if P > 0
            = body                                                          otherwise

with ``allreduce_bytes(TP) = 2 x layers x hidden x 2 B x 2 (TP - 1) / TP`` per token (two
ring all-reduces of the activations per layer). Decode iterations have no launch floor
(vLLM replays them as CUDA graphs); iterations with prefill run eagerly and cannot finish
before their kernel launches do. ``docs/serving_model.md`` explains every term.

The fitted constants (:data:`MEASURED`, one :class:`IterationFit` per measured GPU, and
:data:`KNEE_TOKENS`) come from the Splitwise measurements of Llama2-70B on A100 and H100 at
tensor parallel 2, 4 and 8 (``splitwise_perf_model.csv``); ``python -m
sim.workload.batching_model /path/to/shared/data`` refits and prints them with the error
tables. Other GPUs use the H100's efficiencies and overheads with their own peak FLOPS and
memory bandwidth; other models use their own parameters, layers and KV heads.

Per iteration the engine calls :meth:`IterationModel.iteration_ms` (plain float arithmetic;
:meth:`IterationModel.iteration_ms_array` is the numpy version). Build the model once per
(model, GPU, tensor_parallel) with :func:`iteration_model` or :meth:`IterationModel.build`.

Public: ``IterationFit``, ``IterationModel``, ``iteration_model``, ``fit_for_gpu``,
``prefill_attention_pairs``, ``MEASURED``, ``KNEE_TOKENS``, ``REFERENCE_GPU``,
``ACTIVATION_BYTES``; for the offline fit ``Measurement``, ``read_measurements``,
``median_points``, ``excluded_reason``, ``decode_context_tokens``, ``fit_splitwise``,
``model_errors``, ``row_errors``, ``point_errors``, ``error_summary``, ``ErrorRow``.
"""
from __future__ import annotations

import csv
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import cast

import numpy as np

from sim.world.catalogue import GpuSpec, gpu_spec
from sim.world.llm_catalogue import LlmSpec, check_tensor_parallel, llm_spec

__all__ = ["IterationFit", "IterationModel", "iteration_model", "fit_for_gpu",
           "prefill_attention_pairs", "MEASURED", "KNEE_TOKENS", "REFERENCE_GPU",
           "ACTIVATION_BYTES", "Measurement", "read_measurements", "median_points",
           "excluded_reason", "decode_context_tokens", "fit_splitwise", "model_errors",
           "row_errors", "point_errors", "error_summary", "ErrorRow", "SPLITWISE_FILE", "SPLITWISE_HARDWARE",
           "SPLITWISE_MODELS"]

ACTIVATION_BYTES = 2  # BF16/FP16 activations on the wire
Number = float | np.ndarray
REFERENCE_GPU = "H100"


@dataclass(frozen=True)
class IterationFit:
    """Fitted constants of one GPU type; times in ms, efficiencies as fractions of peak."""

    overhead_ms_per_layer: float  # fixed cost of every iteration
    tp_overhead_ms_per_layer: float  # added per doubling of tensor_parallel
    launch_floor_ms_per_layer: float  # least time of an iteration with prefill
    tp_launch_floor_ms_per_layer: float  # added per doubling of tensor_parallel
    per_sequence_ms: float  # per decoding sequence
    weight_read_efficiency: float  # of memory bandwidth
    flop_efficiency: float  # of dense BF16 peak
    kv_read_efficiency: float  # of memory bandwidth
    allreduce_ms_per_gb: float  # per GB of ring all-reduce traffic per GPU
    allreduce_ms_per_gb_above_knee: float  # extra, for tokens beyond KNEE_TOKENS


# Output of `python -m sim.workload.batching_model /work/shared/data` (Llama2-70B, TP 2/4/8).
KNEE_TOKENS = 2048
MEASURED: Mapping[str, IterationFit] = MappingProxyType({
    "A100": IterationFit(
        overhead_ms_per_layer=0.0429928, tp_overhead_ms_per_layer=0.123678,
        launch_floor_ms_per_layer=0.850238, tp_launch_floor_ms_per_layer=0.0,
        per_sequence_ms=0.290356, weight_read_efficiency=0.789061, flop_efficiency=0.660137,
        kv_read_efficiency=0.304731, allreduce_ms_per_gb=8.10764,
        allreduce_ms_per_gb_above_knee=24.2846),
    "H100": IterationFit(
        overhead_ms_per_layer=0.0518679, tp_overhead_ms_per_layer=0.0787179,
        launch_floor_ms_per_layer=0.585704, tp_launch_floor_ms_per_layer=0.0292534,
        per_sequence_ms=0.23805, weight_read_efficiency=0.794829, flop_efficiency=0.564805,
        kv_read_efficiency=0.208421, allreduce_ms_per_gb=5.75576,
        allreduce_ms_per_gb_above_knee=8.62604),
})


def fit_for_gpu(gpu: GpuSpec) -> IterationFit:
    """The measured constants of ``gpu``, else the reference GPU's (an extrapolation)."""
    return MEASURED.get(gpu.name, MEASURED[REFERENCE_GPU])


# -- the physics shared by the fit and the per-iteration model ------------------------------

def flops_per_token(spec: LlmSpec) -> float:
    """Matrix-multiply FLOPs of one token through the model (multiply-add = 2)."""
    return 2.0 * spec.active_params


def flops_per_attention_pair(spec: LlmSpec) -> float:
    """FLOPs of one query attending to one cached key: ``QK^T`` and ``AV`` in every layer."""
    return 4.0 * spec.layers * spec.attention_dim


def allreduce_bytes_per_token(spec: LlmSpec, tensor_parallel: int) -> float:
    """Bytes each GPU sends per token: two ring all-reduces of the hidden state per layer."""
    ring = 2.0 * (tensor_parallel - 1) / tensor_parallel
    return 2.0 * spec.layers * spec.hidden_size * ACTIVATION_BYTES * ring


def prefill_attention_pairs(chunk_tokens: float, cached_tokens: float = 0.0) -> float:
    """Causal query-key pairs of a prefill chunk of ``chunk_tokens`` after ``cached_tokens``.

    Token ``i`` of the chunk attends to ``cached_tokens + i`` keys (itself included), so a
    whole prompt of ``P`` tokens has ``P (P + 1) / 2`` pairs. Sum it over an iteration's chunks.
    """
    return chunk_tokens * cached_tokens + chunk_tokens * (chunk_tokens + 1) / 2.0


# -- the per-iteration model -----------------------------------------------------------------

@dataclass(frozen=True)
class IterationModel:
    """Unit costs, in ms, of one replica: one model on ``tensor_parallel`` GPUs of one type."""

    spec: LlmSpec
    gpu: GpuSpec
    tensor_parallel: int
    fixed_ms: float
    launch_floor_ms: float
    weight_ms: float  # all weights read once
    ms_per_weight_byte: float  # for a mixture of experts, whose reads depend on the tokens
    ms_per_token_compute: float
    ms_per_attention_pair: float
    ms_per_context_token: float  # KV-cache read of a decoding sequence's context
    ms_per_token_comm: float
    ms_per_token_above_knee: float
    knee_tokens: int
    ms_per_sequence: float

    @classmethod
    def build(cls, spec: LlmSpec, gpu: GpuSpec, tensor_parallel: int,
              fit: IterationFit | None = None, knee_tokens: int = KNEE_TOKENS) -> IterationModel:
        """Fold the fitted constants with the model's and GPU's figures into unit costs."""
        check_tensor_parallel(tensor_parallel)
        fit = fit or fit_for_gpu(gpu)
        layers_log_tp = spec.layers * math.log2(tensor_parallel)
        ms_per_flop = 1e3 / (tensor_parallel * gpu.bf16_tflops * 1e12 * fit.flop_efficiency)
        ms_per_byte = 1e3 / (tensor_parallel * gpu.memory_bw_tb_s * 1e12)
        comm_gb = allreduce_bytes_per_token(spec, tensor_parallel) / 1e9
        return cls(
            spec=spec, gpu=gpu, tensor_parallel=tensor_parallel,
            fixed_ms=spec.layers * fit.overhead_ms_per_layer + layers_log_tp * fit.tp_overhead_ms_per_layer,
            launch_floor_ms=(spec.layers * fit.launch_floor_ms_per_layer
                             + layers_log_tp * fit.tp_launch_floor_ms_per_layer),
            weight_ms=spec.weight_bytes * ms_per_byte / fit.weight_read_efficiency,
            ms_per_weight_byte=ms_per_byte / fit.weight_read_efficiency,
            ms_per_token_compute=flops_per_token(spec) * ms_per_flop,
            ms_per_attention_pair=flops_per_attention_pair(spec) * ms_per_flop,
            ms_per_context_token=spec.kv_bytes_per_token * ms_per_byte / fit.kv_read_efficiency,
            ms_per_token_comm=comm_gb * fit.allreduce_ms_per_gb,
            ms_per_token_above_knee=comm_gb * fit.allreduce_ms_per_gb_above_knee,
            knee_tokens=knee_tokens, ms_per_sequence=fit.per_sequence_ms)

    def iteration_ms(self, prefill_tokens: float, prefill_pairs: float, decode_seqs: float,
                     decode_context_tokens: float) -> float:
        """Duration in ms of one iteration; 0 when it has no tokens.

        ``prefill_tokens``: prompt tokens prefilled (all chunks); ``prefill_pairs``: their
        :func:`prefill_attention_pairs`, summed; ``decode_seqs``: sequences decoding one
        token each; ``decode_context_tokens``: the tokens those sequences already hold.
        """
        # No typing.cast here: this runs at every iteration a batching replica plans.
        return self._iteration(prefill_tokens, prefill_pairs, decode_seqs, decode_context_tokens,  # type: ignore[return-value]
                               max)

    def iteration_ms_array(self, prefill_tokens: np.ndarray, prefill_pairs: np.ndarray,
                           decode_seqs: np.ndarray, decode_context_tokens: np.ndarray) -> np.ndarray:
        """:meth:`iteration_ms` over numpy arrays (broadcast elementwise)."""
        p, pairs, b, c = (np.asarray(a, dtype=float) for a in
                          (prefill_tokens, prefill_pairs, decode_seqs, decode_context_tokens))
        return cast(np.ndarray, self._iteration(p, pairs, b, c, np.maximum))

    def decode_terms(self, decode_seqs: int) -> tuple[float, float, float, float, float]:
        """``(a, b, w, c, d)`` such that a decode-only iteration of ``decode_seqs`` sequences
        holding ``C`` context tokens takes ``a + b C + max(w, c + d C)`` ms (the form a run
        of decode iterations is summed in closed form with)."""
        b = float(decode_seqs)
        a = (self.fixed_ms + self.ms_per_sequence * b + self.ms_per_token_comm * b
             + self.ms_per_token_above_knee * max(b - self.knee_tokens, 0.0))
        return (a, self.ms_per_context_token, float(self._weights_ms(b)), self.ms_per_token_compute * b,
                self.ms_per_attention_pair)

    def prefill_ms(self, batch: float, prompt_tokens: float) -> float:
        """One iteration prefilling ``batch`` whole prompts of ``prompt_tokens`` each."""
        return self.iteration_ms(batch * prompt_tokens, batch * prefill_attention_pairs(prompt_tokens), 0, 0)

    def decode_ms(self, batch: float, context_tokens: float) -> float:
        """One decode iteration of ``batch`` sequences holding ``context_tokens`` each."""
        return self.iteration_ms(0, 0, batch, batch * context_tokens)

    def _iteration(self, prefill_tokens: Number, prefill_pairs: Number, decode_seqs: Number,
                   context: Number, maximum: Callable) -> Number:
        tokens = prefill_tokens + decode_seqs
        compute = self.ms_per_token_compute * tokens + self.ms_per_attention_pair * (prefill_pairs + context)
        body = (self.fixed_ms + self.ms_per_sequence * decode_seqs
                + maximum(self._weights_ms(tokens), compute)
                + self.ms_per_context_token * context + self.ms_per_token_comm * tokens
                + self.ms_per_token_above_knee * maximum(tokens - self.knee_tokens, 0.0))
        # The floor binds only iterations that prefill; an empty iteration takes no time.
        return maximum(self.launch_floor_ms * (prefill_tokens > 0), body) * (tokens > 0)

    def _weights_ms(self, tokens: Number) -> Number:
        if self.spec.is_moe:
            return self.ms_per_weight_byte * self.spec.weight_bytes_read(tokens)
        return self.weight_ms


@lru_cache(maxsize=256)
def iteration_model(model: str, gpu: str, tensor_parallel: int) -> IterationModel:
    """The :class:`IterationModel` of catalogue names, e.g. ``("Llama-2-70B", "H100", 8)``."""
    return IterationModel.build(llm_spec(model), gpu_spec(gpu), tensor_parallel)


# -- the fit (offline; run as a module) ------------------------------------------------------

SPLITWISE_FILE = "splitwise_perf_model.csv"
FIT_MODEL = "llama2-70b"
# Splitwise labels -> catalogue names (the power-capped H100 has no catalogue entry).
SPLITWISE_HARDWARE = {"a100-80gb": "A100", "h100-80gb": "H100"}
SPLITWISE_MODELS = {"llama2-70b": "Llama-2-70B", "bloom-176b": "BLOOM-176B"}
KNEE_GRID = tuple(range(1024, 4097, 256))
_MAX_ROUNDS = 50
# First guess of the prefills on the launch floor: up to here measured times stop falling.
_FLOOR_START_TOKENS = 512


@dataclass(frozen=True)
class Measurement:
    """One Splitwise run (or the median of its repeats): times in ms."""

    model: str
    hardware: str
    tensor_parallel: int
    batch: int
    prompt_tokens: int
    token_size: int
    prompt_ms: float
    token_ms: float
    e2e_ms: float
    repeats: int = 1

    @property
    def key(self) -> tuple:
        return (self.model, self.hardware, self.tensor_parallel, self.batch, self.prompt_tokens,
                self.token_size)


def read_measurements(data_dir: Path) -> list[Measurement]:
    """Every distinct row of the Splitwise file (exact duplicate rows dropped)."""
    with (Path(data_dir) / SPLITWISE_FILE).open(newline="", encoding="utf-8") as f:
        distinct = {tuple(r.values()): r for r in csv.DictReader(f)}
    return [Measurement(model=r["model"], hardware=r["hardware"],
                        tensor_parallel=int(r["tensor_parallel"]), batch=int(r["batch_size"]),
                        prompt_tokens=int(r["prompt_size"]), token_size=int(r["token_size"]),
                        prompt_ms=float(r["prompt_time"]), token_ms=float(r["token_time"]),
                        e2e_ms=float(r["e2e_time"])) for r in distinct.values()]


def median_points(measurements: Iterable[Measurement]) -> list[Measurement]:
    """One measurement per configuration: the median of each time over its repeats."""
    groups: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.key, []).append(m)
    return [replace(group[0], prompt_ms=statistics.median(m.prompt_ms for m in group),
                    token_ms=statistics.median(m.token_ms for m in group),
                    e2e_ms=statistics.median(m.e2e_ms for m in group), repeats=len(group))
            for _, group in sorted(groups.items())]


def excluded_reason(m: Measurement) -> str | None:
    """Why a measurement is not fitted, or ``None``."""
    if m.hardware == "h100-80gb-pcap":
        return "the h100-80gb rows with prompt_time x 1.3 exactly: derived, not measured"
    if m.hardware not in SPLITWISE_HARDWARE:
        return f"{m.hardware} is not a catalogue GPU"
    if m.tensor_parallel == 2 and m.batch == 64:
        return ("TP2 batch 64 exceeds the KV memory the runtime had: prompt_time falls below "
                "batch 32's and e2e implies ~2,000 decode steps for 128 tokens")
    return None


def generated_tokens(m: Measurement) -> int:
    """Output tokens actually made: ``token_size`` is only a cap (generation can end early)."""
    steps = round((m.e2e_ms - m.prompt_ms) / m.token_ms) + 1
    return max(1, min(m.token_size, steps))


def decode_context_tokens(m: Measurement) -> float:
    """Mean context of a sequence over its decode iterations: the prompt plus half the output."""
    return m.prompt_tokens + generated_tokens(m) / 2.0


def _prefill_work(m: Measurement) -> tuple[float, float, float, float]:
    return (m.batch * m.prompt_tokens, m.batch * prefill_attention_pairs(m.prompt_tokens), 0.0, 0.0)


def _decode_work(m: Measurement) -> tuple[float, float, float, float]:
    return (0.0, 0.0, float(m.batch), m.batch * decode_context_tokens(m))


def _basis(spec: LlmSpec, gpu: GpuSpec, tp: int, work: tuple[float, float, float, float],
           knee: int) -> dict[str, float]:
    """Each term of the model at unit coefficient (ms at peak, or GB of all-reduce traffic)."""
    prefill_tokens, pairs, seqs, context = work
    tokens = prefill_tokens + seqs
    peak_flops, peak_bw = tp * gpu.bf16_tflops * 1e12, tp * gpu.memory_bw_tb_s * 1e12
    gb = allreduce_bytes_per_token(spec, tp) / 1e9
    return {
        "layers": float(spec.layers), "layers_log_tp": spec.layers * math.log2(tp),
        "seqs": seqs,
        "weights": 1e3 * float(spec.weight_bytes_read(tokens)) / peak_bw,
        "compute": 1e3 * (flops_per_token(spec) * tokens
                          + flops_per_attention_pair(spec) * (pairs + context)) / peak_flops,
        "kv": 1e3 * spec.kv_bytes_per_token * context / peak_bw,
        "comm": tokens * gb, "knee": max(tokens - knee, 0.0) * gb, "tokens": tokens,
    }


# Unknowns of the least-squares problem; the efficiencies enter as their inverses.
_UNKNOWNS = ("overhead", "tp_overhead", "floor", "tp_floor", "seqs", "weights", "compute", "kv",
             "comm", "knee")


def _row(basis: dict[str, float], floor: bool, weight_bound: bool) -> np.ndarray:
    if floor:
        return np.array([0, 0, basis["layers"], basis["layers_log_tp"], 0, 0, 0, 0, 0, 0])
    return np.array([basis["layers"], basis["layers_log_tp"], 0, 0, basis["seqs"],
                     basis["weights"] * weight_bound, basis["compute"] * (not weight_bound),
                     basis["kv"], basis["comm"], basis["knee"]])


def _body(theta: np.ndarray, b: dict[str, float]) -> float:
    return (theta[0] * b["layers"] + theta[1] * b["layers_log_tp"] + theta[4] * b["seqs"]
            + max(theta[5] * b["weights"], theta[6] * b["compute"]) + theta[7] * b["kv"]
            + theta[8] * b["comm"] + theta[9] * b["knee"])


def _equations(points: list[Measurement], gpu: GpuSpec, knee: int) -> list[tuple[dict, bool, float]]:
    """(basis, is_prefill, measured ms) for the prefill and the decode time of each point."""
    spec = llm_spec(SPLITWISE_MODELS[FIT_MODEL])
    out = []
    for m in points:
        out.append((_basis(spec, gpu, m.tensor_parallel, _prefill_work(m), knee), True, m.prompt_ms))
        out.append((_basis(spec, gpu, m.tensor_parallel, _decode_work(m), knee), False, m.token_ms))
    return out


def _fit_equations(eqs: list[tuple[dict, bool, float]]) -> tuple[np.ndarray, float]:
    """Non-negative least squares of the relative errors, alternating over the two max() branches.

    Each round fixes, per equation, which side of each ``max`` is active (launch floor or
    body; weights or compute), solves the then linear problem, and reassigns; it stops when
    no assignment changes. Returns the unknowns and the sum of squared relative errors.
    """
    from scipy.optimize import nnls  # offline only; keeps the simulator's import light

    y = np.array([e[2] for e in eqs])
    floor = [is_pre and b["tokens"] <= _FLOOR_START_TOKENS for b, is_pre, _ in eqs]
    weight_bound = [not is_pre for _, is_pre, _ in eqs]
    for _ in range(_MAX_ROUNDS):
        a = np.array([_row(b, f, w) for (b, _, _), f, w in zip(eqs, floor, weight_bound, strict=True)])
        theta, _ = nnls(a / y[:, None], np.ones(len(y)))
        new_floor = [is_pre and theta[2] * b["layers"] + theta[3] * b["layers_log_tp"] > _body(theta, b)
                     for b, is_pre, _ in eqs]
        new_bound = [theta[5] * b["weights"] >= theta[6] * b["compute"] for b, _, _ in eqs]
        if new_floor == floor and new_bound == weight_bound:
            predicted = np.array([_predict(theta, b, is_pre) for b, is_pre, _ in eqs])
            return theta, float(np.sum((predicted / y - 1) ** 2))
        floor, weight_bound = new_floor, new_bound
    raise RuntimeError("batching-model fit: branch assignment did not settle")


def _predict(theta: np.ndarray, b: dict[str, float], is_prefill: bool) -> float:
    body = _body(theta, b)
    return max(theta[2] * b["layers"] + theta[3] * b["layers_log_tp"], body) if is_prefill else body


def _as_fit(theta: np.ndarray) -> IterationFit:
    values = dict(zip(_UNKNOWNS, theta.tolist(), strict=True))
    for name in ("weights", "compute", "kv"):
        if values[name] <= 0:
            raise RuntimeError(f"batching-model fit: {name} term fitted to 0; efficiency undefined")
    return IterationFit(
        overhead_ms_per_layer=values["overhead"], tp_overhead_ms_per_layer=values["tp_overhead"],
        launch_floor_ms_per_layer=values["floor"], tp_launch_floor_ms_per_layer=values["tp_floor"],
        per_sequence_ms=values["seqs"], weight_read_efficiency=1 / values["weights"],
        flop_efficiency=1 / values["compute"], kv_read_efficiency=1 / values["kv"],
        allreduce_ms_per_gb=values["comm"], allreduce_ms_per_gb_above_knee=values["knee"])


def fit_points(data_dir: Path) -> dict[str, list[Measurement]]:
    """The fitted configurations per catalogue GPU: medians of Llama2-70B repeats, exclusions dropped."""
    points = [p for p in median_points(read_measurements(data_dir))
              if p.model == FIT_MODEL and excluded_reason(p) is None]
    return {name: [p for p in points if p.hardware == label] for label, name in SPLITWISE_HARDWARE.items()}


def fit_splitwise(data_dir: Path) -> tuple[int, dict[str, IterationFit]]:
    """The knee (scanned over :data:`KNEE_GRID`, shared by both GPUs) and each GPU's constants."""
    by_gpu = fit_points(data_dir)
    scan = [(_fit_all(by_gpu, knee), knee) for knee in KNEE_GRID]
    (_, fits), knee = min(scan, key=lambda t: (t[0][0], t[1]))
    return knee, fits


def _fit_all(by_gpu: dict[str, list[Measurement]], knee: int) -> tuple[float, dict[str, IterationFit]]:
    """Total squared relative error and the constants of every GPU at one knee."""
    fits, sse = {}, 0.0
    for name, points in by_gpu.items():
        theta, err = _fit_equations(_equations(points, gpu_spec(name), knee))
        fits[name], sse = _as_fit(theta), sse + err
    return sse, fits


# -- errors of the shipped model against the measurements ------------------------------------

Errors = list[tuple[Measurement, float, float]]


def model_errors(measurements: Iterable[Measurement], fits: Mapping[str, IterationFit] | None = None,
                 knee: int = KNEE_TOKENS) -> Errors:
    """(measurement, prefill relative error, decode relative error) for each A100/H100 one.

    Predictions go through :class:`IterationModel`, the path the engine uses: the prefill
    of ``batch`` prompts against ``prompt_time`` and one decode iteration at ``batch`` with
    :func:`decode_context_tokens` against ``token_time``. ``fits`` maps catalogue GPU names
    to constants (default :data:`MEASURED`; put the H100's under ``"A100"`` to test the
    extrapolation on a GPU they were not fitted on).
    """
    fits = MEASURED if fits is None else fits
    out = []
    for m in measurements:
        if m.hardware not in SPLITWISE_HARDWARE:
            continue
        gpu = gpu_spec(SPLITWISE_HARDWARE[m.hardware])
        it = IterationModel.build(llm_spec(SPLITWISE_MODELS[m.model]), gpu, m.tensor_parallel, fits[gpu.name], knee)
        out.append((m, it.prefill_ms(m.batch, m.prompt_tokens) / m.prompt_ms - 1,
                    it.decode_ms(m.batch, decode_context_tokens(m)) / m.token_ms - 1))
    return out


def row_errors(data_dir: Path, model: str = FIT_MODEL, fits: Mapping[str, IterationFit] | None = None,
               knee: int = KNEE_TOKENS) -> Errors:
    """:func:`model_errors` of every distinct row of ``model`` (Splitwise name)."""
    return model_errors([m for m in read_measurements(data_dir) if m.model == model], fits, knee)


def point_errors(data_dir: Path, model: str = FIT_MODEL, fits: Mapping[str, IterationFit] | None = None,
                 knee: int = KNEE_TOKENS) -> Errors:
    """:func:`model_errors` of each configuration's median over its repeats."""
    points = median_points(m for m in read_measurements(data_dir) if m.model == model)
    return model_errors(points, fits, knee)


@dataclass(frozen=True)
class ErrorRow:
    """Relative errors of one (GPU, TP, phase) group of measurements."""

    gpu: str
    tp: int
    phase: str  # "prefill" (TTFT) or "decode" (TPOT)
    rows: int
    median: float
    worst: float
    worst_at: str
    within: int  # rows within the threshold


def error_summary(errors: Errors, threshold: float = 0.15) -> list[ErrorRow]:
    """Per (GPU, TP, phase): rows, median and worst relative error, rows within ``threshold``.

    Rows :func:`excluded_reason` names are left out (they are reported apart).
    """
    groups: dict[tuple[str, int, str], list[tuple[float, Measurement]]] = {}
    for m, pre, dec in errors:
        if excluded_reason(m) is None:
            groups.setdefault((m.hardware, m.tensor_parallel, "prefill"), []).append((pre, m))
            groups.setdefault((m.hardware, m.tensor_parallel, "decode"), []).append((dec, m))
    return [_summary_row(key, items, threshold) for key, items in sorted(groups.items())]


def _summary_row(key: tuple[str, int, str], items: list[tuple[float, Measurement]],
                 threshold: float) -> ErrorRow:
    errs = np.array([e for e, _ in items])
    worst_err, worst = max(items, key=lambda t: abs(t[0]))
    return ErrorRow(gpu=SPLITWISE_HARDWARE[key[0]], tp=key[1], phase=key[2], rows=len(items),
                    median=float(np.median(errs)), worst=worst_err, worst_at=_label(worst),
                    within=int(np.sum(np.abs(errs) <= threshold)))


def _label(m: Measurement) -> str:
    return f"B{m.batch} P{m.prompt_tokens} T{m.token_size}"


def _print_fit(knee: int, fits: Mapping[str, IterationFit]) -> None:
    print(f"KNEE_TOKENS = {knee}")
    for name, fit in fits.items():
        body = ", ".join(f"{f.name}={getattr(fit, f.name):.6g}" for f in fields(fit))
        print(f'    "{name}": IterationFit({body}),')


def _print_summary(title: str, errors: Errors, gpus: tuple[str, ...] = ("A100", "H100")) -> None:
    print(f"\n{title}\n| GPU | TP | phase | rows | median | worst (at) | within 15 % |\n|---|---|---|---|---|---|---|")
    for r in error_summary(errors):
        if r.gpu in gpus:
            print(f"| {r.gpu} | {r.tp} | {r.phase} | {r.rows} | {100 * r.median:+.1f} % | "
                  f"{100 * r.worst:+.1f} % ({r.worst_at}) | {r.within}/{r.rows} |")


def _print_points(title: str, errors: Errors, threshold: float = 0.15) -> None:
    print(f"\n{title}")
    for m, pre, dec in errors:
        reason = excluded_reason(m)
        if reason or abs(pre) > threshold or abs(dec) > threshold:
            print(f"  {SPLITWISE_HARDWARE[m.hardware]} TP{m.tensor_parallel} {_label(m)}: prefill {100 * pre:+.1f} % "
                  f"(measured {m.prompt_ms:.0f} ms), decode {100 * dec:+.1f} % (measured {m.token_ms:.1f} ms)"
                  + (f" [excluded: {reason}]" if reason else ""))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sim.workload.batching_model /path/to/shared/data", file=sys.stderr)
        return 2
    data_dir = Path(argv[0])
    knee, fits = fit_splitwise(data_dir)
    _print_fit(knee, fits)
    _print_summary("Llama2-70B rows, refitted constants", row_errors(data_dir, fits=fits, knee=knee))
    _print_points("Configurations (median of repeats) beyond 15 %, and the excluded ones",
                  point_errors(data_dir, fits=fits, knee=knee))
    _print_summary("BLOOM-176B rows (not fitted)", row_errors(data_dir, "bloom-176b", fits=fits, knee=knee))
    h100_only = {"A100": fits["H100"], "H100": fits["H100"]}
    _print_summary("A100 rows predicted with the H100 constants (extrapolation check)",
                   row_errors(data_dir, fits=h100_only, knee=knee), gpus=("A100",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
