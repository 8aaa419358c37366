"""The batching replica against a plain iteration-by-iteration reference.

The engine jumps over runs of identical decode iterations in closed form and keeps each
sequence's progress as a virtual iteration count. The reference below does neither: it
walks every iteration of every replica, sequence by sequence, with the scheduling rules
written out plainly (docs/serving_model.md). On random workloads both must give the same
first-token and completion time for every request, the same preemptions, and a KV cache
that never exceeds its capacity.
"""
from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from sim.engine.batching import serving_spec
from sim.records import BatchLog, RequestStatus
from sim.scenario import parse_scenario
from sim.streams import Streams
from sim.workload import generate_requests
from sim.workload.batching_model import prefill_attention_pairs
from sim.world import build_world
from tests.traced import traced

SCENARIO = """\
name: reference
seed: {seed}
duration: {duration}
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: {replicas}
        gpus_per_replica: {tp}
        serving: {{model: {model}, max_batch: {max_batch}, max_batched_tokens: {budget},
                   chunked_prefill: {chunked}, gpu_memory_utilization: {util}}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: {prompt}, cv: 1.0}}, output_tokens: {{mean: {out}, cv: 1.0}}}}
"""


class Seq:
    def __init__(self, j, order, prompt, out, generated, prefix=-1, cached=0):
        self.j, self.order, self.prompt, self.out = j, order, prompt, out
        self.generated = generated
        self.prefix, self.cached = prefix, cached  # shared prompt, and its tokens held by the cache
        self.left = prompt + generated - cached  # tokens still to prefill
        self.kv = 0  # tokens of its own in the KV cache
        self.decoding = False


class Replica:
    def __init__(self, index):
        self.index = index
        self.waiting = []  # [(request, generated)]
        self.running = []  # Seq, admission order
        self.cache = OrderedDict()  # shared prompt -> [tokens, users], least recently used first
        self.next_t = math.inf
        self.plan = None

    def outstanding(self):
        return len(self.waiting) + len(self.running)

    def pinned(self):
        return sum(t for t, users in self.cache.values() if users)

    def idle(self):
        return sum(t for t, users in self.cache.values() if not users)

    def used(self):
        return sum(s.kv for s in self.running) + self.pinned()

    def evict(self, limit):
        """Least recently used idle entries go until used + idle <= limit."""
        for prefix in list(self.cache):
            if self.used() + self.idle() <= limit:
                return
            if not self.cache[prefix][1]:
                del self.cache[prefix]

    def release(self, seq):
        if seq.cached:
            self.cache[seq.prefix][1] -= 1


def reference(arrivals, prompts, outs, spec, replicas, events=None, prefixes=None, prefix_tokens=None):
    """Per request: (first token time, finish time, cached tokens), and the preemption count
    (``events`` collects ``(time, request)`` of each preemption)."""
    n_requests = len(arrivals)
    prefixes = prefixes or [-1] * n_requests
    prefix_tokens = prefix_tokens or [0] * n_requests
    first = dict.fromkeys(range(n_requests), math.nan)
    finish = dict(first)
    cached_at = dict.fromkeys(range(n_requests), 0)
    reps = [Replica(k) for k in range(replicas)]
    order = 0
    preempted = 0
    it = spec.iteration
    cap = spec.kv_capacity

    def plan(r, t):
        nonlocal order, preempted
        decoding = [s for s in r.running if s.decoding]
        while decoding and r.used() + len(decoding) > cap:
            victim = max(r.running, key=lambda s: s.order)
            if events is not None:
                events.append((t, victim.j))
            r.running.remove(victim)
            r.release(victim)
            r.waiting.insert(0, (victim.j, victim.generated))
            preempted += 1
            decoding = [s for s in r.running if s.decoding]
        budget = spec.max_batched_tokens - (len(decoding) if spec.chunked_prefill else 0)
        free = cap - r.used() - len(decoding)
        chunks = []
        if spec.chunked_prefill:
            for s in [s for s in r.running if not s.decoding]:
                n = min(s.left, budget, free)
                if n <= 0:
                    break
                chunks.append((s, n))
                budget -= n
                free -= n
        while r.waiting and len(r.running) < spec.max_batch and budget > 0:
            j, g = r.waiting[0]
            prefix = prefixes[j] if spec.prefix_caching else -1
            entry = r.cache.get(prefix) if prefix >= 0 else None
            cached = entry[0] if entry else 0
            pin = cached if entry and entry[1] == 0 else 0
            need = prompts[j] + g - cached
            n = min(need, budget) if spec.chunked_prefill else need
            if n + pin > free or (not spec.chunked_prefill and chunks and n > budget):
                break
            r.waiting.pop(0)
            if g == 0:
                cached_at[j] = cached
            order += 1
            s = Seq(j, order, prompts[j], outs[j], g, prefix, cached)
            if entry:
                entry[1] += 1
                r.cache.move_to_end(prefix)
            r.running.append(s)
            chunks.append((s, n))
            budget -= n
            free -= n + pin
        decodes = decoding if (spec.chunked_prefill or not chunks) else []
        if chunks:
            r.evict(cap - len(decoding) - sum(n for _, n in chunks))
        elif decodes:
            r.evict(cap - len(decodes))
        if not chunks and not decodes:
            r.next_t, r.plan = math.inf, None
            return
        tokens = sum(n for _, n in chunks)
        pairs = sum(prefill_attention_pairs(n, s.prompt + s.generated - s.left) for s, n in chunks)
        context = sum(s.prompt + s.generated for s in decodes)
        ms = it.iteration_ms(tokens, pairs, len(decodes), context) if chunks else \
            it.iteration_ms(0, 0, len(decodes), context)
        r.next_t, r.plan = t + ms / 1000.0, (chunks, decodes)

    def complete(r, t):
        chunks, decodes = r.plan
        for s in decodes:
            s.generated += 1
            s.kv += 1
        for s, n in chunks:
            s.left -= n
            s.kv += n
            if s.left == 0:
                if s.prefix >= 0 and not s.cached:  # its shared prompt goes to the prefix cache
                    tokens = prefix_tokens[s.j]
                    entry = r.cache.get(s.prefix)
                    if entry is None:
                        r.cache[s.prefix] = [tokens, 1]
                    else:
                        entry[1] += 1
                        r.cache.move_to_end(s.prefix)
                    s.cached = tokens
                    s.kv -= tokens
                    if spec.prefix_cache_tokens is not None and r.pinned() + r.idle() > spec.prefix_cache_tokens:
                        r.evict(r.used() + spec.prefix_cache_tokens - r.pinned())
                s.generated += 1
                s.kv += 1
                s.decoding = True
                if math.isnan(first[s.j]):
                    first[s.j] = t
        for s in list(r.running):
            if s.decoding and s.generated >= s.out:
                r.running.remove(s)
                r.release(s)
                finish[s.j] = t

    queue = [(t, 1, j) for j, t in enumerate(arrivals)]
    heapq.heapify(queue)
    while queue or any(r.next_t < math.inf for r in reps):
        t_arrival = queue[0][0] if queue else math.inf
        r = min(reps, key=lambda r: (r.next_t, r.index))
        if r.next_t < t_arrival:  # arrivals at the same instant come first
            t = r.next_t
            if r.plan is not None:
                complete(r, t)
            plan(r, t)
            continue
        t, _, j = heapq.heappop(queue)
        counts = [q.outstanding() for q in reps]
        r = reps[counts.index(min(counts))]
        if spec.affinity and prefixes[j] >= 0:
            holders = [q for q in reps if prefixes[j] in q.cache]
            if holders:
                best = min(holders, key=lambda q: (q.outstanding(), q.index))
                if best.outstanding() <= min(counts) + (spec.max_batch // 4 or 1):
                    r = best
        r.waiting.append((j, 0))
        if r.next_t == math.inf:
            r.next_t, r.plan = t, None  # an idle replica starts once this instant's arrivals are in
    return first, finish, preempted, cached_at


CASES = [
    # (model, tp, replicas, max_batch, budget, chunked, util, rate, prompt, out, duration)
    ("Llama-2-70B", 8, 2, 256, 8192, "true", 0.9, 6.0, 900, 200, "4m"),
    ("Llama-2-70B", 8, 1, 8, 2048, "false", 0.9, 2.0, 600, 120, "4m"),
    ("Llama-3.1-8B", 1, 3, 64, 512, "true", 0.9, 20.0, 700, 150, "4m"),
    ("Llama-2-70B", 2, 1, 256, 4096, "true", 0.86, 0.4, 2000, 500, "8m"),  # memory-bound: preemptions
    ("Llama-2-70B", 2, 1, 256, 4096, "false", 0.86, 0.4, 2000, 500, "8m"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-tp{c[1]}-x{c[2]}-b{c[3]}-{c[5]}")
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("core", ["python", "compiled"])  # both implementations of the replicas
def test_fast_model_equals_the_iteration_by_iteration_reference(case, seed, core, monkeypatch):
    if core == "compiled":
        pytest.importorskip("numba")
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", core)
    model, tp, replicas, max_batch, budget, chunked, util, rate, prompt, out, duration = case
    scenario = parse_scenario(SCENARIO.format(seed=seed, duration=duration, replicas=replicas, tp=tp, model=model,
                                              max_batch=max_batch, budget=budget, chunked=chunked, util=util,
                                              rate=rate, prompt=prompt, out=out)).scenario
    run = traced(scenario)
    log = run.log
    (batch,) = run.of(BatchLog)
    world = build_world(scenario)
    spec = serving_spec(world.pools[0])
    order = np.argsort(log.pool_arrival_s, kind="stable")
    arrivals = log.pool_arrival_s[order]
    requests = generate_requests(scenario, world, Streams(scenario.seed), Path("."))
    prompts = [int(x) for x in requests.input_tokens[order]]
    outs = [int(x) for x in requests.output_tokens[order]]
    events: list = []
    first, finish, _, _ = reference(list(arrivals), prompts, outs, spec, replicas, events)
    preempted = sum(1 for t, _ in events if t < scenario.duration)  # the reference runs on until all is done
    done = log.status[order] == RequestStatus.COMPLETED
    assert done.sum() > 50
    got_first = (log.pool_arrival_s + log.first_token_s)[order]
    got_finish = (log.pool_arrival_s + log.wait_s + log.service_s)[order]
    want_first = np.array([first[k] for k in range(len(order))])
    want_finish = np.array([finish[k] for k in range(len(order))])
    np.testing.assert_allclose(got_first[done], want_first[done], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_finish[done], want_finish[done], rtol=0, atol=1e-6)
    # Requests the engine had not finished by the end are unfinished in the reference too
    # (or finish after the end).
    assert np.all(~(want_finish[~done] <= scenario.duration - 1e-6))
    assert int(batch.preemptions.sum()) == preempted
    assert int(batch.kv_tokens.max()) <= int(batch.kv_capacity[0])
    if model == "Llama-2-70B" and tp == 2:
        assert preempted > 0  # the memory-bound case does exercise preemption


PREFIX = """\
name: reference-prefix
seed: {seed}
duration: {duration}
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: {replicas}
        gpus_per_replica: {tp}
        serving: {{model: Llama-2-70B, chunked_prefill: {chunked}, gpu_memory_utilization: {util},
                   max_batched_tokens: 4096, dispatch: {dispatch}{cap}}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: 300, cv: 1.0}}, output_tokens: {{mean: {out}, cv: 1.0}}}}
    shared_prefix: {{prompts: {prompts}, tokens: {{mean: 1500, cv: 0.5}}, popularity: 1.0, share: 0.8}}
"""

PREFIX_CASES = [
    # (tp, replicas, chunked, util, dispatch, cap, rate, out, prompts, duration)
    (8, 2, "true", 0.9, "least_outstanding", ", prefix_cache_tokens: 20000", 5.0, 150, 60, "4m"),  # LRU under a cap
    (8, 3, "true", 0.9, "cache_affinity", "", 6.0, 150, 40, "4m"),
    (2, 1, "false", 0.86, "least_outstanding", "", 0.8, 300, 30, "6m"),  # the cache competes for memory
    (2, 1, "true", 0.86, "cache_affinity", ", prefix_cache_tokens: 6000", 0.8, 300, 30, "6m"),
]


@pytest.mark.parametrize("case", PREFIX_CASES, ids=lambda c: f"tp{c[0]}-x{c[1]}-{c[2]}-{c[4]}{'-cap' if c[5] else ''}")
def test_prefix_caching_equals_the_reference(case):
    tp, replicas, chunked, util, dispatch, cap, rate, out, prompts, duration = case
    scenario = parse_scenario(PREFIX.format(seed=2, duration=duration, replicas=replicas, tp=tp, chunked=chunked,
                                            util=util, dispatch=dispatch, cap=cap, rate=rate, out=out,
                                            prompts=prompts)).scenario
    run = traced(scenario)
    log = run.log
    world = build_world(scenario)
    spec = serving_spec(world.pools[0])
    requests = generate_requests(scenario, world, Streams(scenario.seed), Path("."))
    order = np.argsort(log.pool_arrival_s, kind="stable")
    events: list = []
    first, finish, _, cached = reference(
        list(log.pool_arrival_s[order]), [int(x) for x in requests.input_tokens[order]],
        [int(x) for x in requests.output_tokens[order]], spec, replicas, events,
        [int(x) for x in requests.prefix[order]], [int(x) for x in requests.prefix_tokens[order]])
    done = log.status[order] == RequestStatus.COMPLETED
    hits = log.cached_tokens[order] > 0
    assert done.sum() > 50 and hits.sum() > 20 and (~hits & (requests.prefix[order] >= 0)).sum() > 5
    admitted = ~np.isnan(log.wait_s[order])  # the reference runs on past the end
    np.testing.assert_array_equal(log.cached_tokens[order][admitted],
                                  np.array([cached[k] for k in range(len(order))])[admitted])
    got_first = (log.pool_arrival_s + log.first_token_s)[order]
    got_finish = (log.pool_arrival_s + log.wait_s + log.service_s)[order]
    np.testing.assert_allclose(got_first[done], np.array([first[k] for k in range(len(order))])[done], atol=1e-6)
    np.testing.assert_allclose(got_finish[done], np.array([finish[k] for k in range(len(order))])[done], atol=1e-6)
    (batch,) = run.of(BatchLog)
    assert int(batch.preemptions.sum()) == sum(1 for t, _ in events if t < scenario.duration)
    assert int(batch.kv_tokens.max()) <= int(batch.kv_capacity[0])
