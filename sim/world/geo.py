"""Geography of the world: great-circle distance and the distance -> RTT fit.

A region pair with no measured round-trip time still needs one. Light in fibre covers about
200 km per ms, so a perfectly straight cable would give 0.01 ms of RTT per km of great-circle
distance; real paths are longer (cables follow coasts and landing points, traffic detours
through hubs) and every hop adds queueing and processing. We therefore predict RTT with a
straight line ``rtt = a + b * km`` fitted by ordinary least squares to the measured p50
inter-region RTTs of Azure and AWS. ``b / 0.01`` is the average *path inflation* over fibre
at the speed of light; ``a`` soaks up fixed per-path costs and the routing detours that a
distance model cannot see. See ``docs/world.md`` for the fit's residuals and weak spots.

Public: ``great_circle_km``, ``fitted_rtt_ms``, ``fit_rtt_model``, ``RttFit``,
``EARTH_RADIUS_KM``, ``FIBRE_MS_PER_KM``, and the ``RTT_FIT_*`` constants.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "EARTH_RADIUS_KM", "FIBRE_MS_PER_KM", "RTT_FIT_INTERCEPT_MS", "RTT_FIT_MS_PER_KM",
    "RTT_FIT_MAE_MS", "RTT_FIT_RMSE_MS", "RTT_FIT_R2", "RTT_FIT_P90_ABS_ERROR_MS",
    "RTT_FIT_N_PAIRS", "RttFit", "great_circle_km", "fitted_rtt_ms", "fit_rtt_model",
]

EARTH_RADIUS_KM = 6371.0  # IUGG mean Earth radius
# Round trip at c / 1.468 (refractive index of silica fibre): 2 / 204,000 km/s ~ 0.0098 ms/km.
FIBRE_MS_PER_KM = 0.01

# Least-squares fit of p50 RTT on great-circle distance over 727 unordered region pairs:
# 231 Azure pairs (azure_interregion_rtt_p50_2025-06_matrix.csv + azure_region_coordinates.csv)
# and 496 AWS pairs (aws_interregion_rtt_p50_1y_cloudping.json, mean of both directions,
# + aws_region_coordinates.csv), all from /work/shared/data. Reproduce with
#     python -m sim.world.derive /work/shared/data --out /tmp/world
# which prints these figures; tests/validation/test_rtt_fit.py refits and compares.
RTT_FIT_INTERCEPT_MS = 23.62427
RTT_FIT_MS_PER_KM = 0.01549995  # path inflation 1.55x over light in fibre
RTT_FIT_MAE_MS = 31.08
RTT_FIT_RMSE_MS = 44.39
RTT_FIT_R2 = 0.7014
RTT_FIT_P90_ABS_ERROR_MS = 66.13
RTT_FIT_N_PAIRS = 727


@dataclass(frozen=True)
class RttFit:
    """A fitted line ``rtt_ms = intercept_ms + ms_per_km * km`` and how well it fits."""

    intercept_ms: float
    ms_per_km: float
    mae_ms: float
    rmse_ms: float
    r2: float
    p90_abs_error_ms: float
    n_pairs: int

    @property
    def path_inflation(self) -> float:
        """Slope relative to a straight fibre at the speed of light in glass."""
        return self.ms_per_km / FIBRE_MS_PER_KM

    def predict_ms(self, distance_km: float) -> float:
        return self.intercept_ms + self.ms_per_km * distance_km


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km between two points given in decimal degrees."""
    phi1, lam1, phi2, lam2 = np.radians([lat1, lon1, lat2, lon2])
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    # min() guards against h creeping past 1 by rounding for antipodal points.
    return float(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(min(h, 1.0))))


def fitted_rtt_ms(distance_km: float) -> float:
    """RTT in ms that the shipped fit predicts for a great-circle distance in km."""
    if distance_km < 0:
        raise ValueError(f"distance_km must be >= 0, got {distance_km}")
    return RTT_FIT_INTERCEPT_MS + RTT_FIT_MS_PER_KM * distance_km


def fit_rtt_model(distances_km: np.ndarray, rtts_ms: np.ndarray) -> RttFit:
    """Ordinary least-squares line of ``rtts_ms`` on ``distances_km``, with error figures."""
    x = np.asarray(distances_km, dtype=float)
    y = np.asarray(rtts_ms, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"need two equal 1-D arrays of >= 3 pairs, got {x.shape} and {y.shape}")
    design = np.column_stack([np.ones_like(x), x])
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (intercept + slope * x)
    return RttFit(
        intercept_ms=float(intercept), ms_per_km=float(slope),
        mae_ms=float(np.mean(np.abs(residual))),
        rmse_ms=float(np.sqrt(np.mean(residual ** 2))),
        r2=float(1 - np.sum(residual ** 2) / np.sum((y - y.mean()) ** 2)),
        p90_abs_error_ms=float(np.percentile(np.abs(residual), 90)),
        n_pairs=int(x.size))
