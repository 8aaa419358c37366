"""The fluid queue of each pool, step by step: Erlang C / Allen-Cunneen while it keeps up,
a fluid backlog while it does not.

Per step ``k`` and pool ``p`` the inputs are the arrival rate ``lam`` routed to the pool,
the mean service ``m`` and its SCV, the active servers ``c`` (slots) and the step width.
With no backlog and ``lam m < c`` the pool is taken to be in steady state: an arrival
waits with probability ``C(c, lam m)`` (Erlang C), for ``Wq`` on average (Allen-Cunneen's
M/G/c correction), its wait exponential given that it waits. Otherwise the queue is a
fluid: ``Q' = lam - c / m`` while ``Q > 0`` or the pool is overloaded, every server busy,
an arrival waiting ``Q / (c / m)`` (FIFO), the backlog carried into the next step; once a
draining backlog empties within a step, the rest of the step is steady state again.
A workload's ``timeout_ms`` caps the wait: the backlog never exceeds ``(c / m) x timeout``
(arrivals beyond it are dropped, as the exact engine drops requests that queued too long)
and in steady state ``P(W > timeout)`` of the arrivals are dropped.

Public: ``PoolFlow``, ``pool_flows``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.models.queueing import erlang_c, mgc_wait_s, wait_exceeds

__all__ = ["PoolFlow", "pool_flows"]


@dataclass(frozen=True)
class PoolFlow:
    """Per step and pool (arrays ``(K, P)``): how arrivals fare and what the pool does.

    ``shift_s`` a deterministic wait (the backlog ahead), ``p_wait`` and ``tail_s`` the
    probability and conditional mean of the steady-state wait on top of it, ``dropped`` the
    fraction of arrivals dropped (timed out), ``busy`` mean busy servers, ``queue`` mean
    queue length, ``backlog_end`` the queue left at the step's end, ``lost`` requests of an
    earlier backlog dropped at the step's start (the pool shrank below what it can serve
    within the timeout)."""

    shift_s: np.ndarray
    p_wait: np.ndarray
    tail_s: np.ndarray
    dropped: np.ndarray
    busy: np.ndarray
    queue: np.ndarray
    backlog_end: np.ndarray
    lost: np.ndarray  # requests of an earlier backlog dropped when the pool shrank

    @property
    def mean_wait_s(self) -> np.ndarray:
        return self.shift_s + self.p_wait * self.tail_s


def _steady(lam, m, scv, c, timeout_s):
    """Steady-state ``(p_wait, tail_s, dropped, queue)`` (valid where ``lam m < c``)."""
    a = lam * m
    ok = (a < c) & (c > 0)
    p_wait = np.where(ok, erlang_c(np.where(ok, c, 1.0), np.where(ok, a, 0.0)), 0.0)
    wq = np.where(ok, mgc_wait_s(np.where(ok, c, 1.0), np.where(ok, a, 0.0), m, scv), 0.0)
    tail = np.divide(wq, p_wait, out=np.zeros_like(wq), where=p_wait > 0)
    dropped = np.where(np.isfinite(timeout_s), wait_exceeds(np.where(np.isfinite(timeout_s), timeout_s, 0.0),
                                                            p_wait, wq), 0.0)
    return p_wait, tail, dropped, lam * wq


def pool_flows(lam: np.ndarray, m: np.ndarray, scv: np.ndarray, c: np.ndarray, widths: np.ndarray,
               timeout_s: np.ndarray) -> PoolFlow:
    """The fluid queue over ``K`` steps for ``P`` pools (``timeout_s`` per pool, inf: none)."""
    k_steps, n_pools = lam.shape
    out = {name: np.zeros((k_steps, n_pools)) for name in PoolFlow.__dataclass_fields__}
    steady = _steady(lam, m, scv, c, timeout_s[None, :])
    backlog = np.zeros(n_pools)
    for k in range(k_steps):
        row = _step(lam[k], m[k], c[k], widths[k], timeout_s, backlog, [s[k] for s in steady])
        for name, value in row.items():
            out[name][k] = value
        backlog = row["backlog_end"]
    return PoolFlow(**out)


def _step(lam, m, c, width, timeout_s, q0, steady) -> dict[str, np.ndarray]:
    """One step for every pool: steady state where it applies, the fluid backlog elsewhere."""
    p_wait, tail, dropped, queue = steady
    rate = np.divide(c, m, out=np.zeros_like(c), where=m > 0)  # completions/s with every server busy
    cap = np.where(np.isfinite(timeout_s), rate * np.where(np.isfinite(timeout_s), timeout_s, 0.0), np.inf)
    q0c = np.minimum(q0, cap)
    lost0 = q0 - q0c  # a backlog the shrunken pool can no longer serve in time
    net = lam - rate
    # Time the backlog lasts in this step (a growing or full one lasts all of it).
    draining = (net < 0) & (q0c > 0)
    t_drain = np.where(draining, q0c / np.where(draining, -net, 1.0), 0.0)
    congested = (q0c > 0) | (net >= 0) & (lam > 0)
    f = np.where(congested, np.where(draining, np.minimum(t_drain / width, 1.0), 1.0), 0.0)
    with np.errstate(invalid="ignore"):  # an uncapped queue: inf x 0 terms are dropped below
        q_mean, q_end, over = _backlog(q0c, net, cap, width, f)
    arrivals = lam * width
    shift = np.divide(q_mean, rate, out=np.zeros_like(q_mean), where=rate > 0)
    over_frac = np.divide(over, arrivals, out=np.zeros_like(over), where=arrivals > 0)
    return {
        "shift_s": np.where(congested, shift * f, 0.0),
        "p_wait": np.where(congested, (1 - f) * p_wait, p_wait),
        "tail_s": tail,
        "dropped": np.minimum(np.where(congested, over_frac + (1 - f) * dropped, dropped), 1.0),
        "busy": np.where(congested, f * c + (1 - f) * np.minimum(lam * m, c), np.minimum(lam * m, c)),
        "queue": np.where(congested, f * q_mean + (1 - f) * queue, queue),
        "backlog_end": q_end,
        "lost": lost0,
    }


def _backlog(q0, net, cap, width, f):
    """Mean backlog while congested, backlog at the end, arrivals dropped at the cap."""
    duration = f * width
    t_cap = np.where(net > 0, np.divide(cap - q0, net, out=np.full_like(q0, np.inf), where=net > 0), np.inf)
    t_cap = np.clip(t_cap, 0.0, None)
    rising = np.minimum(t_cap, duration)
    top = np.minimum(q0 + net * rising, cap)
    area = (q0 + top) / 2.0 * rising + np.where(duration > rising, cap * (duration - rising), 0.0)
    area = np.where(np.isfinite(area), area, 0.0)
    q_mean = np.divide(area, duration, out=np.zeros_like(q0), where=duration > 0)
    over = np.where(net > 0, net * np.maximum(duration - t_cap, 0.0), 0.0)
    q_end = np.where(net >= 0, np.minimum(q0 + net * width, cap), np.maximum(q0 + net * width, 0.0))
    return q_mean, q_end, np.where(np.isfinite(over), over, 0.0)
