"""Fluid routing: what fraction of each origin's requests each pool takes, per step.

Policies whose decision depends on the origin and the pools' availability alone are
asked exactly as the engine asks them, through their own ``prepare`` over a
:class:`~sim.policies.RoutingView` of the step's active slots and RTTs: ``nearest`` (all to
one pool), ``weighted`` (split by the allocation's shares), ``round_robin`` (an equal split
of the available pools). Load-aware policies decide per request on the queues of the
moment, which a fluid model does not have; they get a stated approximation instead:

- ``least_loaded`` and ``power_of_two`` equalise ``(queued + busy) / active`` across the
  pools, so in the fluid limit every pool an origin reaches runs at the same utilisation:
  each origin splits in proportion to the pools' service capacity ``c / m`` (their RTT
  only breaks exact ties, which a fluid never has);
- ``latency_aware``, ``ttft_aware`` and ``cache_aware`` minimise ``rtt_weight x RTT`` plus the
  delay they expect at a pool; the fluid split is the equilibrium (Wardrop's user
  equilibrium) in which every origin sends flow only to pools of least such cost, where
  the cost is the policy's own estimate evaluated at the steady-state queue: for
  latency_aware ``E[queue + busy + 1 - active]^+ x m / c``, i.e. ``(Lq + C) m / c``;
  for ttft_aware and cache_aware the prefill work ahead, ``prefill_ms_per_token x (Lq x
  input / replicas + input)`` (cache_aware: cache-blind here). It is found by the method of
  successive averages, and a pool at or over saturation costs ``1e6 x rho`` ms, so flow
  leaves it whenever another pool has room.

Out-of-tree policies have no fluid form (a :class:`~sim.errors.UsageError`).

Public: ``route_split``, ``FLUID_ROUTING``.
"""
from __future__ import annotations

import numpy as np

from sim.errors import UsageError
from sim.models.queueing import erlang_c, mmc_wait_s
from sim.policies import RoutingView, create
from sim.scenario.model import PolicySpec

__all__ = ["route_split", "FLUID_ROUTING"]

_STATIC = ("nearest", "weighted", "round_robin")
_PROPORTIONAL = ("least_loaded", "power_of_two")
_EQUILIBRIUM = ("latency_aware", "ttft_aware", "cache_aware")
FLUID_ROUTING = _STATIC + _PROPORTIONAL + _EQUILIBRIUM
_ROUNDS = 60
_SATURATED_MS = 1e6


def route_split(spec: PolicySpec, rtt: np.ndarray, active: np.ndarray, share: np.ndarray, m: np.ndarray,
                lam_origin: np.ndarray, pool_region: np.ndarray, prefill: np.ndarray, input_tokens: float,
                replicas: np.ndarray) -> np.ndarray:
    """``x[k, o, p]``: fraction of origin ``o``'s requests in step ``k`` that pool ``p`` takes
    (a row of zeros: no pool available, the requests are rejected).

    ``rtt[k, o, p]`` ms, ``active``/``share``/``m``/``replicas`` ``(K, P)`` (servers, allocation
    share, mean service s, active replicas), ``lam_origin[k, o]`` requests/s, ``prefill[p]``
    ms per prompt token."""
    if spec.name not in FLUID_ROUTING:
        raise UsageError(f"scheduler.routing: fidelity fluid has no fluid form of policy {spec.name!r} "
                         f"(known: {', '.join(FLUID_ROUTING)}); run it with fidelity exact")
    available = np.isfinite(rtt) & (active[:, None, :] > 0)
    if spec.name in _STATIC:
        return _static(spec, rtt, active, share, pool_region, available)
    if spec.name in _PROPORTIONAL:
        weight = np.where(available, np.divide(active, m, out=np.zeros_like(active), where=m > 0)[:, None, :], 0.0)
        return _normalised(weight)
    rtt_weight = float(spec.params.get("rtt_weight", 1.0))
    return _equilibrium(spec.name, rtt_weight * np.where(available, rtt, 0.0), available, active, m, lam_origin,
                        prefill, input_tokens, replicas)


def _normalised(weight: np.ndarray) -> np.ndarray:
    total = weight.sum(axis=2, keepdims=True)
    return np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)


def _static(spec, rtt, active, share, pool_region, available) -> np.ndarray:
    """The policy's own per-origin answer, asked once per distinct availability."""
    policy = create("routing", spec, np.random.default_rng(0))
    k_steps, n_origins, n_pools = rtt.shape
    x = np.zeros(rtt.shape)
    answers: dict[bytes, np.ndarray] = {}
    for k in range(k_steps):
        key = available[k].tobytes() + share[k].tobytes() + rtt[k].tobytes()
        if key not in answers:
            view = RoutingView.build(pool_region=pool_region, rtt_ms=rtt[k], total_slots=[1] * n_pools,
                                     active_slots=(active[k] > 0).astype(int), share=share[k])
            answers[key] = np.array([_fractions(spec.name, policy.prepare(view, o), n_pools)
                                     for o in range(n_origins)])
        x[k] = answers[key]
    return x


def _fractions(name: str, prepared, n_pools: int) -> np.ndarray:
    row = np.zeros(n_pools)
    if prepared is None:
        return row
    if name == "nearest":
        row[int(prepared)] = 1.0
    elif name == "weighted":
        pools, cumulative = prepared
        row[pools] = np.diff(np.concatenate(([0.0], cumulative))) / cumulative[-1]
    elif prepared:  # round_robin: the available pools in turn
        row[prepared] = 1.0 / len(prepared)
    return row


def _equilibrium(name, rtt_term, available, active, m, lam_origin, prefill, input_tokens, replicas) -> np.ndarray:
    """Successive averages towards the flows where no origin has a cheaper pool."""
    x = _cheapest(rtt_term, available)
    for n in range(1, _ROUNDS + 1):
        lam = np.einsum("ko,kop->kp", lam_origin, x)
        cost = rtt_term + _delay_ms(name, lam, active, m, prefill, input_tokens, replicas)[:, None, :]
        x += (_cheapest(cost, available) - x) / (n + 1)
    return x


def _cheapest(cost: np.ndarray, available: np.ndarray) -> np.ndarray:
    masked = np.where(available, cost, np.inf)
    best = masked.argmin(axis=2)
    x = np.zeros(cost.shape)
    np.put_along_axis(x, best[..., None], 1.0, axis=2)
    return x * available.any(axis=2, keepdims=True)


def _delay_ms(name, lam, active, m, prefill, input_tokens, replicas) -> np.ndarray:
    """The policy's expected delay at each pool for a given load (ms)."""
    a = lam * m
    c = np.maximum(active, 1e-9)
    rho = a / c
    stable = rho < 1
    p_wait = np.where(stable, erlang_c(c, np.where(stable, a, 0.0)), 1.0)
    lq = np.where(stable, lam * mmc_wait_s(c, np.where(stable, a, 0.0), m), 0.0)
    if name == "latency_aware":
        delay = (lq + p_wait) * m / c * 1000.0
    else:
        delay = prefill[None, :] * (lq * input_tokens / np.maximum(replicas, 1.0) + input_tokens)
    return np.where(stable, delay, _SATURATED_MS * np.maximum(rho, 1.0))
