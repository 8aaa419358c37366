"""Service-time models: how long a request holds one serving slot, drawn per request.

A workload's ``service`` is one of:

* ``constant`` - every request takes ``value_s``;
* ``exponential`` - memoryless, mean ``mean_s`` (the M/M/c textbook case);
* ``lognormal`` - mean ``mean_s`` and coefficient of variation ``cv``: the underlying normal
  has sigma^2 = ln(1 + cv^2) and mu = ln(mean) - sigma^2 / 2, so the *lognormal's* mean is
  exactly ``mean_s``;
* ``empirical`` - a uniform draw among measured ``samples_s``;
* ``tokens`` - no time here (NaN): the time depends on the GPU of the pool that serves the
  request, so the engine applies :mod:`sim.workload.token_model`. Only the token counts are
  drawn, from a lognormal of the given mean and cv (cv 0 = constant), rounded, at least 1.

:func:`service_times` gives the engine, per pool, what it evaluates per request, and
:func:`expected_service_s` the mean a routing policy may plan with.

Public: ``draw_service_s``, ``draw_token_counts``, ``lognormal_params``, ``expected_service_s``,
``service_times``.
"""
from __future__ import annotations

import math

import numpy as np

from sim.scenario.model import (
    ConstantService,
    EmpiricalService,
    ExponentialService,
    LognormalService,
    TokenCount,
    TokenService,
)
from sim.workload.token_model import TokenTimes, token_coefficients
from sim.world.catalogue import GpuSpec

__all__ = ["draw_service_s", "draw_token_counts", "lognormal_params", "expected_service_s", "service_times"]


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the normal whose exponential has this mean and cv."""
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


def draw_service_s(service: object, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pool-independent service times in seconds (NaN for a token-based service)."""
    if isinstance(service, ConstantService):
        return np.full(n, service.value_s)
    if isinstance(service, ExponentialService):
        return rng.exponential(service.mean_s, n)
    if isinstance(service, LognormalService):
        mu, sigma = lognormal_params(service.mean_s, service.cv)
        return rng.lognormal(mu, sigma, n)
    if isinstance(service, EmpiricalService):
        return rng.choice(np.asarray(service.samples_s, dtype=float), n)
    if isinstance(service, TokenService):
        return np.full(n, np.nan)
    raise TypeError(f"unknown service model {type(service).__name__}")


def draw_token_counts(count: TokenCount, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` token counts (int32, >= 1): lognormal with ``count``'s mean and cv."""
    if count.cv == 0:
        values = np.full(n, count.mean)
    else:
        mu, sigma = lognormal_params(count.mean, count.cv)
        values = rng.lognormal(mu, sigma, n)
    # Clip before the cast: a heavy tail must not wrap around int32.
    return np.clip(np.rint(values), 1, np.iinfo(np.int32).max).astype(np.int32)


def service_times(service: object, gpu: GpuSpec) -> TokenTimes | None:
    """How a request's service time on ``gpu`` is found: token coefficients in seconds, or
    None when it was drawn per request (the pool does not matter)."""
    if isinstance(service, TokenService):
        return TokenTimes.of(token_coefficients(service, gpu))
    return None


def expected_service_s(service: object, gpu: GpuSpec) -> float:
    """Mean service time of one request on ``gpu``."""
    if isinstance(service, ConstantService):
        return service.value_s
    if isinstance(service, (ExponentialService, LognormalService)):
        return service.mean_s
    if isinstance(service, EmpiricalService):
        return float(np.mean(service.samples_s))
    if isinstance(service, TokenService):
        times = service_times(service, gpu)
        assert times is not None
        return float(times.service_s(service.input_tokens.mean, service.output_tokens.mean))
    raise TypeError(f"unknown service model {type(service).__name__}")
