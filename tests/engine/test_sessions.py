"""Conversations: later turns are sent when the previous answer reaches the user plus a
think time, carry the conversation so far as their prefix, and hit the replica that kept it.

The references are the scenario's own numbers, recomputed here: the drawn turns, tokens
and think times (regenerated from the same streams), the answer's time at the pool (arrival
+ half the RTT + wait + service) and half the RTT back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.records import RequestStatus
from sim.scenario import parse_scenario
from sim.streams import Streams
from sim.workload.requests import generate_requests
from sim.world import build_world
from tests.traced import traced

SCENARIO = """\
name: chat
seed: {seed}
duration: {duration}
regions:
  - name: eastus
    pools: [{{name: h100, gpu: H100, replicas: {replicas}, gpus_per_replica: 8, {pool}}}]
  - name: westeurope
inference:
  - name: chat
    origin: {{eastus: 0.5, westeurope: 0.5}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: 200, cv: 0.5}}, output_tokens: {{mean: 60, cv: 0.5}}}}
    sessions: {{turns: {turns}, think: {think}}}
{extra}
"""


def scenario(seed=3, duration="30m", replicas=2, pool="serving: {model: Llama-2-70B}", rate=0.5, turns=4,
             think="20s", extra=""):
    text = SCENARIO.format(seed=seed, duration=duration, replicas=replicas, pool=pool, rate=rate, turns=turns,
                           think=think, extra=extra)
    return parse_scenario(text, "chat.yaml").scenario


def requests(sc):
    return generate_requests(sc, build_world(sc), Streams(sc.seed), Path("."))


def test_later_turns_carry_the_conversation():
    sc = scenario()
    r = requests(sc)
    n = r.first_turns
    assert np.isinf(r.t_s[n:]).all() and np.isfinite(r.t_s[:n]).all()
    later = np.flatnonzero(r.next_turn >= 0)
    nxt = r.next_turn[later]
    # Turn k+1's prefix is turn k's prompt and answer; its prompt adds a new message.
    assert (r.prefix_tokens[nxt] == r.input_tokens[later] + r.output_tokens[later]).all()
    assert (r.input_tokens[nxt] > r.prefix_tokens[nxt]).all()
    assert len(set(r.prefix[nxt].tolist())) == len(nxt)  # every context is its own prefix
    assert (r.prefix[:n] == -1).all()  # no shared prompt here
    assert sorted(nxt.tolist()) == list(range(n, len(r)))  # each later turn follows exactly one
    # Turns per session: geometric with mean 4 (capped at 64): 4 x sessions rows on average.
    assert len(r) / n == pytest.approx(4.0, rel=0.1)


def test_a_turn_is_sent_when_the_answer_is_back_plus_think_time():
    sc = scenario()
    r = requests(sc)
    log = traced(sc).log
    assert (log.status == RequestStatus.COMPLETED).sum() > 0.9 * len(log.t_s)
    # Rebuild each session from the log and check every later turn's arrival.
    think = {}  # (session, turn) -> think time drawn for it
    session_of = np.full(len(r), -1)
    session_of[:r.first_turns] = np.arange(r.first_turns)
    turn = np.ones(len(r), int)
    for j in range(len(r)):  # first turns come before their later turns, which come in level order
        k = r.next_turn[j]
        if k >= 0:
            session_of[k], turn[k] = session_of[j], turn[j] + 1
            think[session_of[k], turn[k]] = r.think_s[k]
    answered = {}
    for i in range(len(log.t_s)):
        done = log.t_s[i] + log.rtt_ms[i] / 2000 + log.wait_s[i] + log.service_s[i]
        answered[int(log.session[i]), int(log.turn[i])] = (done + log.rtt_ms[i] / 2000, log.status[i])
    checked = 0
    for i in np.flatnonzero(log.turn > 1):
        back, status = answered[int(log.session[i]), int(log.turn[i]) - 1]
        assert status == RequestStatus.COMPLETED
        assert log.t_s[i] == pytest.approx(back + think[int(log.session[i]), int(log.turn[i])], abs=1e-9)
        checked += 1
    assert checked > 500
    # A completed turn whose next turn was due before the end sent it; the log is in time order.
    assert (np.diff(log.t_s) >= 0).all()
    sent = {(int(s), int(t)) for s, t in zip(log.session, log.turn, strict=True)}
    for (s, t), (back, status) in answered.items():
        nxt = (s, t + 1)
        if status == RequestStatus.COMPLETED and nxt in think and back + think[nxt] < sc.duration:
            assert nxt in sent


def test_later_turns_hit_the_replica_that_kept_the_conversation():
    # One replica with room for every conversation: every later turn finds its context.
    sc = scenario(replicas=1, rate=0.2, duration="20m")
    log = traced(sc).log
    later = (log.turn > 1) & (log.status == RequestStatus.COMPLETED)
    assert later.sum() > 100
    r = requests(sc)
    expected = {int(p): int(t) for p, t in zip(r.prefix, r.prefix_tokens, strict=True) if p >= 0}
    assert all(log.cached_tokens[i] == expected[int(log.prefix[i])] for i in np.flatnonzero(later))
    assert (log.cached_tokens[log.turn == 1] == 0).all()


def test_without_prefix_caching_nothing_is_kept():
    sc = scenario(replicas=1, rate=0.2, duration="20m", pool="serving: {model: Llama-2-70B, prefix_caching: false}")
    log = traced(sc).log
    assert (log.turn > 1).sum() > 100 and (log.cached_tokens == 0).all()


def test_an_unanswered_turn_ends_its_session():
    # A slot pool far too small with a short timeout: many turns time out, and no session
    # goes on after one that did.
    sc = scenario(pool="slots_per_replica: 1", replicas=1, rate=0.3, duration="20m",
                  extra="    timeout_ms: 20000")
    log = traced(sc).log
    assert (log.status == RequestStatus.TIMED_OUT).sum() > 20
    by_session: dict[int, list[tuple[int, int]]] = {}
    for s, t, status in zip(log.session, log.turn, log.status, strict=True):
        by_session.setdefault(int(s), []).append((int(t), int(status)))
    for turns in by_session.values():
        turns.sort()
        assert [t for t, _ in turns] == list(range(1, len(turns) + 1))  # no gaps
        assert all(status == RequestStatus.COMPLETED for _, status in turns[:-1])


def test_slot_pools_serve_sessions_too():
    sc = scenario(pool="slots_per_replica: 4")
    log = traced(sc).log
    assert (log.turn > 1).sum() > 500 and (log.cached_tokens == 0).all()


def test_same_seed_same_sessions():
    a, b = traced(scenario()).log, traced(scenario()).log
    assert np.array_equal(a.t_s, b.t_s) and np.array_equal(a.session, b.session)
