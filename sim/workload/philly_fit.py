"""The run-time distribution of Microsoft Philly jobs, fitted once and shipped as constants.

``philly_runtime_from_alibaba.csv`` (alibaba/clusterdata, CC-BY-4.0) holds the run time in
seconds of 83,154 Philly jobs. Two of them ran for 0 s; a job that never ran is not work to
schedule, so they are dropped and the fit is over the 83,152 positive run times. The log of
a run time is modelled as a mixture of four normals (a four-component lognormal mixture),
fitted by maximum likelihood with expectation-maximisation. Four, not three, because the
third component is what the tail needs: with three the p90 is 12 % and the mean 15 % off,
with four both are within 7 % (figures in ``docs/training_workload.md``). Run times are whole
seconds, so the EM works on the distinct values weighted by their counts (same likelihood).

A draw is clipped to the observed range [``PHILLY_MIN_S``, ``PHILLY_MAX_S``]: the fitted tail
puts a little mass beyond the longest job ever seen (53.6 days), and a run of a year would
be an artefact of the fit, not a Philly job.

Reproduce the constants (and the fit figures quoted in ``docs/training_workload.md``) with::

    python -m sim.workload.philly_fit /path/to/shared/data

Public: ``PHILLY_WEIGHTS``, ``PHILLY_MU``, ``PHILLY_SIGMA``, ``PHILLY_MIN_S``,
``PHILLY_MAX_S``, ``PhillyFit``, ``load_runtimes``, ``fit_mixture``, ``mixture_cdf``,
``mixture_quantile``, ``ks_distance``, ``draw_philly_runtime_s``.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["PHILLY_WEIGHTS", "PHILLY_MU", "PHILLY_SIGMA", "PHILLY_MIN_S", "PHILLY_MAX_S",
           "PHILLY_FILE", "PhillyFit", "load_runtimes", "fit_mixture", "mixture_cdf",
           "mixture_quantile", "ks_distance", "draw_philly_runtime_s", "main"]

PHILLY_FILE = "philly_runtime_from_alibaba.csv"

# Fitted by `python -m sim.workload.philly_fit /work/shared/data` (ln seconds).
PHILLY_WEIGHTS = (0.14576306, 0.24921951, 0.44775222, 0.15726521)
PHILLY_MU = (4.17731034, 5.10677527, 7.60566581, 9.91187545)
PHILLY_SIGMA = (0.14311245, 1.32020005, 0.82890104, 1.75617105)
PHILLY_MIN_S = 1.0
PHILLY_MAX_S = 4628239.0

_COMPONENTS = 4
_MAX_ITERATIONS = 5000
_TOLERANCE = 1e-12  # on the mean log-likelihood per job


@dataclass(frozen=True)
class PhillyFit:
    """A lognormal mixture over run times in seconds: weights, and mu, sigma of ln(seconds)."""

    weights: tuple[float, ...]
    mu: tuple[float, ...]
    sigma: tuple[float, ...]


SHIPPED = PhillyFit(PHILLY_WEIGHTS, PHILLY_MU, PHILLY_SIGMA)


def load_runtimes(data_dir: Path) -> np.ndarray:
    """Every run time in the shared file, seconds (including the zeros)."""
    return np.loadtxt(Path(data_dir) / PHILLY_FILE, delimiter=",", skiprows=1, ndmin=1)


def fit_mixture(runtimes_s: np.ndarray, components: int = _COMPONENTS) -> PhillyFit:
    """Maximum-likelihood lognormal mixture of the positive run times (deterministic EM)."""
    values, counts = np.unique(runtimes_s[runtimes_s > 0], return_counts=True)
    x, n = np.log(values), counts.astype(float)
    weights, mu, sigma = _initial(x, n, components)
    previous = -math.inf
    for _ in range(_MAX_ITERATIONS):
        resp, loglik = _e_step(x, n, weights, mu, sigma)
        weights, mu, sigma = _m_step(x, n, resp)
        if loglik - previous < _TOLERANCE:
            break
        previous = loglik
    order = np.argsort(mu)  # a stable, readable component order
    return PhillyFit(*(tuple(float(v) for v in a[order]) for a in (weights, mu, sigma)))


def _initial(x: np.ndarray, n: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Equal weights, means at the k quantile midpoints, common spread."""
    cum = np.cumsum(n) / n.sum()
    mu = x[np.searchsorted(cum, (np.arange(k) + 0.5) / k)]
    spread = math.sqrt(float(np.average((x - np.average(x, weights=n)) ** 2, weights=n)))
    return np.full(k, 1.0 / k), mu.astype(float), np.full(k, spread / k)


def _e_step(x, n, weights, mu, sigma) -> tuple[np.ndarray, float]:
    log_p = (-0.5 * ((x[:, None] - mu) / sigma) ** 2 - np.log(sigma) + np.log(weights)
             - 0.5 * math.log(2 * math.pi))
    top = log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p - top)
    total = p.sum(axis=1, keepdims=True)
    loglik = float(np.sum(n * (np.log(total[:, 0]) + top[:, 0])) / n.sum())
    return p / total, loglik


def _m_step(x, n, resp) -> tuple[np.ndarray, ...]:
    w = resp * n[:, None]
    nk = w.sum(axis=0)
    mu = (w * x[:, None]).sum(axis=0) / nk
    sigma = np.sqrt((w * (x[:, None] - mu) ** 2).sum(axis=0) / nk)
    return nk / n.sum(), mu, sigma


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def mixture_cdf(t_s: npt.ArrayLike, fit: PhillyFit = SHIPPED) -> np.ndarray:
    """P(run time <= t) under the (unclipped) mixture."""
    z = (np.log(np.asarray(t_s, dtype=float))[..., None] - np.array(fit.mu)) / np.array(fit.sigma)
    phi = 0.5 * _ERFC(-z / math.sqrt(2)).astype(float)
    return phi @ np.array(fit.weights)


def mixture_quantile(q: float, fit: PhillyFit = SHIPPED) -> float:
    """The run time at which the mixture's CDF reaches ``q`` (bisection on ln t)."""
    lo, hi = min(fit.mu) - 10 * max(fit.sigma), max(fit.mu) + 10 * max(fit.sigma)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mixture_cdf(math.exp(mid), fit) < q else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def ks_distance(runtimes_s: np.ndarray, fit: PhillyFit = SHIPPED) -> float:
    """Kolmogorov-Smirnov distance between the fit and the positive run times.

    Run times are whole seconds, so the empirical CDF jumps at each distinct value; the
    distance is taken on both sides of every jump."""
    values, counts = np.unique(runtimes_s[runtimes_s > 0], return_counts=True)
    after = np.cumsum(counts) / counts.sum()
    before = after - counts / counts.sum()
    model = mixture_cdf(values, fit)
    return float(max(np.max(after - model), np.max(model - before)))


def draw_philly_runtime_s(n: int, rng: np.random.Generator, fit: PhillyFit = SHIPPED) -> np.ndarray:
    """``n`` run times in seconds from the fitted mixture, clipped to the observed range.

    The component and the lognormal draw come from two children of ``rng``, so the k-th run
    time does not depend on ``n``."""
    pick, spread = rng.spawn(2)
    component = pick.choice(len(fit.weights), size=n, p=np.array(fit.weights) / sum(fit.weights))
    t = spread.lognormal(np.array(fit.mu)[component], np.array(fit.sigma)[component])
    return np.clip(t, PHILLY_MIN_S, PHILLY_MAX_S)


def main(argv: list[str] | None = None) -> int:
    """Refit from the shared data folder and print the constants and fit figures."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sim.workload.philly_fit DATA_DIR", file=sys.stderr)
        return 2
    runtimes = load_runtimes(Path(args[0]))
    fit = fit_mixture(runtimes)
    positive = runtimes[runtimes > 0]
    print(f"# {len(runtimes)} run times, {len(runtimes) - len(positive)} zero (dropped)")
    print(f"PHILLY_WEIGHTS = ({', '.join(f'{v:.8f}' for v in fit.weights)})")
    print(f"PHILLY_MU = ({', '.join(f'{v:.8f}' for v in fit.mu)})")
    print(f"PHILLY_SIGMA = ({', '.join(f'{v:.8f}' for v in fit.sigma)})")
    print(f"PHILLY_MIN_S = {positive.min():.1f}")
    print(f"PHILLY_MAX_S = {positive.max():.1f}")
    print(f"# KS distance: {ks_distance(runtimes, fit):.4f}")
    for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        print(f"# p{round(q * 100)}: fit {mixture_quantile(q, fit):.0f} s, "
              f"data {np.quantile(positive, q):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
