"""Conversations on the request fast path: later turns sent as the answers come back.

A workload with ``sessions`` draws each conversation's turns up front (``RequestBatch``:
the first turns in arrival order, then the later turns, chained by ``next_turn``), but a
later turn's arrival time is known only when the previous answer has reached the user:
answered at its pool at ``t``, the next turn leaves the user at ``t + RTT / 2 + think``,
unless that is after the run's end (then it is never sent). Sent turns wait in a heap by
arrival time, which the request loop merges with the first turns.

Public: ``Turns``.
"""
from __future__ import annotations

from collections.abc import Sequence
from heapq import heappush

import numpy as np

from sim.workload import RequestBatch

__all__ = ["Turns"]


class Turns:
    """The later turns of conversations: ``heap`` of (arrival at the origin, request) for
    turns sent and not yet arrived; ``first``: how many requests are first turns."""

    def __init__(self, requests: RequestBatch, rtt_of: Sequence[float], duration_s: float):
        self.first = requests.first_turns
        self.heap: list[tuple[float, int]] = []
        self.sent = 0  # later turns pushed on the heap so far
        self.next_turn = requests.next_turn.tolist() if requests.has_sessions else []
        self._think = requests.think_s.tolist() if requests.has_sessions else []
        self._t_s = requests.t_s  # a sent turn's arrival is written here
        self._rtt_of, self._duration_s = rtt_of, duration_s

    def follow(self, j: int, t: float) -> None:
        """Turn ``j`` of a session was answered at its pool at ``t``: its next turn is sent
        when the answer has reached the user (half the round trip) and a think time has
        passed, unless that is after the run's end (it is then never sent)."""
        k = self.next_turn[j]
        if k < 0:
            return
        t_k = t + self._rtt_of[j] / 2000.0 + self._think[k]
        if t_k < self._duration_s:
            self._t_s[k] = t_k
            heappush(self.heap, (t_k, k))
            self.sent += 1

    def arrived(self) -> int:
        """Later turns that have reached their origin so far (the loop takes each off the
        heap when it arrives; between two fast-path events, as SimPy sees it)."""
        return self.sent - len(self.heap)

    def numbering(self, requests: RequestBatch, with_sessions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each request's session (numbered by first turns in arrival order; -1: none, a
        workload not in ``with_sessions``) and turn (1, 2, ...; 0: none)."""
        r = requests
        n = len(r)
        session, turn = np.full(n, -1, np.int32), np.zeros(n, np.int16)
        first = np.arange(self.first)
        chained = first[r.next_turn[first] >= 0]
        sessions_of = np.isin(r.workload[first], list(with_sessions))
        session[first[sessions_of]] = first[sessions_of]
        turn[first[sessions_of]] = 1
        level, rows = 2, chained
        while len(rows):
            nxt = r.next_turn[rows]
            session[nxt], turn[nxt] = session[rows], level
            rows = nxt[r.next_turn[nxt] >= 0]
            level += 1
        return session, turn
