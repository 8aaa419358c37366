"""What one request costs a pool, as moments and distributions the fluid queues use.

For a slot pool (no ``serving`` section) a request holds one slot for its service time,
the workload's model on the pool's GPU (:func:`sim.workload.service.expected_service_s`,
the same formula the exact engine evaluates per request). The fluid model needs its mean
and its squared coefficient of variation (SCV): constant 0, exponential 1, lognormal
``cv^2``, empirical from the samples, tokens ``(p^2 Var(in) + d^2 Var(out)) / mean^2``
(``p``, ``d`` the prefill and decode seconds per token; the counts are independent
lognormals, their rounding to whole tokens is ignored). For token workloads the first
token comes after ``base + p in + d`` (the exact engine's rule for slot pools) and the
time per output token is ``d``.

Distributions (for percentiles and SLO attainment) are the exact law for constant,
exponential and empirical services and a lognormal of the same mean and SCV otherwise
(tokens: a sum of scaled lognormals, itself close to lognormal).

Public: ``ServiceLaw``, ``slot_laws``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from sim.scenario.model import (
    ConstantService,
    EmpiricalService,
    ExponentialService,
    InferenceWorkload,
    LognormalService,
    TokenService,
)
from sim.workload.service import expected_service_s, service_times
from sim.world import PoolInfo

__all__ = ["ServiceLaw", "slot_laws", "token_moments"]


@dataclass(frozen=True)
class ServiceLaw:
    """A positive random time: its mean (s), SCV and shape (``constant``, ``exponential``,
    ``lognormal``, ``empirical`` with ``samples_s``)."""

    mean_s: float
    scv: float
    shape: str
    samples_s: tuple[float, ...] = ()

    def cdf(self, t_s: np.ndarray) -> np.ndarray:
        """``P(S <= t)``."""
        t = np.asarray(t_s, dtype=float)
        if self.shape == "constant" or self.scv <= 0:
            return (t >= self.mean_s).astype(float)
        if self.shape == "exponential":
            return np.where(t > 0, -np.expm1(-np.maximum(t, 0.0) / self.mean_s), 0.0)
        if self.shape == "empirical":
            ordered = np.sort(np.asarray(self.samples_s))
            return np.searchsorted(ordered, t, side="right") / len(ordered)
        sigma = math.sqrt(math.log1p(self.scv))
        mu = math.log(self.mean_s) - sigma * sigma / 2.0
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(t, 1e-300)) - mu) / (sigma * math.sqrt(2.0))
        return np.where(t > 0, 0.5 * special.erfc(-z), 0.0)

    def pmf(self, grid_s: np.ndarray) -> np.ndarray:
        """Probability of each grid cell ``[x_i - h/2, x_i + h/2)`` (grid spacing ``h``)."""
        h = grid_s[1] - grid_s[0]
        edges = np.concatenate((grid_s - h / 2.0, [grid_s[-1] + h / 2.0]))
        mass = np.diff(self.cdf(edges))
        mass[-1] += 1.0 - self.cdf(edges[-1:])[0]  # the tail beyond the grid sits in its last cell
        return mass


def token_moments(count) -> tuple[float, float]:
    """Mean and variance of a token count (lognormal with ``count.mean`` and ``count.cv``)."""
    return float(count.mean), float((count.cv * count.mean) ** 2)


def _prefix_moments(wl: InferenceWorkload) -> tuple[float, float]:
    """Mean and variance of the shared prompt a request opens with (0 without one)."""
    spec = wl.shared_prefix
    if spec is None:
        return 0.0, 0.0
    mean, var = token_moments(spec.tokens)
    first = spec.share * mean
    return first, spec.share * (var + mean * mean) - first * first


def _law(mean: float, var: float) -> ServiceLaw:
    scv = var / (mean * mean) if mean > 0 else 0.0
    return ServiceLaw(mean, scv, "lognormal" if scv > 0 else "constant")


def slot_laws(wl: InferenceWorkload, pool: PoolInfo) -> tuple[ServiceLaw, ServiceLaw | None, float]:
    """The service time on a slot pool, the service part of the time to first token (None
    without tokens) and the time per output token, s (NaN without tokens)."""
    service = wl.service
    if isinstance(service, ConstantService):
        return ServiceLaw(service.value_s, 0.0, "constant"), None, math.nan
    if isinstance(service, ExponentialService):
        return ServiceLaw(service.mean_s, 1.0, "exponential"), None, math.nan
    if isinstance(service, LognormalService):
        return ServiceLaw(service.mean_s, service.cv ** 2, "lognormal"), None, math.nan
    if isinstance(service, EmpiricalService):
        samples = np.asarray(service.samples_s, dtype=float)
        return (ServiceLaw(float(samples.mean()), float(samples.var() / samples.mean() ** 2), "empirical",
                           tuple(service.samples_s)), None, math.nan)
    assert isinstance(service, TokenService)
    times = service_times(service, pool.gpu)
    assert times is not None
    in_mean, in_var = token_moments(service.input_tokens)
    pre_mean, pre_var = _prefix_moments(wl)
    out_mean, out_var = token_moments(service.output_tokens)
    p, d = times.prefill_s_per_token, times.decode_s_per_token
    mean = expected_service_s(service, pool.gpu) + p * pre_mean
    var = p * p * (in_var + pre_var) + d * d * out_var
    first = times.base_s + p * (in_mean + pre_mean) + d
    return _law(mean, var), _law(first, p * p * (in_var + pre_var)), d
