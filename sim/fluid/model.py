"""The fluid inference model: the summary, time series and latency CDF of a run's
requests, computed per step and pool from queueing formulas instead of per request.

:class:`FluidInference` stands where the exact run's inference observer stands: it hears
the pools' :class:`~sim.records.CapacityChanged` and the network's
:class:`~sim.records.RoutesChanged` records (the scheduler, failures and training still
run in the engine, unchanged), counts arrivals for an ``observed`` load model from the
expected rates, and when the run ends answers the same questions as
:class:`~sim.metrics.InferenceObserver` (``summary``, ``columns``, ``busy_gpus``,
``latency_cdf``) from :mod:`sim.fluid.demand` (rates), :mod:`sim.fluid.routing` (splits),
:mod:`sim.fluid.queues` (the fluid queue per pool) and :mod:`sim.fluid.distributions`
(percentiles). Counts are expected values rounded to whole requests.

Public: ``FluidInference``.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from sim.errors import UsageError
from sim.fluid.batching import BatchingPool, Tokens, step_figures
from sim.fluid.demand import Demand
from sim.fluid.queues import PoolFlow, pool_flows
from sim.fluid.report import busy_gpu_means, inference_section, latency_cdf_rows, region_columns
from sim.fluid.routing import route_split
from sim.fluid.service import ServiceLaw, slot_laws
from sim.metrics import InferenceLayout, StepSignal, bucket_edges
from sim.records import CapacityChanged, RoutesChanged
from sim.scenario.model import PoissonArrival, Scenario, TokenService
from sim.workload.service import service_times
from sim.world import World

__all__ = ["FluidInference"]


class FluidInference:
    """The fluid model of one run's inference workloads (an observer of capacity and routes)."""

    subscribes = (CapacityChanged, RoutesChanged)
    log = None  # no per-request log: requests.npz is not written

    def __init__(self, scenario: Scenario, world: World):
        self.scenario, self.world = scenario, world
        self.layout = InferenceLayout.of(scenario, world)
        self.pools = world.pools
        self.demand = Demand.of(scenario, world)
        self._active = [StepSignal() for _ in self.pools]
        self._share = [StepSignal() for _ in self.pools]
        names = world.topology.names
        self._region_of_pool = np.array([names.index(p.region) for p in self.pools])
        self._rtt: list[tuple[float, np.ndarray]] = [(0.0, np.array(world.topology.rtt_ms, dtype=float))]
        self._solved: dict[str, Any] | None = None
        self.batching = {p: BatchingPool.of(pool, self._pool_tokens()) for p, pool in enumerate(self.pools)
                         if pool.serving is not None} if scenario.inference else {}

    def _pool_tokens(self) -> Tokens:
        """The token counts batching pools serve: the workloads' mix by base rate."""
        wls = self.scenario.inference
        bad = [wl.name for wl in wls if not isinstance(wl.service, TokenService)]
        if bad:
            raise UsageError(f"fidelity: fluid models batching replicas for token workloads only (not {bad})")
        parts = [(Tokens.of(wl), wl.arrival.rate_per_s if isinstance(wl.arrival, PoissonArrival) else 1.0)
                 for wl in wls]
        total = sum(w for _, w in parts)

        def mix(mean: str, var: str) -> tuple[float, float]:
            m = sum(getattr(t, mean) * w for t, w in parts) / total
            second = sum((getattr(t, var) + getattr(t, mean) ** 2) * w for t, w in parts) / total
            return m, second - m * m
        return Tokens(*mix("input_mean", "input_var"), *mix("output_mean", "output_var"))

    # -- the record stream ---------------------------------------------------------------
    def __call__(self, record: CapacityChanged | RoutesChanged) -> None:
        if isinstance(record, RoutesChanged):
            self._rtt.append((record.t_s, np.array(record.rtt_ms, dtype=float)))
            return
        p = record.pool_index if record.pool_index >= 0 else self._pool_index(record.region, record.pool)
        self._active[p].set(record.t_s, record.active_gpus)
        self._share[p].set(record.t_s, record.share)

    def _pool_index(self, region: str, pool: str) -> int:
        return next(i for i, p in enumerate(self.pools) if p.region == region and p.name == pool)

    def arrivals(self, a: float, b: float) -> int:
        """Expected requests arriving in ``[a, b)`` (the observed load model's counter)."""
        return self.demand.arrivals_between(a, b)

    # -- the model -----------------------------------------------------------------------
    @cached_property
    def _laws(self) -> list[list[tuple[ServiceLaw, ServiceLaw | None, float]]]:
        """Per workload and slot pool: service law, time-to-first-token law, time per token."""
        return [[slot_laws(wl, pool) for pool in self.pools] for wl in self.scenario.inference]

    def _rtt_steps(self) -> np.ndarray:
        """``(K, O, P)`` path RTT from each origin to each pool in force at each step's middle."""
        mids = (self.demand.edges[:-1] + self.demand.edges[1:]) / 2.0
        times = np.array([t for t, _ in self._rtt])
        which = np.searchsorted(times, mids, side="right") - 1
        matrices = np.stack([m[:, self._region_of_pool] for _, m in self._rtt])
        return matrices[which]

    def solve(self) -> dict[str, Any]:
        """Rates, routing, queues and counts per step (computed once)."""
        if self._solved is not None:
            return self._solved
        d, edges = self.demand, self.demand.edges
        widths = d.widths
        gpr = np.array([p.gpus_per_replica for p in self.pools], dtype=float)
        slots = np.array([p.slots_per_replica for p in self.pools], dtype=float)
        replicas = np.stack([s.means(edges) for s in self._active], axis=1) / gpr
        share = np.stack([s.means(edges) for s in self._share], axis=1)
        servers = replicas * slots
        laws = self._moments()  # (W, P, 2): mean, SCV
        mean, scv = _mix(d.rate.sum(axis=1)[:, None, :].repeat(len(self.pools), axis=1), laws)
        for p, bp in self.batching.items():  # the throughput curve's ceiling, as servers
            servers[:, p], mean[:, p], scv[:, p] = replicas[:, p] * bp.batch_cap, bp.full_residence_s, bp.scv
        rtt = self._rtt_steps()
        prefill = np.array([self._prefill_ms(p) for p in range(len(self.pools))])
        x = route_split(self.scenario.scheduler.routing, rtt, servers, share, mean, d.rate.sum(axis=2),
                        self._region_of_pool, prefill, self._mean_input_tokens(), replicas)
        n = np.einsum("kow,kop->kopw", d.counts(), x)
        lam_w = n.sum(axis=1) / widths[:, None, None]  # (K, P, W)
        routed_mean, routed_scv = _mix(lam_w, laws)
        has = (lam_w.sum(axis=2) > 0) & ~np.isin(np.arange(len(self.pools)), list(self.batching))[None, :]
        mean, scv = np.where(has, routed_mean, mean), np.where(has, routed_scv, scv)
        timeout = np.full(len(self.pools), self._timeout_s())
        lam = lam_w.sum(axis=2)
        flow = pool_flows(lam, mean, scv, servers, widths, timeout)
        rejected = d.counts().sum(axis=2) * (1.0 - x.sum(axis=2))  # (K, O)
        busy_slots, busy_gpus, figures = self._busy(flow, lam, replicas)
        self._solved = {"n": n, "rtt": rtt, "flow": flow, "mean": mean, "servers": servers,
                        "rejected": rejected, "replicas": replicas, "busy_slots": busy_slots,
                        "busy_gpus": busy_gpus, "batching": figures}
        return self._solved

    def _busy(self, flow: PoolFlow, lam: np.ndarray,
              replicas: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, dict[str, np.ndarray]]]:
        """``(K, P)`` busy slots and busy GPUs, and per batching pool its step figures (from
        its throughput curve; while a queue waits every replica iterates)."""
        busy_slots, busy_gpus = flow.busy.copy(), flow.busy * np.asarray(self.layout.pool_gpus_per_slot)[None, :]
        figures = {}
        for p, bp in self.batching.items():
            on = replicas[:, p] > 0
            figures[p] = step_figures(bp, np.divide(lam[:, p], replicas[:, p], out=np.zeros(len(lam)), where=on))
            full = np.minimum(flow.queue[:, p] > 1e-9, 1.0)  # a queue: every replica iterates
            busy = np.maximum(figures[p]["busy"], full)
            busy_slots[:, p] = replicas[:, p] * figures[p]["in_replica"]
            busy_gpus[:, p] = replicas[:, p] * busy * self.pools[p].gpus_per_replica
        return busy_slots, busy_gpus, figures

    def _moments(self) -> np.ndarray:
        return np.array([[(law.mean_s, law.scv) for law, _, _ in row] for row in self._laws])

    def _prefill_ms(self, p: int) -> float:
        """Prefill ms per prompt token on pool ``p`` (the first token workload's; 0 without;
        a batching replica's at batch 1, as the engine's routing view has it)."""
        if p in self.batching:
            tokens = max(self.batching[p].tokens.input_mean, 1.0)
            return self.batching[p].model.prefill_ms(1, tokens) / tokens
        for wl in self.scenario.inference:
            if isinstance(wl.service, TokenService):
                times = service_times(wl.service, self.pools[p].gpu)
                return times.prefill_s_per_token * 1000.0 if times is not None else 0.0
        return 0.0

    def _mean_input_tokens(self) -> float:
        tokens = [wl.service.input_tokens.mean for wl in self.scenario.inference
                  if isinstance(wl.service, TokenService)]
        return float(np.mean(tokens)) if tokens else 0.0

    def _timeout_s(self) -> float:
        """The queueing limit (the shortest ``timeout_ms`` when every workload sets one)."""
        limits = [wl.timeout_ms / 1000.0 for wl in self.scenario.inference if wl.timeout_ms is not None]
        return min(limits) if limits and len(limits) == len(self.scenario.inference) else math.inf

    # -- what a request of workload ``w`` sees at pool ``p`` --------------------------------
    def service_mean_s(self, p: int, w: int) -> np.ndarray:
        """Mean service per step, s (batching: first token and the decodes at the step's batch)."""
        if p in self.batching:
            f, o = self.solve()["batching"][p], self._output_mean(w)
            return f["first_mean_s"] + max(o - 1.0, 0.0) * f["tau_ms"] / 1000.0
        return np.full(len(self.demand.widths), self._laws[w][p][0].mean_s)

    def ttft_mean_s(self, p: int, w: int) -> np.ndarray | None:
        """Mean time from reaching the pool's service to the first token per step, s."""
        if p in self.batching:
            return np.asarray(self.solve()["batching"][p]["first_mean_s"])
        law = self._laws[w][p][1]
        return None if law is None else np.full(len(self.demand.widths), law.mean_s)

    def tpot_ms(self, p: int, w: int) -> np.ndarray:
        """Time per output token per step, ms (NaN without tokens)."""
        if p in self.batching:
            return np.asarray(self.solve()["batching"][p]["tau_ms"])
        return np.full(len(self.demand.widths), self._laws[w][p][2] * 1000.0)

    def law(self, p: int, w: int, weights: np.ndarray) -> ServiceLaw:
        """The service law for percentiles (batching: at the ``weights``-average step)."""
        if p not in self.batching:
            return self._laws[w][p][0]
        f, o_var = self.solve()["batching"][p], self._output_var(w)
        tau = _average(f["tau_ms"], weights) / 1000.0
        return _lognormal(_average(self.service_mean_s(p, w), weights), _average(f["first_var_s2"], weights)
                          + tau * tau * o_var)

    def ttft_law(self, p: int, w: int, weights: np.ndarray) -> ServiceLaw | None:
        if p not in self.batching:
            return self._laws[w][p][1]
        f = self.solve()["batching"][p]
        return _lognormal(_average(f["first_mean_s"], weights), _average(f["first_var_s2"], weights))

    def _output_mean(self, w: int) -> float:
        service = self.scenario.inference[w].service
        return float(service.output_tokens.mean) if isinstance(service, TokenService) else 1.0

    def _output_var(self, w: int) -> float:
        service = self.scenario.inference[w].service
        return float((service.output_tokens.cv * service.output_tokens.mean) ** 2) if isinstance(
            service, TokenService) else 0.0

    def measured(self) -> np.ndarray:
        """Steps whose arrivals the statistics count (at or after the warm-up)."""
        return self.demand.edges[:-1] >= self.scenario.warmup - 1e-9

    # -- outputs ---------------------------------------------------------------------------
    def summary(self, end_s: float) -> dict[str, Any]:
        return inference_section(self, end_s)

    def columns(self, end_s: float, bucket_s: float) -> dict[str, dict[str, np.ndarray]]:
        return region_columns(self, bucket_edges(0.0, end_s, bucket_s))

    def busy_gpus(self, end_s: float) -> dict[str, float]:
        return busy_gpu_means(self, self.scenario.warmup, end_s)

    def latency_cdf(self) -> list[dict[str, Any]]:
        return latency_cdf_rows(self)


def _average(values: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else float(np.mean(values))


def _lognormal(mean: float, var: float) -> ServiceLaw:
    scv = var / (mean * mean) if mean > 0 else 0.0
    return ServiceLaw(mean, scv, "lognormal" if scv > 0 else "constant")


def _mix(lam_w: np.ndarray, laws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean service and SCV per step and pool of the workloads in proportion ``lam_w``
    ``(K, P, W)`` (laws ``(W, P, 2)``); where nothing arrives, an unweighted mix."""
    m, scv = laws[:, :, 0].T[None], laws[:, :, 1].T[None]  # (1, P, W)
    total = lam_w.sum(axis=2)
    weights = np.where(total[..., None] > 0, lam_w / np.maximum(total[..., None], 1e-300), 1.0 / lam_w.shape[2])
    mean = (weights * m).sum(axis=2)
    second = (weights * m * m * (1.0 + scv)).sum(axis=2)
    return mean, np.maximum(second / np.maximum(mean, 1e-300) ** 2 - 1.0, 0.0)
