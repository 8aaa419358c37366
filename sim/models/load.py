"""Load models L(t): the seed's linear model and the profiles planners need.

All functions are pure and vectorised over ``t_s`` (seconds since the start of the run).
The seed's model is ``L(t) = L0 + alpha * (t - T0)`` with t and T0 in **hours**, as in the
seed's hourly tables; ``alpha`` is in load units per hour. Diurnal profiles follow a local
clock: ``hour = (t_h + utc_offset_h) mod 24``.

The ``observed`` model closes the seed's feedback loop: :class:`ObservedRate` estimates the
arrival rate from the requests actually counted, with an exponentially weighted moving
average of time constant ``window``.

Public: ``load_at``, ``linear_load``, ``diurnal_factor``, ``ObservedRate``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.scenario.model import ConstantLoad, DiurnalLoad, LinearLoad, PiecewiseLoad, StepLoad
from sim.units import HOUR

__all__ = ["load_at", "linear_load", "diurnal_factor", "ObservedRate"]


def linear_load(t_h: np.ndarray | float, L0: float, alpha: float, T0: float) -> np.ndarray | float:
    """The seed's L(t) = L0 + alpha * (t - T0), t in hours."""
    return L0 + alpha * (np.asarray(t_h, dtype=float) - T0)


def diurnal_factor(t_s: np.ndarray | float, amplitude: float, peak_hour: float,
                   utc_offset_h: float) -> np.ndarray:
    """1 + amplitude * cos(2 pi (local_hour - peak_hour) / 24); mean 1 over a day."""
    local_h = (np.asarray(t_s, dtype=float) / HOUR + utc_offset_h) % 24.0
    return 1.0 + amplitude * np.cos(2.0 * np.pi * (local_h - peak_hour) / 24.0)


def load_at(model: object, t_s: np.ndarray | float) -> np.ndarray:
    """Evaluate any load model of the scenario at ``t_s`` seconds (never negative)."""
    t = np.asarray(t_s, dtype=float)
    if isinstance(model, LinearLoad):
        value = linear_load(t / HOUR, model.L0, model.alpha, model.T0)
    elif isinstance(model, ConstantLoad):
        value = np.full_like(t, model.L)
    elif isinstance(model, DiurnalLoad):
        value = model.mean * diurnal_factor(t, model.amplitude, model.peak_hour, model.utc_offset_h or 0.0)
    elif isinstance(model, StepLoad):
        value = np.where(t < model.at, model.before, model.after)
    elif isinstance(model, PiecewiseLoad):
        xs = [p.at for p in model.points]
        value = np.interp(t, xs, [p.L for p in model.points])
    else:
        raise TypeError(f"unknown load model {type(model).__name__}")
    # A linear model with negative alpha would go below zero; load cannot.
    return np.maximum(np.asarray(value, dtype=float), 0.0)


class ObservedRate:
    """EWMA estimate of an arrival rate (per second) from counts over successive intervals.

    Over an interval of length dt with n arrivals the estimate moves towards n / dt with
    weight 1 - exp(-dt / window), so old intervals fade with time constant ``window``."""

    def __init__(self, window_s: float, initial_rate: float = 0.0):
        self.window_s = window_s
        self.rate = initial_rate
        self.last_s: float | None = None

    def update(self, now_s: float, count_between: Callable[[float, float], float]) -> float:
        """Fold in the arrivals since the previous update; return the estimate."""
        if self.last_s is not None and now_s > self.last_s:
            dt = now_s - self.last_s
            weight = 1.0 - np.exp(-dt / self.window_s)
            self.rate += weight * (count_between(self.last_s, now_s) / dt - self.rate)
        self.last_s = now_s
        return float(self.rate)
