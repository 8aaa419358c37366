"""WAN transfers as SimPy events over the flow-level network model.

:class:`TransferManager` owns a :class:`~sim.models.flows.FlowNetwork` (max-min fair
sharing, by default weighted by 1/RTT as TCP does) and one SimPy process that sleeps until
the network's next event (a flow starting to send after its path latency, or finishing)
or until a new transfer wakes it. ``start`` returns an event that fires when the last byte
arrives. Rates are re-solved by the flow model whenever a flow starts or ends.

Public: ``TransferManager``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import simpy

from sim.models.flows import FlowNetwork, route_links
from sim.world import World

__all__ = ["TransferManager"]


class TransferManager:
    """Starts transfers along routing paths and fires an event when each completes."""

    def __init__(self, env: simpy.Environment, world: World, weighted: bool):
        self.env = env
        self.world = world
        self.topology = world.topology  # replaced while links are down (routes recomputed)
        graph = world.topology.graph
        capacity = {frozenset((u, v)): data["bandwidth_gbps"] * 1e9 for u, v, data in graph.edges(data=True)}
        self.network = FlowNetwork(capacity, weighted=weighted)
        self._done: dict[Any, simpy.Event] = {}
        self._wake = env.event()
        self._next_id = 0
        env.process(self._run())

    def start(self, src: str, dst: str, size_bytes: float) -> tuple[int, simpy.Event, tuple[str, ...]]:
        """Begin moving ``size_bytes`` from ``src`` to ``dst``; return (id, done event, route)."""
        route = self.topology.path(src, dst)
        if route is None:
            raise ValueError(f"no route from {src} to {dst}")
        flow_id = self._next_id
        self._next_id += 1
        done = self.env.event()
        self._done[flow_id] = done
        self.network.advance(self.env.now)
        rtt_s = self.topology.path_rtt_ms(src, dst) / 1000.0 if src != dst else 0.0
        self.network.add(flow_id, route_links(route), size_bytes, rtt_s, self.env.now)
        self._poke()
        return flow_id, done, route

    def _poke(self) -> None:
        if not self._wake.triggered:
            self._wake.succeed()

    def _run(self):
        env = self.env
        while True:
            self._wake = env.event()
            t_next = self.network.next_event_s()
            waits = [self._wake]
            if math.isfinite(t_next):
                waits.append(env.timeout(max(t_next - env.now, 0.0)))
            yield env.any_of(waits)
            for flow_id in self.network.advance(env.now):
                self._done.pop(flow_id).succeed(env.now)

    def busy(self) -> bool:
        return bool(self._done)
