"""Prefill/decode disaggregation: KV caches leave prefill pools for decode pools.

A pool with ``serving.role: prefill`` computes a request's prompt and first token; then
its KV cache (prompt + 1 tokens x the model's KV bytes per token) goes to a decode pool
of the same model: the nearest one with an active replica reachable from the prefill
pool's region (under a hard KV residency rule, in the origin's jurisdiction; ties: the
least busy). Inside a region the cache lands at once; across regions it is a transfer on
the network model (:class:`~sim.engine.network.TransferManager`, sharing links with every
other flow), on the books of :class:`~sim.engine.network.TransferBook` (egress cost,
border crossings) and, under a soft residency rule, a
:class:`~sim.records.ResidencyViolation` when it leaves the jurisdiction. When it lands
the request joins the decode pool's replicas (:meth:`BatchingServers.arrive` with
``landed``); its later tokens travel back to the user from the decode pool's region. A
request with nowhere to decode, or whose path was cut meanwhile, fails.

The request loop runs ahead of SimPy's clock, so a transfer starts at a SimPy event at
the hand-off time.

Public: ``KvHandoff``.
"""
from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

import numpy as np

from sim.engine.batching import BatchingServers
from sim.engine.bus import Bus
from sim.records import RequestStatus, ResidencyViolation
from sim.scenario.model import InferenceWorkload
from sim.world import PoolInfo
from sim.world.llm_catalogue import llm_spec

__all__ = ["KvHandoff"]

_INF = math.inf
_FAILED = int(RequestStatus.FAILED)


class KvHandoff:
    """The hand-off of KV caches from prefill to decode pools, and its per-request columns:
    ``decode_pool`` (-1: none), ``kv_transfer`` (s; NaN: none) and ``decode_rtt`` (the path
    RTT between the origin and the decode pool when the cache left, ms; NaN: none)."""

    def __init__(self, pools: Sequence[PoolInfo], workloads: Sequence[InferenceWorkload], pool_region: np.ndarray,
                 rtt_ms: np.ndarray, names: Sequence[str], bus: Bus, *, origin, workload, in_tokens, pool_of,
                 rtt_of, status):
        self.pools, self._pool_region, self.rtt_ms = pools, pool_region, rtt_ms  # rtt_ms: updated in place
        self._names, self.bus = list(names), bus
        # Per request, the engine's own columns (shared, not copied): origin, workload, prompt
        # tokens, pool, path RTT to it and status.
        self._origins, self._workloads, self._in_tokens = origin, workload, in_tokens
        self._pool_of, self.rtt_of, self.status = pool_of, rtt_of, status
        n = len(origin)
        self.decode_pool = array("h", [-1]) * n
        self.kv_transfer = array("d", [math.nan]) * n
        self.decode_rtt = array("d", [math.nan]) * n
        self._kv_bytes = [llm_spec(p.serving.model).kv_bytes_per_token if p.serving is not None else 0
                          for p in pools]
        self._decoders = [p for p, info in enumerate(pools)
                          if info.serving is not None and info.serving.role == "decode" and info.serves != "training"]
        self._kv_rule = [wl.kv_residency for wl in workloads]  # per workload
        self._kv_label = [f"kv:{wl.name}" for wl in workloads]  # transfers.csv's dataset column
        self.servers: BatchingServers | None = None  # set by the engine once it has built them

    @staticmethod
    def needed(pools: Sequence[PoolInfo]) -> bool:
        """Whether any pool serving requests is a prefill pool."""
        return any(p.serving is not None and p.serving.role == "prefill" and p.serves != "training" for p in pools)

    def release(self) -> None:
        """Drop the request inputs it reads (the run is over; its own columns stay)."""
        self._origins = self._workloads = self._in_tokens = memoryview(b"")

    def connect(self, env, transfers, book, jurisdictions: Sequence[str]) -> None:
        """The network for KV caches: SimPy's clock, the transfer manager (links shared with
        every other flow) and the book that records what landed."""
        self._env, self._transfers, self._book = env, transfers, book
        self._jurisdiction = list(jurisdictions)

    def _decoder(self, j: int, p: int) -> int | None:
        """The decode pool for request ``j`` prefilled at pool ``p``: of those loading the same
        model with an active replica, reachable from ``p``'s region (and, under a hard KV
        residency rule, in the origin's jurisdiction), the nearest; ties: the least busy."""
        region = int(self._pool_region[p])
        model = self.pools[p].serving.model  # type: ignore[union-attr]
        rule = self._kv_rule[self._workloads[j]]
        home = self._jurisdiction[self._origins[j]]
        servers = self.servers
        assert servers is not None
        best, best_key = None, None
        for d in self._decoders:
            rtt = self.rtt_ms[region, d]
            if (self.pools[d].serving.model != model or not servers.active[d]  # type: ignore[union-attr]
                    or rtt == _INF):
                continue
            if rule == "hard" and self._jurisdiction[int(self._pool_region[d])] != home:
                continue
            key = (rtt, servers.waiting[d] + servers.running[d], d)
            if best_key is None or key < best_key:
                best, best_key = d, key
        return best

    def handoff(self, j: int, t: float) -> None:
        """Request ``j``'s prompt and first token are done at its prefill pool at ``t``: its
        KV cache (prompt + 1 tokens) leaves for a decode pool, over the network."""
        p = self._pool_of[j]
        d = self._decoder(j, p)
        if d is None:  # nowhere to decode: the request fails
            self.status[j] = _FAILED
            return
        servers = self.servers
        assert servers is not None
        self.decode_pool[j] = d
        src, dst = int(self._pool_region[p]), int(self._pool_region[d])
        # The answer's later tokens reach the user from the decode pool's region.
        self.decode_rtt[j] = back = self.rtt_ms[self._origins[j], d]
        shift = (back - self.rtt_of[j]) / 2000.0
        if shift:
            servers.shift[j] = shift
        if src == dst:  # inside a region: no WAN transfer
            self.kv_transfer[j] = 0.0
            servers.arrive(j, d, t, landed=True)
            return
        size = float(self._kv_bytes[p] * (self._in_tokens[j] + 1))
        env = self._env
        # The fast loop runs ahead of SimPy's clock: the transfer starts at a SimPy event at t.
        env.timeout(max(t - env.now, 0.0)).callbacks.append(lambda _: self._send(j, d, src, dst, size))

    def _send(self, j: int, d: int, src: int, dst: int, size: float) -> None:
        env, names = self._env, self._names
        started = env.now
        if self._transfers.topology.path(names[src], names[dst]) is None:
            self.status[j] = _FAILED  # a cut since the choice: no path now
            return
        workload = self._workloads[j]
        if self._kv_rule[workload] == "soft" and self._jurisdiction[dst] != self._jurisdiction[self._origins[j]]:
            self.bus.emit(ResidencyViolation(started, self._kv_label[workload], names[dst]))
        flow_id, done, _ = self._transfers.start(names[src], names[dst], size)
        cost = size / 1e9 * self._book.egress(names[src], names[dst])

        def landed(event) -> None:
            now = env.now
            self._book.landed(flow_id, self._kv_label[workload], -1, size, started, cost, event.value, now)
            self.kv_transfer[j] = now - started
            self.servers.arrive(j, d, now, landed=True)  # type: ignore[union-attr]
        done.callbacks.append(landed)
