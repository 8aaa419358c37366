"""Steady-state queueing formulas for a pool of ``c`` identical servers (pure numpy/scipy).

The fluid mode (:mod:`sim.fluid`) and anyone who wants a quick answer without simulating
use these. Every function takes arrays and broadcasts; ``c`` may be fractional (a pool
active for part of an interval), through the continuous extension of Erlang B (Jagerman
1974): ``B(c, a) = a^c e^-a / Gamma(c + 1) / Q(c + 1, a)``, with ``Q`` the regularised upper
incomplete gamma function, which equals the textbook sum at integer ``c``.

- :func:`erlang_b` - blocking probability of M/M/c/c;
- :func:`erlang_c` - probability that an arrival waits in M/M/c (``a < c``; 1 otherwise);
- :func:`mmc_wait_s` - mean wait in queue of M/M/c, ``C(c, a) / (c mu - lambda)``;
- :func:`mgc_wait_s` - Allen-Cunneen's M/G/c (G/G/c) approximation: the M/M/c wait times
  ``(ca2 + cs2) / 2`` (``ca2`` 1 for Poisson arrivals, ``cs2`` the service time's squared
  coefficient of variation); exact for M/M/c, and for M/G/1 it is Pollaczek-Khinchine;
- :func:`wait_exceeds` - ``P(W > t)``: an atom at 0 of mass ``1 - C`` and an exponential
  tail of mean ``W / C`` (exact for M/M/c; for M/G/c the tail keeps the Allen-Cunneen mean).

Public: ``erlang_b``, ``erlang_c``, ``mmc_wait_s``, ``mgc_wait_s``, ``wait_exceeds``.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = ["erlang_b", "erlang_c", "mmc_wait_s", "mgc_wait_s", "wait_exceeds"]

Array = np.ndarray
ArrayLike = npt.ArrayLike


def erlang_b(c: ArrayLike, a: ArrayLike) -> Array:
    """Erlang B ``B(c, a)`` for ``c`` servers (>= 0, may be fractional) and ``a`` Erlangs."""
    c, a = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(a, dtype=float))
    out = np.ones(c.shape)
    busy = (a > 0) & (c > 0)
    cb, ab = c[busy], a[busy]
    log_pmf = cb * np.log(ab) - ab - special.gammaln(cb + 1.0)
    tail = special.gammaincc(cb + 1.0, ab)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        value = np.exp(log_pmf) / tail
    out[busy] = np.where(tail > 0, np.minimum(value, 1.0), 1.0)
    out[(a <= 0) & (c > 0)] = 0.0
    return out


def erlang_c(c: ArrayLike, a: ArrayLike) -> Array:
    """P(an arrival waits) in M/M/c with offered load ``a = lambda / mu`` (1 when a >= c)."""
    c, a = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(a, dtype=float))
    b = erlang_b(c, a)
    stable = a < c
    out = np.ones(c.shape)
    denominator = c - a * (1.0 - b)
    out[stable] = c[stable] * b[stable] / denominator[stable]
    return np.clip(out, 0.0, 1.0)


def mmc_wait_s(c: ArrayLike, a: ArrayLike, mean_service_s: ArrayLike) -> Array:
    """Mean time in queue of M/M/c, s (inf when ``a >= c``)."""
    c, a, s = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(a, dtype=float),
                                  np.asarray(mean_service_s, dtype=float))
    out = np.full(c.shape, np.inf)
    stable = a < c
    out[stable] = erlang_c(c[stable], a[stable]) * s[stable] / (c[stable] - a[stable])
    return out


def mgc_wait_s(c: ArrayLike, a: ArrayLike, mean_service_s: ArrayLike, service_scv: ArrayLike,
               arrival_scv: ArrayLike = 1.0) -> Array:
    """Allen-Cunneen mean wait in queue of G/G/c, s: the M/M/c wait x ``(ca2 + cs2) / 2``."""
    scale = (np.asarray(arrival_scv, dtype=float) + np.asarray(service_scv, dtype=float)) / 2.0
    return np.asarray(mmc_wait_s(c, a, mean_service_s) * scale)


def wait_exceeds(t_s: ArrayLike, p_wait: ArrayLike, mean_wait_s: ArrayLike) -> Array:
    """``P(W > t)`` for a wait with ``P(W > 0) = p_wait`` and mean ``mean_wait_s``: an
    exponential tail of mean ``mean_wait_s / p_wait`` (the M/M/c law)."""
    t, p, w = np.broadcast_arrays(np.asarray(t_s, dtype=float), np.asarray(p_wait, dtype=float),
                                  np.asarray(mean_wait_s, dtype=float))
    out = np.zeros(t.shape)
    has = (p > 0) & (w > 0)
    out[has] = p[has] * np.exp(-t[has] * p[has] / w[has])
    out[~has & (t < 0)] = 1.0
    return out
