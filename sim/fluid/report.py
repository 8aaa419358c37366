"""The fluid model's answers in the exact run's shapes: the ``inference`` section of
summary.json (the same keys, computed per step, pool, origin and workload), the request
columns of timeseries.csv, the busy GPUs of the ``utilization`` section and
latency_cdf.csv.

Counts are expected values rounded to whole requests, with ``completed = arrived -
dropped - in_flight`` kept exact. Means come from the formulas; percentiles and SLO
attainment from the grid laws of :mod:`sim.fluid.distributions`. A request meets its
objectives with probability ``min(P(latency <= e2e), P(TTFT <= ttft)) x [TPOT <= tpot]``
(latency and TTFT share the wait, so they are taken as comonotone). What the fluid model
does not know is None in the summary and NaN in the time series (the per-bucket latency
and TTFT percentiles, batch size and KV use); the manifest's ``approximate`` note lists
them.

Public: ``inference_section``, ``region_columns``, ``busy_gpu_means``, ``latency_cdf_rows``,
``NOT_COMPUTED``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.fluid.distributions import (
    TAIL_MIN,
    Grid,
    atom_cells,
    convolve,
    prob_at_most,
    quantiles,
    shifted,
    wait_pmf,
)

if TYPE_CHECKING:
    from sim.fluid.model import FluidInference
    from sim.fluid.queues import PoolFlow

__all__ = ["inference_section", "region_columns", "busy_gpu_means", "latency_cdf_rows", "pool_section",
           "NOT_COMPUTED"]

_STATS = np.array([0.50, 0.95, 0.99])
_CDF_QUANTILES = np.round(np.concatenate((np.linspace(0, 0.99, 100), np.linspace(0.991, 1.0, 10))), 6)
NOT_COMPUTED = {
    "timeseries.csv latency_p50_ms, latency_p99_ms, ttft_p50_ms, ttft_p99_ms":
        "of the requests that arrived in the bucket (an exact run's: that completed in it)",
    "timeseries.csv batch_size, kv_fraction": "NaN for slot pools (as in exact runs); for batching pools the "
                                              "equilibrium batch and mean KV use",
    "inference.by_pool batch_max, kv_peak_fraction, preemptions": "extremes and preemptions of individual "
                                                                   "iterations are not modelled (null)",
    "inference.failed": "requests lost to replica failures are not modelled (null when the scenario has failures)",
    "inference.prefix_cache": "prefix caches are not modelled (every prompt is prefilled in full): hit_rate, "
                              "prefill_tokens_saved and the hit/miss TTFT are null",
    "failures.requests_retried, requests_lost, requests_cut_off": "not modelled in fluid mode (null)",
    "consistency.stale_fraction": "needs per-request serving times (null)",
    "requests.npz": "no per-request log exists in fluid mode (not written)",
}


@dataclass(frozen=True)
class _Cells:
    """Per (step, origin, pool, workload): requests that arrived, were dropped, completed
    or were still in flight at the end; per (step, origin, workload) those rejected."""

    arrived: np.ndarray
    dropped: np.ndarray
    served: np.ndarray  # arrived - dropped (completed or in flight)
    in_flight: np.ndarray
    rejected: np.ndarray


def _cells(model: FluidInference) -> _Cells:
    s = model.solve()
    if "cells" not in s:
        s["cells"] = _count(model, s)
    return s["cells"]


def _count(model: FluidInference, s: dict[str, Any]) -> _Cells:
    n, flow = s["n"], s["flow"]
    dropped = n * flow.dropped[:, None, :, None]
    dropped += _spread(flow.lost, n, lag=1)
    end = flow.backlog_end[-1] + s["busy_slots"][-1]
    in_flight = _spread(np.where(np.arange(n.shape[0])[:, None] == n.shape[0] - 1, end[None, :], 0.0), n, lag=0)
    rejected = model.demand.counts() - n.sum(axis=2)
    return _Cells(n, dropped, np.clip(n - dropped, 0.0, None), np.minimum(in_flight, n), np.clip(rejected, 0.0, None))


def _spread(amount: np.ndarray, n: np.ndarray, lag: int) -> np.ndarray:
    """Requests ``amount[k, p]`` of pool ``p`` attributed to the cells of step ``k - lag``
    (their origin and workload mix)."""
    out = np.zeros_like(n)
    for k, p in zip(*np.nonzero(amount), strict=True):
        src = max(k - lag, 0)
        mix = n[src, :, p, :]
        total = mix.sum()
        if total > 0:
            out[k, :, p, :] += amount[k, p] * mix / total
    return out


@dataclass(frozen=True)
class _Laws:
    """Per (pool, workload, origin): served request counts after the warm-up, sums of
    their latency, wait and TTFT (ms), and their laws on ``grid``; per (pool, workload,
    origin, step) the served counts and per (pool, workload, step) the time per token."""

    grid: Grid
    served: np.ndarray
    latency_sum: np.ndarray
    wait_sum: np.ndarray
    ttft_sum: np.ndarray
    latency: np.ndarray
    wait: np.ndarray
    ttft: np.ndarray
    has_ttft: np.ndarray  # (P, W)
    tpot_ms: np.ndarray  # (P, W, K)
    served_k: np.ndarray  # (P, W, O, K)


def _laws(model: FluidInference, cells: _Cells) -> _Laws:
    s = model.solve()
    if "laws" not in s:
        s["laws"] = _mix_laws(model, cells, s)
    return s["laws"]


def _mix_laws(model: FluidInference, cells: _Cells, s: dict[str, Any]) -> _Laws:
    flow, rtt = s["flow"], s["rtt"]
    meas = model.measured()
    k_steps, n_origins, n_pools, n_work = cells.served.shape
    served = cells.served * meas[:, None, None, None]
    grid = _grid(model, served, rtt, flow)
    shape = (n_pools, n_work, n_origins)
    out = {name: np.zeros(shape) for name in ("served", "latency_sum", "wait_sum", "ttft_sum")}
    pmfs = {name: np.zeros((*shape, grid.n)) for name in ("latency", "wait", "ttft")}
    has_ttft, tpot = np.zeros((n_pools, n_work), dtype=bool), np.full((n_pools, n_work, k_steps), np.nan)
    mean_wait_ms = flow.mean_wait_s * 1000.0
    for p in range(n_pools):
        weights = served[:, :, p, :]  # (K, O, W)
        if not weights.any():
            continue
        w_pmf = wait_pmf(grid, flow.shift_s[:, p], flow.p_wait[:, p], flow.tail_s[:, p])
        s.setdefault("wait_pmfs", {})[p] = w_pmf
        rtt_p = np.where(np.isfinite(rtt[:, :, p]), rtt[:, :, p], 0.0)
        for w in range(n_work):
            ww = weights[:, :, w]
            per_step = ww.sum(axis=1)
            law, ttft_law = model.law(p, w, per_step), model.ttft_law(p, w, per_step)
            ttft_mean = model.ttft_mean_s(p, w)
            tpot[p, w] = model.tpot_ms(p, w)
            has_ttft[p, w] = ttft_mean is not None
            for name, value in _latency_sums(model, p, w, ww, mean_wait_ms[:, p], rtt_p, ttft_mean).items():
                out[name][p, w] = value
            waits, trips = _mixed_waits(ww, w_pmf, rtt_p, grid)
            pmfs["wait"][p, w] = waits
            pmfs["latency"][p, w] = convolve(trips, law.pmf(grid.x_ms / 1000.0)[None, :])
            if ttft_law is not None:
                pmfs["ttft"][p, w] = convolve(trips, ttft_law.pmf(grid.x_ms / 1000.0)[None, :])
    served_k = np.transpose(served, (2, 3, 1, 0))
    s["service_laws"] = {(p, w): (model.law(p, w, per), model.ttft_law(p, w, per))
                         for p in range(n_pools) for w in range(n_work) if served[:, :, p, w].any()
                         for per in (served[:, :, p, w].sum(axis=1),)}
    return _Laws(grid, **out, **pmfs, has_ttft=has_ttft, tpot_ms=tpot, served_k=served_k)


def _latency_sums(model: FluidInference, p: int, w: int, ww: np.ndarray, wait_ms: np.ndarray, rtt_p: np.ndarray,
                  ttft_mean: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per origin, over the steps weighted by ``ww`` (requests served, ``(K, O)``): the served
    count and the sums of wait, latency and (when the pool has one) TTFT, in ms."""
    wait_sum = (ww * wait_ms[:, None]).sum(axis=0)
    rtt_ms = (ww * rtt_p).sum(axis=0)
    sums = {"served": ww.sum(axis=0), "wait_sum": wait_sum,
            "latency_sum": rtt_ms + wait_sum + (ww * model.service_mean_s(p, w)[:, None]).sum(axis=0) * 1e3}
    if ttft_mean is not None:
        sums["ttft_sum"] = rtt_ms + wait_sum + (ww * ttft_mean[:, None]).sum(axis=0) * 1e3
    return sums


def _mixed_waits(ww: np.ndarray, w_pmf: np.ndarray, rtt_p: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Per origin: the law of the wait, and of RTT + wait, mixed over steps by ``ww``."""
    n_origins = ww.shape[1]
    waits, trips = np.zeros((n_origins, grid.n)), np.zeros((n_origins, grid.n))
    for o in range(n_origins):
        if not ww[:, o].any():
            continue
        for value in np.unique(rtt_p[ww[:, o] > 0, o]):
            pick = ww[:, o] * (rtt_p[:, o] == value)
            mixed = pick @ w_pmf
            waits[o] += mixed
            trips[o] += shifted(mixed, float(value), grid)
    return waits, trips


def _grid(model: FluidInference, served: np.ndarray, rtt: np.ndarray, flow) -> Grid:
    """A grid wide enough for every latency the model gives mass to (the far tail of the
    exponential waits and of the services beyond it goes to the last cell)."""
    used = served.sum(axis=(1, 3)) > 0  # (K, P)
    finite = np.where(np.isfinite(rtt), rtt, 0.0)
    wait = np.where(used, flow.shift_s + np.where(flow.p_wait > 0, 12.0 * flow.tail_s, 0.0), 0.0).max(initial=0.0)
    services = [_far(model.law(p, w, served[:, :, p, w].sum(axis=1))) for p in range(served.shape[2])
                for w in range(served.shape[3]) if served[:, :, p, w].any()]
    return Grid.covering(finite.max(initial=0.0) + 1000.0 * (wait + max(services, default=1.0)))


def _far(law) -> float:
    """A time (s) the law exceeds with probability below 1e-5."""
    t = law.mean_s
    while law.cdf(np.array([t]))[0] < 1.0 - 1e-5 and t < 1e7:
        t *= 1.5
    return t


def _stats(total: float, pmf: np.ndarray, grid: Grid, count: float) -> dict[str, float | None]:
    if not count > 0:
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = quantiles(pmf, grid, _STATS)
    return {"mean": float(total / count), "p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _group(model: FluidInference, cells: _Cells, laws: _Laws, o_sel, p_sel, w_sel, regional: bool) -> dict[str, Any]:
    """The statistics of the requests from origins ``o_sel`` served by pools ``p_sel`` of
    workloads ``w_sel`` (boolean masks; ``regional``: rejected requests, which reached no
    pool, are left out)."""
    pick = np.ix_(p_sel, w_sel, o_sel)
    if regional:
        arrived = round(cells.arrived[:, o_sel][:, :, p_sel][:, :, :, w_sel].sum())
        d = min(round(cells.dropped[:, o_sel][:, :, p_sel][:, :, :, w_sel].sum()), arrived)
        f = min(round(cells.in_flight[:, o_sel][:, :, p_sel][:, :, :, w_sel].sum()), arrived - d)
        a = arrived
    else:  # from whole-request tables per origin and workload, so that the groups add up
        table = _count_table(cells)
        a, d, f = (int(table[name][np.ix_(o_sel, w_sel)].sum()) for name in ("arrived", "dropped", "in_flight"))
    count = laws.served[pick].sum()
    met, judged = _slo(model, cells, laws, o_sel, p_sel, w_sel, regional)
    ttft_count = (laws.served[pick] * laws.has_ttft[np.ix_(p_sel, w_sel)][..., None]).sum()
    return {
        "arrived": a, "completed": a - d - f, "dropped": d, "in_flight": f,
        "latency_ms": _stats(laws.latency_sum[pick].sum(), laws.latency[pick].sum(axis=(0, 1, 2)), laws.grid, count),
        "wait_ms": _stats(laws.wait_sum[pick].sum(), laws.wait[pick].sum(axis=(0, 1, 2)), laws.grid, count),
        "ttft_ms": _stats(laws.ttft_sum[pick].sum(), laws.ttft[pick].sum(axis=(0, 1, 2)), laws.grid, ttft_count),
        "tpot_ms": _tpot_stats(laws, p_sel, w_sel, o_sel),
        "slo_attainment": float(met / judged) if judged > 0 else None,
    }


def _count_table(cells: _Cells) -> dict[str, np.ndarray]:
    """Whole requests per origin and workload (each expected count rounded once):
    ``arrived``, ``rejected``, ``dropped`` (rejected or timed out) and ``in_flight``, with
    ``dropped + in_flight <= arrived``."""
    rejected = np.rint(cells.rejected.sum(axis=0)).astype(np.int64)
    arrived = np.rint(cells.arrived.sum(axis=(0, 2)) + cells.rejected.sum(axis=0)).astype(np.int64)
    arrived = np.maximum(arrived, rejected)
    timed_out = np.minimum(np.rint(cells.dropped.sum(axis=(0, 2))).astype(np.int64), arrived - rejected)
    dropped = rejected + timed_out
    in_flight = np.minimum(np.rint(cells.in_flight.sum(axis=(0, 2))).astype(np.int64), arrived - dropped)
    return {"arrived": arrived, "rejected": rejected, "dropped": dropped, "in_flight": in_flight}


def _tpot_stats(laws: _Laws, p_sel, w_sel, o_sel) -> dict[str, float | None]:
    """Time per output token: a value per pool, workload and step, weighted by the requests."""
    values = np.broadcast_to(laws.tpot_ms[:, :, None, :], laws.served_k.shape)[np.ix_(p_sel, w_sel, o_sel)].ravel()
    weights = laws.served_k[np.ix_(p_sel, w_sel, o_sel)].ravel()
    keep = ~np.isnan(values) & (weights > 0)
    if not keep.any():
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    v, wt = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v, wt = v[order], wt[order]
    cum = np.cumsum(wt) / wt.sum()
    q = [float(v[min(int(np.searchsorted(cum, f)), len(v) - 1)]) for f in _STATS]
    return {"mean": float((v * wt).sum() / wt.sum()), "p50": q[0], "p95": q[1], "p99": q[2]}


def _slo(model: FluidInference, cells: _Cells, laws: _Laws, o_sel, p_sel, w_sel, regional: bool) -> tuple[float, float]:
    """Requests that met every objective, and those judged (completed or dropped, after the warm-up)."""
    limits = model.layout.limits()
    meas = model.measured()
    met = judged = 0.0
    for w in np.flatnonzero(w_sel):
        if np.isnan(limits[w]).all():
            continue
        ttft_lim, tpot_lim, e2e_lim = limits[w]
        dropped = cells.dropped[meas][:, o_sel][:, :, p_sel][:, :, :, w].sum()
        if not regional:
            dropped += cells.rejected[meas][:, o_sel][:, :, w].sum()
        judged += dropped
        for p in np.flatnonzero(p_sel):
            for o in np.flatnonzero(o_sel):
                served = laws.served[p, w, o]
                if served <= 0:
                    continue
                judged += served
                ok = 1.0
                if not np.isnan(e2e_lim):
                    ok = prob_at_most(laws.latency[p, w, o], laws.grid, e2e_lim)
                if not np.isnan(ttft_lim) and laws.has_ttft[p, w]:
                    ok = min(ok, prob_at_most(laws.ttft[p, w, o], laws.grid, ttft_lim))
                if not np.isnan(tpot_lim):
                    steps = laws.served_k[p, w, o]
                    late = np.nan_to_num(laws.tpot_ms[p, w], nan=-np.inf) > tpot_lim
                    ok *= 1.0 - float(steps[late].sum() / steps.sum())
                met += served * ok
    return met, judged


def inference_section(model: FluidInference, end_s: float) -> dict[str, Any]:
    """The ``inference`` section of summary.json, the exact run's keys."""
    cells = _cells(model)
    laws = _laws(model, cells)
    layout = model.layout
    n_o, n_p, n_w = cells.arrived.shape[1:]
    every_o, every_p, every_w = np.ones(n_o, bool), np.ones(n_p, bool), np.ones(n_w, bool)
    summary = _group(model, cells, laws, every_o, every_p, every_w, False)
    rejected = int(_count_table(cells)["rejected"].sum())
    summary["rejected"] = rejected
    summary["timed_out"] = summary["dropped"] - rejected
    summary["failed"] = None if model.scenario.failures is not None else 0
    window = end_s - model.scenario.warmup
    met, _ = _slo(model, cells, laws, every_o, every_p, every_w, False)
    no_objectives = np.isnan(layout.limits()).all(axis=1)
    free = laws.served[:, no_objectives, :].sum()
    summary["goodput_rps"] = float((met + free) / window) if window > 0 else 0.0
    if any(wl.shared_prefix is not None for wl in model.scenario.inference):
        summary["prefix_cache"] = {"requests": None, "hit_rate": None, "prefill_tokens_saved": None,
                                   "ttft_ms_hit": _stats(0.0, np.zeros(1), laws.grid, 0.0),
                                   "ttft_ms_miss": _stats(0.0, np.zeros(1), laws.grid, 0.0)}
    origins = cells.arrived.sum(axis=(0, 2, 3)) + cells.rejected.sum(axis=(0, 2))
    summary["by_origin"] = {name: _group(model, cells, laws, np.arange(n_o) == i, every_p, every_w, False)
                            for i, name in enumerate(layout.regions) if origins[i] > 0}
    summary["by_region"] = {name: _group(model, cells, laws, every_o, layout.pool_region == i, every_w, True)
                            for i, name in enumerate(layout.regions)
                            if layout.pool_slots[layout.pool_region == i].sum()}
    summary["by_workload"] = {name: _group(model, cells, laws, every_o, every_p, np.arange(n_w) == i, False)
                              for i, name in enumerate(layout.workloads)}
    if model.batching:
        summary["by_pool"] = pool_section(model, model.scenario.warmup, end_s)
    return summary


def region_columns(model: FluidInference, edges: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per region and bucket, the request columns of timeseries.csv."""
    s = model.solve()
    cells = _cells(model)
    flow, widths = s["flow"], model.demand.widths
    bucket = np.clip(np.searchsorted(edges, model.demand.edges[:-1], side="right") - 1, 0, len(edges) - 2)
    n_b = len(edges) - 1
    width_b = np.diff(edges)

    def per_bucket(v: np.ndarray) -> np.ndarray:
        return np.bincount(bucket, weights=v, minlength=n_b)[:n_b]

    def mean_of(v: np.ndarray) -> np.ndarray:  # (K, P_r) -> time average of the sum per bucket
        return per_bucket((v * widths[:, None]).sum(axis=1)) / width_b
    completions = np.divide(flow.busy, s["mean"], out=np.zeros_like(flow.busy), where=s["mean"] > 0)
    tpot = np.stack([np.stack([model.tpot_ms(p, w) for w in range(cells.served.shape[3])], axis=1)
                     for p in range(cells.served.shape[2])], axis=1)  # (K, P, W)
    percentiles = _bucket_percentiles(model, cells, bucket, n_b)
    result = {}
    for r, name in enumerate(model.layout.regions):
        mine = model.layout.pool_region == r
        nan = np.full(n_b, np.nan)
        served = cells.served[:, :, mine, :].sum(axis=1)  # (K, P_r, W)
        has = ~np.isnan(tpot[:, mine])
        tpot_n = per_bucket((served * has).sum(axis=(1, 2)))
        result[name] = {
            "arrivals": per_bucket(cells.arrived[:, :, mine, :].sum(axis=(1, 2, 3))),
            "completions": per_bucket((completions[:, mine] * widths[:, None]).sum(axis=1)),
            "dropped": per_bucket(cells.dropped[:, :, mine, :].sum(axis=(1, 2, 3))),
            "queue_len": _tidy(mean_of(flow.queue[:, mine])), "busy_slots": mean_of(s["busy_slots"][:, mine]),
            "busy_gpus": mean_of(s["busy_gpus"][:, mine]),
            **percentiles[r],
            "tpot_mean_ms": np.divide(per_bucket((served * np.where(has, tpot[:, mine], 0.0)).sum(axis=(1, 2))),
                                      tpot_n, out=nan.copy(), where=tpot_n > 0),
            **_batch_columns(model, mine, per_bucket, widths),
        }
    return result


_COARSE = 4  # per-bucket percentiles on cells 4 times as wide: charts, not the summary


def _coarse(pmf: np.ndarray) -> np.ndarray:
    """Mass on cells ``_COARSE`` times as wide (centred like the fine cells they merge)."""
    return pmf.reshape(*pmf.shape[:-1], -1, _COARSE).sum(axis=-1)


def _tidy(values: np.ndarray) -> np.ndarray:
    """Queues below 1e-9 requests are 0 (Erlang C's far tail, not a queue)."""
    return np.where(np.abs(values) < 1e-9, 0.0, values)


def _bucket_percentiles(model: FluidInference, cells: _Cells, bucket: np.ndarray,
                        n_b: int) -> list[dict[str, np.ndarray]]:
    """Per region, per bucket: latency and TTFT p50 and p99 of the requests that arrived in
    the bucket (the exact run's are of those that completed in it), on cells 4 times as
    wide as the summary's."""
    s = model.solve()
    laws = _laws(model, cells)
    grid, rtt = laws.grid, s["rtt"]
    n_regions = len(model.layout.regions)
    latency = np.zeros((n_regions, n_b, grid.n // _COARSE))
    ttft = np.zeros((n_regions, n_b, grid.n // _COARSE))
    served = cells.served
    for p, w_pmf in s.get("wait_pmfs", {}).items():
        r = int(model.layout.pool_region[p])
        wait = _split_wait(grid, s["flow"], p, w_pmf)
        for w in range(served.shape[3]):
            if not served[:, :, p, w].any():
                continue
            trips = _bucket_trips(grid, wait, served[:, :, p, w], rtt[:, :, p], bucket, n_b)
            law, ttft_law = s["service_laws"].get((p, w), (None, None))
            if law is None:
                law, ttft_law = model.law(p, w, served[:, :, p, w].sum(axis=1)), None
            trips = _coarse(trips)
            latency[r] += convolve(trips, _coarse(law.pmf(grid.x_ms / 1000.0))[None, :])
            if ttft_law is not None:
                ttft[r] += convolve(trips, _coarse(ttft_law.pmf(grid.x_ms / 1000.0))[None, :])
    return _percentile_columns(latency, ttft, grid)


@dataclass(frozen=True)
class _Wait:
    """A pool's wait per step, split into its atom (the shift, no queue) and its tail:
    ``tails`` the steps with a tail, ``tail_pmf`` their tails alone, ``atoms`` each step's
    atom cell and ``atom_mass`` its mass."""

    tails: np.ndarray
    tail_pmf: np.ndarray
    atoms: np.ndarray
    atom_mass: np.ndarray


def _split_wait(grid: Grid, flow: PoolFlow, p: int, w_pmf: np.ndarray) -> _Wait:
    """Pool ``p``'s wait laws ``w_pmf`` (per step) split into atoms and tails."""
    tails = np.flatnonzero(flow.p_wait[:, p] > TAIL_MIN)
    tail_pmf = w_pmf[tails].copy()  # the tails alone: the atoms are added cell by cell
    atoms = atom_cells(grid, flow.shift_s[:, p])
    tail_pmf[np.arange(len(tails)), atoms[tails]] -= 1.0 - flow.p_wait[tails, p]
    atom_mass = 1.0 - np.where(flow.p_wait[:, p] > TAIL_MIN, flow.p_wait[:, p], 0.0)
    return _Wait(tails, tail_pmf, atoms, atom_mass)


def _bucket_trips(grid: Grid, wait: _Wait, served: np.ndarray, rtt: np.ndarray, bucket: np.ndarray,
                  n_b: int) -> np.ndarray:
    """Per bucket: the mass of RTT + wait of the requests that arrived in it, over the
    origins (``served`` and ``rtt`` are ``(K, O)`` for one pool and workload)."""
    tails = wait.tails
    trips = np.zeros((n_b, grid.n))
    for o in np.flatnonzero(served.any(axis=0)):
        weights = served[:, o]
        rtt_o = np.where(np.isfinite(rtt[:, o]), rtt[:, o], 0.0)
        cells_o = np.minimum(wait.atoms + np.floor(rtt_o / grid.h_ms + 0.5).astype(np.int64), grid.n - 1)
        np.add.at(trips, (bucket, cells_o), weights * wait.atom_mass)
        for value in np.unique(rtt_o[tails]) if len(tails) else ():
            pick = rtt_o[tails] == value
            rows = shifted(wait.tail_pmf[pick] * weights[tails][pick, None], float(value), grid)
            which = bucket[tails][pick]  # steps in time order: each bucket's rows are contiguous
            starts = np.flatnonzero(np.diff(which, prepend=-1))
            trips[which[starts]] += np.add.reduceat(rows, starts, axis=0)
    return trips


def _percentile_columns(latency: np.ndarray, ttft: np.ndarray, grid: Grid) -> list[dict[str, np.ndarray]]:
    """Per region, the p50 and p99 columns of the ``(regions, buckets, cells)`` laws, read
    on the coarse cells."""
    n_regions, n_b = latency.shape[:2]
    offset = (_COARSE - 1) / 2.0 * grid.h_ms  # a wide cell's centre, past its first fine cell's
    grid = Grid(grid.h_ms * _COARSE, grid.n // _COARSE)
    fractions = np.array([0.5, 0.99])
    result = []
    for r in range(n_regions):
        lat = np.array([quantiles(latency[r, b], grid, fractions) for b in range(n_b)]).reshape(n_b, 2) + offset
        first = np.array([quantiles(ttft[r, b], grid, fractions) for b in range(n_b)]).reshape(n_b, 2) + offset
        result.append({"latency_p50_ms": lat[:, 0], "latency_p99_ms": lat[:, 1],
                       "ttft_p50_ms": first[:, 0], "ttft_p99_ms": first[:, 1]})
    return result


def _batch_columns(model: FluidInference, mine: np.ndarray, per_bucket, widths: np.ndarray) -> dict[str, np.ndarray]:
    """Batch size while busy and the KV cache's mean use, over a region's batching pools."""
    s = model.solve()
    pools = [int(p) for p in np.flatnonzero(mine) if int(p) in model.batching]
    if not pools:
        nan = per_bucket(np.zeros(len(widths))) * np.nan
        return {"batch_size": nan, "kv_fraction": nan.copy()}
    seqs = busy = kv = capacity = 0.0
    for p in pools:
        f, replicas, bp = s["batching"][p], s["replicas"][:, p], model.batching[p]
        busy = busy + per_bucket(replicas * f["busy"] * widths)
        seqs = seqs + per_bucket(replicas * f["in_replica"] * widths)
        kv = kv + per_bucket(replicas * f["in_replica"] * bp.tokens.context * widths)
        capacity += bp.kv_capacity * model.pools[p].replicas
    width_b = per_bucket(widths)
    return {"batch_size": np.divide(seqs, busy, out=np.full(len(width_b), np.nan), where=busy > 0),
            "kv_fraction": kv / width_b / capacity}


def pool_section(model: FluidInference, start_s: float, end_s: float) -> dict[str, Any]:
    """``inference.by_pool`` for batching pools: the equilibrium's figures."""
    s = model.solve()
    widths = model.demand.widths * (model.demand.edges[:-1] >= start_s - 1e-9)
    window = end_s - start_s
    result = {}
    for p, bp in model.batching.items():
        f, replicas = s["batching"][p], s["replicas"][:, p]
        busy = (replicas * f["busy"] * widths).sum()
        lam = s["n"][:, :, p, :].sum(axis=(1, 2)) / model.demand.widths
        result[model.layout.pool_keys[p]] = {
            "batch_mean": float((replicas * f["in_replica"] * widths).sum() / busy) if busy > 0 else None,
            "batch_max": None, "kv_peak_fraction": None,
            "tokens_per_s": float((lam * bp.tokens.output_mean * widths).sum() / window) if window > 0 else 0.0,
            "busy_fraction": float(busy / (model.pools[p].replicas * window)) if window > 0 else 0.0,
            "preemptions": None,
        }
    return result


def busy_gpu_means(model: FluidInference, start_s: float, end_s: float) -> dict[str, float]:
    """Time-average GPUs serving requests per region over ``[start_s, end_s)``."""
    s = model.solve()
    widths = model.demand.widths
    inside = model.demand.edges[:-1] >= start_s - 1e-9
    busy = s["busy_gpus"] * (widths * inside)[:, None]
    window = end_s - start_s
    return {name: float(busy[:, model.layout.pool_region == r].sum() / window) if window > 0 else 0.0
            for r, name in enumerate(model.layout.regions)}


def latency_cdf_rows(model: FluidInference) -> list[dict[str, Any]]:
    """Latency quantiles per origin and for all ('*'), from the fluid laws."""
    cells = _cells(model)
    laws = _laws(model, cells)
    rows = []
    groups = [("*", laws.latency.sum(axis=(0, 1, 2)))]
    groups += [(name, laws.latency[:, :, i].sum(axis=(0, 1))) for i, name in enumerate(model.layout.regions)]
    for name, pmf in groups:
        if not pmf.sum() > 0:
            continue
        values = quantiles(pmf, laws.grid, _CDF_QUANTILES)
        rows += [{"origin": name, "quantile": q, "latency_ms": float(v)}
                 for q, v in zip(_CDF_QUANTILES, values, strict=True)]
    return rows
