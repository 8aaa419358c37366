"""Batching replicas on the compiled core (:mod:`sim.engine.batching_core`), for plain pools.

:class:`CompiledServers` has the interface the request loop uses of
:class:`~sim.engine.batching.BatchingServers` and gives the same outputs bit for bit; it
is several times cheaper per request (``bench/serving.py``). The loop hands each arrival
over (``arrive`` appends its index to a buffer) and never sees a boundary (``events``
stays empty); the core runs the buffered arrivals and the boundaries when something needs
the replicas' state: :meth:`advance` before a load-reading policy routes, before an
autoscaler reads its signals, at a capacity change, and when the run ends.

Which core serves a run is a question of speed only (:func:`choose`): numba must be
installed, every batching pool plain (no prefix cache or cache-affinity dispatch, no
conversations, no disaggregation, a dense model), and the run large
enough to repay loading the compiled code (about 1 s from numba's on-disk cache; 10 to 20 s
the first time on a machine, when it is compiled), unless the process has loaded it
already (a sweep's or a plan's worker). ``MERIDIAN_SERVING_CORE=python`` or ``compiled``
overrides the size rule (for tests and benchmarks).

Public: ``CompiledServers``, ``choose``, ``eligible``, ``compiles_first``, ``warm_up``.
"""
from __future__ import annotations

import math
import os
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.engine.batching import ServingSpec
from sim.records import BatchLog, RequestStatus

__all__ = ["CompiledServers", "choose", "eligible", "compiles_first", "warm_up"]

# Requests a run must send to batching pools before the compiled core pays: loading it from
# numba's cache costs 0.6 to 1 s (planning.yaml, 36,000 requests: 0.76 s compiled with the
# load, 0.91 s on the Python replicas), compiling it the first time 10 to 20 s. A process
# that has loaded it already (a sweep's or a plan's worker) uses it for any run.
WARM_MIN_REQUESTS = 30_000
COLD_MIN_REQUESTS = 600_000
_ENV = "MERIDIAN_SERVING_CORE"
# Room made at the start (more is made when needed): queue entries per replica beyond twice
# max_batch, segments per request, superseded boundaries per request, and a minimum.
ROOM = [64, 3, 1, 1024]


def eligible(specs: Mapping[int, ServingSpec], shared_prompts: bool, sessions: bool, handoff: bool) -> bool:
    """Whether the compiled core models every one of these pools exactly as the Python one.
    (A prefix cache, and dispatch by it, do nothing in a run without shared prompts.)"""
    if sessions or handoff:
        return False
    return all(not (s.hands_off or s.iteration.spec.is_moe or (shared_prompts and (s.prefix_caching or s.affinity)))
               for s in specs.values())


def choose(specs: Mapping[int, ServingSpec], requests: int, shared_prompts: bool, sessions: bool,
           handoff: bool) -> bool:
    """Whether the run's batching pools go on the compiled core (see the module's docs)."""
    forced = _forced()
    if forced == "python" or not eligible(specs, shared_prompts, sessions, handoff):
        return False
    if _loaded():
        return True
    if forced == "auto" and requests < WARM_MIN_REQUESTS:
        return False  # decided without importing numba (a small run would pay for that too)
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return False
    return forced == "compiled" or requests >= (WARM_MIN_REQUESTS if _cache_warm() else COLD_MIN_REQUESTS)


def _forced() -> str:
    """``MERIDIAN_SERVING_CORE``: auto (the default), python or compiled."""
    forced = os.environ.get(_ENV, "auto").strip().lower()
    if forced not in ("auto", "python", "compiled"):
        raise ValueError(f"{_ENV} must be auto, python or compiled, not {forced!r}")
    return forced


def _loaded() -> bool:
    """Whether this process has the core loaded already (then it costs nothing more)."""
    core = sys.modules.get("sim.engine.batching_core")
    return core is not None and bool(core.advance.signatures)


def compiles_first(requests: float) -> bool:
    """Whether a run sending ``requests`` to plain batching pools will compile the core
    before it starts (numba installed, its cache cold, the run large enough to use it)."""
    forced = _forced()
    if forced == "python" or (forced != "compiled" and requests < COLD_MIN_REQUESTS):
        return False
    import importlib.util

    return importlib.util.find_spec("numba") is not None and not _cache_warm()


def warm_up() -> None:
    """Compile (or load) the core now, for the argument types a run passes it, so that a run
    that needs it does not stop to compile in its first step."""
    from sim.engine import batching_core as core

    i64, f64 = np.int64, np.float64
    args = (np.zeros(1, i64), np.zeros(core.NG, i64), np.zeros((1, core.NPI), i64), np.zeros((1, core.NPM)),
            np.zeros((1, 2, 5)), np.zeros((1, core.NQ), i64), np.zeros((1, core.NRI), i64),
            np.full((1, core.NRF), np.inf), np.zeros((1, 1), i64), np.zeros((1, 1, 2), i64),
            np.zeros((1, 1, 2), i64), np.zeros((1, 4, 2), i64), np.empty((8, 4)), np.empty(4),
            np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int16), np.zeros(1, f64),
            np.frombuffer(array("h", [0]), dtype=np.int16), *(np.frombuffer(array("d", [0.0]), dtype=f64)
                                                               for _ in range(5)),
            np.frombuffer(array("b", [0]), dtype=np.int8), np.zeros((2, 1), i64))
    core.advance(array("q"), 0, -math.inf, *args)
    (_, g, pi, _, costs, qi, ri, rf, pre, _, _, wq, _, stale, in_tokens, _, _, _, _, atp) = args[:20]
    pi[0, core.COUNT] = 1  # one idle replica: capacity changes and backlogs too
    core.set_active(0, 1, 0.0, g, pi, costs, ri, rf, wq, stale, atp)
    core.backlogs(pi, ri, pre, wq, qi, in_tokens, np.zeros(1, i64))


def _cache_warm() -> bool:
    """Whether numba's on-disk cache holds the core (so loading it takes about a second)."""
    from sim.engine import batching_core

    try:  # numba's internals: at worst a wrong guess (then the size rule for a cold cache applies)
        # The index lists the cached overloads of this very source (stamp checked), or nothing.
        return bool(batching_core.advance._cache._cache_file._load_index())  # type: ignore[attr-defined]
    except Exception:  # any failure to read it means: not known to be warm
        return False


class CompiledServers:
    """Every compiled batching pool of a run: their state as arrays, and what the engine
    reads of it (``waiting`` and ``running`` by pool index, as numpy arrays kept current
    by :meth:`advance`)."""

    def __init__(self, specs: Mapping[int, ServingSpec], replicas: Mapping[int, int], n_pools: int, outcomes: Any,
                 in_tokens: np.ndarray, out_tokens: np.ndarray, workload: np.ndarray,
                 timeout_s: Sequence[float], pool_of: array):
        from sim.engine import batching_core as core

        assert (core.COMPLETED, core.REJECTED, core.TIMED_OUT) == (
            RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.TIMED_OUT)
        self.core = core
        self.specs = dict(specs)
        pools = sorted(specs)
        self._pools = pools
        self.pool_index = np.array(pools, dtype=np.int64)  # the compiled pools, as an index array
        self.active = {p: replicas[p] for p in pools}
        self.replicas = {p: range(replicas[p]) for p in pools}  # (what the engine counts of them)
        self.events: list = []  # the loop never fires a boundary: the core does
        self.handoff = None
        self.shift: dict[int, float] = {}
        self.pool_cached: dict[int, dict[int, int]] = {p: {} for p in pools}
        counts = np.zeros((2, n_pools), dtype=np.int64)
        self.waiting, self.running = counts[0], counts[1]  # by pool index (rows of ``counts``)
        # Per pool index: at least its requests waiting and running now (exact after each
        # ``advance``; the loop adds each arrival it buffers). Requests only leave between
        # two calls, so a pool below its slots by this bound has a free slot for sure.
        self.upper = [0] * n_pools
        self._backlogs = np.zeros(n_pools, dtype=np.int64)
        self._counts = counts
        self._pool_tables(replicas, n_pools)
        self._request_tables(len(in_tokens), max(specs[p].max_batch for p in pools))
        self._in = np.ascontiguousarray(in_tokens)
        self._out = np.ascontiguousarray(out_tokens)
        self._wl = np.ascontiguousarray(workload)
        self._tmo = np.asarray(timeout_s, dtype=np.float64)
        self._columns(outcomes, pool_of)
        self._arguments()
        self._buf = array("q")
        self.arrive_index = self._buf.append  # what the loop calls per arrival (its pool and time are in the columns)
        self._next_t = math.inf  # the earliest pending boundary
        # Load (or compile) the core for these argument types now, not in the middle of the run.
        core.advance(self._buf, 0, -math.inf, *self._args)

    def _columns(self, o: Any, pool_of: array) -> None:
        """The engine's own per-request columns, read and written in place."""
        self._pool_of = np.frombuffer(pool_of, dtype=np.int16)
        self._atp = np.frombuffer(o.at_pool, dtype=np.float64)
        self._wait = np.frombuffer(o.wait, dtype=np.float64)
        self._service = np.frombuffer(o.service, dtype=np.float64)
        self._first = np.frombuffer(o.first_token, dtype=np.float64)
        self._tpot = np.frombuffer(o.tpot, dtype=np.float64)
        self._status = np.frombuffer(o.status, dtype=np.int8)

    def _pool_tables(self, replicas: Mapping[int, int], n_pools: int) -> None:
        """Per pool its limits (``PI``), iteration model (``PM``) and decode terms by batch
        size (``COSTS``); per replica its pool, index and state (``RI``, ``RF``)."""
        core, specs, pools = self.core, self.specs, self._pools
        n_rep = sum(replicas[p] for p in pools)
        max_batch = max(specs[p].max_batch for p in pools)
        self._loc = np.full(n_pools, -1, dtype=np.int64)
        pi = np.zeros((len(pools), core.NPI), dtype=np.int64)
        pm = np.zeros((len(pools), core.NPM))
        costs = np.zeros((len(pools), max_batch + 1, 5))
        ri = np.zeros((n_rep, core.NRI), dtype=np.int64)
        first = 0
        for lp, p in enumerate(pools):
            spec, n = specs[p], replicas[p]
            self._loc[p] = lp
            pi[lp, [core.CAP, core.MAXB, core.MBT, core.CHUNKED, core.FIRST, core.COUNT, core.ACTIVE, core.GPOOL]] = (
                spec.kv_capacity, spec.max_batch, spec.max_batched_tokens, int(spec.chunked_prefill), first, n, n, p)
            it = spec.iteration
            pm[lp] = (it.fixed_ms, it.launch_floor_ms, it.weight_ms, it.ms_per_token_compute,
                      it.ms_per_attention_pair, it.ms_per_context_token, it.ms_per_token_comm,
                      it.ms_per_token_above_knee, float(it.knee_tokens), it.ms_per_sequence)
            for b in range(1, spec.max_batch + 1):
                costs[lp, b] = it.decode_terms(b)
            ri[first:first + n, core.POOL] = lp
            ri[first:first + n, core.INDEX] = np.arange(n)
            ri[first:first + n, core.ADMITS] = 1
            first += n
        ri[:, core.MINFIN] = core.NEVER
        rf = np.zeros((n_rep, core.NRF))
        rf[:, core.EVT] = np.inf
        self._pi, self._pm, self._costs, self._ri, self._rf = pi, pm, costs, ri, rf

    def _request_tables(self, n: int, max_batch: int) -> None:
        """Per request its sequence state (``QI``); per replica its prefills, decodes, chunks
        and waiting queue; the segment log and the superseded boundaries."""
        core, n_rep = self.core, len(self._ri)
        self._g = np.zeros(core.NG, dtype=np.int64)
        self._qi = np.zeros((n, core.NQ), dtype=np.int64)
        self._pre = np.zeros((n_rep, max_batch), dtype=np.int64)
        self._dec = np.zeros((n_rep, max_batch, 2), dtype=np.int64)
        self._ch = np.zeros((n_rep, max_batch, 2), dtype=np.int64)
        self._wq = np.zeros((n_rep, 2 * max_batch + ROOM[0], 2), dtype=np.int64)
        # Room for about 2.6 segments and 0.5 superseded boundaries a request (what a busy
        # pool logs): pages never written cost no memory; more room is made if needed.
        self._seg = np.empty((8, ROOM[1] * n + 4 * ROOM[3]))  # a row per column: the log's columns are views
        self._stale = np.empty(ROOM[2] * n + ROOM[3])

    # -- the request loop's side ----------------------------------------------------------
    def arrive(self, j: int, p: int, t: float, landed: bool = False) -> None:
        """Request ``j`` reached pool ``p`` at ``t`` (already in the engine's columns)."""
        self._buf.append(j)
        self.upper[p] += 1

    def arrive_many(self, js: np.ndarray) -> None:
        """Requests ``js`` reached their pools, in this order (their times are in the columns)."""
        self._buf.frombytes(np.ascontiguousarray(js, dtype=np.int64).tobytes())
        for p, n in enumerate(np.bincount(self._pool_of[js], minlength=len(self.upper)).tolist()):
            self.upper[p] += n

    def fire(self) -> None:
        raise AssertionError("the compiled core fires its own boundaries")

    def advance(self, until: float) -> None:
        """Run the buffered arrivals and every boundary before ``until``."""
        buf = self._buf
        if not buf and self._next_t >= until:
            return
        advance, args = self.core.advance, self._args
        while True:
            result = advance(buf, len(buf), until, *args)
            if result >= 0.0:
                break
            self._grow(result)
            args = self._args
        del buf[:]
        self._next_t = result
        upper, waiting, running = self.upper, self.waiting, self.running
        for p in self._pools:
            upper[p] = int(waiting[p] + running[p])

    def _arguments(self) -> None:
        """The state the core's ``advance`` takes after the buffer (rebuilt when an array grows)."""
        self._args = (self._loc, self._g, self._pi, self._pm, self._costs, self._qi, self._ri, self._rf, self._pre,
                      self._dec, self._ch, self._wq, self._seg, self._stale, self._in, self._out, self._wl, self._tmo,
                      self._pool_of, self._atp, self._wait, self._service, self._first, self._tpot, self._status,
                      self._counts)

    def _grow(self, what: float) -> None:
        core = self.core
        if what == core.GROW_SEG:
            used = int(self._g[core.NSEG])
            seg = np.empty((8, 2 * self._seg.shape[1]))
            seg[:, :used] = self._seg[:, :used]
            self._seg = seg
        elif what == core.GROW_STALE:
            self._stale = _doubled(self._stale, int(self._g[core.NSTALE]))
        else:
            self._wq = self._unrolled_queues(2 * self._wq.shape[1])
        self._arguments()

    def _unrolled_queues(self, size: int) -> np.ndarray:
        """The waiting queues copied into rings of ``size`` entries, each from its head."""
        core, ri, wq = self.core, self._ri, self._wq
        new = np.zeros((wq.shape[0], size, 2), dtype=np.int64)
        cap = wq.shape[1]
        for r in range(wq.shape[0]):
            count = int(ri[r, core.WCOUNT])
            new[r, :count] = wq[r, (ri[r, core.WHEAD] + np.arange(count)) % cap]
            ri[r, core.WHEAD] = 0
        return new

    # -- capacity -----------------------------------------------------------------------------
    def set_active(self, p: int, n: int, t: float) -> None:
        """Pool ``p`` now has ``n`` active replicas (as :meth:`BatchingServers.set_active`)."""
        self.advance(t)
        if n == self.active[p] and not self.waiting[p]:
            return  # nothing changes (and the compiled code need not be loaded for it)
        self.active[p] = n
        core, lp = self.core, int(self._loc[p])
        need = int(self.waiting[p]) + int(self._pi[lp, core.MAXB]) + 3
        if need >= self._wq.shape[1]:
            self._wq = self._unrolled_queues(2 * need)
            self._arguments()
        core.set_active(lp, n, t, self._g, self._pi, self._costs, self._ri, self._rf, self._wq, self._stale,
                        self._atp)
        if self._g[core.NSTALE] >= len(self._stale) - 1:
            self._stale = _doubled(self._stale, int(self._g[core.NSTALE]))
            self._arguments()
        self._next_t = float(self._rf[:, core.EVT].min())

    def fail(self, p: int, k: int) -> list[int]:
        """Replica ``k`` of pool ``p`` failed (as :meth:`BatchingServers.fail`; the engine has
        caught the replicas up to the failure's time): the requests it held, oldest first."""
        core = self.core
        if self._g[core.NSTALE] + 1 >= len(self._stale):
            self._stale = _doubled(self._stale, int(self._g[core.NSTALE]))
            self._arguments()
        victims = core.fail(int(self._loc[p]), k, self._g, self._pi, self._qi, self._ri, self._rf, self._pre,
                            self._dec, self._ch, self._wq, self._stale, self._counts)
        self.upper[p] = int(self.waiting[p] + self.running[p])
        self._next_t = float(self._rf[:, core.EVT].min())
        return victims.tolist()

    def kv_fraction(self, p: int) -> float:
        """KV cache in use over the KV capacity of pool ``p``'s active replicas (NaN: none)."""
        core = self.core
        lp = int(self._loc[p])
        n = int(self._pi[lp, core.ACTIVE])
        if n == 0:
            return math.nan
        first = int(self._pi[lp, core.FIRST])
        rows = self._ri[first:first + n]
        used = int(rows[:, core.CTX].sum() + rows[:, core.KVPRE].sum())
        return used / (n * self.specs[p].kv_capacity)

    def backlog(self, p: int) -> int:
        """Prompt tokens pool ``p``'s replicas have still to prefill."""
        return int(self.backlogs()[p])

    def backlogs(self) -> np.ndarray:
        """Prompt tokens still to prefill, by pool index (compiled pools; 0 elsewhere): one
        pass over every replica, for a policy that reads them all before each request."""
        self.core.backlogs(self._pi, self._ri, self._pre, self._wq, self._qi, self._in, self._backlogs)
        return self._backlogs

    def queued(self) -> list[int]:
        """Requests still waiting at any replica (never admitted)."""
        core, ri, wq = self.core, self._ri, self._wq
        cap = wq.shape[1]
        out: list[int] = []
        for r in range(len(ri)):
            rows = wq[r, (ri[r, core.WHEAD] + np.arange(ri[r, core.WCOUNT])) % cap]
            out += rows[rows[:, 1] == 0, 0].tolist()
        return out

    def boundaries(self, until: float) -> int:
        """Boundary events the Python replicas' heap would have popped before ``until``:
        every one fired, and every superseded one that was due before then."""
        core = self.core
        stale = self._stale[:int(self._g[core.NSTALE])]
        return int(self._g[core.FIRES]) + int((stale < until).sum())

    # -- results -------------------------------------------------------------------------------
    def log(self) -> BatchLog:
        core = self.core
        seg = self._seg[:, :int(self._g[core.NSEG])]
        pools = self._pools
        return BatchLog(pool=seg[0].astype(np.int16), replica=seg[1].astype(np.int32),
                        start_s=seg[2], end_s=seg[3], seqs=seg[4].astype(np.int32),
                        prefill_tokens=seg[5], output_tokens=seg[6],
                        kv_tokens=seg[7].astype(np.int64), pools=np.array(pools, dtype=np.int16),
                        kv_capacity=np.array([self.specs[p].kv_capacity for p in pools], dtype=np.int64),
                        preemptions=self._pi[:, core.PREEMPT].copy())


def _doubled(a: np.ndarray, used: int) -> np.ndarray:
    new = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    new[:used] = a[:used]
    return new
