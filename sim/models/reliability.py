"""Failure and repair models: when replicas and regions go down, drawn before the run.

Each replica is an alternating renewal process: up for a time to failure (Weibull with shape
``k`` and mean MTBF; ``k = 1`` is exponential), then down for a repair time (exponential,
lognormal or constant with mean MTTR), then up again. Its long-run availability is
``MTBF / (MTBF + MTTR)`` whatever the distributions (the renewal-reward theorem), which
is what the validation tests check. Region outages are Poisson in time with exponential
lengths, or scheduled.

Default rates come from the Llama 3 405B pre-training run (Dubey et al. 2024, via
``reliability_parameters.csv``): 419 unexpected interruptions in 54 days on 16,384 H100 GPUs
(2,048 nodes of 8), that is 0.000474 per GPU-day or a node MTBF of about 264 days.

Public: ``LLAMA3_FAILURES_PER_GPU_DAY``, ``default_mtbf_s``, ``weibull_scale``,
``draw_time_to_failure``, ``draw_repair``, ``replica_failures``, ``random_outages``,
``availability``, ``young_interval``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LLAMA3_FAILURES_PER_GPU_DAY", "default_mtbf_s", "weibull_scale", "draw_time_to_failure",
           "draw_repair", "replica_failures", "replica_failure_ids", "random_outages", "availability", "young_interval"]

# reliability_parameters.csv: 419 unexpected interruptions, 16,384 GPUs, 54 days.
LLAMA3_FAILURES_PER_GPU_DAY = 419 / (16384 * 54)
_YEAR_S = 365.25 * 86400.0


def default_mtbf_s(gpus_per_replica: int) -> float:
    """Replica MTBF (s) at the Llama 3 per-GPU failure rate."""
    return 86400.0 / (LLAMA3_FAILURES_PER_GPU_DAY * gpus_per_replica)


def weibull_scale(mean: float, shape: float) -> float:
    """Scale of a Weibull distribution with the given mean and shape."""
    return mean / math.gamma(1.0 + 1.0 / shape)


def draw_time_to_failure(rng: np.random.Generator, n: int, mtbf: float, shape: float) -> np.ndarray:
    if shape == 1.0:
        return rng.exponential(mtbf, n)
    return weibull_scale(mtbf, shape) * rng.weibull(shape, n)


def draw_repair(rng: np.random.Generator, n: int, kind: str, mean: float, cv: float) -> np.ndarray:
    if kind == "constant":
        return np.full(n, float(mean))
    if kind == "exponential":
        return rng.exponential(mean, n)
    sigma2 = math.log1p(cv * cv)
    return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), n)


def replica_failures(rng: np.random.Generator, replicas: int, horizon_s: float, mtbf: float, shape: float,
                     repair_kind: str, repair_mean: float, repair_cv: float) -> tuple[np.ndarray, np.ndarray]:
    """Failure and repair times (s) of ``replicas`` independent replicas over ``horizon_s``.

    All replicas are new and up at time 0. Returns ``(fail_s, repair_s)`` sorted by failure
    time; a repair may fall after the horizon."""
    fail_s, repair_s, _ = replica_failure_ids(rng, replicas, horizon_s, mtbf, shape, repair_kind, repair_mean,
                                              repair_cv)
    return fail_s, repair_s


def replica_failure_ids(rng: np.random.Generator, replicas: int, horizon_s: float, mtbf: float, shape: float,
                        repair_kind: str, repair_mean: float,
                        repair_cv: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`replica_failures` (the same draws) with the index of the replica that fails."""
    fails, repairs, ids = [], [], []
    t = np.zeros(replicas)
    alive = np.arange(replicas)
    while alive.size:
        fail = t[alive] + draw_time_to_failure(rng, alive.size, mtbf, shape)
        keep = fail < horizon_s
        alive, fail = alive[keep], fail[keep]
        back = fail + draw_repair(rng, alive.size, repair_kind, repair_mean, repair_cv)
        fails.append(fail)
        repairs.append(back)
        ids.append(alive)
        t[alive] = back
        alive = alive[back < horizon_s]
    fail_s = np.concatenate(fails) if fails else np.empty(0)
    repair_s = np.concatenate(repairs) if repairs else np.empty(0)
    id_s = np.concatenate(ids) if ids else np.empty(0, dtype=int)
    order = np.argsort(fail_s, kind="stable")
    return fail_s[order], repair_s[order], id_s[order]


def random_outages(rng: np.random.Generator, rate_per_year: float, mean_duration_s: float,
                   horizon_s: float) -> list[tuple[float, float]]:
    """(start, end) of Poisson outages with exponential lengths; they do not overlap."""
    out: list[tuple[float, float]] = []
    t = 0.0
    while True:
        t += rng.exponential(_YEAR_S / rate_per_year)
        if t >= horizon_s:
            return out
        length = rng.exponential(mean_duration_s)
        out.append((t, t + length))
        t += length


def availability(mtbf: float, mttr: float) -> float:
    """Long-run fraction of time a replica is up."""
    return mtbf / (mtbf + mttr)


def young_interval(write_s: float, mtbf_s: float) -> float:
    """Young's (1974) checkpoint interval that minimises checkpoint plus lost time."""
    return math.sqrt(2.0 * write_s * mtbf_s)
