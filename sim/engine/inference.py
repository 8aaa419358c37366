"""Inference requests on a fast path beside SimPy.

A SimPy process per request costs about six events per customer; a day of global traffic
has millions of requests. So requests never become SimPy processes. Their inputs are drawn
up front in numpy batches (:mod:`sim.workload`), and the engine walks them in time order
together with two heaps of its own (requests travelling to a pool, services finishing),
interleaved with SimPy's event queue on one clock: :meth:`InferenceEngine.run` steps SimPy
whenever its next event is due first (ties go to SimPy, so a capacity change at time t
applies before requests at t). Only events that change a queue or a slot exist; the
return leg is added arithmetically. The input columns are read in place (memoryviews of
the numpy arrays) and per-request outcomes live in preallocated typed arrays: about 55
bytes a request while the loop runs, 47 in the published log. A policy whose decision
depends on the origin alone (``decision_per_origin``) is asked once per origin and view
version, and every request up to SimPy's next event (nothing changes the view before it)
is routed in one numpy step. A policy whose answer is the nearest available pool while that
pool has a free slot (``nearest_when_free``, as ``latency_aware``) is not asked then.

Serving is FCFS per pool with ``active_replicas x slots_per_replica`` slots. A capacity
cut never interrupts a running request (slots drain); a capacity rise starts queued
requests at once. When the scenario has failures, each request in service on a slot pool
sits on one replica (the active replica with the fewest requests when it starts; the
active replicas are the pool's first ``active_replicas``), so a failed replica loses
exactly the requests it held. A request still queued ``timeout_ms`` after reaching its pool is dropped
when a slot would next take it (or at the end of the run).

Latency = RTT(origin, pool) + wait + service, where the one-way delay RTT/2 is paid before
joining the queue and again on the way back.

Scale from zero: a request that no available pool can take (the policy rejects it) waits
at the nearest reachable autoscaled pool of its model that the autoscaler holds at zero
warm replicas in a region that is up, as a serverless activator holds requests for a
service scaled to zero; its queue is then the autoscaler's signal to start a replica.

The engine reacts to records: :class:`~sim.records.CapacityChanged` (a pool's active
replicas or share), :class:`~sim.records.ProvisionChanged` (an autoscaled pool's warm
replicas: at zero it holds requests for a cold start), :class:`~sim.records.ReplicaFailed`
(the requests on failed serving replicas are retried or lost, published as
:class:`~sim.records.RequestsDisplaced`) and :class:`~sim.records.RoutesChanged` (new path
RTTs). When the run ends it publishes the whole :class:`~sim.records.RequestLog` once.

Public: ``InferenceEngine``.
"""
from __future__ import annotations

import math
import operator
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

import numpy as np

from sim.engine.batching import BatchingServers, Sessions, batch1_service_s, serving_spec
from sim.engine.batching_compiled import CompiledServers, choose as choose_core
from sim.engine.bus import Bus
from sim.engine.kv_handoff import KvHandoff
from sim.engine.seats import Seats
from sim.engine.turns import Turns
from sim.engine.waiting_room import WaitingRooms
from sim.errors import PolicyError
from sim.policies import RoutingView
from sim.policies.routing import nearest_available
from sim.records import (
    CapacityChanged,
    ProvisionChanged,
    ReplicaFailed,
    RequestLog,
    RequestsDisplaced,
    RequestStatus,
    RoutesChanged,
)
from sim.scenario.model import Scenario
from sim.workload import RequestBatch
from sim.workload.service import expected_service_s, service_times
from sim.world import PoolInfo

__all__ = ["InferenceEngine", "PoolSignals"]
_INF = math.inf
# Request statuses as plain ints: the hot loop stores them in an int8 array.
_COMPLETED, _REJECTED = int(RequestStatus.COMPLETED), int(RequestStatus.REJECTED)
_TIMED_OUT = int(RequestStatus.TIMED_OUT)
_IN_FLIGHT, _FAILED = int(RequestStatus.IN_FLIGHT), int(RequestStatus.FAILED)
# Fewer requests than this before SimPy's next event are routed one by one.
_BULK_MIN = 64
_BULK_CHUNK = 1 << 16


@dataclass(frozen=True)
class PoolSignals:
    """Per pool, what an autoscaler observes of the requests at time ``t_s`` (see
    :meth:`InferenceEngine.signals`)."""

    t_s: float
    slots_per_replica: np.ndarray  # int, requests one replica runs at once (max_batch on batching pools)
    queue_len: np.ndarray  # int, requests waiting at the pool
    running: np.ndarray  # int, requests in service (running sequences on batching pools)
    kv_fraction: np.ndarray  # KV cache in use over active KV capacity (NaN: not batching, or none active)
    arrivals: np.ndarray  # int, requests routed to the pool that arrived in the window
    wait_mean_s: np.ndarray  # their mean wait so far (NaN: none)
    ttft_p99_ms: np.ndarray  # their 99th-percentile TTFT so far (NaN: none, or no token figures)


class _Decisions:
    """A per-origin policy's answers, ``origin -> (pool, rtt)``, for one view version."""

    __slots__ = ("version", "answers")

    def __init__(self) -> None:
        self.version = -1
        self.answers: dict[int, tuple] = {}

    def now(self, version: int) -> dict[int, tuple]:
        """The answers valid at ``version`` (none kept from an older one)."""
        if version != self.version:
            self.answers, self.version = {}, version
        return self.answers


def _reader(column: np.ndarray) -> memoryview:
    """Element access to a numpy column without a copy (``view[i]`` is a Python int or float)."""
    return np.ascontiguousarray(column).data


@dataclass(frozen=True)
class _Outcomes:
    """The per-request outcome arrays the batching replicas fill in."""

    status: array
    wait: array
    service: array
    at_pool: array
    first_token: array
    tpot: array
    cached: array | _NoCache


class _NoCache:
    """Stands in for the cached-tokens array when no request has a shared prefix (every
    write is a zero)."""

    __slots__ = ()

    def __setitem__(self, j: int, value: int) -> None:
        pass


class _StaleLoad:
    """The load figures routing sees through a stale control plane: the pools of each region
    as of that region's last refresh (every ``delays[region]``), those of the router's own
    region as they are now. It writes the routing view's queue and busy arrays in place, and
    keeps ``known``, the prefixes each batching pool is known to hold, on the same clock."""

    def __init__(self, pool_region: list[int], delays: list[float], queue: np.ndarray, busy: np.ndarray,
                 live, cached: dict[int, dict[int, int]], backlog: np.ndarray | None = None,
                 live_backlog: Callable[[int], float] | None = None) -> None:
        self.queue, self.busy, self.live, self.delays = queue, busy, live, delays
        self.snap_queue, self.snap_busy = queue.copy(), busy.copy()
        # The batching pools' prefill backlogs, kept only for a policy that reads them.
        self.backlog, self.live_backlog = backlog, live_backlog
        self.snap_backlog = backlog.copy() if backlog is not None else None
        self.cached = cached  # live: pool -> {prefix: replicas holding it}
        self.snap_cached = {p: dict(c) for p, c in cached.items()}
        self.known: dict[int, dict[int, int]] = dict(self.snap_cached)
        self.pools: dict[int, list[int]] = {}
        for p, r in enumerate(pool_region):
            self.pools.setdefault(r, []).append(p)
        self.next = dict.fromkeys(self.pools, -_INF)
        self.shown: list[int] = []  # pools currently shown as they are (the last origin's)

    def show(self, t: float, origin: int) -> None:
        queue, busy, snap_queue, snap_busy = self.queue, self.busy, self.snap_queue, self.snap_busy
        cached, snap_cached, known = self.cached, self.snap_cached, self.known
        backlog, snap_backlog, live_backlog = self.backlog, self.snap_backlog, self.live_backlog
        for p in self.shown:
            queue[p], busy[p] = snap_queue[p], snap_busy[p]
            if p in cached:
                known[p] = snap_cached[p]
                if backlog is not None:
                    backlog[p] = snap_backlog[p]  # type: ignore[index]
        for region, pools in self.pools.items():
            if t >= self.next[region]:
                for p in pools:
                    queue[p], busy[p] = snap_queue[p], snap_busy[p] = self.live(p)
                    if p in cached:
                        known[p] = snap_cached[p] = dict(cached[p])
                        if backlog is not None:
                            backlog[p] = snap_backlog[p] = live_backlog(p)  # type: ignore[index, misc]
                self.next[region] = t + self.delays[region]
        self.shown = self.pools.get(origin, [])
        for p in self.shown:
            queue[p], busy[p] = self.live(p)
            if p in cached:
                known[p] = cached[p]
                if backlog is not None:
                    backlog[p] = live_backlog(p)  # type: ignore[misc]


def _no_progress(t: float, events: int) -> None:
    """Never called (no progress ticks without a listener); keeps the loop's local typed."""


class InferenceEngine:
    """Routes, queues and serves one batch of requests over the world's pools."""

    def __init__(self, scenario: Scenario, pools: Sequence[PoolInfo], region_names: Sequence[str],
                 rtt_ms: np.ndarray, requests: RequestBatch, policy, policy_name: str, bus: Bus):
        self.pools = list(pools)
        self.requests = requests
        self.policy = policy
        self.policy_name = policy_name
        self.bus = bus
        self.reads_load = getattr(policy, "reads_load", True)
        self.sync_delay = scenario.scheduler.sync_delay
        self.duration_s = scenario.duration
        self._names = list(region_names)
        self._scenario = scenario
        by_region = scenario.scheduler.sync_delay_by_region
        self._sync_delays = [by_region.get(name, self.sync_delay) for name in region_names]
        self._pool_state(region_names, rtt_ms)
        workloads = scenario.inference
        self._times_by_pool = [[service_times(wl.service, p.gpu) for p in self.pools] for wl in workloads]
        self.mean_service = self._mean_service(workloads)
        self.timeout_s = [wl.timeout_ms / 1000.0 if wl.timeout_ms else _INF for wl in workloads]
        self.view = self._make_view()
        # Prefix ids from here on are conversations' contexts (below: shared prompts).
        self._context_ids = sum(wl.shared_prefix.prompts for wl in workloads if wl.shared_prefix)
        self._allocate_outcomes(len(requests))
        self.kv = (KvHandoff(self.pools, workloads, self._pool_region, self.rtt_ms, region_names, bus,
                             origin=self._origins, workload=self._workloads, in_tokens=self._in_tokens,
                             pool_of=self.pool_of, rtt_of=self.rtt_of, status=self.status)
                   if KvHandoff.needed(self.pools) else None)
        self.batching = self._batching_servers()
        if self.kv is not None:
            assert not isinstance(self.batching, CompiledServers)  # disaggregation runs on the Python replicas
            self.kv.servers = self.batching
        self._control_plane()
        self.events_processed = 0
        self._failure_books(scenario)
        # Scale from zero: autoscaled pools held at zero warm replicas in a region that is up.
        self.rooms = WaitingRooms(self.pools, [k > 0 for k in self._slots])
        bus.subscribe(self.capacity_changed, (CapacityChanged,))
        bus.subscribe(self.provision_changed, (ProvisionChanged,))
        bus.subscribe(self.replicas_failed, (ReplicaFailed,))
        bus.subscribe(self.routes_changed, (RoutesChanged,))

    # -- set-up ------------------------------------------------------------------------
    def _pool_state(self, region_names: Sequence[str], rtt_ms: np.ndarray) -> None:
        """Per pool: its region, the RTT to it from every origin, its slots (active, busy)
        and its FCFS queue."""
        n_pools = len(self.pools)
        region_index = {name: i for i, name in enumerate(region_names)}
        self._pool_region = np.array([region_index[p.region] for p in self.pools], dtype=np.int64)
        self.rtt_ms = np.ascontiguousarray(rtt_ms[:, self._pool_region])  # origin x pool
        self._rtt_rows = self.rtt_ms.tolist()
        # A training-only pool never serves requests: its slots count as 0. A batching
        # replica counts as max_batch slots (its running sequences are its busy slots).
        self._slots = [0 if p.serves == "training" else p.serving.max_batch if p.serving else p.slots_per_replica
                       for p in self.pools]
        self.total_slots = [p.replicas * k for p, k in zip(self.pools, self._slots, strict=True)]
        self.active = [p.replicas * k for p, k in zip(self.pools, self._slots, strict=True)]
        self.busy = [0] * n_pools
        self.queues: list[deque[int]] = [deque() for _ in range(n_pools)]
        self.shares = np.zeros(n_pools)

    def _control_plane(self) -> None:
        """What routing sees of the pools: live, or each remote region as of its last refresh
        (``scheduler.sync_delay``), and of the prefix caches likewise."""
        policy = self.policy
        live_cached: dict[int, dict[int, int]] = self.batching.pool_cached if self.batching else {}
        # The prefill backlogs are worked out only for a policy that reads them (batching pools).
        self._reads_backlog = getattr(policy, "reads_backlog", False) and self.batching is not None
        backlog = self._backlog_np if self._reads_backlog else None
        live_backlog = self.batching.backlog if self.batching is not None else None
        self.stale = (_StaleLoad(self._pool_region.tolist(), self._sync_delays, self._queue_np, self._busy_np,
                                 self._live_load, live_cached, backlog, live_backlog)
                      if (self.reads_load or getattr(policy, "reads_cache", False))
                      and any(d > 0 for d in self._sync_delays) else None)
        # What the router knows of the prefix caches: live, or as of each region's refresh.
        self._cache_known = live_cached if self.stale is None else self.stale.known

    def _failure_books(self, scenario: Scenario) -> None:
        """What a failure needs: the retry rules, and (when replicas can fail) which replica
        each request in service sits on, so that a failure loses exactly its own."""
        failures = scenario.failures
        self.on_failure = failures.inference if failures else "drop"
        self.max_retries = failures.max_retries if failures else 0
        self._tries: dict[int, int] = {}
        self._retry_s: dict[int, float] = {}
        # Which replica each request in service sits on: kept only when replicas can fail.
        self.seats = Seats(self.pools, len(self.requests)) if failures is not None else None

    def _mean_service(self, workloads) -> np.ndarray:
        """Per pool, the mean service time over the workloads' request mix."""
        counts = np.bincount(self.requests.workload, minlength=len(workloads)).astype(float)
        mix = counts if len(self.requests) else np.ones(len(workloads))
        mix = mix / mix.sum() if mix.sum() else mix
        return np.array([sum(w * (batch1_service_s(serving_spec(p), wl.service) if p.serving
                                  else expected_service_s(wl.service, p.gpu))
                             for w, wl in zip(mix, workloads, strict=True))
                         for p in self.pools])

    def _allocate_outcomes(self, n: int) -> None:
        """Per-request outcomes as raw typed arrays (no per-request objects). The inputs
        are read in place through memoryviews (indexing one gives a Python number, as a
        list would, without a list's 8-byte pointer and boxed value per request)."""
        self.pool_of = array("h", [-1]) * n
        self.rtt_of = array("d", [0.0]) * n
        self.wait = array("d", [math.nan]) * n
        self.service = array("d", [math.nan]) * n
        self.status = array("b", [0]) * n
        self.arrival_at_pool = array("d", [0.0]) * n
        # Token figures exist only where a batching replica or the token model serves;
        # cached prompt tokens only where a batching replica serves a shared prefix.
        tokens = any(t is not None for row in self._times_by_pool for t in row) or any(
            p.serving is not None and p.serves != "training" for p in self.pools)
        self.first_token = array("d", [math.nan]) * n if tokens else None
        self.tpot = array("d", [math.nan]) * n if tokens else None
        self.cached = array("i", [0]) * n if tokens and bool((self.requests.prefix >= 0).any()) else None
        r = self.requests
        self._times = _reader(r.t_s)
        self._origins = _reader(r.origin)
        self._workloads = _reader(r.workload)
        self._services = _reader(r.service_s)
        self._in_tokens = _reader(r.input_tokens)
        self._out_tokens = _reader(r.output_tokens)
        self._next = 0
        self._travel: list[tuple[float, int, int]] = []   # (time at pool, request, pool)
        # Sessions: the later turns, sent when the previous answer reaches the user plus a
        # think time; due before the run ends, they wait in ``turns.heap`` by time.
        self.turns = Turns(r, self.rtt_of, self.duration_s)
        self._first_turns = r.first_turns
        self._done: list[tuple[float, int, int]] = []     # (finish time, request, pool)

    def _batching_servers(self) -> BatchingServers | CompiledServers | None:
        """The batching replicas of the pools that have a ``serving`` section, if any."""
        specs = {p: serving_spec(info) for p, info in enumerate(self.pools)
                 if info.serving is not None and info.serves != "training"}
        if not specs:
            return None
        assert self.first_token is not None and self.tpot is not None
        cached = self.cached if self.cached is not None else _NoCache()
        outcomes = _Outcomes(self.status, self.wait, self.service, self.arrival_at_pool, self.first_token, self.tpot,
                             cached)
        timeouts, workloads = self.timeout_s, self._workloads
        r = self.requests
        sessions = Sessions(self.turns.next_turn, self.turns.follow, self._context_ids) if r.has_sessions else None
        handoff = self.kv.handoff if self.kv is not None and any(s.hands_off for s in specs.values()) else None
        if choose_core(specs, int(np.isin(r.workload, self._batching_workloads(specs)).sum()),
                       bool((r.prefix >= 0).any()), sessions is not None, handoff is not None):
            return CompiledServers(specs, {p: self.pools[p].replicas for p in specs}, len(self.pools), outcomes,
                                   r.input_tokens, r.output_tokens, r.workload, self.timeout_s, self.pool_of)
        return BatchingServers(specs, {p: self.pools[p].replicas for p in specs}, outcomes, r.input_tokens.tolist(),
                               r.output_tokens.tolist(), lambda j: timeouts[workloads[j]], r.prefix.tolist(),
                               r.prefix_tokens.tolist(), sessions, handoff)

    def _batching_workloads(self, specs) -> list[int]:
        """The workloads some batching pool may serve."""
        serves = self.view.serves if self.view.key_stride else None
        return [w for w in range(len(self._scenario.inference))
                if serves is None or any(serves[w][p] for p in specs)]

    # -- prefill/decode disaggregation ---------------------------------------------------------
    @property
    def disaggregated(self) -> bool:
        return self.kv is not None

    def connect(self, env, transfers, book, jurisdictions: Sequence[str]) -> None:
        """The network for KV caches leaving prefill pools (:class:`KvHandoff`)."""
        assert self.kv is not None
        self.kv.connect(env, transfers, book, jurisdictions)

    def _serves(self) -> list[list[bool]]:
        """Workload x pool: a workload that names a model goes only where it is loaded; a
        decode pool takes requests only from prefill pools."""
        return [[(wl.model is None or (p.serving is not None and p.serving.model == wl.model))
                 and (p.serving is None or p.serving.role != "decode") for p in self.pools]
                for wl in self._scenario.inference] or [[True] * len(self.pools)]

    def _make_view(self) -> RoutingView:
        ttft, tpot, e2e = self._slos()
        view = RoutingView.build(
            pool_region=self._pool_region, rtt_ms=self.rtt_ms, queue_len=[0] * len(self.pools),
            busy_slots=self.busy, active_slots=self.active, total_slots=self.total_slots,
            share=self._view_shares(), mean_service_s=self.mean_service, serves=self._serves(),
            pool_gpu=[p.gpu.name for p in self.pools], slo_ttft_ms=ttft, slo_tpot_ms=tpot, slo_e2e_ms=e2e)
        # The engine writes load figures into arrays it owns; the policy sees read-only
        # views of them, so no writeable flag is flipped per request.
        self._queue_np = np.zeros(len(self.pools), dtype=np.int64)
        self._busy_np = np.zeros(len(self.pools), dtype=np.int64)
        # The pools whose queue and busy figures a refresh copies: slot pools that serve.
        self._slot_pools = [p for p, info in enumerate(self.pools)
                            if info.serves != "training" and info.serving is None]
        self._all_slot_pools = len(self._slot_pools) == len(self.pools)
        self._dirty: set[int] = set()  # slot pools the request loop changed since the last refresh
        self._stale_all = True  # every pool's figures may have changed since the last refresh
        self._replicas_np = np.array([p.replicas for p in self.pools], dtype=np.int64)
        self._cached_np = np.zeros(len(self.pools), dtype=np.bool_)
        self._backlog_np = np.full(len(self.pools), math.nan)
        view.queue_len, view.busy_slots = self._queue_np.view(), self._busy_np.view()
        view.active_replicas, view.prefix_cached = self._replicas_np.view(), self._cached_np.view()
        view.prefill_backlog = self._backlog_np.view()
        for array_ in (view.queue_len, view.busy_slots, view.active_replicas, view.prefix_cached,
                       view.prefill_backlog):
            array_.flags.writeable = False
        view.prefill_ms_per_token = np.array([self._prefill_ms_per_token(p) for p in range(len(self.pools))])
        view.prefill_ms_per_token.flags.writeable = False
        return view

    def _slos(self) -> tuple[list[float], list[float], list[float]]:
        """The workloads' TTFT, TPOT and end-to-end objectives, ms (``inf``: none set)."""
        workloads = self._scenario.inference

        def ms(values: list[float | None]) -> list[float]:
            return [_INF if v is None else float(v) for v in values]
        return (ms([wl.slo.ttft_ms for wl in workloads]), ms([wl.slo.tpot_ms for wl in workloads]),
                ms([wl.e2e_slo_ms for wl in workloads]))

    def _prefill_ms_per_token(self, p: int) -> float:
        """What a policy may plan a prompt token's prefill with at pool ``p``, ms."""
        info = self.pools[p]
        if info.serving is not None and info.serves != "training":
            return serving_spec(info).iteration.prefill_ms(1, 1000) / 1000.0
        times = next((row[p] for row in self._times_by_pool if row[p] is not None), None)
        return times.prefill_s_per_token * 1000.0 if times is not None else 0.0

    def _view_shares(self) -> np.ndarray:
        shares = self.shares
        if shares.sum() <= 0:
            total = np.asarray(self.total_slots, dtype=float)
            shares = total / total.sum()
        return shares

    # -- reactions to the slow world -----------------------------------------------------
    def capacity_changed(self, record: CapacityChanged) -> None:
        """A pool's active replicas or share changed: update and start queued work."""
        index = record.pool_index
        replicas = record.active_gpus // self.pools[index].gpus_per_replica
        self.active[index] = replicas * self._slots[index]
        self._replicas_np[index] = replicas
        if self.seats is not None:
            self.seats.resize(index, replicas)
        self.shares[index] = record.share
        self.rooms.up_changed(index, record.up_gpus is None or record.up_gpus > 0)
        self._refresh_view_static()
        if self.batching is not None and index in self.batching.specs:
            self.batching.set_active(index, replicas, record.t_s)
        else:
            self._drain(index, record.t_s)

    def provision_changed(self, record: ProvisionChanged) -> None:
        """The autoscaler's warm replicas of a pool changed (at zero, the pool holds requests)."""
        if self.rooms.ready_changed(record.pool_index, record.ready):
            self.view.version += 1  # answers cached per origin may have been rejections

    def _refresh_view_static(self) -> None:
        view = self.view
        view.active_slots.flags.writeable = True
        view.active_slots[:] = self.active
        view.active_slots.flags.writeable = False
        view.share.flags.writeable = True
        view.share[:] = self._view_shares()
        view.share.flags.writeable = False
        view.version += 1

    def routes_changed(self, record: RoutesChanged) -> None:
        """Links failed or came back: new path RTTs. Requests already travelling keep their path."""
        new = record.rtt_ms[:, self._pool_region]
        self.rtt_ms[:] = new
        for row, values in zip(self._rtt_rows, new.tolist(), strict=True):
            row[:] = values
        view = self.view
        view.rtt_ms.flags.writeable = True
        view.rtt_ms[:] = new
        view.rtt_ms.flags.writeable = False
        view.version += 1

    def replicas_failed(self, record: ReplicaFailed) -> None:
        """Replicas of a pool that served requests failed (its capacity is already reduced).
        The requests in service on them are retried or lost: a failed replica held
        ``busy * replicas / serving_before`` of them on average (rounded at random with
        ``u``), the most recently started. When every serving replica failed, the pool's
        queue and the requests travelling to it go too."""
        if record.hit == "training":
            return
        p, t_s = record.pool_index, record.t_s
        everything = record.replicas >= record.serving_before
        if self.batching is not None and p in self.batching.specs:
            victims = self._batching_victims(p, record, everything)
        elif self.seats is not None:
            victims = self._seated_victims(p, record, everything)
        else:
            victims = self._in_service_victims(p, record.replicas, record.serving_before, record.u, everything)
        if everything:
            victims += self._queued_victims(p, t_s)
        elif self.seats is not None and victims:
            self._drain(p, t_s)  # the pool may have room again for its queue
        retried = lost = 0
        for j in victims:
            if self._retry(j, t_s):
                retried += 1
            else:
                lost += 1
        if victims:
            info = self.pools[p]
            self.bus.emit(RequestsDisplaced(t_s, info.region, info.name, retried, lost))

    def _batching_victims(self, p: int, record: ReplicaFailed, everything: bool) -> list[int]:
        """The requests held by the failed replicas: all of them, or the one drawn by ``u``
        among those that served (exactly its own requests)."""
        servers = self.batching
        assert servers is not None
        if isinstance(servers, CompiledServers):
            servers.advance(record.t_s)  # the replicas as they are at the failure
        if everything:
            return [j for k in range(len(servers.replicas[p])) for j in servers.fail(p, k)]
        return servers.fail(p, min(int(record.u * record.serving_before), record.serving_before - 1))

    def _seated_victims(self, p: int, record: ReplicaFailed, everything: bool) -> list[int]:
        """The requests in service on the failed replica (the one drawn by ``u`` among the
        ``serving_before`` that served), or on every replica."""
        done, seats = self._done, self.seats
        assert seats is not None
        before = record.serving_before
        k = min(int(record.u * before), before - 1)
        mine = [e for e in done if e[2] == p and (everything or seats.seat[e[1]] == k)]
        mine.sort(key=lambda e: (e[0] - self.service[e[1]], e[1]))
        victims = [e[1] for e in mine]
        if victims:
            gone = set(victims)
            done[:] = [e for e in done if not (e[2] == p and e[1] in gone)]
            heapify(done)
            self.busy[p] -= len(victims)
        seats.lost(p, k, before, everything, (j for _, j, q in done if q == p))
        return victims

    def _in_service_victims(self, p: int, replicas: int, serving_before: int, u: float,
                            everything: bool) -> list[int]:
        done, service = self._done, self.service
        mine = [e for e in done if e[2] == p]
        if everything:
            n = len(mine)
        else:
            n = min(len(mine), int(math.floor(len(mine) * replicas / serving_before + u)),
                    replicas * self.pools[p].slots_per_replica)
        mine.sort(key=lambda e: (e[0] - service[e[1]], e[1]))
        victims = [e[1] for e in mine[len(mine) - n:]] if n else []
        if victims:
            gone = set(victims)
            done[:] = [e for e in done if not (e[2] == p and e[1] in gone)]
            heapify(done)
            self.busy[p] -= len(victims)
        return victims

    def _queued_victims(self, p: int, t_s: float) -> list[int]:
        """The queue of a pool that lost every serving replica, and requests travelling to it."""
        victims = []
        for j in self.queues[p]:  # queued past their timeout: timed out, not revived
            if not self._expire(j, t_s):
                victims.append(j)
        self.queues[p].clear()
        travel = self._travel
        moving = [e for e in travel if e[2] == p]
        if moving:
            travel[:] = [e for e in travel if e[2] != p]
            heapify(travel)
            victims += [e[1] for e in moving]
        return victims

    def _retry(self, j: int, t_s: float) -> bool:
        """Route request ``j`` again at ``t_s`` (True), or count it lost (False)."""
        tries = self._tries.get(j, 0) + 1
        p = rtt = None
        if self.on_failure == "retry" and tries <= self.max_retries:
            self._tries[j] = tries
            if self.stale is None and self.reads_load:
                self._stale_all = True  # a failure or capacity change is under way
            p, rtt = self._route(t_s, self._origins[j], j)  # as any request is routed
        if p is None or rtt is None:
            self.status[j] = _FAILED
            return False
        self.pool_of[j] = p
        self.rtt_of[j] = rtt
        self._retry_s[j] = t_s - self._times[j]
        if self.batching is not None and self.batching.shift:
            self.batching.shift.pop(j, None)
        self.wait[j] = math.nan
        if self.first_token is not None and self.tpot is not None:
            self.first_token[j] = self.tpot[j] = math.nan
        if self.cached is not None:
            self.cached[j] = 0
        self.service[j] = self._service_time(j, p)
        heappush(self._travel, (t_s + rtt / 2000.0, j, p))
        return True

    # -- what an autoscaler sees ----------------------------------------------------------
    def signals(self, t_s: float, window_s: float) -> PoolSignals:
        """Queues, running requests and KV use now, and over the requests that arrived in
        ``[t_s - window_s, t_s)`` routed to each pool: their mean wait and p99 TTFT, where a
        request still waiting counts its age (``t_s - arrival``) as both, so a growing queue
        shows at once. TTFT = RTT + time to the first token (slot pools know it only at the
        end of the run: NaN for them)."""
        n = len(self.pools)
        if isinstance(self.batching, CompiledServers):
            self.batching.advance(t_s)
        queue = np.array([self._live_load(p)[0] for p in range(n)], dtype=np.int64)
        running = np.array([self._live_load(p)[1] for p in range(n)], dtype=np.int64)
        servers = self.batching
        kv = np.array([servers.kv_fraction(p) if servers is not None and p in servers.specs else math.nan
                       for p in range(n)])
        times = self.requests.t_s
        a, b = np.searchsorted(times, [t_s - window_s, t_s], side="left")
        pool = np.frombuffer(self.pool_of, dtype=np.int16)[a:b]
        age = t_s - times[a:b]
        wait = np.frombuffer(self.wait, dtype=np.float64)[a:b]
        wait = np.where(np.isnan(wait), age, wait)
        ttft = np.full(b - a, math.nan)
        if self.first_token is not None:
            first = np.frombuffer(self.first_token, dtype=np.float64)[a:b]
            rtt = np.frombuffer(self.rtt_of, dtype=np.float64)[a:b]
            ttft = np.where(np.isnan(first), age * 1000.0, rtt + first * 1000.0)
        arrivals = np.bincount(pool[pool >= 0], minlength=n).astype(np.int64)
        wait_mean = np.full(n, math.nan)
        p99 = np.full(n, math.nan)
        for p in np.flatnonzero(arrivals):
            mine = pool == p
            wait_mean[p] = float(wait[mine].mean())
            if servers is not None and p in servers.specs:
                p99[p] = float(np.percentile(ttft[mine], 99))
        slots = np.array(self._slots, dtype=np.int64)
        return PoolSignals(t_s, slots, queue, running, kv, arrivals, wait_mean, p99)

    # -- request events ------------------------------------------------------------------
    def _sync_load(self) -> None:
        """The routing view's queue and busy figures as they are now. The request loop
        notes the slot pools it changed (``_dirty``); anything else that may have changed
        them (a SimPy event: a failure, a capacity change) marks them all (``_stale_all``).
        Then the batching pools' figures."""
        queues, busy, qn, bn, dirty = self.queues, self.busy, self._queue_np, self._busy_np, self._dirty
        if self._stale_all:
            slot_pools = self._slot_pools
            if self._all_slot_pools:
                qn[:] = [len(q) for q in queues]
                bn[:] = busy
            elif slot_pools:
                qn[slot_pools] = [len(queues[p]) for p in slot_pools]
                bn[slot_pools] = [busy[p] for p in slot_pools]
            self._stale_all = False
        else:
            for p in dirty:
                qn[p] = len(queues[p])
                bn[p] = busy[p]
        dirty.clear()
        servers = self.batching
        if isinstance(servers, CompiledServers):  # its counts are arrays by pool index
            pools = servers.pool_index
            qn[pools] = servers.waiting[pools]
            bn[pools] = servers.running[pools]
            if self._reads_backlog:
                self._backlog_np[pools] = servers.backlogs()[pools]
            return
        if servers is not None:
            for p in servers.specs:
                qn[p] = servers.waiting[p]
                bn[p] = servers.running[p]
                if self._reads_backlog:
                    self._backlog_np[p] = servers.backlog(p)

    def _cached_view(self, prefix: int) -> None:
        """``view.prefix_cached`` for ``prefix``: pools some of whose replicas hold it."""
        cached = self._cached_np
        cached[:] = False
        if prefix >= 0:
            for p, held in self._cache_known.items():
                if prefix in held:
                    cached[p] = True

    def _live_load(self, p: int) -> tuple[int, int]:
        """Pool ``p``'s queue length and busy slots now."""
        servers = self.batching
        if servers is not None and p in servers.specs:
            return servers.waiting[p], servers.running[p]
        return len(self.queues[p]), self.busy[p]

    def _service_time(self, i: int, pool: int) -> float:
        times = self._times_by_pool[self._workloads[i]][pool]
        if times is None:
            return self._services[i]
        return times.service_s(self._in_tokens[i], self._out_tokens[i])

    def _expire(self, j: int, now: float) -> bool:
        """Time out request ``j`` if it has queued longer than its workload allows."""
        if now - self.arrival_at_pool[j] > self.timeout_s[self._workloads[j]]:
            self.wait[j] = now - self.arrival_at_pool[j]
            self.status[j] = _TIMED_OUT
            return True
        return False

    def _drain(self, pool: int, now: float) -> None:
        """Start queued requests while the pool has free active slots."""
        queue, active = self.queues[pool], self.active[pool]
        while queue and self.busy[pool] < active:
            j = queue.popleft()
            if self._expire(j, now):
                continue
            self.wait[j] = now - self.arrival_at_pool[j]
            self.busy[pool] += 1
            if self.seats is not None:
                self.seats.sit(j, pool)
            heappush(self._done, (now + self.service[j], j, pool))

    def _router(self):
        """``route(t, origin, request) -> (pool, rtt_ms)``, or ``(None, None)`` to reject:
        the policy's answer, checked, with the load figures of each remote region refreshed
        at most every ``sync_delay`` (its own in ``sync_delay_by_region``) and those of the
        origin's own region always current. (The loop asks a policy whose decision depends
        on the origin alone once per origin until the view's version changes.)"""
        view, choose, sync, rtt_rows = self.view, self.policy.choose, self._sync_load, self._rtt_rows
        reads_load, stale = self.reads_load, self.stale
        reads_tokens = getattr(self.policy, "reads_tokens", False)
        reads_cache = getattr(self.policy, "reads_cache", False) and self.batching is not None
        workloads, in_tokens, out_tokens = self._workloads, self._in_tokens, self._out_tokens
        prefixes, prefix_tokens = self.requests.prefix.tolist(), self.requests.prefix_tokens.tolist()
        rejected = (None, None)
        serves = self.view.serves.tolist() if self.view.key_stride else None
        advance = (self.batching.advance if isinstance(self.batching, CompiledServers)
                   and (reads_load or stale is not None or self._reads_backlog) else None)

        def route(t: float, origin: int, j: int) -> tuple[int, float] | tuple[None, None]:
            view.t_s, view.origin, view.workload = t, origin, workloads[j]
            if advance is not None:  # the compiled replicas catch up before their load is read
                advance(t)
            if stale is not None:
                stale.show(t, origin)
            elif reads_load:
                sync()
            if reads_tokens:
                view.input_tokens, view.output_tokens = in_tokens[j], out_tokens[j]
                view.prefix, view.prefix_tokens = prefixes[j], prefix_tokens[j]
            if reads_cache:
                self._cached_view(prefixes[j])
            p = choose(view)
            if p is None:
                p = (self.rooms.choose(rtt_rows[origin], serves[workloads[j]] if serves is not None else None)
                     if self.rooms.cold else None)
                return rejected if p is None else (p, rtt_rows[origin][p])
            try:
                rtt = rtt_rows[origin][p]
            except (IndexError, TypeError):
                raise self._bad_choice(p, origin) from None
            if rtt == _INF or p < 0:
                raise self._bad_choice(p, origin)
            if serves is not None and not serves[workloads[j]][p]:  # the request's own, whatever the view says now
                raise PolicyError(self.policy_name, f"sent a request of workload {workloads[j]} to pool {p}, "
                                  "which does not serve its model")
            return p, rtt
        return route

    def _bad_choice(self, p, origin: int) -> PolicyError:
        """The error for a policy's answer that is not a reachable pool."""
        try:
            valid = 0 <= operator.index(p) < len(self.pools)
        except TypeError:
            valid = False
        if not valid:
            return PolicyError(self.policy_name, f"returned {p!r}, not a pool index in "
                               f"0..{len(self.pools) - 1} or None")
        return PolicyError(self.policy_name, f"sent a request from region {origin} to unreachable pool {p}")

    # -- the shared clock ----------------------------------------------------------------
    def run(self, env, until: float, progress: Callable[[float, int], None] | None = None,
            every_s: float = _INF) -> None:
        """Advance SimPy and the request fast path together up to ``until``, then publish
        the request log. ``progress(t, events so far)`` is called at each multiple of
        ``every_s`` of simulated time: the loop pauses there between two events, outside
        the event queue, so it changes no order and no result.

        This loop is the hot path: the common cases are inlined and state is held in
        locals, which roughly doubles throughput over calling methods per event."""
        times, origins, workloads = self._times, self._origins, self._workloads
        n = self._first_turns  # later turns of sessions arrive through ``turns``
        turns, sessions, follow = self.turns.heap, self._first_turns < len(times), self.turns.follow
        peek, step_sim = env.peek, env.step
        done, travel, queues, busy, active = self._done, self._travel, self.queues, self.busy, self.active
        status, wait, service, at_pool = self.status, self.wait, self.service, self.arrival_at_pool
        pool_of, rtt_of, rtt_rows = self.pool_of, self.rtt_of, self._rtt_rows
        route = self._route = self._router()  # also for retries after a failure
        timeout, service_time, drain = self.timeout_s, self._service_time, self._drain
        seats = self.seats is not None
        seating = self.seats if self.seats is not None else Seats((), 0)  # called only with seats
        sit, stand = seating.sit, seating.stand
        no_timeouts = all(limit == _INF for limit in timeout)
        drawn = self._pool_free_services()
        services = self._services
        servers = self.batching if self.batching is not None else BatchingServers.none()
        batch_events, batch_fire, batch_arrive = servers.events, servers.fire, servers.arrive
        batching = [p in servers.specs for p in range(len(self.pools))]
        any_batching = any(batching)
        buffered = isinstance(servers, CompiledServers)  # arrivals wait in its buffer (their pool and time are known)
        buffer_arrival = servers.arrive_index if isinstance(servers, CompiledServers) else array("q").append
        handing_off = servers.handoff is not None
        # Load-reading policies see the pools the loop changed (refreshed lazily, see _sync_load).
        live = self.reads_load and self.stale is None
        # A decision per origin holds for every workload only if the same pools serve them all.
        view = self.view
        per_origin = getattr(self.policy, "decision_per_origin", False) and not view.key_stride
        decided = _Decisions()
        # (Compiled batching pools qualify: a bound on their requests stands in for the live count.)
        free_first = live and not per_origin and (buffered or not any_batching) and self._nearest_when_free()
        upper = servers.upper if isinstance(servers, CompiledServers) else [0] * len(self.pools)
        track, dirty = live and not free_first, self._dirty
        nearest, near_version = [-1] * len(self._rtt_rows), -1
        p: int | None  # the request's pool (None: rejected)
        i, travelled, completed, boundaries = self._next, 0, 0, 0
        t_sim = peek()
        stop = min(t_sim, until)  # the loop hands over to SimPy, or ends, at this time
        ticks, report = 1, progress if progress is not None else _no_progress
        tick = every_s if progress is not None else _INF
        pause = min(stop, tick)  # stop, or a progress tick before it
        ahead = self._route_ahead(route, decided, i, stop, drawn) if per_origin else i  # routed in bulk below
        # Every serving pool on the compiled replicas: requests routed in bulk reach them in bulk too.
        bulk_arrivals = (per_origin and drawn and buffered and not sessions
                         and all(batching[p] for p in self._serving_pools()))
        if bulk_arrivals and ahead > i:
            travelled += self._arrive_ahead(i, ahead, stop)
            i = ahead
        t_next = times[i] if i < n else _INF  # the next request's arrival
        while True:
            # Ties: completions first (they free slots), then pool arrivals, then new
            # requests, then batching replicas' iterations ending (so every request that
            # arrived by then is there when a replica plans its next iteration).
            if sessions and turns and turns[0][0] < t_next:  # a session's next turn is due first
                t_next = turns[0][0]
            t = t_next
            kind = 2
            if batch_events and batch_events[0][0] < t:
                t, kind = batch_events[0][0], 3
            if travel and travel[0][0] <= t:
                t, kind = travel[0][0], 1
            if done:
                t_done = done[0][0]
                if t_done <= t:
                    t, kind = t_done, 0
            if t >= pause:
                if pause < stop:  # a progress tick: report, and go on with the same event
                    report(pause, env.events_processed + i + travelled + completed + boundaries)
                    ticks += 1
                    tick = ticks * every_s
                    pause = min(stop, tick)
                    continue
                # SimPy's next event first (ties go to SimPy), or the end
                if t_sim <= t and t_sim < until:
                    step_sim()
                    if track:
                        self._stale_all = True  # a SimPy event may have changed any pool
                    t_sim = peek()
                    stop = min(t_sim, until)
                    pause = min(stop, tick)
                    if per_origin:
                        ahead = self._route_ahead(route, decided, i, stop, drawn)
                        if bulk_arrivals and ahead > i:
                            travelled += self._arrive_ahead(i, ahead, stop)
                            i = ahead
                            t_next = times[i] if i < n else _INF
                    continue
                break
            if kind == 2:  # a request arrives at its origin and is routed
                if sessions and turns and (i >= n or turns[0][0] < times[i]):
                    j = heappop(turns)[1]
                else:
                    j = i
                    i += 1
                t_next = times[i] if i < n else _INF
                if j < ahead:  # routed in bulk: rejected ones are marked already
                    p = pool_of[j]
                    if p < 0:
                        continue
                    rtt = rtt_of[j]
                    if drawn:
                        s = service[j]
                    else:
                        service[j] = s = service_time(j, p)
                else:
                    origin = origins[j]
                    if free_first:
                        if near_version != view.version:
                            nearest, near_version = nearest_available(view), view.version
                        p = nearest[origin]
                        if p >= 0 and busy[p] + len(queues[p]) + upper[p] < active[p]:
                            rtt = rtt_rows[origin][p]
                        else:
                            self._stale_all = True
                            p, rtt = route(t, origin, j)
                    elif per_origin:
                        answers = decided.now(view.version)
                        choice = answers.get(origin)
                        if choice is None:
                            choice = answers[origin] = route(t, origin, j)
                        p, rtt = choice
                    else:
                        p, rtt = route(t, origin, j)
                    if p is None:
                        status[j] = _REJECTED
                        continue
                    pool_of[j] = p
                    rtt_of[j] = rtt
                    service[j] = s = services[j] if drawn else service_time(j, p)
                if rtt != 0.0:
                    heappush(travel, (t + rtt / 2000.0, j, p))
                    continue
            elif kind == 0:  # a service finishes
                _, j, p = heappop(done)
                status[j] = _COMPLETED
                completed += 1
                if sessions:
                    follow(j, t)
                busy[p] -= 1
                if track:
                    dirty.add(p)
                if seats:
                    stand(j, p)
                queue = queues[p]
                if queue and busy[p] < active[p]:
                    k = queue[0]
                    if no_timeouts or t - at_pool[k] <= timeout[workloads[k]]:
                        queue.popleft()
                        wait[k] = t - at_pool[k]
                        busy[p] += 1
                        if seats:
                            sit(k, p)
                        heappush(done, (t + service[k], k, p))
                    else:
                        drain(p, t)
                continue
            elif kind == 1:  # a request reaches its pool after travelling
                _, j, p = heappop(travel)
                travelled += 1
                s = service[j]
            else:  # batching iterations end at a replica
                batch_fire()
                boundaries += 1
                if handing_off:  # a KV cache may have left: its transfer starts at a SimPy event now
                    t_sim = peek()
                    stop = min(t_sim, until)
                    pause = min(stop, tick)
                continue
            # The request joins its pool's FCFS queue (its arrival time there matters only
            # while it waits).
            if any_batching and batching[p]:
                at_pool[j] = t
                if buffered:
                    buffer_arrival(j)
                    upper[p] += 1
                else:
                    batch_arrive(j, p, t)
                continue
            queue = queues[p]
            if track:
                dirty.add(p)
            if not queue and busy[p] < active[p]:
                wait[j] = 0.0
                busy[p] += 1
                if seats:
                    sit(j, p)
                heappush(done, (t + s, j, p))
            else:
                at_pool[j] = t
                queue.append(j)
        self._next = i
        self._close(until, i + travelled + completed + boundaries)

    def _nearest_when_free(self) -> bool:
        """Whether the policy's answer is the nearest available pool while that pool has a
        free slot, so the loop need not ask it then: it reads its own live counts (exact,
        unlike a stale control plane's). It is asked seldom, so the loop notes no changed
        pools: the view is refreshed whole before the policy is asked. The flag is read on
        the policy's own class (a subclass may answer otherwise)."""
        return (not self.view.key_stride and vars(type(self.policy)).get("nearest_when_free", False)
                and bool(np.isfinite(self.mean_service).all()))

    def _close(self, until: float, events: int) -> None:
        """The loop reached ``until``: close the books and publish the batching and request logs."""
        if isinstance(self.batching, CompiledServers):
            self.batching.advance(until)
            events += self.batching.boundaries(until)
        self.events_processed = events
        self._finish(until)
        if self.batching is not None:
            self.bus.emit(self.batching.log())
        log = self.log()
        self._release()
        self.bus.emit(log)

    def _route_ahead(self, route, decided: _Decisions, start: int, stop: float, drawn: bool) -> int:
        """Route the requests from ``start`` that arrive before ``stop`` all at once, for a
        policy whose decision depends on the origin alone: nothing changes the view before
        SimPy's next event (``stop``), so each origin's pool is the one the loop would get.
        The policy is asked exactly when the loop would ask it (per origin and view
        version, at that origin's first request). Returns the index after the last routed
        request (``start`` when there are too few to be worth it)."""
        r = self.requests
        end = int(np.searchsorted(r.t_s[:self._first_turns], stop, side="left"))
        if end - start < _BULK_MIN:
            return start
        answers = decided.now(self.view.version)
        n_regions = len(self._rtt_rows)
        pool_table = np.full(n_regions, -1, dtype=np.int16)
        rtt_table = np.zeros(n_regions)
        seen = np.zeros(n_regions, dtype=bool)
        pool_of, rtt_of = np.frombuffer(self.pool_of, dtype=np.int16), np.frombuffer(self.rtt_of, dtype=np.float64)
        service, status = np.frombuffer(self.service, dtype=np.float64), np.frombuffer(self.status, dtype=np.int8)
        for a in range(start, end, _BULK_CHUNK):  # in chunks: no full-length temporaries
            b = min(a + _BULK_CHUNK, end)
            chunk = r.origin[a:b]
            new = np.flatnonzero((np.bincount(chunk, minlength=n_regions) > 0) & ~seen)
            for first, o in sorted((int(np.argmax(chunk == o)), int(o)) for o in new):  # in order of arrival
                if o not in answers:
                    answers[o] = route(float(r.t_s[a + first]), o, a + first)
                p, rtt = answers[o]
                if p is not None:
                    pool_table[o], rtt_table[o] = p, rtt
                seen[o] = True
            pools = pool_of[a:b] = pool_table[chunk]
            rtt_of[a:b] = rtt_table[chunk]
            routed = pools >= 0
            if drawn:
                service[a:b] = np.where(routed, r.service_s[a:b], np.nan)
            status[a:b][~routed] = _REJECTED
        return end

    def _serving_pools(self) -> list[int]:
        return [p for p, info in enumerate(self.pools) if info.serves != "training"]

    def _arrive_ahead(self, start: int, end: int, stop: float) -> int:
        """Requests ``start .. end - 1``, routed in bulk, reach their (compiled batching) pools:
        those arriving before ``stop`` (SimPy's next event) go into the replicas' buffer with
        the requests already travelling that arrive before then, in the order the loop would
        hand them over (by time; at equal times those that travelled first, each kind by
        index); later ones travel on the loop's heap. Returns the travel events that ended."""
        servers = self.batching
        assert isinstance(servers, CompiledServers)
        t = self.requests.t_s[start:end]
        rtt = np.frombuffer(self.rtt_of, dtype=np.float64)[start:end]
        pool = np.frombuffer(self.pool_of, dtype=np.int16)[start:end]
        at = np.where(rtt != 0.0, t + rtt / 2000.0, t)  # the loop's own arithmetic
        index = np.arange(start, end, dtype=np.int64)
        routed = pool >= 0
        now = routed & (at < stop)
        travel = self._travel
        for j in index[routed & ~now].tolist():  # arriving after SimPy's next event: as the loop does
            heappush(travel, (float(at[j - start]), j, int(pool[j - start])))
        early = []
        while travel and travel[0][0] < stop:
            early.append(heappop(travel))
        j_all = np.concatenate((np.array([e[1] for e in early], dtype=np.int64), index[now]))
        at_all = np.concatenate((np.array([e[0] for e in early]), at[now]))
        kind = np.concatenate((np.zeros(len(early), dtype=np.int8), (rtt[now] == 0.0).astype(np.int8)))
        order = np.lexsort((j_all, kind, at_all))
        np.frombuffer(self.arrival_at_pool, dtype=np.float64)[j_all] = at_all
        servers.arrive_many(j_all[order])
        return len(early) + int((rtt[now] != 0.0).sum())

    def _pool_free_services(self) -> bool:
        """Whether every request's service time is known before it is routed: drawn, or by
        the token model with the same coefficients on every pool that may serve it (one
        GPU type). Those token times are then computed all at once, in the batch's service
        column (NaN there until now; the same formula, so the same floats), and the loop
        reads them as it reads drawn times."""
        if self.batching is not None and not isinstance(self.batching, CompiledServers):
            return all(times is None for row in self._times_by_pool for times in row)
        serving = self._serving_pools()
        uniform = []
        for row in self._times_by_pool:
            kinds = {row[p] for p in serving}
            if len(kinds) > 1:
                return False
            uniform.append(kinds.pop() if kinds else None)
        r = self.requests
        for a in range(0, len(r), _BULK_CHUNK):  # in chunks: no full-length temporaries
            b = min(a + _BULK_CHUNK, len(r))
            for w, times in enumerate(uniform):
                if times is not None:
                    rows = np.flatnonzero(r.workload[a:b] == w) + a if len(uniform) > 1 else slice(a, b)
                    r.service_s[rows] = times.service_s(r.input_tokens[rows].astype(np.float64),
                                                        r.output_tokens[rows].astype(np.float64))
        return True

    def _finish(self, end_s: float) -> None:
        """Close the books: expired queued requests are timed out, the rest are in flight."""
        queued = [j for queue in self.queues for j in queue]
        if self.batching is not None:
            queued += self.batching.queued()
        for j in queued:
            self._expire(j, end_s)
        status = np.frombuffer(self.status, dtype=np.int8)
        status[status == RequestStatus.PENDING] = _IN_FLIGHT

    def _slot_token_times(self) -> None:
        """First token and time per token of requests a slot pool served with the token
        model: the first token comes after the prefill and one decode step, then one per
        ``decode_s_per_token`` (so service = first token + (out - 1) x decode)."""
        decode = np.full((len(self._times_by_pool), len(self.pools)), np.nan)
        for w, row in enumerate(self._times_by_pool):
            for p, times in enumerate(row):
                if times is not None and self.pools[p].serving is None:
                    decode[w, p] = times.decode_s_per_token
        if np.isnan(decode).all() or self.first_token is None or self.tpot is None:
            return
        r = self.requests
        pool = np.frombuffer(self.pool_of, dtype=np.int16).astype(np.int64)
        per_token = np.where(pool >= 0, decode[r.workload, np.maximum(pool, 0)], np.nan)
        mine = ~np.isnan(per_token)
        out = r.output_tokens[mine].astype(float)
        wait = np.frombuffer(self.wait, dtype=np.float64)[mine]
        service = np.frombuffer(self.service, dtype=np.float64)[mine]
        first = np.frombuffer(self.first_token, dtype=np.float64)
        tpot = np.frombuffer(self.tpot, dtype=np.float64)
        first[mine] = wait + service - (out - 1.0) * per_token[mine]
        tpot[mine] = np.where(out > 1, per_token[mine], np.nan)

    def log(self) -> RequestLog:
        self._slot_token_times()
        r = self.requests

        def as_np(a: array | None, dtype: type[np.generic]) -> np.ndarray:  # zero copy
            if a is None:  # no token figures in this run: NaN everywhere, in no memory
                return np.broadcast_to(np.array(np.nan, dtype=dtype), (len(r),))
            return np.frombuffer(a, dtype=dtype)
        log = RequestLog(
            t_s=r.t_s, origin=r.origin, workload=r.workload,
            pool=as_np(self.pool_of, np.int16), rtt_ms=as_np(self.rtt_of, np.float64),
            wait_s=as_np(self.wait, np.float64), service_s=as_np(self.service, np.float64),
            status=as_np(self.status, np.int8), retry_s=self._retry_array(),
            first_token_s=as_np(self.first_token, np.float64), tpot_s=as_np(self.tpot, np.float64),
            prefix=r.prefix, cached_tokens=(as_np(self.cached, np.int32) if self.cached is not None
                                            else np.broadcast_to(np.int32(0), (len(r),))),
            **({"decode_pool": as_np(self.kv.decode_pool, np.int16),
                "kv_transfer_s": as_np(self.kv.kv_transfer, np.float64),
                "decode_rtt_ms": as_np(self.kv.decode_rtt, np.float64)} if self.kv is not None else {}))
        if not r.has_sessions:
            return log
        # Later turns never sent (their session ended, or they were due after the run) were
        # never requests; the others take their place in order of arrival.
        session, turn = self.turns.numbering(r, [k for k, wl in enumerate(self._scenario.inference) if wl.sessions])
        sent = np.flatnonzero(np.isfinite(r.t_s))
        order = sent[np.argsort(r.t_s[sent], kind="stable")]
        columns = {f: getattr(log, f)[order] for f in log.__dataclass_fields__
                   if f not in ("session", "turn") and len(getattr(log, f))}
        return RequestLog(**columns, session=session[order], turn=turn[order])

    def _release(self) -> None:
        """Drop what only the loop needed (the engine lives on in the bus's reference
        cycle until a full garbage collection; the metrics run before that)."""
        self.arrival_at_pool = array("d")
        self.requests = RequestBatch.empty()  # the log keeps the columns it needs
        self._times = self._origins = self._workloads = self._services = memoryview(b"")
        self._in_tokens = self._out_tokens = memoryview(b"")
        if self.kv is not None:
            self.kv.release()

    def _retry_array(self) -> np.ndarray:
        out = np.zeros(len(self.requests))  # untouched pages cost no memory when nothing was retried
        if self._retry_s:
            index = np.fromiter(self._retry_s.keys(), dtype=np.int64)
            out[index] = np.fromiter(self._retry_s.values(), dtype=float)
        return out
