"""Fluid demand: expected arrival rates per step, origin and workload, from the profiles.

A Poisson workload's users in origin ``o`` send ``rate_per_s x w_o x profile_o(t)``
requests per second (:mod:`sim.workload.arrivals`: the same weights, the same per-origin
profile). The fluid model needs the mean of that rate over each time step, the integral
divided by the width, taken with the midpoint rule on ``_SAMPLES`` points a step (exact
for constant and linear profiles, within 0.1 % for a day-long cosine on 5-minute steps;
a step profile's jump is located to 1/``_SAMPLES`` of a step).

Public: ``Demand``, ``step_edges``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sim.errors import UsageError
from sim.metrics.signals import bucket_edges
from sim.scenario.model import PoissonArrival, Scenario
from sim.workload.arrivals import multiplier, origin_profile
from sim.world import World

__all__ = ["Demand", "step_edges", "MAX_STEP_S"]

_SAMPLES = 32
MAX_STEP_S = 300.0  # a fluid step is at most this long, and never crosses a bucket edge


def step_edges(scenario: Scenario) -> np.ndarray:
    """Step edges: every bucket edge and the warm-up, steps no longer than ``MAX_STEP_S``."""
    end = float(scenario.duration)
    buckets = bucket_edges(0.0, end, scenario.metrics.bucket)
    fine = bucket_edges(0.0, end, min(MAX_STEP_S, scenario.metrics.bucket))
    extra = [scenario.warmup] if 0.0 < scenario.warmup < end else []
    return np.unique(np.concatenate((buckets, fine, extra)))


@dataclass(frozen=True)
class Demand:
    """``rate[k, o, w]``: mean arrival rate (requests/s) over step ``k`` from origin ``o`` of
    workload ``w``; ``edges`` the step edges."""

    edges: np.ndarray
    rate: np.ndarray

    @classmethod
    def of(cls, scenario: Scenario, world: World) -> Demand:
        edges = step_edges(scenario)
        names = [r.name for r in world.regions]
        offsets = [r.utc_offset_h for r in world.regions]
        rate = np.zeros((len(edges) - 1, len(names), len(scenario.inference)))
        fractions = (np.arange(_SAMPLES) + 0.5) / _SAMPLES
        points = edges[:-1, None] + np.diff(edges)[:, None] * fractions[None, :]
        for w, wl in enumerate(scenario.inference):
            if not isinstance(wl.arrival, PoissonArrival):
                raise UsageError(f"inference[{w}].arrival: fidelity fluid needs Poisson arrivals "
                                 f"(a {wl.arrival.process} replay is simulated exactly; run it with fidelity exact)")
            total = sum(wl.origin.values())
            for name, weight in wl.origin.items():
                o = names.index(name)
                profile = origin_profile(wl.arrival.profile, offsets[o])
                mean = multiplier(profile, points.ravel()).reshape(points.shape).mean(axis=1)
                rate[:, o, w] += wl.arrival.rate_per_s * weight / total * mean
        return cls(edges, rate)

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    def counts(self) -> np.ndarray:
        """Expected arrivals per step, origin and workload."""
        return self.rate * self.widths[:, None, None]

    @cached_property
    def _cumulative(self) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(self.counts().sum(axis=(1, 2)))))

    def arrivals_between(self, a: float, b: float) -> int:
        """Expected arrivals in ``[a, b)`` rounded to a whole request (the observed load
        model's counter; the rate is taken flat within a step)."""
        cumulative = self._cumulative
        return int(round(float(np.interp(b, self.edges, cumulative) - np.interp(a, self.edges, cumulative))))
