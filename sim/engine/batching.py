"""Batching replicas: LLM servers that run iterations over a continuous batch, as vLLM does.

A pool with a ``serving`` section is a set of replicas, each one model on
``tensor_parallel`` GPUs. A request reaching the pool joins the waiting queue of the
active replica with the fewest outstanding requests (running + waiting; ties: lowest
index). Each replica runs *iterations*; before each one its scheduler decides, like vLLM's:

* every running sequence that has finished its prefill decodes one token, if the KV cache
  has room for one more token per sequence; otherwise the most recently admitted sequence
  is preempted (its KV cache freed; it returns to the front of the queue and later
  prefills its prompt and the tokens it had generated again: recompute);
* with ``chunked_prefill`` the remaining token budget (``max_batched_tokens`` minus the
  decodes) goes to prompt chunks: first the sequences part-way through their prefill, then
  waiting requests admitted FCFS while the batch holds fewer than ``max_batch`` sequences
  and the KV cache has room for the chunk. Without it, an iteration either prefills whole
  prompts of newly admitted requests (decodes wait) or decodes.

A sequence's KV cache holds its context (prompt + generated tokens). The iteration takes
:meth:`~sim.workload.batching_model.IterationModel.iteration_ms` of its prefill tokens,
decoding sequences and their context. A prefill that completes yields the request's first
token at the end of that iteration; each decode yields one more; a request is done with
its last output token.

Speed without iterating: a replica whose next iterations would all be decodes of the same
batch (nothing to admit) jumps to the first iteration at which a sequence finishes or the
KV cache fills, summing the iteration times in closed form (context grows by one token per
sequence per iteration, so the times form an arithmetic progression, with one kink where
compute overtakes the weight reads). A request arriving meanwhile ends the jump at the
iteration in progress. Iteration boundaries stay exact (to float rounding); every decoding
sequence's progress is kept as a virtual iteration count, so an iteration costs O(1) plus
O(1) per sequence that joins or leaves.

Public: ``ServingSpec``, ``serving_spec``, ``batch1_service_s``, ``BatchingServers``, ``run_time_ms``.
"""
from __future__ import annotations

import math
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from math import ceil as _ceil

import numpy as np

from sim.records import BatchLog, RequestStatus
from sim.workload.batching_model import IterationModel, prefill_attention_pairs
from sim.world import PoolInfo
from sim.world.llm_catalogue import kv_capacity_tokens, llm_spec

__all__ = ["ServingSpec", "serving_spec", "batch1_service_s", "BatchingServers", "run_time_ms"]

_COMPLETED, _TIMED_OUT = int(RequestStatus.COMPLETED), int(RequestStatus.TIMED_OUT)
_REJECTED = int(RequestStatus.REJECTED)


@dataclass(frozen=True)
class ServingSpec:
    """One pool's serving configuration, resolved: the iteration model and its limits."""

    iteration: IterationModel
    max_batch: int
    max_batched_tokens: int
    chunked_prefill: bool
    kv_capacity: int  # tokens of KV cache per replica
    prefix_caching: bool = False
    prefix_cache_tokens: int | None = None  # cap on the prefix cache (None: free KV memory)
    affinity: bool = False  # dispatch to a replica holding the request's shared prompt
    hands_off: bool = False  # a prefill pool: after the first token the KV cache goes to a decode pool


def serving_spec(pool: PoolInfo) -> ServingSpec:
    """The resolved serving configuration of a pool with a ``serving`` section."""
    serving = pool.serving
    assert serving is not None
    model = llm_spec(serving.model)
    tp = serving.tensor_parallel or pool.gpus_per_replica
    return ServingSpec(IterationModel.build(model, pool.gpu, tp), serving.max_batch, serving.max_batched_tokens,
                       serving.chunked_prefill, kv_capacity_tokens(model, pool.gpu, tp, serving.gpu_memory_utilization),
                       serving.prefix_caching, serving.prefix_cache_tokens, serving.dispatch == "cache_affinity",
                       serving.role == "prefill")


def batch1_service_s(spec: ServingSpec, service: object) -> float:
    """A mean request served alone (batch 1): one prefill, then a decode per further token.
    What a routing policy may plan with for a batching pool."""
    prompt = float(getattr(getattr(service, "input_tokens", None), "mean", 0.0))
    out = float(getattr(getattr(service, "output_tokens", None), "mean", 1.0))
    it = spec.iteration
    ms = it.prefill_ms(1, prompt) + max(out - 1.0, 0.0) * it.decode_ms(1, prompt + out / 2.0)
    return ms / 1000.0


def run_time_ms(terms: tuple[float, float, float, float, float], batch: int, context0: float, k: int) -> float:
    """Total time of ``k`` decode iterations of ``batch`` sequences whose context starts at
    ``context0`` tokens and grows by ``batch`` per iteration: the sum over ``j < k`` of
    ``a + b C_j + max(w, c + d C_j)`` with ``C_j = context0 + j batch``."""
    if k <= 0:
        return 0.0
    a, b, w, c, d = terms
    linear = k * a + b * (k * context0 + batch * k * (k - 1) / 2.0)
    slope = d * batch
    base = c + d * context0
    if slope <= 0.0:
        first = 0 if base >= w else k
    else:
        first = _ceil((w - base) / slope)
        if first < 0:
            first = 0
    if first >= k:
        return linear + w * k
    tail = (k - first) * base + slope * (k * (k - 1) - first * (first - 1)) / 2.0
    return linear + w * first + tail


@dataclass(frozen=True)
class Sessions:
    """What batching replicas need of conversations: each request's next turn (-1: none),
    the engine's hook for an answered turn, and the first prefix id that is a
    conversation's context (lower ids are shared prompts)."""

    next_turn: list[int]
    answered: Callable[[int, float], None]
    context_from: int


class _Seq:
    """A request admitted to a replica (prefilling or decoding)."""

    __slots__ = ("j", "order", "prompt", "out", "prefill_left", "generated", "start_it", "context0", "kv",
                 "prefix", "cached")

    def __init__(self, j: int, order: int, prompt: int, out: int, generated: int, prefix: int = -1,
                 cached: int = 0):
        self.j, self.order, self.prompt, self.out = j, order, prompt, out
        self.generated = generated
        self.prefix = prefix  # shared prompt id (-1: none)
        self.cached = cached  # its tokens held by the replica's prefix cache, not by this sequence
        # A recomputed sequence prefills its generated tokens too (it lost their KV cache);
        # a cached shared prompt is not prefilled.
        self.prefill_left = prompt + generated - cached
        self.start_it = 0  # the replica's decode count when this sequence started decoding
        self.context0 = 0  # its context then
        self.kv = 0  # KV tokens held while prefilling


def _used(replica: _Replica) -> int:
    """KV tokens in use: sequences' own context, prefills in progress, cache entries in use
    (idle cache entries are free memory that still holds a prompt)."""
    return replica.context - replica.shared + replica.kv_prefill + replica.pinned


class _Replica:
    """One server: a waiting queue, the running batch, and the run of iterations in progress.

    The run in progress starts at ``t0``: either one iteration with prefill chunks
    (``chunks``, with ``mb`` decodes alongside) or ``k`` decode iterations of ``b``
    sequences whose context starts at ``c0`` (``terms``: their cost, see :func:`run_time_ms`)."""

    __slots__ = ("pool", "index", "spec", "admits", "costs", "waiting", "prefilling", "decoding", "finish", "it",
                 "b", "context", "kv_prefill", "version", "busy", "t0", "chunks", "mb", "k", "c0", "terms", "run_ms",
                 "cache", "pinned", "idle", "shared", "cuttable", "capacity", "max_batch", "chunked", "caching")

    def __init__(self, pool: int, index: int, spec: ServingSpec, costs: dict):
        self.pool, self.index, self.spec = pool, index, spec
        # The spec's figures read at every boundary, held here (one attribute read each).
        self.capacity, self.max_batch = spec.kv_capacity, spec.max_batch
        self.chunked, self.caching = spec.chunked_prefill, spec.prefix_caching
        self.admits = True  # one of the pool's active replicas
        self.costs = costs  # the pool's decode terms by batch size (shared)
        self.waiting: deque[tuple[int, int]] = deque()  # (request, tokens generated before: recompute)
        self.prefilling: list[_Seq] = []  # in admission order
        self.decoding: dict[int, _Seq] = {}
        self.finish: list[tuple[int, int, int]] = []  # (finish decode count, order, request), lazy
        self.it = 0  # decode iterations run (virtual clock of every decoding sequence)
        self.b = 0  # decoding sequences
        self.context = 0  # their total context, tokens
        self.kv_prefill = 0  # KV tokens held by sequences still prefilling
        # The prefix cache: shared prompt -> [tokens, sequences using it], least recently
        # used first. Entries in use are pinned; idle ones give way when memory is needed.
        self.cache: OrderedDict[int, list[int]] = OrderedDict()
        self.pinned = self.idle = 0  # tokens of cache entries in use / not in use
        self.shared = 0  # context of decoding sequences that lives in pinned cache entries
        self.version = 0
        self.busy = False
        self.t0 = 0.0
        self.chunks: list[tuple[_Seq, int]] | None = None
        self.mb = self.k = self.c0 = 0
        self.run_ms = 0.0
        # A run of decodes that an arrival may still end early (a run already cut ends at
        # the iteration in progress: later arrivals fall in that iteration too).
        self.cuttable = False
        self.terms: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def running(self) -> int:
        return len(self.prefilling) + self.b


class BatchingServers:
    """Every batching replica of a run, their event heap and the per-segment log.

    ``specs`` maps a pool index to its :class:`ServingSpec`, ``replicas`` to its replica
    count. The engine owns the per-request outcome arrays and passes them in; this class
    writes wait, service, status, first-token and time-per-token figures into them."""

    def __init__(self, specs: dict[int, ServingSpec], replicas: dict[int, int], outcomes, in_tokens: list[int],
                 out_tokens: list[int], timeout: Callable[[int], float], prefix: list[int] | None = None,
                 prefix_tokens: list[int] | None = None, sessions: Sessions | None = None,
                 handoff: Callable[[int, float], None] | None = None):
        self.specs = specs
        self._costs: dict[int, dict[int, tuple[float, float, float, float, float]]] = {p: {} for p in specs}
        self.replicas = {p: [_Replica(p, k, specs[p], self._costs[p]) for k in range(n)] for p, n in replicas.items()}
        # Requests each replica holds (waiting + running): the dispatcher's measure.
        self.outstanding = {p: [0] * n for p, n in replicas.items()}
        self.active = dict(replicas)
        self.o = outcomes
        self.in_tokens, self.out_tokens, self.timeout = in_tokens, out_tokens, timeout
        self.prefix = prefix if prefix is not None else [-1] * len(in_tokens)
        self.prefix_tokens = prefix_tokens if prefix_tokens is not None else [0] * len(in_tokens)
        self.sessions = sessions
        # Disaggregation: the engine's hook for a prompt a prefill replica finished (its KV
        # cache leaves), and the return leg's extra time of requests a decode pool finishes.
        self.handoff = handoff
        self.shift: dict[int, float] = {}
        # Per pool: shared prompt -> replicas whose prefix cache holds it (what a router may see).
        self.pool_cached: dict[int, dict[int, int]] = {p: {} for p in specs}
        self.events: list[tuple[float, int, _Replica, int]] = []  # (time, seq, replica, version)
        self._seq = 0
        self._order = 0
        self.preemptions = dict.fromkeys(specs, 0)
        self.waiting = dict.fromkeys(specs, 0)
        self.running = dict.fromkeys(specs, 0)
        # Per segment (one iteration, or a run of decode iterations): pool, replica, start,
        # end, sequences, prefill tokens, output tokens, KV tokens at the end; flat. (Rows go
        # in with ``fromlist``: ``extend`` from a tuple grows the array once per value.)
        self._segments = array("d")

    @classmethod
    def none(cls) -> BatchingServers:
        """No batching pool: an empty set (the engine's loop then never hears of it)."""
        return cls({}, {}, None, [], [], lambda j: math.inf)

    # -- requests arriving and leaving ------------------------------------------------------
    def arrive(self, j: int, p: int, t: float, landed: bool = False) -> None:
        """Request ``j`` reaches pool ``p`` at ``t``: queue it at the active replica holding
        the fewest requests (ties: the lowest index). ``landed``: its KV cache (prompt and
        first token) arrived from a prefill replica; it joins the decodes when it fits."""
        replicas = self.replicas[p]
        spec = replicas[0].spec
        if self.in_tokens[j] + self.out_tokens[j] > replicas[0].capacity:
            self.o.status[j] = _REJECTED  # could never fit: a server refuses it
            return
        counts = self.outstanding[p]
        active = self.active[p] or 1
        least = min(counts[:active])
        k = counts.index(least)
        if spec.affinity and self.prefix[j] >= 0:
            k = self._affine(replicas, counts, active, self.prefix[j], least, spec.max_batch // 4 or 1, k)
        replica = replicas[k]
        if landed:
            if replica.busy and t < replica.t0:  # the clock never runs backwards
                raise RuntimeError(f"a KV cache landed at {t!r} s on a replica already at {replica.t0!r} s")
            replica.waiting.append((j, -1))
        else:
            replica.waiting.append((j, 0))
        counts[k] += 1
        self.waiting[p] += 1
        if not replica.busy:
            self._kick(replica, t)
        elif replica.cuttable and len(replica.prefilling) + replica.b < replica.max_batch:
            self._cut(replica, t)

    @staticmethod
    def _affine(replicas: list[_Replica], counts: list[int], active: int, prefix: int, least: int, slack: int,
                k: int) -> int:
        """The least busy active replica holding ``prefix``, unless it has more than ``slack``
        requests above the least busy one (then ``k``, the least busy)."""
        holders = [r.index for r in replicas[:active] if prefix in r.cache]
        if not holders:
            return k
        best = min(holders, key=lambda i: (counts[i], i))
        return best if counts[best] <= least + slack else k

    def _kick(self, replica: _Replica, t: float) -> None:
        """Start an idle replica at ``t``, once every request arriving at that instant has
        been queued (the engine hears replicas after arrivals at the same time), so
        simultaneous arrivals share its first batch."""
        replica.busy, replica.chunks, replica.k, replica.cuttable = True, None, 0, False  # an empty run ending now
        self._schedule(replica, t)

    def _cut(self, replica: _Replica, t: float) -> None:
        """End a run of decode iterations at the one in progress at ``t`` (so that a newly
        waiting request is considered at the next boundary)."""
        replica.cuttable = False
        terms, b, c0, k_total = replica.terms, replica.b, replica.c0, replica.k
        elapsed = (t - replica.t0) * 1000.0
        # Iteration times grow along the run: the mean one gives a first guess, then step
        # to the largest k whose iterations all ended by t; ``after`` is the time of k + 1.
        k = min(int(elapsed * k_total / replica.run_ms), k_total) if replica.run_ms > 0 else 0
        after = -1.0
        while k > 0:
            ms = run_time_ms(terms, b, c0, k)
            if ms <= elapsed:
                break
            after = ms
            k -= 1
        if after < 0.0:
            while k < k_total:
                after = run_time_ms(terms, b, c0, k + 1)
                if after > elapsed:
                    break
                k += 1
        k += 1  # the iteration in progress
        if k < k_total:
            replica.k = k
            self._schedule(replica, replica.t0 + after / 1000.0)

    # -- the event loop's side ----------------------------------------------------------------
    def next_time(self) -> float:
        return self.events[0][0] if self.events else math.inf

    def fire(self) -> None:
        """The earliest pending boundary: finish the iterations that end there, then plan and
        schedule the next iteration(s), or go idle. (The replicas' hottest path: completion
        and planning share one method, and the KV in use is read once where it can be.)"""
        t, _, replica, version = heappop(self.events)
        if version != replica.version:
            return  # superseded by a shorter run
        if replica.chunks is not None:
            self._complete_chunks(replica, replica.chunks, t)
        elif replica.k:
            self._complete_decodes(replica, t)
        finish = replica.finish
        if finish and finish[0][0] <= replica.it:
            self._finish_decodes(replica, t)
        b, used = replica.b, _used(replica)
        if b and used + b > replica.capacity:
            self._make_room(replica, replica.spec)
            used = _used(replica)
        replica.t0 = t
        if (replica.waiting or replica.prefilling) and replica.admits:
            chunks = self._admit(replica, replica.spec, t, used)
            if chunks:
                self._plan_prefill(replica, chunks, t)
                return
            used = _used(replica)  # requests may have joined the decodes, or timed out
        if replica.b:
            self._plan_decodes(replica, t, used)
        else:
            replica.busy, replica.chunks, replica.cuttable = False, None, False

    def _schedule(self, replica: _Replica, t: float) -> None:
        replica.version += 1
        self._seq += 1
        heappush(self.events, (t, self._seq, replica, replica.version))

    # -- planning an iteration ----------------------------------------------------------------
    def _plan_prefill(self, replica: _Replica, chunks: list[tuple[_Seq, int]], t: float) -> None:
        """One iteration with these prefill chunks (and, with chunked prefill, the decodes)."""
        b = replica.b if replica.chunked else 0  # whole prompts: the decodes wait
        tokens, pairs = 0, 0.0
        for seq, n in chunks:
            tokens += n
            pairs += prefill_attention_pairs(n, seq.prompt + seq.generated - seq.prefill_left)
        ms = replica.spec.iteration.iteration_ms(tokens, pairs, b, replica.context if b else 0)
        replica.busy = True
        replica.chunks, replica.mb = chunks, b
        replica.cuttable = False
        replica.version = version = replica.version + 1
        self._seq += 1
        heappush(self.events, (t + ms / 1000.0, self._seq, replica, version))

    def _plan_decodes(self, replica: _Replica, t: float, used: int) -> None:
        """Decode iterations of the batch until a sequence finishes or the KV cache fills
        (>= 1), summed in closed form. Idle cache entries the growing context needs give way
        at the next boundary (nobody looks into the cache in between)."""
        b, capacity = replica.b, replica.capacity  # ``used``: KV in use now (eviction leaves it as it is)
        if replica.idle and used + replica.idle + b > capacity:
            self._evict(replica, capacity - b)
        finish, decoding = replica.finish, replica.decoding
        while finish:
            _, order, j = finish[0]
            seq = decoding.get(j)
            if seq is not None and seq.order == order:
                break
            heappop(finish)  # preempted meanwhile
        context = replica.context
        k = finish[0][0] - replica.it if finish else 1
        room = (capacity - used) // b
        if room < k:
            k = room
        if k < 1:
            k = 1
        terms = replica.costs.get(b)
        if terms is None:
            terms = replica.costs[b] = replica.spec.iteration.decode_terms(b)
        ms = run_time_ms(terms, b, context, k)
        replica.busy = True
        replica.chunks = None
        replica.k, replica.c0 = k, context
        replica.terms, replica.run_ms = terms, ms
        replica.cuttable = k > 1
        replica.version = version = replica.version + 1
        self._seq += 1
        heappush(self.events, (t + ms / 1000.0, self._seq, replica, version))

    def _make_room(self, replica: _Replica, spec: ServingSpec) -> None:
        """Preempt the newest sequences until every decode has room for one more token."""
        while replica.b and _used(replica) + replica.b > spec.kv_capacity:
            newest = max([*replica.decoding.values(), *replica.prefilling], key=lambda s: s.order)
            self._preempt(replica, newest)

    def _preempt(self, replica: _Replica, seq: _Seq) -> None:
        if seq.j in replica.decoding:
            del replica.decoding[seq.j]
            replica.b -= 1
            generated = seq.generated + (replica.it - seq.start_it)
            replica.context -= seq.context0 + (replica.it - seq.start_it)
            replica.shared -= seq.cached
        else:
            replica.prefilling.remove(seq)
            replica.kv_prefill -= seq.kv
            generated = seq.generated
        self._release(replica, seq)
        replica.waiting.appendleft((seq.j, generated))
        self.preemptions[replica.pool] += 1
        self.waiting[replica.pool] += 1
        self.running[replica.pool] -= 1

    def _admit(self, replica: _Replica, spec: ServingSpec, t: float, used: int) -> list[tuple[_Seq, int]]:
        """Prefill chunks for the next iteration, ``[(sequence, tokens)]`` ([]: it only decodes):
        first the prefills under way (chunked prefill), then waiting requests, FCFS. ``used``:
        the KV tokens in use now."""
        chunked = spec.chunked_prefill
        budget = spec.max_batched_tokens - (replica.b if chunked else 0)
        free_kv = spec.kv_capacity - used - replica.b  # idle cache entries give way
        chunks: list[tuple[_Seq, int]] = []
        if chunked:
            for seq in replica.prefilling:
                n = min(seq.prefill_left, budget, free_kv)
                if n <= 0:
                    break
                chunks.append((seq, n))
                budget -= n
                free_kv -= n
        running = len(replica.prefilling) + replica.b
        while replica.waiting and running < spec.max_batch and budget > 0:
            j, generated = replica.waiting[0]
            if generated < 0:  # a KV cache that landed: it joins the decodes, no prefill
                context = self.in_tokens[j] + 1
                if context + 1 > free_kv:
                    break
                replica.waiting.popleft()
                self.waiting[replica.pool] -= 1
                self._join(replica, j)
                running += 1
                free_kv -= context + 1
                continue
            taken = self._take(replica, spec, t, budget, free_kv, bool(chunks))
            if taken is None:
                break  # the head of the queue does not fit: it blocks the others
            admitted, n, pin = taken
            if admitted is not None:
                running += 1
                chunks.append((admitted, n))
                budget -= n
                free_kv -= n + pin
        if chunks and replica.idle:
            self._evict(replica, spec.kv_capacity - replica.b - sum(n for _, n in chunks))
        return chunks

    def _take(self, replica: _Replica, spec: ServingSpec, t: float, budget: int, free_kv: int,
              others: bool) -> tuple[_Seq | None, int, int] | None:
        """Admit the head of the queue: ``(sequence, chunk tokens, cache tokens it pins)``,
        ``(None, 0, 0)`` if it timed out, None if it does not fit."""
        o, p = self.o, replica.pool
        j, generated = replica.waiting[0]
        shares = self.prefix[j] >= 0  # a request without a shared prompt never has cached tokens
        prefix = self.prefix[j] if shares and replica.caching else -1
        entry = replica.cache.get(prefix) if prefix >= 0 else None
        if entry is None:
            cached = pin = 0
        else:
            cached = entry[0]
            pin = cached if entry[1] == 0 else 0  # an idle entry becomes in use
        n = self.in_tokens[j] + generated - cached
        if replica.chunked:
            if n > budget:
                n = budget
            if n + pin > free_kv:
                return None
        elif n + pin > free_kv or (others and n > budget):
            return None
        replica.waiting.popleft()
        self.waiting[p] -= 1
        if generated == 0:
            o.wait[j] = wait = t - o.at_pool[j]
            if wait > self.timeout(j):
                o.status[j] = _TIMED_OUT
                self.outstanding[p][replica.index] -= 1
                return None, 0, 0
            if shares:
                o.cached[j] = cached
        self._order += 1
        seq = _Seq(j, self._order, self.in_tokens[j], self.out_tokens[j], generated, prefix, cached)
        if entry is not None:
            self._pin(replica, prefix, entry)
        replica.prefilling.append(seq)
        self.running[p] += 1
        return seq, n, pin

    # -- finishing iterations ------------------------------------------------------------------
    def _complete_chunks(self, replica: _Replica, chunks: list[tuple[_Seq, int]], t: float) -> None:
        """An iteration with prefill chunks (and ``mb`` decodes) ended at ``t``."""
        b = replica.mb
        if b:
            replica.it += 1
            replica.context += b
        tokens = finished = 0
        for seq, n in chunks:
            seq.prefill_left -= n
            seq.kv += n
            tokens += n
            if not seq.prefill_left:
                finished += 1
        replica.kv_prefill += tokens
        # The KV cache at its fullest: before finished sequences let go.
        self._segments.fromlist([replica.pool, replica.index, replica.t0, t, b + len(chunks), tokens,
                                 b + finished, _used(replica)])
        if finished:
            for seq, _ in chunks:
                if not seq.prefill_left:
                    self._prefilled(replica, seq, t)

    def _complete_decodes(self, replica: _Replica, t: float) -> None:
        """A run of ``k`` decode iterations ended at ``t``."""
        b, k = replica.b, replica.k
        replica.it += k
        replica.context += b * k
        used = _used(replica)
        self._segments.fromlist([replica.pool, replica.index, replica.t0, t, b, 0.0, b * k, used])
        if k > 1 and replica.idle and used + replica.idle > replica.capacity:
            # What each iteration after the first would have evicted for its decodes.
            self._evict(replica, replica.capacity)

    def _prefilled(self, replica: _Replica, seq: _Seq, t: float) -> None:
        """A prefill completed at ``t``: it yields a token; the sequence decodes from now on.
        A shared prompt it computed itself goes to the prefix cache."""
        o, j = self.o, seq.j
        replica.prefilling.remove(seq)
        replica.kv_prefill -= seq.kv
        if seq.prefix >= 0 and not seq.cached:
            self._insert(replica, seq)
        seq.generated = generated = seq.generated + 1
        first = o.first_token
        if first[j] != first[j]:  # NaN: the first token of this request
            first[j] = t - o.at_pool[j]
        if generated >= seq.out:
            self._done(replica, seq, t)
            return
        if replica.spec.hands_off:  # a prefill replica: the KV cache leaves for a decode pool
            self.running[replica.pool] -= 1
            self.outstanding[replica.pool][replica.index] -= 1
            self._release(replica, seq)
            self.handoff(j, t)  # type: ignore[misc]
            return
        # It joins the decoding batch (as in _decode, written out: this runs once a request).
        it = replica.it
        context0 = seq.prompt + generated
        seq.start_it, seq.context0 = it, context0
        replica.decoding[j] = seq
        replica.b += 1
        replica.context += context0
        replica.shared += seq.cached
        heappush(replica.finish, (it + seq.out - generated, seq.order, j))

    def _join(self, replica: _Replica, j: int) -> None:
        """Request ``j``'s KV cache (prompt and first token) landed here: it decodes from the
        next iteration on."""
        self._order += 1
        seq = _Seq(j, self._order, self.in_tokens[j], self.out_tokens[j], 1)
        seq.prefill_left = 0
        self.running[replica.pool] += 1
        self._decode(replica, seq)

    def _decode(self, replica: _Replica, seq: _Seq) -> None:
        """``seq`` joins the decoding batch."""
        j = seq.j
        seq.start_it, seq.context0 = replica.it, seq.prompt + seq.generated
        replica.decoding[j] = seq
        replica.b += 1
        replica.context += seq.context0
        replica.shared += seq.cached
        heappush(replica.finish, (replica.it + seq.out - seq.generated, seq.order, j))

    def _finish_decodes(self, replica: _Replica, t: float) -> None:
        finish, decoding, it = replica.finish, replica.decoding, replica.it
        while finish and finish[0][0] <= it:
            _, order, j = heappop(finish)
            seq = decoding.get(j)
            if seq is None or seq.order != order:
                continue  # preempted earlier (it may be decoding again, with a later entry)
            del decoding[j]
            replica.b -= 1
            replica.context -= seq.context0 + (it - seq.start_it)
            replica.shared -= seq.cached
            self._done(replica, seq, t)

    def _done(self, replica: _Replica, seq: _Seq, t: float) -> None:
        o, j, out = self.o, seq.j, seq.out
        o.status[j] = _COMPLETED
        if self.shift:  # tokens from a decode pool travel back from its region, not the prefill pool's
            t += self.shift.pop(j, 0.0)
        at_pool = o.at_pool[j]
        o.service[j] = t - at_pool - o.wait[j]
        if out > 1:
            o.tpot[j] = (t - at_pool - o.first_token[j]) / (out - 1)
        self.running[replica.pool] -= 1
        self.outstanding[replica.pool][replica.index] -= 1
        if seq.cached:
            self._release(replica, seq)
        sessions = self.sessions
        if sessions is not None:
            k = sessions.next_turn[j]
            if k >= 0 and replica.spec.prefix_caching:
                self._keep_context(replica, seq, k)
            sessions.answered(j, t)

    # -- the prefix cache ------------------------------------------------------------------------
    def _pin(self, replica: _Replica, prefix: int, entry: list[int]) -> None:
        """A sequence uses a cached shared prompt: the entry is in use and most recent."""
        if entry[1] == 0:
            replica.idle -= entry[0]
            replica.pinned += entry[0]
        entry[1] += 1
        replica.cache.move_to_end(prefix)

    def _release(self, replica: _Replica, seq: _Seq) -> None:
        """A sequence leaves (done or preempted): its shared prompt's entry may go idle."""
        if seq.cached:
            entry = replica.cache[seq.prefix]
            entry[1] -= 1
            if entry[1] == 0:
                replica.pinned -= entry[0]
                replica.idle += entry[0]

    def _insert(self, replica: _Replica, seq: _Seq) -> None:
        """Keep the KV cache of the shared prompt ``seq`` just prefilled (its tokens move from
        the sequence to the cache); within the cache's cap, the least recently used idle
        entries give way."""
        tokens, prefix = self.prefix_tokens[seq.j], seq.prefix
        entry = replica.cache.get(prefix)
        if entry is None:
            replica.cache[prefix] = [tokens, 1]
            replica.pinned += tokens
            held = self.pool_cached[replica.pool]
            held[prefix] = held.get(prefix, 0) + 1
        else:
            self._pin(replica, prefix, entry)
        seq.cached = tokens
        cap = replica.spec.prefix_cache_tokens
        if cap is not None and replica.pinned + replica.idle > cap:
            self._evict(replica, _used(replica) + cap - replica.pinned)

    def _keep_context(self, replica: _Replica, seq: _Seq, k: int) -> None:
        """A turn ended: keep the conversation so far (its prompt and answer, the prefix of
        the next turn ``k``) as an idle cache entry; it supersedes the context this turn
        opened with (a shared prompt stays: other conversations use it)."""
        held = self.pool_cached[replica.pool]
        cache = replica.cache
        old = seq.prefix
        if old >= self.sessions.context_from:  # type: ignore[union-attr]
            entry = cache.get(old)
            if entry is not None and entry[1] == 0:
                del cache[old]
                replica.idle -= entry[0]
                self._forget(held, old)
        prefix, tokens = self.prefix[k], self.prefix_tokens[k]
        cache[prefix] = [tokens, 0]
        replica.idle += tokens
        held[prefix] = held.get(prefix, 0) + 1
        limit = replica.spec.kv_capacity
        cap = replica.spec.prefix_cache_tokens
        if cap is not None:
            limit = min(limit, _used(replica) + cap - replica.pinned)
        if _used(replica) + replica.idle > limit:
            self._evict(replica, limit)

    @staticmethod
    def _forget(held: dict[int, int], prefix: int) -> None:
        held[prefix] -= 1
        if not held[prefix]:
            del held[prefix]

    def _evict(self, replica: _Replica, limit: int) -> None:
        """Drop least recently used idle entries until ``used + idle <= limit``."""
        cache, used = replica.cache, _used(replica)
        held = self.pool_cached[replica.pool]
        for prefix in list(cache):
            if used + replica.idle <= limit or not replica.idle:
                return
            tokens, users = cache[prefix]
            if users == 0:
                del cache[prefix]
                replica.idle -= tokens
                held[prefix] -= 1
                if not held[prefix]:
                    del held[prefix]

    # -- capacity -----------------------------------------------------------------------------
    def set_active(self, p: int, n: int, t: float) -> None:
        """Pool ``p`` now has ``n`` active replicas (the first ``n``): the others finish their
        batch but admit nothing, and their queued requests move to the active ones (with no
        active replica they wait where they are)."""
        self.active[p] = n
        replicas, counts = self.replicas[p], self.outstanding[p]
        for replica in replicas:
            replica.admits = replica.index < n
        if n == 0:
            return
        moved = [m for replica in replicas[n:] for m in replica.waiting]
        for replica in replicas[n:]:
            self.waiting[p] -= len(replica.waiting)
            counts[replica.index] -= len(replica.waiting)
            replica.waiting.clear()
        for j, generated in sorted(moved, key=lambda m: (self.o.at_pool[m[0]], m[0])):
            k = counts.index(min(counts[:n]))
            replicas[k].waiting.append((j, generated))
            counts[k] += 1
            self.waiting[p] += 1
        for replica in replicas[:n]:
            if replica.waiting and not replica.busy:
                self._kick(replica, t)
            elif replica.waiting and replica.chunks is None and replica.k > 1:
                self._cut(replica, t)

    def fail(self, p: int, k: int) -> list[int]:
        """Replica ``k`` of pool ``p`` failed: every request it held, running or waiting, is
        returned (to retry or lose), oldest first. An empty replica takes its place; the
        pool having already shrunk, the healthy replica made inactive moves into the failed
        one's active slot and keeps serving its batch."""
        replicas, counts = self.replicas[p], self.outstanding[p]
        replica = replicas[k]
        cached = self.pool_cached[p]
        for prefix in replica.cache:  # its prefix cache is gone with it
            cached[prefix] -= 1
            if not cached[prefix]:
                del cached[prefix]
        held = sorted([*replica.decoding.values(), *replica.prefilling], key=lambda s: s.order)
        victims = [s.j for s in held] + [j for j, _ in replica.waiting]
        self.waiting[p] -= len(replica.waiting)
        self.running[p] -= replica.running
        fresh = _Replica(p, k, replica.spec, replica.costs)
        replica.version += 1  # its pending boundary is void
        replicas[k], counts[k] = fresh, 0
        last = self.active[p]
        if k < last < len(replicas):
            replicas[k], replicas[last] = replicas[last], fresh
            replicas[k].index, fresh.index = k, last
            counts[k], counts[last] = counts[last], 0
        for r in replicas:
            r.admits = r.index < last
        return victims

    def kv_fraction(self, p: int) -> float:
        """KV cache in use over the KV capacity of pool ``p``'s active replicas (NaN: none active)."""
        n = self.active[p]
        if n == 0:
            return math.nan
        return sum(_used(r) for r in self.replicas[p][:n]) / (n * self.specs[p].kv_capacity)

    def backlog(self, p: int) -> int:
        """Prompt tokens pool ``p``'s replicas have still to prefill: the requests waiting at
        them (less the shared prompt or conversation their replica's prefix cache holds now)
        and what the admitted prompts have left. A landed KV cache needs no prefill."""
        in_tokens, prefix = self.in_tokens, self.prefix
        total = 0
        for replica in self.replicas[p]:
            cache = replica.cache if replica.caching else None
            for j, generated in replica.waiting:
                if generated < 0:
                    continue
                total += in_tokens[j] + generated
                if cache and prefix[j] >= 0:
                    entry = cache.get(prefix[j])
                    if entry is not None:
                        total -= entry[0]
            for seq in replica.prefilling:
                total += seq.prefill_left
        return total

    def queued(self) -> list[int]:
        """Requests still waiting at any replica (never admitted)."""
        return [j for replicas in self.replicas.values() for r in replicas for j, g in r.waiting if g == 0]

    # -- results -------------------------------------------------------------------------------
    def log(self) -> BatchLog:
        seg = np.frombuffer(self._segments, dtype=np.float64).reshape(-1, 8)
        pools = sorted(self.specs)
        return BatchLog(pool=seg[:, 0].astype(np.int16), replica=seg[:, 1].astype(np.int32),
                        start_s=seg[:, 2].copy(), end_s=seg[:, 3].copy(), seqs=seg[:, 4].astype(np.int32),
                        prefill_tokens=seg[:, 5].copy(), output_tokens=seg[:, 6].copy(),
                        kv_tokens=seg[:, 7].astype(np.int64), pools=np.array(pools, dtype=np.int16),
                        kv_capacity=np.array([self.specs[p].kv_capacity for p in pools], dtype=np.int64),
                        preemptions=np.array([self.preemptions[p] for p in pools], dtype=np.int64))
