"""The network at run time: routes that change when links fail, and WAN transfers on them.

:class:`Routes` holds the routing table of the moment. The failure model cuts and restores
links through :meth:`Routes.cut`; each change recomputes the shortest paths without the
cut links (:func:`~sim.world.topology.without_links`) and publishes
:class:`~sim.records.RoutesChanged` with the new path RTTs and the regions that can reach
no serving pool. Serving, training and rollouts react to that record.

:class:`TransferManager` owns a :class:`~sim.models.flows.FlowNetwork` (max-min fair
sharing, by default weighted by 1/RTT as TCP does) and one SimPy process that sleeps until
the network's next event (a flow starting to send after its path latency, or finishing)
or until a new transfer wakes it. ``start`` returns an event that fires when the last byte
arrives. Rates are re-solved by the flow model whenever a flow starts or ends. Transfers
follow the routes of the moment they start.

Public: ``Routes``, ``TransferManager``.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import simpy

from sim.engine.bus import Bus
from sim.models.flows import FlowNetwork, route_links
from sim.records import RoutesChanged
from sim.world import World
from sim.world.topology import Topology, without_links

__all__ = ["Routes", "TransferManager"]


class Routes:
    """The routing table of the moment, with links cut by failures taken out."""

    def __init__(self, env: simpy.Environment, world: World, bus: Bus):
        self.env, self.bus = env, bus
        self.base = self.topology = world.topology
        self._cut: dict[frozenset[str], int] = {}
        names = world.topology.names
        serving = {p.region for p in world.pools if p.serves != "training"}
        self._serving = [names.index(r) for r in serving]

    def cut(self, edges: Iterable[frozenset[str]], cut: bool = True) -> None:
        """Cut (or, with ``cut=False``, restore) links; publish the new routes."""
        for edge in edges:
            self._cut[edge] = self._cut.get(edge, 0) + (1 if cut else -1)
        down = {edge for edge, n in self._cut.items() if n > 0}
        self.topology = without_links(self.base, down) if down else self.base
        self.bus.emit(RoutesChanged(self.env.now, self.topology.rtt_ms, self._unreachable(self.topology)))

    def _unreachable(self, topology: Topology) -> tuple[str, ...]:
        """Regions that reach no region with a pool serving requests."""
        if not self._serving:
            return ()
        reach = np.isfinite(topology.rtt_ms[:, self._serving]).any(axis=1)
        return tuple(name for name, ok in zip(topology.names, reach, strict=True) if not ok)


class TransferManager:
    """Starts transfers along routing paths and fires an event when each completes."""

    def __init__(self, env: simpy.Environment, routes: Routes, weighted: bool):
        self.env = env
        self.routes = routes
        graph = routes.base.graph
        capacity: dict[Hashable, float] = {frozenset((u, v)): data["bandwidth_gbps"] * 1e9
                                           for u, v, data in graph.edges(data=True)}
        self.network = FlowNetwork(capacity, weighted=weighted)
        self._done: dict[Any, simpy.Event] = {}
        self._wake = env.event()
        self._next_id = 0
        env.process(self._run())

    @property
    def topology(self) -> Topology:
        return self.routes.topology

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
