"""Poisson arrivals whose rate follows a profile over time, split between origin regions.

Users in origin region ``o`` send requests at rate ``rate_per_s * w_o * profile_o(t)``,
where ``w_o`` is the origin's normalised weight and ``profile_o`` the workload's profile (a
multiplier; none = 1) evaluated like a load model (:func:`sim.models.load.load_at`). A
diurnal profile without its own ``utc_offset_h`` follows each origin's local clock, so
Tokyo's evening peak and Virginia's arrive at different UTC hours.

The non-homogeneous process is generated exactly by *thinning* (Lewis and Shedler): in each
time chunk draw a homogeneous process at a rate ``peak`` that bounds the true rate on the
chunk, and keep a point at ``t`` with probability ``rate(t) / peak``. Chunks (one hour)
keep memory bounded and the bound tight; the bound comes from :func:`multiplier_bound`,
which is a true maximum for every profile kind.

Public: ``poisson_arrivals``, ``thinned_poisson``, ``multiplier_bound``,
``origin_profile``, ``CHUNK_S``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.models.load import load_at
from sim.scenario.model import DiurnalLoad, PiecewiseLoad, PoissonArrival, StepLoad

__all__ = ["poisson_arrivals", "thinned_poisson", "multiplier_bound", "origin_profile", "CHUNK_S"]

CHUNK_S = 3600.0
RateFn = Callable[[np.ndarray], np.ndarray]


def origin_profile(profile: object | None, utc_offset_h: float) -> object | None:
    """The profile as one origin sees it: a diurnal one without an offset takes the origin's."""
    if isinstance(profile, DiurnalLoad) and profile.utc_offset_h is None:
        return profile.model_copy(update={"utc_offset_h": utc_offset_h})
    return profile


def multiplier(profile: object | None, t_s: np.ndarray) -> np.ndarray:
    """The profile's rate multiplier at ``t_s`` (1 without a profile)."""
    return np.ones_like(t_s, dtype=float) if profile is None else load_at(profile, t_s)


def multiplier_bound(profile: object | None, start_s: float, end_s: float) -> float:
    """An upper bound of the multiplier on ``[start_s, end_s]``.

    Linear, step and piecewise profiles are piecewise linear, so their maximum on an
    interval lies at an end or at a breakpoint inside; a diurnal one peaks at mean*(1+amp).
    """
    if profile is None:
        return 1.0
    if isinstance(profile, DiurnalLoad):
        return profile.mean * (1.0 + profile.amplitude)
    inside = [b for b in _breakpoints(profile) if start_s < b < end_s]
    return float(np.max(load_at(profile, np.array([start_s, end_s, *inside]))))


def _breakpoints(profile: object) -> list[float]:
    if isinstance(profile, StepLoad):
        return [profile.at]
    if isinstance(profile, PiecewiseLoad):
        return [p.at for p in profile.points]
    return []


def thinned_poisson(rate: RateFn, bound: Callable[[float, float], float], duration_s: float,
                    rng: np.random.Generator, chunk_s: float = CHUNK_S) -> np.ndarray:
    """Sorted event times of a Poisson process of intensity ``rate(t)`` on ``[0, duration_s)``."""
    pieces = [np.empty(0)]
    for k in range(math.ceil(duration_s / chunk_s)):
        start, end = k * chunk_s, min((k + 1) * chunk_s, duration_s)
        pieces.append(_thin_chunk(rate, bound(start, end), start, end, rng))
    return np.concatenate(pieces)


def _thin_chunk(rate: RateFn, peak: float, start: float, end: float,
                rng: np.random.Generator) -> np.ndarray:
    if peak <= 0.0:
        return np.empty(0)
    n = rng.poisson(peak * (end - start))
    t = np.sort(rng.uniform(start, end, n))
    r = rate(t)
    # Thinning is exact only under a true bound; a violation is a bug, never a user error.
    if n and r.max() > peak * (1.0 + 1e-9):
        raise RuntimeError(f"rate {r.max():g} exceeds its bound {peak:g} on [{start:g}, {end:g})")
    return t[rng.random(n) * peak < r]


def poisson_arrivals(arrival: PoissonArrival, weights: np.ndarray, utc_offsets_h: np.ndarray,
                     duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times and origin indices (int16), sorted by time, of one Poisson workload.

    ``weights`` (normalised) and ``utc_offsets_h`` are per region in world order.
    """
    times, origins = [np.empty(0)], [np.empty(0, dtype=np.int16)]
    for o in np.flatnonzero(weights > 0):
        t = _origin_times(arrival, float(weights[o]), float(utc_offsets_h[o]), duration_s, rng)
        times.append(t)
        origins.append(np.full(len(t), o, dtype=np.int16))
    t, origin = np.concatenate(times), np.concatenate(origins)
    if t.size > 1 and not np.all(t[1:] >= t[:-1]):  # one origin's times are sorted already
        order = np.argsort(t, kind="stable")
        t, origin = t[order], origin[order]
    return t, origin


def _origin_times(arrival: PoissonArrival, weight: float, utc_offset_h: float,
                  duration_s: float, rng: np.random.Generator) -> np.ndarray:
    profile = origin_profile(arrival.profile, utc_offset_h)
    base = arrival.rate_per_s * weight
    return thinned_poisson(lambda t: base * multiplier(profile, t),
                           lambda a, b: base * multiplier_bound(profile, a, b), duration_s, rng)
