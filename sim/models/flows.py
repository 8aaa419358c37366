"""Flow-level bandwidth sharing on the inter-region network (pure numpy, no SimPy).

A transfer is a *flow*: a number of bytes pushed along a route of undirected links, each
with a capacity in bit/s. Instead of simulating packets, every flow is given a rate and
the rates are recomputed only when the set of sending flows changes.

Rates are the **weighted max-min fair** allocation, found by progressive filling: every
unfrozen flow ``f`` gets ``w_f * x``; the level ``x`` grows until some link saturates
(its flows' rates sum to its capacity); the flows crossing it freeze; filling goes on with
what is left until every flow is frozen. Equal weights give plain max-min fairness.
Weights of ``1 / RTT`` mimic TCP, whose steady-state throughput falls as ``1 / RTT``
(Mathis et al. 1997) and which flow-level simulators such as SimGrid weight by the RTT.

A flow added at ``t`` first pays its one-way path latency ``rtt / 2`` holding no bandwidth,
then sends; its completion time is always computed as ``now + remaining * 8 / rate``, so
a lone flow on a bottleneck ``B`` ends at exactly ``t + rtt / 2 + size * 8 / B``.

Public: ``max_min_rates``, ``tcp_weights``, ``route_links``, ``FlowNetwork``,
``SATURATION_RTOL``.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

__all__ = ["max_min_rates", "tcp_weights", "route_links", "FlowNetwork", "SATURATION_RTOL"]

# A link whose fill level is within this relative distance of the current level counts as
# saturated, so ties between links freeze together instead of leaving float crumbs.
SATURATION_RTOL = 1e-9

# Events this close (relative to the clock, floor 1e-12 s) count as "now". SimPy computes
# ``now + (t - now)``, which can miss ``t`` by an ulp; without this a flow could never end.
_TIME_RTOL = 1e-12


def route_links(route: Sequence[str]) -> list[frozenset[str]]:
    """The undirected links ``frozenset({u, v})`` of a region route ``(a, ..., b)``."""
    return [frozenset((u, v)) for u, v in pairwise(route)]


def tcp_weights(rtt_ms: Sequence[float] | np.ndarray) -> np.ndarray:
    """RTT-fair weights ``1 / RTT`` (RTT in seconds): a 20 ms flow weighs 50, 80 ms 12.5.

    Raises ``ValueError`` for a non-positive RTT, which would claim infinite priority.
    """
    rtt = np.asarray(rtt_ms, dtype=float)
    if np.any(~(rtt > 0)):
        raise ValueError(f"rtt_ms: must be > 0, got {rtt.tolist()}")
    return 1000.0 / rtt


def max_min_rates(flow_links: Sequence[Sequence[Hashable]], capacity: Mapping[Hashable, float],
                  weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted max-min fair rate of each flow, in the unit of ``capacity``.

    ``flow_links[f]`` lists the links flow ``f`` crosses (repeats count once); a flow with
    no links is local and gets ``inf``. ``weights=None`` means all 1 (plain max-min).
    """
    n = len(flow_links)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(~(w > 0)) or np.any(np.isinf(w)):
        raise ValueError(f"weights: must be {n} finite numbers > 0, got {w.tolist()}")
    rates = np.full(n, np.inf)
    routed = [f for f in range(n) if len(flow_links[f]) > 0]
    if routed:
        incidence, caps = _incidence([flow_links[f] for f in routed], capacity)
        rates[routed] = _progressive_fill(incidence, caps, w[routed])
    return rates


def _incidence(flow_links: Sequence[Sequence[Hashable]],
               capacity: Mapping[Hashable, float]) -> tuple[np.ndarray, np.ndarray]:
    """Link-by-flow 0/1 matrix and the capacity of each row's link."""
    links = list(dict.fromkeys(link for path in flow_links for link in path))
    missing = [link for link in links if link not in capacity]
    if missing:
        raise KeyError(f"capacity: no capacity for link(s) {missing}")
    row = {link: i for i, link in enumerate(links)}
    incidence = np.zeros((len(links), len(flow_links)))
    for f, path in enumerate(flow_links):
        incidence[[row[link] for link in path], f] = 1.0
    caps = np.array([float(capacity[link]) for link in links])
    if np.any(~(caps >= 0)):
        raise ValueError(f"capacity: must be >= 0, got {caps.tolist()}")
    return incidence, caps


def _progressive_fill(incidence: np.ndarray, caps: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Progressive filling over flows that all cross at least one link."""
    rates = np.zeros(len(w))
    unfrozen = np.ones(len(w), dtype=bool)
    while unfrozen.any():
        # Each link saturates at level (capacity left by frozen flows) / (unfrozen weight);
        # the level is absolute, not incremental, so frozen rates are w * x exactly.
        frozen_load = incidence @ np.where(unfrozen, 0.0, rates)
        active_weight = incidence @ np.where(unfrozen, w, 0.0)
        crossed = active_weight > 0
        level = np.full(len(caps), np.inf)
        level[crossed] = np.maximum(caps[crossed] - frozen_load[crossed], 0.0) / active_weight[crossed]
        x = level.min()
        saturated = crossed & (level <= x * (1.0 + SATURATION_RTOL))
        freeze = unfrozen & (incidence[saturated].sum(axis=0) > 0)
        rates[freeze] = w[freeze] * x
        unfrozen &= ~freeze
    return rates


def _due(t: float, now: float) -> bool:
    return t <= now + _TIME_RTOL * max(1.0, abs(now))


@dataclass
class _Flow:
    links: tuple[Hashable, ...]
    weight: float
    start_s: float  # when the latency phase ends and sending begins
    remaining_bytes: float
    rate_bps: float = 0.0
    finish_s: float = math.inf
    sending: bool = False


class FlowNetwork:
    """Bookkeeping of flows on a capacitated network: the engine drives time, this tracks bytes.

    The caller adds flows, asks :meth:`next_event_s` when something next happens, and calls
    :meth:`advance` at that time; ``advance`` returns the flows that completed. Capacities
    are in bit/s, sizes in bytes, times in seconds.
    """

    def __init__(self, capacity_bps: Mapping[Hashable, float], weighted: bool):
        self._capacity = dict(capacity_bps)
        self._weighted = weighted
        self._flows: dict[Hashable, _Flow] = {}
        self._now = 0.0

    def add(self, flow_id: Hashable, links: Sequence[Hashable], size_bytes: float, rtt_s: float,
            now_s: float) -> None:
        """Register a flow at ``now_s``; it starts sending at ``now_s + rtt_s / 2``."""
        if flow_id in self._flows:
            raise ValueError(f"flow {flow_id!r}: already in the network")
        unknown = [link for link in links if link not in self._capacity]
        if unknown:
            raise KeyError(f"flow {flow_id!r}: links {unknown} have no capacity")
        if not size_bytes >= 0 or not rtt_s >= 0:
            raise ValueError(f"flow {flow_id!r}: size_bytes and rtt_s must be >= 0, "
                             f"got {size_bytes}, {rtt_s}")
        if now_s < self._now:
            raise ValueError(f"flow {flow_id!r}: added at {now_s} s, before the clock {self._now} s")
        if self._weighted and links and rtt_s <= 0:
            raise ValueError(f"flow {flow_id!r}: RTT weighting needs rtt_s > 0, got {rtt_s}")
        weight = 1.0 / rtt_s if self._weighted and links else 1.0
        self._flows[flow_id] = _Flow(tuple(dict.fromkeys(links)), weight, now_s + rtt_s / 2,
                                     float(size_bytes))

    def next_event_s(self) -> float:
        """Time of the next start of sending or completion; ``inf`` if nothing is pending."""
        return min((f.finish_s if f.sending else f.start_s for f in self._flows.values()),
                   default=math.inf)

    def advance(self, now_s: float) -> list[Hashable]:
        """Move the clock to ``now_s``; return the flows that completed by then, in order."""
        if now_s < self._now:
            raise ValueError(f"advance: time {now_s} s is before the clock {self._now} s")
        done: list[Hashable] = []
        while _due(t := self.next_event_s(), now_s):
            t = min(max(t, self._now), now_s)
            self._drain_to(t)
            done += self._complete(t)
            self._start(t)
            self._resolve(t)
        self._drain_to(now_s)
        return done

    def rate_bps(self, flow_id: Hashable) -> float:
        """Current rate of a flow (0 during its latency phase); ``KeyError`` once complete."""
        return self._flows[flow_id].rate_bps

    def remaining_bytes(self, flow_id: Hashable) -> float:
        """Bytes not yet sent, as of the last ``advance``; ``KeyError`` once complete."""
        return self._flows[flow_id].remaining_bytes

    def active(self) -> list[Hashable]:
        """Flows not yet complete (in their latency phase or sending), in the order added."""
        return list(self._flows)

    def sending(self) -> list[Hashable]:
        """Flows past their latency phase that hold bandwidth, in the order added."""
        return [fid for fid, f in self._flows.items() if f.sending]

    def _drain_to(self, t: float) -> None:
        dt = t - self._now
        if dt > 0:
            for f in self._flows.values():
                if f.sending and math.isfinite(f.rate_bps):
                    f.remaining_bytes = max(f.remaining_bytes - f.rate_bps * dt / 8.0, 0.0)
        self._now = max(self._now, t)

    def _complete(self, t: float) -> list[Hashable]:
        due = [fid for fid, f in self._flows.items() if f.sending and _due(f.finish_s, t)]
        due.sort(key=lambda fid: self._flows[fid].finish_s)  # stable: ties keep add order
        for fid in due:
            del self._flows[fid]
        return due

    def _start(self, t: float) -> None:
        for f in self._flows.values():
            if not f.sending and _due(f.start_s, t):
                f.sending = True

    def _resolve(self, t: float) -> None:
        """Re-solve the rates of the sending flows and their completion times."""
        ids = self.sending()
        flows = [self._flows[fid] for fid in ids]
        rates = max_min_rates([f.links for f in flows], self._capacity, [f.weight for f in flows])
        for f, rate in zip(flows, rates, strict=True):
            # An unchanged rate keeps its finish time, so a flow undisturbed by others ends
            # at exactly start + size * 8 / rate rather than a re-derived approximation.
            if float(rate) != f.rate_bps or not math.isfinite(f.finish_s):
                f.rate_bps = float(rate)
                f.finish_s = _finish_s(t, f.remaining_bytes, f.rate_bps)


def _finish_s(t: float, remaining_bytes: float, rate_bps: float) -> float:
    if remaining_bytes <= 0:
        return t
    return t + remaining_bytes * 8.0 / rate_bps if rate_bps > 0 else math.inf
