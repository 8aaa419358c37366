"""The batching replicas of :mod:`sim.engine.batching`, compiled with numba (plain pools).

The same model as :class:`~sim.engine.batching.BatchingServers`, written over arrays for
the plain case: chunked or whole-prompt prefill, FCFS admission by KV capacity,
``max_batch`` and ``max_batched_tokens``, queue timeouts at admission, preemption of the
newest sequence by recompute, decode runs summed in closed form and cut by arrivals,
least-outstanding dispatch over a pool's active replicas, capacity changes and replica
failures. Not here (those runs keep the Python replicas): prefix caches and
cache-affinity dispatch, conversations, prefill/decode disaggregation and
mixture-of-experts weight reads. Every float operation is the Python model's, in the same order, so the
outputs are equal bit for bit (``tests/engine/test_batching_compiled.py`` checks it on
random workloads).

The request loop hands arrivals over in a buffer and calls :func:`advance` only when
something needs the replicas' state (see :class:`~sim.engine.batching_compiled.CompiledServers`).
Each replica has at most one pending boundary; the next one is the earliest (ties: the
one scheduled first), as with the Python heap, whose superseded entries are counted here
(``STALE``) so that the run's event count is the same. Arrivals at a boundary's instant
come first (the request loop's order).

Helpers are inlined (``inline="always"``): called as functions, each call would count
references on every array argument, about 40 % of a run.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# per-pool int fields (PI[pool, field]); pools are numbered locally (the compiled pools only)
CAP, MAXB, MBT, CHUNKED, FIRST, COUNT, ACTIVE, GPOOL, PREEMPT = range(9)
NPI = 9
# per-replica int fields (RI[r, field]); replicas are numbered across the compiled pools
(BUSY, MB, K, CUT, IT, B, CTX, KVPRE, NPRE, NCH, HASCH, WHEAD, WCOUNT, OUTST, EVSEQ, C0, MINFIN, POOL, INDEX,
 ADMITS) = range(20)
NRI = 20
NEVER = 1 << 62  # MINFIN of a replica with no decoding sequence
# per-replica float fields (RF[r, field])
T0, RUNMS, EVT = range(3)
NRF = 3
# globals (G[field])
ORDERC, SEQC, NSEG, FIRES, NSTALE, BUFPOS = range(6)
NG = 6
# per-request int fields (QI[j, field]), for requests that reach a compiled pool
GEN, PLEFT, KV, START, CTX0, ORDER, FIN = range(7)
NQ = 7
# model constants (PM[pool, field]), as IterationModel holds them
FIXED, FLOOR, WEIGHT, TOKC, PAIR, CTXT, COMM, ABOVE, KNEE, PERSEQ = range(10)
NPM = 10
# what advance returns when an array needs more room first (otherwise the next boundary's time, >= 0)
GROW_SEG, GROW_QUEUE, GROW_STALE = -1.0, -2.0, -3.0

COMPLETED, REJECTED, TIMED_OUT = 1, 2, 3  # RequestStatus values (checked by the adapter)


@njit(cache=True, error_model="numpy")
def iteration_ms(m, prefill_tokens, pairs, decode_seqs, context):
    """``IterationModel._iteration`` of a dense model: same operations, same order."""
    tokens = prefill_tokens + decode_seqs
    compute = m[TOKC] * tokens + m[PAIR] * (pairs + context)
    w = m[WEIGHT]
    mx = compute if compute > w else w
    over = tokens - int(m[KNEE])
    overf = float(over) if over > 0 else 0.0
    body = (m[FIXED] + m[PERSEQ] * decode_seqs + mx + m[CTXT] * context + m[COMM] * tokens
            + m[ABOVE] * overf)
    floor = m[FLOOR] if prefill_tokens > 0 else 0.0
    r = body if body > floor else floor
    return r if tokens > 0 else 0.0


@njit(cache=True, error_model="numpy")
def run_time_ms(costs, batch, context0, k):
    """:func:`sim.engine.batching.run_time_ms` with the pool's terms by batch size."""
    if k <= 0:
        return 0.0
    a, b, w, c, d = costs[batch, 0], costs[batch, 1], costs[batch, 2], costs[batch, 3], costs[batch, 4]
    linear = k * a + b * (k * context0 + batch * k * (k - 1) / 2.0)
    slope = d * batch
    base = c + d * context0
    if slope <= 0.0:
        first = 0 if base >= w else k
    else:
        x = (w - base) / slope
        if x >= k:
            first = k
        else:
            first = int(math.ceil(x))
            if first < 0:
                first = 0
    if first >= k:
        return linear + w * k
    tail = (k - first) * base + slope * (k * (k - 1) - first * (first - 1)) / 2.0
    return linear + w * first + tail


@njit(cache=True, inline="always", error_model="numpy")
def _schedule(G, RI, RF, r, t):
    G[SEQC] += 1
    RI[r, EVSEQ] = G[SEQC]
    RF[r, EVT] = t


@njit(cache=True, inline="always", error_model="numpy")
def _done(IN, OUT, ATP, WAIT, SERV, FIRST, TPOT, STATUS, j, t, counts, gp):
    """Request ``j`` finished at ``t``: its service and time per output token."""
    STATUS[j] = COMPLETED
    at_pool = ATP[j]
    SERV[j] = t - at_pool - WAIT[j]
    if OUT[j] > 1:
        TPOT[j] = (t - at_pool - FIRST[j]) / (OUT[j] - 1)
    counts[1, gp] -= 1


@njit(cache=True, inline="always", error_model="numpy")
def _remove_prefill(RI, PRE, r, j):
    n = RI[r, NPRE]
    i = 0
    while PRE[r, i] != j:
        i += 1
    while i < n - 1:
        PRE[r, i] = PRE[r, i + 1]
        i += 1
    RI[r, NPRE] = n - 1


@njit(cache=True, inline="always", error_model="numpy")
def _min_finish(RI, DEC, r):
    fin = NEVER
    for i in range(RI[r, B]):
        if DEC[r, i, 1] < fin:
            fin = DEC[r, i, 1]
    RI[r, MINFIN] = fin


@njit(cache=True, error_model="numpy")
def _cut(G, COSTS, RI, RF, STALE, r, t):
    """End the run of decodes at the iteration in progress at ``t``."""
    RI[r, CUT] = 0
    lp = RI[r, POOL]
    costs = COSTS[lp]
    b, c0, k_total = RI[r, B], RI[r, C0], RI[r, K]
    elapsed = (t - RF[r, T0]) * 1000.0
    run_ms = RF[r, RUNMS]
    k = min(int(elapsed * k_total / run_ms), k_total) if run_ms > 0 else 0
    after = -1.0
    while k > 0:
        ms = run_time_ms(costs, b, c0, k)
        if ms <= elapsed:
            break
        after = ms
        k -= 1
    if after < 0.0:
        while k < k_total:
            after = run_time_ms(costs, b, c0, k + 1)
            if after > elapsed:
                break
            k += 1
    k += 1
    if k < k_total:
        RI[r, K] = k
        STALE[G[NSTALE]] = RF[r, EVT]  # the superseded boundary (the Python heap pops it later)
        G[NSTALE] += 1
        _schedule(G, RI, RF, r, RF[r, T0] + after / 1000.0)


@njit(cache=True, inline="always", error_model="numpy")
def _kick(G, RI, RF, r, t):
    RI[r, BUSY] = 1
    RI[r, HASCH] = 0
    RI[r, K] = 0
    RI[r, CUT] = 0
    _schedule(G, RI, RF, r, t)


@njit(cache=True, inline="always", error_model="numpy")
def _fire(G, PI, PM, COSTS, QI, RI, RF, PRE, DEC, CH, WQ, SEG, STALE, IN, OUT, WL, TMO, ATP, WAIT, SERV, FIRST,
          TPOT, STATUS, counts, r, t):
    """The boundary of replica ``r`` at ``t``: finish what ended, then plan what comes next.

    Written out in one piece on purpose, like the request loop: split into inlined helpers
    (one per step, tried) the core ran 1.44 s instead of 0.82 to 0.92 s on the serving
    bench, each helper's array arguments counted in and out at every boundary."""
    G[FIRES] += 1
    lp = RI[r, POOL]
    gp = PI[lp, GPOOL]
    capacity, max_batch, chunked = PI[lp, CAP], PI[lp, MAXB], PI[lp, CHUNKED]
    if RI[r, HASCH]:  # an iteration with prefill chunks ended
        b = RI[r, MB]
        if b:
            RI[r, IT] += 1
            RI[r, CTX] += b
        tokens = 0
        finished = 0
        nch = RI[r, NCH]
        for i in range(nch):
            j, n = CH[r, i, 0], CH[r, i, 1]
            QI[j, PLEFT] -= n
            QI[j, KV] += n
            tokens += n
            if QI[j, PLEFT] == 0:
                finished += 1
        RI[r, KVPRE] += tokens
        s = G[NSEG]
        SEG[0, s] = gp
        SEG[1, s] = RI[r, INDEX]
        SEG[2, s] = RF[r, T0]
        SEG[3, s] = t
        SEG[4, s] = b + nch
        SEG[5, s] = tokens
        SEG[6, s] = b + finished
        SEG[7, s] = RI[r, CTX] + RI[r, KVPRE]
        G[NSEG] = s + 1
        if finished:
            for i in range(nch):
                j = CH[r, i, 0]
                if QI[j, PLEFT] == 0:  # a prefill completed: the first token; it decodes from now on
                    _remove_prefill(RI, PRE, r, j)
                    RI[r, KVPRE] -= QI[j, KV]
                    g = QI[j, GEN] + 1
                    QI[j, GEN] = g
                    if FIRST[j] != FIRST[j]:
                        FIRST[j] = t - ATP[j]
                    if g >= OUT[j]:
                        _done(IN, OUT, ATP, WAIT, SERV, FIRST, TPOT, STATUS, j, t, counts, gp)
                        RI[r, OUTST] -= 1
                        continue
                    it = RI[r, IT]
                    QI[j, START] = it
                    QI[j, CTX0] = IN[j] + g
                    QI[j, FIN] = it + OUT[j] - g
                    DEC[r, RI[r, B], 0] = j
                    DEC[r, RI[r, B], 1] = QI[j, FIN]
                    if QI[j, FIN] < RI[r, MINFIN]:
                        RI[r, MINFIN] = QI[j, FIN]
                    RI[r, B] += 1
                    RI[r, CTX] += QI[j, CTX0]
    elif RI[r, K]:  # a run of decodes ended
        b, k = RI[r, B], RI[r, K]
        RI[r, IT] += k
        RI[r, CTX] += b * k
        s = G[NSEG]
        SEG[0, s] = gp
        SEG[1, s] = RI[r, INDEX]
        SEG[2, s] = RF[r, T0]
        SEG[3, s] = t
        SEG[4, s] = b
        SEG[5, s] = 0.0
        SEG[6, s] = b * k
        SEG[7, s] = RI[r, CTX] + RI[r, KVPRE]
        G[NSEG] = s + 1
    # sequences that finished decoding
    it = RI[r, IT]
    i = 0
    while RI[r, MINFIN] <= it and i < RI[r, B]:  # (the scan only when one is due)
        if DEC[r, i, 1] <= it:
            j = DEC[r, i, 0]
            last = RI[r, B] - 1
            DEC[r, i, 0] = DEC[r, last, 0]
            DEC[r, i, 1] = DEC[r, last, 1]
            RI[r, B] = last
            RI[r, CTX] -= QI[j, CTX0] + (it - QI[j, START])
            _done(IN, OUT, ATP, WAIT, SERV, FIRST, TPOT, STATUS, j, t, counts, gp)
            RI[r, OUTST] -= 1
        else:
            i += 1
    if RI[r, MINFIN] <= it:
        _min_finish(RI, DEC, r)
    b = RI[r, B]
    used = RI[r, CTX] + RI[r, KVPRE]
    if b and used + b > capacity:  # make room: preempt the newest until every decode fits
        cap = WQ.shape[1]
        while RI[r, B] and RI[r, CTX] + RI[r, KVPRE] + RI[r, B] > capacity:
            newest, best = -1, -1
            for i in range(RI[r, B]):
                j = DEC[r, i, 0]
                if QI[j, ORDER] > best:
                    newest, best = j, QI[j, ORDER]
            for i in range(RI[r, NPRE]):
                j = PRE[r, i]
                if QI[j, ORDER] > best:
                    newest, best = j, QI[j, ORDER]
            j = newest
            nb = RI[r, B]
            i = 0
            while i < nb and DEC[r, i, 0] != j:
                i += 1
            if i < nb:  # decoding: it had generated its tokens so far
                DEC[r, i, 0] = DEC[r, nb - 1, 0]
                DEC[r, i, 1] = DEC[r, nb - 1, 1]
                RI[r, B] = nb - 1
                _min_finish(RI, DEC, r)
                ran = RI[r, IT] - QI[j, START]
                generated = QI[j, GEN] + ran
                RI[r, CTX] -= QI[j, CTX0] + ran
            else:
                _remove_prefill(RI, PRE, r, j)
                RI[r, KVPRE] -= QI[j, KV]
                generated = QI[j, GEN]
            h = (RI[r, WHEAD] - 1) % cap
            RI[r, WHEAD] = h
            WQ[r, h, 0] = j
            WQ[r, h, 1] = generated
            RI[r, WCOUNT] += 1
            PI[lp, PREEMPT] += 1
            counts[0, gp] += 1
            counts[1, gp] -= 1
        used = RI[r, CTX] + RI[r, KVPRE]
    RF[r, T0] = t
    if (RI[r, WCOUNT] or RI[r, NPRE]) and RI[r, ADMITS]:  # admission: chunks under way, then the queue (FCFS)
        b = RI[r, B]
        budget = PI[lp, MBT] - (b if chunked else 0)
        free_kv = capacity - used - b
        nch = 0
        if chunked:
            for i in range(RI[r, NPRE]):
                j = PRE[r, i]
                n = min(QI[j, PLEFT], budget, free_kv)
                if n <= 0:
                    break
                CH[r, nch, 0] = j
                CH[r, nch, 1] = n
                nch += 1
                budget -= n
                free_kv -= n
        running = RI[r, NPRE] + b
        cap = WQ.shape[1]
        while RI[r, WCOUNT] and running < max_batch and budget > 0:
            h = RI[r, WHEAD]
            j, g = WQ[r, h, 0], WQ[r, h, 1]
            n = IN[j] + g
            if chunked:
                if n > budget:
                    n = budget
                if n > free_kv:
                    break  # the head of the queue does not fit: it blocks the others
            elif n > free_kv or (nch > 0 and n > budget):
                break
            RI[r, WHEAD] = (h + 1) % cap
            RI[r, WCOUNT] -= 1
            counts[0, gp] -= 1
            if g == 0:
                wait = t - ATP[j]
                WAIT[j] = wait
                if wait > TMO[WL[j]]:
                    STATUS[j] = TIMED_OUT
                    RI[r, OUTST] -= 1
                    continue
            G[ORDERC] += 1
            QI[j, ORDER] = G[ORDERC]
            QI[j, GEN] = g
            QI[j, PLEFT] = IN[j] + g
            QI[j, KV] = 0
            PRE[r, RI[r, NPRE]] = j
            RI[r, NPRE] += 1
            counts[1, gp] += 1
            running += 1
            CH[r, nch, 0] = j
            CH[r, nch, 1] = n
            nch += 1
            budget -= n
            free_kv -= n
        if nch:  # one iteration with these chunks (and, with chunked prefill, the decodes)
            mb = b if chunked else 0
            tokens = 0
            pairs = 0.0
            for i in range(nch):
                j, n = CH[r, i, 0], CH[r, i, 1]
                tokens += n
                cached = IN[j] + QI[j, GEN] - QI[j, PLEFT]
                pairs += n * cached + n * (n + 1) / 2.0
            ms = iteration_ms(PM[lp], tokens, pairs, mb, RI[r, CTX] if mb else 0)
            RI[r, BUSY] = 1
            RI[r, HASCH] = 1
            RI[r, NCH] = nch
            RI[r, MB] = mb
            RI[r, CUT] = 0
            _schedule(G, RI, RF, r, t + ms / 1000.0)
            return
        used = RI[r, CTX] + RI[r, KVPRE]
    b = RI[r, B]
    if b:  # decodes until a sequence finishes or the KV cache fills
        k = RI[r, MINFIN] - RI[r, IT]
        room = (capacity - used) // b
        if room < k:
            k = room
        if k < 1:
            k = 1
        context = RI[r, CTX]
        ms = run_time_ms(COSTS[lp], b, context, k)
        RI[r, BUSY] = 1
        RI[r, HASCH] = 0
        RI[r, K] = k
        RI[r, C0] = context
        RF[r, RUNMS] = ms
        RI[r, CUT] = 1 if k > 1 else 0
        _schedule(G, RI, RF, r, t + ms / 1000.0)
    else:
        RI[r, BUSY] = 0
        RI[r, HASCH] = 0
        RI[r, CUT] = 0
        RF[r, EVT] = np.inf


@njit(cache=True, inline="always", error_model="numpy")
def _dispatch(PI, RI, lp):
    """The pool's active replica holding the fewest requests (ties: the lowest index; with no
    active replica, the first)."""
    first = PI[lp, FIRST]
    active = PI[lp, ACTIVE]
    if active == 0:
        active = 1
    r = first
    for q in range(first + 1, first + active):
        if RI[q, OUTST] < RI[r, OUTST]:
            r = q
    return r


@njit(cache=True, inline="always", error_model="numpy")
def _next_event(RI, RF):
    r, best, seq = -1, np.inf, 0
    for q in range(RI.shape[0]):
        e = RF[q, EVT]
        if e < best or (e == best and r >= 0 and RI[q, EVSEQ] < seq):
            r, best, seq = q, e, RI[q, EVSEQ]
    return r, best


@njit(cache=True, error_model="numpy")
def advance(buf, nbuf, until, LOC, G, PI, PM, COSTS, QI, RI, RF, PRE, DEC, CH, WQ, SEG, STALE, IN, OUT, WL, TMO,
            POOL_OF, ATP, WAIT, SERV, FIRST, TPOT, STATUS, counts):
    """Run the buffered arrivals ``buf[G[BUFPOS]:nbuf]`` (request indices, in order of their
    arrival at the pool, ``ATP``) and every boundary before ``until``, arrivals first at
    equal times. Returns the time of the next boundary (inf: none), or a negative code for
    what needs more room (the caller grows it and calls again). Arrays are never rebound
    inside the loop (rebinding makes numba count references on every pass)."""
    ai = G[BUFPOS]
    seg_room = SEG.shape[1] - 1
    stale_room = STALE.shape[0] - 1
    cap = WQ.shape[1]
    while True:
        r, te = _next_event(RI, RF)
        if ai < nbuf:
            j = buf[ai]
            ta = ATP[j]
        else:
            j = -1
            ta = np.inf
        if j >= 0 and ta <= te:
            lp = LOC[POOL_OF[j]]
            if IN[j] + OUT[j] > PI[lp, CAP]:
                STATUS[j] = REJECTED  # could never fit: a server refuses it
                ai += 1
                G[BUFPOS] = ai
                continue
            q = _dispatch(PI, RI, lp)
            if RI[q, WCOUNT] + PI[lp, MAXB] + 2 >= cap:
                return GROW_QUEUE
            if G[NSTALE] >= stale_room:
                return GROW_STALE
            h = (RI[q, WHEAD] + RI[q, WCOUNT]) % cap
            WQ[q, h, 0] = j
            WQ[q, h, 1] = 0
            RI[q, WCOUNT] += 1
            RI[q, OUTST] += 1
            counts[0, PI[lp, GPOOL]] += 1
            if not RI[q, BUSY]:  # an empty run ending now
                _kick(G, RI, RF, q, ta)
            elif RI[q, CUT] and RI[q, NPRE] + RI[q, B] < PI[lp, MAXB]:
                _cut(G, COSTS, RI, RF, STALE, q, ta)
            ai += 1
            G[BUFPOS] = ai
        else:
            if te >= until:
                G[BUFPOS] = 0  # the caller empties the buffer
                return te
            if G[NSEG] >= seg_room:
                return GROW_SEG
            if RI[r, WCOUNT] + PI[RI[r, POOL], MAXB] + 2 >= cap:
                return GROW_QUEUE
            _fire(G, PI, PM, COSTS, QI, RI, RF, PRE, DEC, CH, WQ, SEG, STALE, IN, OUT, WL, TMO, ATP, WAIT, SERV, FIRST,
                  TPOT, STATUS, counts, r, te)


@njit(cache=True, error_model="numpy")
def set_active(lp, n, t, G, PI, COSTS, RI, RF, WQ, STALE, ATP):
    """Pool ``lp`` now has ``n`` active replicas (the first ``n``): the others admit nothing
    and their queued requests move to the active ones, oldest first (the caller has made
    room in the queues)."""
    PI[lp, ACTIVE] = n
    first, count = PI[lp, FIRST], PI[lp, COUNT]
    for r in range(first, first + count):
        RI[r, ADMITS] = 1 if r - first < n else 0
    if n == 0:
        return
    cap = WQ.shape[1]
    js, gs = _take_queues(RI, WQ, first + n, first + count)
    moved = len(js)
    by_index = np.argsort(js, kind="mergesort")  # oldest first: by arrival, then index
    at = np.empty(moved)
    for i in range(moved):
        at[i] = ATP[js[by_index[i]]]
    order = by_index[np.argsort(at, kind="mergesort")]
    for i in range(moved):
        q = first
        for s in range(first + 1, first + n):
            if RI[s, OUTST] < RI[q, OUTST]:
                q = s
        h = (RI[q, WHEAD] + RI[q, WCOUNT]) % cap
        WQ[q, h, 0] = js[order[i]]
        WQ[q, h, 1] = gs[order[i]]
        RI[q, WCOUNT] += 1
        RI[q, OUTST] += 1
    for r in range(first, first + n):
        if RI[r, WCOUNT] and not RI[r, BUSY]:
            _kick(G, RI, RF, r, t)
        elif RI[r, WCOUNT] and not RI[r, HASCH] and RI[r, K] > 1:
            _cut(G, COSTS, RI, RF, STALE, r, t)


@njit(cache=True, error_model="numpy")
def backlogs(PI, RI, PRE, WQ, QI, IN, out):
    """Per pool, prompt tokens still to prefill: the queues' and the prefills' left
    (``out[pool index]``, for every compiled pool)."""
    cap = WQ.shape[1]
    for r in range(RI.shape[0]):
        total = 0
        h = RI[r, WHEAD]
        for i in range(RI[r, WCOUNT]):
            total += IN[WQ[r, (h + i) % cap, 0]] + WQ[r, (h + i) % cap, 1]
        for i in range(RI[r, NPRE]):
            total += QI[PRE[r, i], PLEFT]
        if r == PI[RI[r, POOL], FIRST]:
            out[PI[RI[r, POOL], GPOOL]] = 0
        out[PI[RI[r, POOL], GPOOL]] += total


@njit(cache=True, error_model="numpy")
def fail(lp, k, G, PI, QI, RI, RF, PRE, DEC, CH, WQ, STALE, counts):
    """Replica ``k`` of pool ``lp`` failed: returns the requests it held, running ones by
    admission order then waiting ones in queue order. An empty replica takes its place;
    the pool having already shrunk to ``ACTIVE`` replicas, the healthy replica made
    inactive at index ``ACTIVE`` moves into the failed one's slot and keeps serving its
    batch (the caller has made room for one superseded boundary)."""
    first, count = PI[lp, FIRST], PI[lp, COUNT]
    r = first + k
    nb, npre, nw = RI[r, B], RI[r, NPRE], RI[r, WCOUNT]
    victims = _held(QI, RI, PRE, DEC, WQ, r)
    gp = PI[lp, GPOOL]
    counts[0, gp] -= nw
    counts[1, gp] -= nb + npre
    if RI[r, BUSY]:  # its pending boundary is void (the Python heap pops it later)
        STALE[G[NSTALE]] = RF[r, EVT]
        G[NSTALE] += 1
    for f in range(NRI):
        RI[r, f] = 0
    RI[r, POOL] = lp
    RI[r, INDEX] = k
    RI[r, MINFIN] = NEVER
    RF[r, T0] = 0.0
    RF[r, RUNMS] = 0.0
    RF[r, EVT] = np.inf
    last = PI[lp, ACTIVE]
    if k < last < count:  # the healthy inactive replica takes the failed one's active slot
        _swap_rows(RI, RF, PRE, DEC, CH, WQ, r, first + last)
        RI[r, INDEX] = k
        RI[first + last, INDEX] = last
    for q in range(first, first + count):
        RI[q, ADMITS] = 1 if RI[q, INDEX] < last else 0
    return victims


@njit(cache=True, error_model="numpy")
def _swap_rows(RI, RF, PRE, DEC, CH, WQ, r, q):
    """Replicas in rows ``r`` and ``q`` trade places (all their state)."""
    for f in range(RI.shape[1]):
        RI[r, f], RI[q, f] = RI[q, f], RI[r, f]
    for f in range(RF.shape[1]):
        RF[r, f], RF[q, f] = RF[q, f], RF[r, f]
    for i in range(PRE.shape[1]):
        PRE[r, i], PRE[q, i] = PRE[q, i], PRE[r, i]
        for c in range(2):
            DEC[r, i, c], DEC[q, i, c] = DEC[q, i, c], DEC[r, i, c]
            CH[r, i, c], CH[q, i, c] = CH[q, i, c], CH[r, i, c]
    for i in range(WQ.shape[1]):
        for c in range(2):
            WQ[r, i, c], WQ[q, i, c] = WQ[q, i, c], WQ[r, i, c]


@njit(cache=True, error_model="numpy")
def _take_queues(RI, WQ, start, stop):
    """Empty the queues of replicas ``start .. stop - 1``: their requests and the tokens
    each had generated before (recompute), replica by replica, in queue order."""
    cap = WQ.shape[1]
    moved = 0
    for r in range(start, stop):
        moved += RI[r, WCOUNT]
    js = np.empty(moved, dtype=np.int64)
    gs = np.empty(moved, dtype=np.int64)
    m = 0
    for r in range(start, stop):
        h = RI[r, WHEAD]
        for i in range(RI[r, WCOUNT]):
            js[m] = WQ[r, (h + i) % cap, 0]
            gs[m] = WQ[r, (h + i) % cap, 1]
            m += 1
        RI[r, OUTST] -= RI[r, WCOUNT]
        RI[r, WCOUNT] = 0
    return js, gs


@njit(cache=True, error_model="numpy")
def _held(QI, RI, PRE, DEC, WQ, r):
    """The requests replica ``r`` holds: running ones by admission order, then waiting ones
    in queue order."""
    nb, npre, nw = RI[r, B], RI[r, NPRE], RI[r, WCOUNT]
    held = np.empty(nb + npre, dtype=np.int64)
    orders = np.empty(nb + npre, dtype=np.int64)
    for i in range(nb):
        held[i] = DEC[r, i, 0]
        orders[i] = QI[held[i], ORDER]
    for i in range(npre):
        held[nb + i] = PRE[r, i]
        orders[nb + i] = QI[held[nb + i], ORDER]
    cap = WQ.shape[1]
    victims = np.empty(nb + npre + nw, dtype=np.int64)
    victims[:nb + npre] = held[np.argsort(orders)]
    for i in range(nw):
        victims[nb + npre + i] = WQ[r, (RI[r, WHEAD] + i) % cap, 0]
    return victims
