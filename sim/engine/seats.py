"""Seats: which replica of a slot pool each request in service sits on.

Kept only when replicas can fail (the scenario has failures), so that a failed replica
loses exactly the requests it held. A request starts on the active replica of its pool
with the fewest requests (the lowest index on a tie; the active replicas are the pool's
first ``serving``). The fewest, ``low``, and how many active replicas hold that few,
``lows``, are kept as requests sit and stand (-1: to be looked up, after a failure or a
capacity change), so a seat costs no scan of the replicas.

Public: ``Seats``.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from sim.world import PoolInfo

__all__ = ["Seats"]


class Seats:
    """``seat[j]``: the replica request ``j`` sits on; ``seated[p][r]``: how many sit on
    replica ``r`` of pool ``p``; ``serving[p]``: the pool's active replicas."""

    def __init__(self, pools: Sequence[PoolInfo], n_requests: int):
        self.seat = array("i", [-1]) * n_requests
        self.seated = [[0] * p.replicas for p in pools]
        self.serving = [p.replicas for p in pools]
        self._low = [-1] * len(pools)
        self._lows = [0] * len(pools)

    def resize(self, p: int, replicas: int) -> None:
        """Pool ``p`` now has ``replicas`` active replicas (its first ones)."""
        self.serving[p] = replicas
        self._low[p] = -1

    def sit(self, j: int, p: int) -> None:
        """Request ``j`` starts on the active replica of pool ``p`` with the fewest requests."""
        counts, low_of, lows_of = self.seated[p], self._low, self._lows
        low = low_of[p]
        if low < 0:  # not known: look
            m = self.serving[p]
            low = min(counts) if m == len(counts) else min(counts[:m])
            lows_of[p] = (counts if m == len(counts) else counts[:m]).count(low)
        self.seat[j] = r = counts.index(low)
        counts[r] = low + 1
        if lows_of[p] == 1:  # it was the last with that few: one more is the fewest
            m = self.serving[p]
            low_of[p] = low + 1
            lows_of[p] = (counts if m == len(counts) else counts[:m]).count(low + 1)
        else:
            low_of[p] = low
            lows_of[p] -= 1

    def stand(self, j: int, p: int) -> None:
        """Request ``j`` leaves its replica of pool ``p``, which may now hold the fewest."""
        r = self.seat[j]
        counts = self.seated[p]
        c = counts[r] = counts[r] - 1
        low = self._low[p]
        if c <= low and r < self.serving[p]:
            if c < low:
                self._low[p], self._lows[p] = c, 1
            else:
                self._lows[p] += 1

    def lost(self, p: int, k: int, before: int, everything: bool, held: Iterable[int]) -> None:
        """Replica ``k`` of pool ``p`` failed (or every replica), its requests already taken
        off; ``held``: the requests still in service at the pool. The pool has already
        shrunk from ``before`` active replicas: the healthy replica that the shrink made
        inactive takes the failed one's place and keeps its requests, and an empty replica
        stands where it was."""
        self._low[p] = -1
        counts = self.seated[p]
        if everything:
            counts[:] = [0] * len(counts)
            return
        counts[k] = 0
        last = before - 1  # the replica the shrink made inactive
        if k < last:
            seat = self.seat
            for j in held:
                if seat[j] == last:
                    seat[j] = k
            counts[k], counts[last] = counts[last], 0
