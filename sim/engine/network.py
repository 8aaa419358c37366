"""The network at run time: routes that change when links fail, and WAN transfers on them.

:class:`Routes` holds the routing table of the moment. The failure model cuts and restores
links through :meth:`Routes.cut`; each change recomputes the shortest paths without the
cut links (:func:`~sim.world.topology.without_links`) and publishes
:class:`~sim.records.RoutesChanged` with the new path RTTs and the regions that can reach
no serving pool. Serving, training and rollouts react to that record.

:class:`TransferManager` owns a :class:`~sim.models.flows.FlowNetwork` (max-min fair
sharing, by default weighted by 1/RTT as TCP does, or SimGrid's LV08) and one SimPy process
that sleeps until the network's next event (a flow starting to send after its path latency,
or finishing) or until a new transfer wakes it. ``start`` returns an event that fires when
the last byte arrives. Rates are re-solved by the flow model whenever a flow starts or
ends. Transfers follow the routes of the moment they start; a cut link on its path stops a
transfer, which goes on along a new path (on :class:`~sim.records.RoutesChanged`).

:class:`TransferBook` prices a copy (egress) and publishes what landed: a
:class:`~sim.records.TransferRecord`, and a :class:`~sim.records.BorderCrossing` per
jurisdiction border on its route.

Public: ``Routes``, ``TransferManager``, ``Landed``, ``TransferBook``.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, cast

import numpy as np
import simpy

from sim.engine.bus import Bus
from sim.models.flows import RAW, FlowModel, FlowNetwork, reverse_links, route_links
from sim.records import BorderCrossing, RoutesChanged, TransferRecord, TransfersUnfinished
from sim.scenario.model import Scenario
from sim.world import World
from sim.world.egress import egress_usd_per_gb
from sim.world.topology import Topology, without_links

__all__ = ["Routes", "TransferManager", "Landed", "TransferBook"]


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


@dataclass(frozen=True)
class Landed:
    """What a transfer's done event carries: the regions its last byte went through, how
    many times a cut link interrupted it, and its two ends (a region or ``region/host``)."""

    route: tuple[str, ...]
    interruptions: int
    src: str = ""
    dst: str = ""


@dataclass
class _Transfer:
    src: str  # a region, or region/host
    dst: str
    size_bytes: float
    priority: int
    route: tuple[str, ...] = ()  # regions
    interruptions: int = 0

    @property
    def regions(self) -> tuple[str, str]:
        return self.src.partition("/")[0], self.dst.partition("/")[0]


class TransferManager:
    """Starts transfers along routing paths and fires an event when each completes.

    Links carry each direction at their bandwidth unless they are half duplex; the flow
    model is the scenario's ``network.model`` (``raw`` or ``lv08``). When links are cut, the
    transfers whose path crossed one stop and go on along a new path as soon as one exists,
    from where they were (``network.on_cut: resume``) or from their first byte
    (``restart``), paying the new path's latency.

    A transfer's ends are regions or named hosts (``region/host``, with their NIC bandwidth
    in ``nics``, bit/s): a host's NIC is a link of its own (each direction) between it and
    its region, half the region's intra-region RTT away."""

    def __init__(self, env: simpy.Environment, routes: Routes, weighted: bool, model: FlowModel = RAW,
                 on_cut: str = "resume", nics: Mapping[str, float] | None = None):
        self.env = env
        self.routes = routes
        self.on_cut = on_cut
        self.nics = dict(nics or {})
        graph = routes.base.graph
        self.shared = {frozenset((u, v)) for u, v, data in graph.edges(data=True) if data.get("duplex") == "half"}
        capacity: dict[Hashable, float] = {}
        for u, v, data in graph.edges(data=True):
            bps = data["bandwidth_gbps"] * 1e9
            for key in ([frozenset((u, v))] if frozenset((u, v)) in self.shared else [(u, v), (v, u)]):
                capacity[key] = bps
        for host, bps in self.nics.items():
            capacity[(host, "out")] = capacity[(host, "in")] = bps
        self.network = FlowNetwork(capacity, weighted=weighted, model=model)
        self._done: dict[Any, simpy.Event] = {}
        self._transfers: dict[int, _Transfer] = {}
        self._parked: dict[int, float] = {}  # cut off: bytes still to send once a path exists
        self._wake = env.event()
        self._next_id = 0
        env.process(self._run())
        routes.bus.subscribe(self.rerouted, (RoutesChanged,))

    @property
    def topology(self) -> Topology:
        return self.routes.topology

    def start(self, src: str, dst: str, size_bytes: float, priority: int = 0) -> tuple[int, simpy.Event,
                                                                                      tuple[str, ...]]:
        """Begin moving ``size_bytes`` from ``src`` to ``dst`` (regions or ``region/host``);
        return (id, done event, route of regions). The done event's value is a :class:`Landed`."""
        transfer = _Transfer(src, dst, float(size_bytes), priority)
        route = self.topology.path(*transfer.regions)
        if route is None:
            raise ValueError(f"no route from {src} to {dst}")
        flow_id = self._next_id
        self._next_id += 1
        done = self.env.event()
        self._done[flow_id] = done
        self._transfers[flow_id] = transfer
        for landed in self.network.advance(self.env.now):  # what lands now, lands
            self._landed(cast(int, landed))
        self._send(flow_id, route, size_bytes)
        self._poke()
        return flow_id, done, route

    def _send(self, flow_id: int, route: tuple[str, ...], size_bytes: float) -> None:
        transfer = self._transfers[flow_id]
        transfer.route = route
        src, dst = transfer.regions
        rtt_s = self.topology.path_rtt_ms(src, dst) / 1000.0 if src != dst else 0.0
        links, back = route_links(route, self.shared), reverse_links(route, self.shared)
        for end, region, first, last in ((transfer.src, src, "out", "in"), (transfer.dst, dst, "in", "out")):
            if end in self.nics:  # through the host's NIC, half the region's RTT away
                links = [(end, first), *links] if first == "out" else [*links, (end, first)]
                back = [*back, (end, last)] if last == "in" else [(end, last), *back]
                rtt_s += self.topology.path_rtt_ms(region, region) / 2000.0
        self.network.add(flow_id, links, size_bytes, rtt_s, self.env.now, back_links=back,
                         priority=transfer.priority)

    def rerouted(self, record: RoutesChanged) -> None:
        """Links failed or came back: transfers on a cut link stop and wait for a path."""
        for landed in self.network.advance(self.env.now):  # what lands now, lands
            self._landed(cast(int, landed))
        graph = self.topology.graph
        for active in self.network.active():
            flow_id = cast(int, active)
            transfer = self._transfers[flow_id]
            if not all(graph.has_edge(u, v) for u, v in pairwise(transfer.route)):
                left = self.network.remove(flow_id)
                transfer.interruptions += 1
                self._parked[flow_id] = transfer.size_bytes if self.on_cut == "restart" else left
        for flow_id, left in list(self._parked.items()):
            transfer = self._transfers[flow_id]
            route = self.topology.path(*transfer.regions)
            if route is not None:
                del self._parked[flow_id]
                self._send(flow_id, route, left)
        self._poke()

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
                self._landed(cast(int, flow_id))

    def _landed(self, flow_id: int) -> None:
        """The transfer's last byte arrived: fire its done event."""
        transfer = self._transfers.pop(flow_id)
        self._done.pop(flow_id).succeed(Landed(transfer.route, transfer.interruptions, transfer.src, transfer.dst))

    def busy(self) -> bool:
        return bool(self._done)

    def close(self, end_s: float) -> None:
        """The run ends: publish the copies still on their way (none lands after this)."""
        unfinished = self._transfers.values()
        self.routes.bus.emit(TransfersUnfinished(end_s, len(unfinished), float(sum(t.size_bytes for t in unfinished))))


class TransferBook:
    """What a copy costs and the records of one that landed."""

    def __init__(self, scenario: Scenario, world: World, bus: Bus):
        self.flat = scenario.network.egress_usd_per_gb
        self.bus = bus
        self.jurisdiction = {r.name: r.jurisdiction for r in world.regions}

    def egress(self, src: str, dst: str) -> float:
        """USD per GB from ``src`` to ``dst`` (the scenario's flat price, else the tables)."""
        if self.flat is not None:
            return self.flat
        return egress_usd_per_gb(src, dst, self.jurisdiction[src], self.jurisdiction[dst])

    def landed(self, flow_id: int, what: str, job_id: int, size: float, started: float, cost: float,
               landed: Landed, now: float, priority: int = 0) -> None:
        """A copy landed: one transfers.csv row, and an audit row per border it crossed."""
        route = landed.route
        self.bus.emit(TransferRecord(flow_id, what, job_id, landed.src or route[0], landed.dst or route[-1],
                                     "-".join(route), size, started, now, cost, priority, landed.interruptions,
                                     tuple(route)))
        for u, v in pairwise(route):
            if self.jurisdiction[u] != self.jurisdiction[v]:
                self.bus.emit(BorderCrossing(now, what, u, v, size, self.jurisdiction[u], self.jurisdiction[v]))
