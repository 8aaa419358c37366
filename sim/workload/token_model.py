"""The token service model: how long one request holds a serving slot, by GPU type.

A language-model request is served in two phases. *Prefill* reads the whole prompt in one
pass and is compute-bound, so it costs a time per input token; *decode* emits one output
token per pass and is memory-bandwidth-bound (every pass re-reads the weights), so it
costs a time per output token. With a fixed per-request overhead::

    service_s = (base_ms + prefill_ms_per_token * input_tokens
                 + decode_ms_per_token * output_tokens) / 1000

The default coefficients are fitted to measured Llama2-70B latencies from the Splitwise
performance model (``splitwise_perf_model.csv``): one 8-GPU tensor-parallel replica
serving one request at a time (tensor_parallel 8, batch size 1), on A100-80GB and
H100-80GB. Prefill is a least-squares line of ``prompt_time`` against ``prompt_size`` over
the token_size-128 rows with prompts of 128..4096 tokens (five repeats at each size; the
range holds 98 % of the Azure conversation prompts and 86 % of the code prompts, and
beyond it attention's quadratic cost bends the curve upwards); decode is the mean
``token_time`` over every distinct row. Other GPUs are extrapolated from the H100: prefill by
the ratio of dense BF16 TFLOPS, decode by the ratio of memory bandwidth. The fit is kept
below as constants; ``python -m sim.workload.token_model /path/to/shared/data`` reproduces
it. Simulation never reads the measured data.

Public: ``TokenTimes``, ``token_coefficients``, ``token_service_s``, ``default_coefficients``,
``MEASURED``, ``REFERENCE_GPU``; for the offline fit ``read_splitwise``, ``fit_prefill``,
``fit_splitwise``, ``prefill_table``.
"""
from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from sim.scenario.model import TokenCoefficients, TokenService
from sim.world.catalogue import GpuSpec, gpu_spec

__all__ = ["TokenTimes", "token_coefficients", "token_service_s", "default_coefficients", "MEASURED",
           "REFERENCE_GPU", "read_splitwise", "fit_prefill", "fit_splitwise", "prefill_table",
           "SPLITWISE_FILE", "PREFILL_FIT_MAX_PROMPT"]

SPLITWISE_FILE = "splitwise_perf_model.csv"
# Splitwise hardware label -> catalogue short name.
_HARDWARE = {"a100-80gb": "A100", "h100-80gb": "H100"}
PREFILL_FIT_MAX_PROMPT = 4096

# Output of `python -m sim.workload.token_model /work/shared/data` (Llama2-70B, TP8, batch 1).
MEASURED: Mapping[str, TokenCoefficients] = MappingProxyType({
    "A100": TokenCoefficients(prefill_ms_per_token=0.1479, decode_ms_per_token=45.13, base_ms=19.28),
    "H100": TokenCoefficients(prefill_ms_per_token=0.08169, decode_ms_per_token=30.50, base_ms=16.53),
})
REFERENCE_GPU = "H100"


@dataclass(frozen=True)
class TokenTimes:
    """The token model's coefficients in seconds: the one place its formula is evaluated."""

    base_s: float
    prefill_s_per_token: float
    decode_s_per_token: float

    @classmethod
    def of(cls, coeff: TokenCoefficients) -> TokenTimes:
        return cls(coeff.base_ms / 1000, coeff.prefill_ms_per_token / 1000, coeff.decode_ms_per_token / 1000)

    def service_s(self, input_tokens, output_tokens):
        """Service time of a request (or arrays of them) with these token counts."""
        return self.base_s + self.prefill_s_per_token * input_tokens + self.decode_s_per_token * output_tokens


def token_service_s(coeff: TokenCoefficients, input_tokens: np.ndarray,
                    output_tokens: np.ndarray) -> np.ndarray:
    """Service time in seconds of requests with these token counts on one replica."""
    return TokenTimes.of(coeff).service_s(np.asarray(input_tokens, dtype=float),
                                         np.asarray(output_tokens, dtype=float))


def default_coefficients(gpu: GpuSpec) -> TokenCoefficients:
    """Measured coefficients for A100/H100; any other GPU scaled from the H100.

    Assumption: prefill time scales with 1/peak compute and decode time with 1/memory
    bandwidth, at the same efficiency as the reference GPU reaches.
    """
    if gpu.name in MEASURED:
        return MEASURED[gpu.name]
    ref, ref_spec = MEASURED[REFERENCE_GPU], gpu_spec(REFERENCE_GPU)
    return TokenCoefficients(
        prefill_ms_per_token=ref.prefill_ms_per_token * ref_spec.bf16_tflops / gpu.bf16_tflops,
        decode_ms_per_token=ref.decode_ms_per_token * ref_spec.memory_bw_tb_s / gpu.memory_bw_tb_s,
        base_ms=ref.base_ms)


def token_coefficients(service: TokenService, gpu: GpuSpec) -> TokenCoefficients:
    """The scenario's coefficients for ``gpu`` (keyed by short name or alias), else the default."""
    for key, coeff in service.coefficients.items():
        if key == gpu.name or _canonical(key) == gpu.name:
            return coeff
    return default_coefficients(gpu)


def _canonical(name: str) -> str | None:
    try:
        return gpu_spec(name).name
    except KeyError:
        return None


# -- the fit (offline; run as a module) ----------------------------------------------------

def read_splitwise(data_dir: Path) -> list[dict[str, str]]:
    """Distinct Llama2-70B rows at tensor_parallel 8 and batch size 1.

    The file repeats the (prompt 512, tokens 128) runs three times; duplicates are dropped
    so that point is not weighted thrice.
    """
    with (Path(data_dir) / SPLITWISE_FILE).open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == "llama2-70b"
                and r["tensor_parallel"] == "8" and r["batch_size"] == "1"]
    seen: dict[tuple, dict[str, str]] = {}
    for r in rows:
        seen.setdefault(tuple(r.values()), r)
    return list(seen.values())


def fit_prefill(prompt_size: np.ndarray, prompt_ms: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope, intercept) with the intercept held >= 0.

    A negative intercept is unphysical (and the schema forbids it); the constrained optimum
    is then the line through the origin.
    """
    slope, intercept = np.polyfit(prompt_size, prompt_ms, 1)
    if intercept < 0:
        slope, intercept = float(prompt_size @ prompt_ms / (prompt_size @ prompt_size)), 0.0
    return float(slope), float(intercept)


def fit_splitwise(data_dir: Path) -> dict[str, dict[str, float]]:
    """Coefficients and fit errors per measured GPU, from the Splitwise performance data."""
    rows = read_splitwise(data_dir)
    fits = {}
    for label, name in _HARDWARE.items():
        mine = [r for r in rows if r["hardware"] == label]
        pre = [r for r in mine if r["token_size"] == "128"
               and int(r["prompt_size"]) <= PREFILL_FIT_MAX_PROMPT]
        x = np.array([float(r["prompt_size"]) for r in pre])
        y = np.array([float(r["prompt_time"]) for r in pre])
        slope, intercept = fit_prefill(x, y)
        residual = y - (intercept + slope * x)
        decode = np.array([float(r["token_time"]) for r in mine])
        fits[name] = {
            "prefill_ms_per_token": slope, "base_ms": intercept,
            "decode_ms_per_token": float(decode.mean()),
            "prefill_rmse_ms": float(np.sqrt(np.mean(residual ** 2))),
            "prefill_max_abs_err_ms": float(np.max(np.abs(residual))),
            "decode_std_ms": float(decode.std()),
            "rows": len(mine),
        }
    return fits


def prefill_table(data_dir: Path, name: str, coeff: TokenCoefficients) -> list[tuple[int, float, float]]:
    """(prompt_size, mean measured prompt_time, fitted prefill) per prompt size, ms."""
    label = {v: k for k, v in _HARDWARE.items()}[name]
    rows = [r for r in read_splitwise(data_dir) if r["hardware"] == label and r["token_size"] == "128"]
    sizes = sorted({int(r["prompt_size"]) for r in rows})
    return [(p, float(np.mean([float(r["prompt_time"]) for r in rows if int(r["prompt_size"]) == p])),
             coeff.base_ms + coeff.prefill_ms_per_token * p) for p in sizes]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sim.workload.token_model /path/to/shared/data", file=sys.stderr)
        return 2
    data_dir = Path(argv[0])
    for name, fit in fit_splitwise(data_dir).items():
        print(name, " ".join(f"{k}={v:.4g}" for k, v in fit.items()))
        coeff = TokenCoefficients(**{k: fit[k] for k in TokenCoefficients.model_fields})
        for size, measured, fitted in prefill_table(data_dir, name, coeff):
            print(f"  prompt {size:5d}: measured {measured:7.1f} ms, fitted {fitted:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
