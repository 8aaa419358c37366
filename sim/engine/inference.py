"""Inference requests on a fast path beside SimPy.

A SimPy process per request costs about six events per customer; a day of global traffic
has millions of requests. So requests never become SimPy processes. Their inputs are drawn
up front in numpy batches (:mod:`sim.workload`), and the engine walks them in time order
together with two heaps of its own (requests travelling to a pool, services finishing),
interleaved with SimPy's event queue on one clock: :meth:`InferenceEngine.run` steps SimPy
whenever its next event is due first (ties go to SimPy, so a capacity change at time t
applies before requests at t). Only events that change a queue or a slot exist; the
return leg is added arithmetically. Per-request state lives in preallocated typed arrays
(about 40 bytes a request).

Serving is FCFS per pool with ``active_replicas x slots_per_replica`` slots. A capacity
cut never interrupts a running request (slots drain); a capacity rise starts queued
requests at once. A request still queued ``timeout_ms`` after reaching its pool is dropped
when a slot would next take it (or at the end of the run).

Latency = RTT(origin, pool) + wait + service, where the one-way delay RTT/2 is paid before
joining the queue and again on the way back.

Public: ``InferenceEngine``, ``RequestLog``, ``STATUS``.
"""
from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import Sequence

import numpy as np

from sim.errors import PolicyError
from sim.metrics.records import STATUS, RequestLog
from sim.policies import RoutingView
from sim.scenario.model import Scenario, TokenService
from sim.workload import RequestBatch, token_coefficients

__all__ = ["InferenceEngine"]
_INF = math.inf


def _expected_service_s(wl, gpu) -> float:
    service = wl.service
    kind = service.dist
    if kind == "constant":
        return service.value_s
    if kind in ("exponential", "lognormal"):
        return service.mean_s
    if kind == "empirical":
        return float(np.mean(service.samples_s))
    c = token_coefficients(service, gpu)
    return (c.base_ms + c.prefill_ms_per_token * service.input_tokens.mean
            + c.decode_ms_per_token * service.output_tokens.mean) / 1000.0


class InferenceEngine:
    """Routes, queues and serves one batch of requests over the world's pools."""

    def __init__(self, scenario: Scenario, pools: Sequence, region_names: Sequence[str],
                 rtt_ms: np.ndarray, requests: RequestBatch, policy, policy_name: str):
        self.pools = list(pools)
        self.requests = requests
        self.policy = policy
        self.policy_name = policy_name
        self.reads_load = getattr(policy, "reads_load", True)
        self.sync_delay = scenario.scheduler.sync_delay if scenario.scheduler else 0.0
        n, n_pools = len(requests), len(self.pools)
        region_index = {name: i for i, name in enumerate(region_names)}
        pool_region = np.array([region_index[p.info.region] for p in self.pools], dtype=np.int64)
        self._pool_region = pool_region
        self.rtt_ms = np.ascontiguousarray(rtt_ms[:, pool_region])  # origin x pool
        self._rtt_rows = self.rtt_ms.tolist()
        # A training-only pool never serves requests: its slots count as 0.
        self._slots = [0 if p.info.serves == "training" else p.info.slots_per_replica for p in self.pools]
        self.total_slots = [p.info.replicas * k for p, k in zip(self.pools, self._slots)]
        self.active = [p.active_replicas * k for p, k in zip(self.pools, self._slots)]
        self.busy = [0] * n_pools
        self.queues = [deque() for _ in range(n_pools)]
        self.shares = np.array([p.share for p in self.pools], dtype=float)
        workloads = scenario.inference
        mix = np.bincount(requests.workload, minlength=len(workloads)).astype(float) if n else np.ones(len(workloads))
        mix = mix / mix.sum() if mix.sum() else mix
        self.mean_service = np.array([
            sum(w * _expected_service_s(wl, p.info.gpu) for w, wl in zip(mix, workloads)) for p in self.pools])
        self._token = self._token_tables(workloads)
        self.timeout_s = [wl.timeout_ms / 1000.0 if wl.timeout_ms else _INF for wl in workloads]
        self.view = self._make_view(pool_region)
        # Outcomes, preallocated as raw typed arrays (no per-request objects).
        self.pool_of = array("h", [-1]) * n
        self.rtt_of = array("d", [0.0]) * n
        self.wait = array("d", [math.nan]) * n
        self.service = array("d", [math.nan]) * n
        self.status = array("b", [0]) * n
        self.arrival_at_pool = array("d", [0.0]) * n
        self._next = 0
        self._travel: list = []   # (time at pool, request, pool)
        self._done: list = []     # (finish time, request, pool)
        self.completed = self.rejected = self.timed_out = self._travelled = 0
        # Failures: what happens to requests on a failed replica.
        failures = scenario.failures
        self.on_failure = failures.inference if failures else "drop"
        self.max_retries = failures.max_retries if failures else 0
        self.retries = 0  # re-routings after failures
        self.failed = 0  # requests lost to failures
        self._tries: dict[int, int] = {}
        self._retry_s: dict[int, float] = {}

    # -- set-up ------------------------------------------------------------------------
    def _token_tables(self, workloads):
        """Per workload, per pool (base_s, prefill_s_per_token, decode_s_per_token) or None."""
        tables = []
        for wl in workloads:
            if isinstance(wl.service, TokenService):
                coeffs = [token_coefficients(wl.service, p.info.gpu) for p in self.pools]
                tables.append([(c.base_ms / 1000, c.prefill_ms_per_token / 1000, c.decode_ms_per_token / 1000)
                               for c in coeffs])
            else:
                tables.append(None)
        return tables

    def _make_view(self, pool_region: np.ndarray) -> RoutingView:
        view = RoutingView.build(
            pool_region=pool_region, rtt_ms=self.rtt_ms, queue_len=[0] * len(self.pools),
            busy_slots=self.busy, active_slots=self.active, total_slots=self.total_slots,
            share=self._view_shares(), mean_service_s=self.mean_service)
        # The engine writes load figures into arrays it owns; the policy sees read-only
        # views of them, so no writeable flag is flipped per request.
        self._queue_np = np.zeros(len(self.pools), dtype=np.int64)
        self._busy_np = np.zeros(len(self.pools), dtype=np.int64)
        view.queue_len, view.busy_slots = self._queue_np.view(), self._busy_np.view()
        view.queue_len.flags.writeable = view.busy_slots.flags.writeable = False
        return view

    def _view_shares(self) -> np.ndarray:
        shares = self.shares
        if shares.sum() <= 0:
            total = np.asarray(self.total_slots, dtype=float)
            shares = total / total.sum()
        return shares

    # -- events from the slow world ------------------------------------------------------
    def capacity_changed(self, index: int, t_s: float) -> None:
        """A pool's active replicas or share changed at ``t_s``: update and start queued work."""
        pool = self.pools[index]
        self.active[index] = pool.active_replicas * self._slots[index]
        self.shares[index] = pool.share
        self._refresh_view_static()
        self._drain(index, t_s)

    def _refresh_view_static(self) -> None:
        view = self.view
        view.active_slots.flags.writeable = True
        view.active_slots[:] = self.active
        view.active_slots.flags.writeable = False
        view.share.flags.writeable = True
        view.share[:] = self._view_shares()
        view.share.flags.writeable = False
        view.version += 1

    def _sync_load(self) -> None:
        self._queue_np[:] = [len(q) for q in self.queues]
        self._busy_np[:] = self.busy

    # -- request events ------------------------------------------------------------------
    def _service_time(self, i: int, pool: int) -> float:
        table = self._token[self._workloads[i]]
        if table is None:
            return self._services[i]
        base, prefill, decode = table[pool]
        return base + prefill * self._in_tokens[i] + decode * self._out_tokens[i]

    def _start(self, i: int, pool: int, now: float) -> None:
        self.wait[i] = now - self.arrival_at_pool[i]
        self.busy[pool] += 1
        heappush(self._done, (now + self.service[i], i, pool))

    def _drain(self, pool: int, now: float) -> None:
        """Start queued requests while the pool has free active slots."""
        queue, active = self.queues[pool], self.active[pool]
        while queue and self.busy[pool] < active:
            j = queue.popleft()
            limit = self.timeout_s[self._workloads[j]]
            if now - self.arrival_at_pool[j] > limit:
                self.wait[j] = now - self.arrival_at_pool[j]
                self.status[j] = 3
                self.timed_out += 1
                continue
            self._start(j, pool, now)

    # -- failures --------------------------------------------------------------------------
    def set_rtt(self, rtt_ms: np.ndarray) -> None:
        """Links failed or came back: new path RTTs (region x region, inf when cut off).
        Requests already travelling keep their path."""
        new = rtt_ms[:, self._pool_region]
        self.rtt_ms[:] = new
        for row, values in zip(self._rtt_rows, new.tolist()):
            row[:] = values
        view = self.view
        view.rtt_ms.flags.writeable = True
        view.rtt_ms[:] = new
        view.rtt_ms.flags.writeable = False
        view.version += 1

    def replicas_failed(self, p: int, t_s: float, replicas: int, serving_before: int, u: float) -> None:
        """``replicas`` of pool ``p``'s ``serving_before`` serving replicas failed at ``t_s``
        (the pool's capacity is already reduced). The requests in service on them are
        retried or lost: a failed replica held ``busy * replicas / serving_before`` of them
        on average (rounded at random with ``u``), the most recently started. When every
        serving replica failed, the pool's queue and the requests travelling to it go too."""
        done, service = self._done, self.service
        mine = [e for e in done if e[2] == p]
        everything = replicas >= serving_before
        if everything:
            n = len(mine)
        else:
            n = min(len(mine), int(math.floor(len(mine) * replicas / serving_before + u)),
                    replicas * self.pools[p].info.slots_per_replica)
        mine.sort(key=lambda e: (e[0] - service[e[1]], e[1]))
        victims = [e[1] for e in mine[len(mine) - n:]] if n else []
        if victims:
            gone = set(victims)
            done[:] = [e for e in done if not (e[2] == p and e[1] in gone)]
            heapify(done)
            self.busy[p] -= len(victims)
        if everything:
            for j in self.queues[p]:  # queued past their timeout: timed out, not revived
                if t_s - self.arrival_at_pool[j] > self.timeout_s[self._workloads[j]]:
                    self.wait[j] = t_s - self.arrival_at_pool[j]
                    self.status[j] = 3
                    self.timed_out += 1
                else:
                    victims.append(j)
            self.queues[p].clear()
            travel = self._travel
            moving = [e for e in travel if e[2] == p]
            if moving:
                travel[:] = [e for e in travel if e[2] != p]
                heapify(travel)
                victims += [e[1] for e in moving]
        for j in victims:
            self._retry(j, t_s)

    def _retry(self, j: int, t_s: float) -> None:
        """Route request ``j`` again at ``t_s``, or count it lost."""
        tries = self._tries.get(j, 0) + 1
        p = None
        if self.on_failure == "retry" and tries <= self.max_retries:
            self._tries[j] = tries
            view = self.view
            view.t_s, view.origin, view.workload = t_s, self._origins[j], self._workloads[j]
            if self.reads_load and self.sync_delay == 0:  # a stale view stays stale
                self._sync_load()
            p = self.policy.choose(view)
            if p is not None and self._rtt_rows[self._origins[j]][p] == _INF:
                p = None
        if p is None:
            self.status[j] = 5
            self.failed += 1
            return
        self.retries += 1
        rtt = self._rtt_rows[self._origins[j]][p]
        self.pool_of[j] = p
        self.rtt_of[j] = rtt
        self._retry_s[j] = t_s - self._times[j]
        self.wait[j] = math.nan
        self.service[j] = self._service_time(j, p)
        heappush(self._travel, (t_s + rtt / 2000.0, j, p))

    @property
    def events_processed(self) -> int:
        """Request events handled: arrivals, pool arrivals after travel, completions."""
        return self._next + self._travelled + self.completed

    # -- the shared clock ----------------------------------------------------------------
    def run(self, env, until: float) -> None:
        """Advance SimPy and the request fast path together up to ``until``.

        This loop is the hot path: the common cases of :meth:`step` are inlined and state
        is held in locals, which roughly doubles throughput over calling the methods."""
        r = self.requests
        times = self._times = r.t_s.tolist()
        origins = self._origins = r.origin.tolist()
        workloads = self._workloads = r.workload.tolist()
        self._services = r.service_s.tolist()
        self._in_tokens = r.input_tokens.tolist()
        self._out_tokens = r.output_tokens.tolist()
        n = self._n = len(times)
        peek, step_sim = env.peek, env.step
        done, travel, queues, busy, active = self._done, self._travel, self.queues, self.busy, self.active
        status, wait, service, at_pool = self.status, self.wait, self.service, self.arrival_at_pool
        pool_of, rtt_of, rtt_rows = self.pool_of, self.rtt_of, self._rtt_rows
        timeout, service_time, drain = self.timeout_s, self._service_time, self._drain
        services = self._services if all(table is None for table in self._token) else None
        # A policy whose answer depends only on (origin, availability) is asked once per
        # origin until the view's version changes.
        per_origin = getattr(self.policy, "decision_per_origin", False)
        decided: dict[int, int | None] = {}
        decided_version = -1
        view, choose, reads_load, sync = self.view, self.policy.choose, self.reads_load, self._sync_load
        sync_delay, next_sync = self.sync_delay, -_INF
        i = self._next
        travelled = self._travelled
        t_sim = peek()
        while True:
            # Ties: completions first (they free slots), then pool arrivals, then new requests.
            t = times[i] if i < n else _INF
            kind = 2
            if travel and travel[0][0] <= t:
                t, kind = travel[0][0], 1
            if done and done[0][0] <= t:
                t, kind = done[0][0], 0
            if t_sim <= t:
                if t_sim >= until:
                    break
                step_sim()
                t_sim = peek()
                continue
            if t >= until:
                break
            if kind == 0:  # a service finishes
                _, j, p = heappop(done)
                status[j] = 1
                busy[p] -= 1
                queue = queues[p]
                if queue:
                    k = queue[0]
                    if busy[p] < active[p] and t - at_pool[k] <= timeout[workloads[k]]:
                        queue.popleft()
                        wait[k] = t - at_pool[k]
                        busy[p] += 1
                        heappush(done, (t + service[k], k, p))
                    else:
                        drain(p, t)
                continue
            if kind == 1:  # a request reaches its pool after travelling
                _, j, p = heappop(travel)
                travelled += 1
            else:  # a request arrives at its origin and is routed
                j = i
                i += 1
                origin = origins[j]
                if per_origin and view.version == decided_version and origin in decided:
                    p = decided[origin]
                else:
                    view.t_s = t
                    view.origin = origin
                    view.workload = workloads[j]
                    if reads_load and t >= next_sync:
                        sync()
                        next_sync = t + sync_delay
                    p = choose(view)
                    if per_origin:
                        if view.version != decided_version:
                            decided.clear()
                            decided_version = view.version
                        decided[origin] = p
                if p is None:
                    status[j] = 2
                    self.rejected += 1
                    continue
                try:
                    rtt = rtt_rows[origin][p]
                    if p < 0:
                        raise IndexError
                except (IndexError, TypeError):
                    raise PolicyError(self.policy_name, f"returned {p!r}, not a pool index in "
                                      f"0..{len(self.pools) - 1} or None") from None
                if rtt == _INF:
                    raise PolicyError(self.policy_name, f"sent a request from region {origin} to unreachable pool {p}")
                pool_of[j] = p
                rtt_of[j] = rtt
                service[j] = services[j] if services is not None else service_time(j, p)
                if rtt != 0.0:
                    heappush(travel, (t + rtt / 2000.0, j, p))
                    continue
            at_pool[j] = t  # join the pool's FCFS queue
            queue = queues[p]
            if not queue and busy[p] < active[p]:
                wait[j] = 0.0
                busy[p] += 1
                heappush(done, (t + service[j], j, p))
            else:
                queue.append(j)
        self._next = i
        self._travelled = travelled
        self.completed = int(np.count_nonzero(np.frombuffer(status, dtype=np.int8) == 1))
        self._finish(until)

    def _finish(self, end_s: float) -> None:
        """Close the books: expired queued requests are timed out, the rest are in flight."""
        for pool, queue in enumerate(self.queues):
            for j in queue:
                if end_s - self.arrival_at_pool[j] > self.timeout_s[self._workloads[j]]:
                    self.wait[j] = end_s - self.arrival_at_pool[j]
                    self.status[j] = 3
                    self.timed_out += 1
        status = self.status
        for i in range(self._n):
            if status[i] == 0:
                status[i] = 4

    def log(self) -> RequestLog:
        r = self.requests
        as_np = lambda a, dtype: np.frombuffer(a, dtype=dtype)  # noqa: E731  (zero copy)
        return RequestLog(
            t_s=r.t_s, origin=r.origin, workload=r.workload,
            pool=as_np(self.pool_of, np.int16), rtt_ms=as_np(self.rtt_of, np.float64),
            wait_s=as_np(self.wait, np.float64), service_s=as_np(self.service, np.float64),
            status=as_np(self.status, np.int8), retry_s=self._retry_array())

    def _retry_array(self) -> np.ndarray:
        out = np.zeros(len(self.requests))
        if self._retry_s:
            index = np.fromiter(self._retry_s.keys(), dtype=np.int64)
            out[index] = np.fromiter(self._retry_s.values(), dtype=float)
        return out
