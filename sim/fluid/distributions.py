"""Latency distributions of the fluid model on a grid: mixtures, convolutions, quantiles.

A request's latency is ``RTT + W + S``: the path RTT, its wait (a deterministic part, the
backlog ahead, plus with probability ``p_wait`` an exponential steady-state wait) and its
service. The wait's law is put on a uniform grid per step and pool, mixed over steps with
the number of requests each step sends, shifted by each origin's RTT, and convolved (FFT)
with the service's law. Percentiles come from the mixture's cumulative mass, linearly
interpolated within a cell; means are never taken from the grid (the callers compute them
from the formulas).

Public: ``Grid``, ``wait_pmf``, ``shifted``, ``convolve``, ``quantiles``, ``prob_at_most``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

__all__ = ["Grid", "wait_pmf", "atom_cells", "shifted", "convolve", "quantiles", "prob_at_most", "TAIL_MIN"]

CELLS = 4096
TAIL_MIN = 1e-6  # a step whose arrivals wait with a smaller probability is drawn without its tail


@dataclass(frozen=True)
class Grid:
    """Cell centres ``0, h, 2h, ...`` in ms; cell ``i`` holds ``[x_i - h/2, x_i + h/2)``."""

    h_ms: float
    n: int = CELLS

    @classmethod
    def covering(cls, top_ms: float) -> Grid:
        return cls(max(float(top_ms), 1.0) / (CELLS - 1))

    @property
    def x_ms(self) -> np.ndarray:
        return np.arange(self.n) * self.h_ms

    def lower_edges_s(self) -> np.ndarray:
        return (self.x_ms - self.h_ms / 2.0) / 1000.0


def wait_pmf(grid: Grid, shift_s: np.ndarray, p_wait: np.ndarray, tail_s: np.ndarray) -> np.ndarray:
    """``(len(shift_s), n)``: the law of ``shift + (Exp(tail) with prob. p_wait, else 0)``."""
    mass = np.zeros((len(shift_s), grid.n))
    h_s = grid.h_ms / 1000.0
    lower = grid.lower_edges_s()
    # Most steps of a pool that keeps up never wait; a tail lives within 40 means of its start.
    for row in np.flatnonzero(p_wait > TAIL_MIN):
        s, tau = float(shift_s[row]), max(float(tail_s[row]), 1e-12)
        first = max(int((s / h_s) + 0.5) - 1, 0)
        last = min(int((s + 40.0 * tau) / h_s) + 2, grid.n)
        edges = np.append(lower[first:last], lower[last - 1] + h_s)
        below = -np.expm1(-np.maximum(edges - s, 0.0) / tau)  # P(Exp <= t - shift)
        mass[row, first:last] = p_wait[row] * np.diff(below)
    mass[np.arange(len(shift_s)), atom_cells(grid, shift_s)] += 1.0 - p_wait
    mass[:, -1] += np.clip(1.0 - mass.sum(axis=1), 0.0, None)  # the tail past the grid
    return mass


def atom_cells(grid: Grid, at_s: np.ndarray) -> np.ndarray:
    """The cell of each time ``at_s`` (s; the last cell beyond the grid)."""
    return np.clip(np.floor(np.asarray(at_s) * 1000.0 / grid.h_ms + 0.5).astype(np.int64), 0, grid.n - 1)


def shifted(pmf: np.ndarray, ms: float, grid: Grid) -> np.ndarray:
    """``pmf`` moved right by ``ms`` (to the nearest cell; what falls off stays in the last)."""
    cells = int(np.floor(ms / grid.h_ms + 0.5))
    if cells <= 0:
        return pmf
    out = np.zeros_like(pmf)
    if cells >= pmf.shape[-1]:
        out[..., -1] = pmf.sum(axis=-1)
        return out
    out[..., cells:] = pmf[..., :-cells]
    out[..., -1] += pmf[..., -cells:].sum(axis=-1)
    return out


def convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The law of the sum, on the same grid (mass past the grid kept in its last cell)."""
    full = np.clip(signal.fftconvolve(a, b, axes=-1), 0.0, None)
    n = a.shape[-1]
    out = full[..., :n].copy()
    out[..., -1] += full[..., n:].sum(axis=-1)
    return out


def quantiles(pmf: np.ndarray, grid: Grid, fractions: np.ndarray) -> np.ndarray:
    """Quantiles (ms) of the mass ``pmf`` (any scale), NaN when it is empty."""
    total = pmf.sum()
    if not total > 0:
        return np.full(len(fractions), np.nan)
    cumulative = np.cumsum(pmf) / total
    # The cell where the mass crosses each fraction, reported at its centre: an atom (a wait
    # of exactly 0) stays exact, a continuous law is off by at most half a cell.
    idx = np.minimum(np.searchsorted(cumulative, np.asarray(fractions) - 1e-12, side="left"), len(pmf) - 1)
    return grid.x_ms[idx]


def prob_at_most(pmf: np.ndarray, grid: Grid, limit_ms: float) -> float:
    """``P(X <= limit)`` of the mass ``pmf`` (interpolated within the cell)."""
    total = pmf.sum()
    if not total > 0:
        return float("nan")
    position = (limit_ms + grid.h_ms / 2.0) / grid.h_ms
    whole = int(np.floor(position))
    if whole >= len(pmf):
        return 1.0
    part = position - whole
    below = pmf[:max(whole, 0)].sum() + (part * pmf[whole] if whole >= 0 else 0.0)
    return float(below / total)
