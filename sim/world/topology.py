"""The inter-region network: a networkx graph and the routing table derived from it.

Nodes are region names; each undirected edge carries ``rtt_ms``, ``bandwidth_gbps`` (of each
direction; one shared capacity when ``duplex`` is ``half``), ``duplex`` and ``rtt_source``
(``scenario``, ``catalogue`` for a measured cloud RTT, or ``fit`` for the great-circle fit
of :mod:`sim.world.geo`). Routing is the shortest path by RTT. To make
ties exact and their outcome independent of insertion order, the weight is the RTT in
whole microseconds, and among equal-RTT paths the one with fewer hops, then the
lexicographically smallest sequence of region names, wins.

Public: ``Topology``, ``build_topology``, ``without_links``, ``LinkSpec``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

import networkx as nx
import numpy as np

__all__ = ["LinkSpec", "Topology", "build_topology", "without_links"]


@dataclass(frozen=True)
class LinkSpec:
    """One undirected link as it enters the graph."""

    a: str
    b: str
    rtt_ms: float
    bandwidth_gbps: float
    rtt_source: str
    duplex: str = "full"  # "full": each direction at bandwidth_gbps; "half": one shared capacity


@dataclass(frozen=True)
class Topology:
    """The graph plus the all-pairs routing table (RTT along the chosen path, the path)."""

    graph: nx.Graph[str]
    names: tuple[str, ...]
    rtt_ms: np.ndarray  # [i, j] = path RTT, inf when unreachable; diagonal = intra RTT
    paths: dict[tuple[str, str], tuple[str, ...]]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def path_rtt_ms(self, a: str, b: str) -> float:
        return float(self.rtt_ms[self.index(a), self.index(b)])

    def path(self, a: str, b: str) -> tuple[str, ...] | None:
        return self.paths.get((a, b))

    def bottleneck_gbps(self, a: str, b: str) -> float:
        """Smallest link bandwidth on the route from ``a`` to ``b`` (inf when a == b)."""
        route = self.paths.get((a, b))
        if route is None:
            return 0.0
        hops = pairwise(route)
        return min((self.graph.edges[u, v]["bandwidth_gbps"] for u, v in hops), default=float("inf"))


def build_topology(names: Sequence[str], intra_rtt_ms: Sequence[float],
                   links: Sequence[LinkSpec]) -> Topology:
    """Graph and routing table over ``names`` (declaration order) joined by ``links``."""
    graph: nx.Graph[str] = nx.Graph()
    for name, intra in zip(names, intra_rtt_ms, strict=True):
        graph.add_node(name, intra_rtt_ms=float(intra))
    for link in links:
        graph.add_edge(link.a, link.b, rtt_ms=float(link.rtt_ms), rtt_us=round(link.rtt_ms * 1000),
                       bandwidth_gbps=float(link.bandwidth_gbps), rtt_source=link.rtt_source, duplex=link.duplex)
    return _routed(graph, tuple(names), [float(x) for x in intra_rtt_ms])


def without_links(topology: Topology, cut: set[frozenset[str]]) -> Topology:
    """The topology with the links in ``cut`` (as ``frozenset({a, b})``) removed, re-routed."""
    graph = topology.graph.copy()
    graph.remove_edges_from([(a, b) for a, b in cut if graph.has_edge(a, b)])
    return _routed(graph, topology.names, [float(topology.rtt_ms[i, i]) for i in range(len(topology.names))])


def _routed(graph: nx.Graph[str], names: tuple[str, ...], intra_rtt_ms: Sequence[float]) -> Topology:
    """The routing table of ``graph``: lowest-RTT paths (ties: fewest hops, then names)."""
    n = len(names)
    rtt = np.full((n, n), np.inf)
    paths: dict[tuple[str, str], tuple[str, ...]] = {}
    for i, name in enumerate(names):
        rtt[i, i] = intra_rtt_ms[i]
        paths[(name, name)] = (name,)
    for a, b in combinations(names, 2):
        route = _best_path(graph, a, b)
        if route is None:
            continue
        total = sum(graph.edges[u, v]["rtt_ms"] for u, v in pairwise(route))
        i, j = names.index(a), names.index(b)
        rtt[i, j] = rtt[j, i] = total
        paths[(a, b)] = route
        paths[(b, a)] = tuple(reversed(route))
    return Topology(graph, names, rtt, paths)


def _best_path(graph: nx.Graph[str], a: str, b: str) -> tuple[str, ...] | None:
    try:
        candidates = nx.all_shortest_paths(graph, a, b, weight="rtt_us")
        return min((tuple(p) for p in candidates), key=lambda p: (len(p), p))
    except nx.NetworkXNoPath:
        return None

