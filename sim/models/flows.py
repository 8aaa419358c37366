"""Flow-level bandwidth sharing on the inter-region network (pure numpy, no SimPy).

A transfer is a *flow*: a number of bytes pushed along a route of links, each with a
capacity in bit/s. A full-duplex link is two links, one per direction (keys ``(a, b)`` and
``(b, a)``); a half-duplex link (a shared medium) is one link both ways (``frozenset({a, b})``).
Instead of simulating packets, every flow is given a rate and the rates are recomputed only
when the set of sending flows changes.

Rates are the **weighted max-min fair** allocation, found by progressive filling: every
unfrozen flow ``f`` gets ``w_f * x``; the level ``x`` grows until some link saturates
(its flows' rates sum to its capacity); the flows crossing it freeze; filling goes on with
what is left until every flow is frozen. Equal weights give plain max-min fairness.
Weights of ``1 / RTT`` mimic TCP, whose steady-state throughput falls as ``1 / RTT``
(Mathis et al. 1997) and which flow-level simulators such as SimGrid weight by the RTT.

A flow added at ``t`` first pays its one-way path latency ``rtt / 2`` holding no bandwidth,
then sends; its completion time is always computed as ``now + remaining * 8 / rate``, so
a lone flow on a bottleneck ``B`` ends at exactly ``t + rtt / 2 + size * 8 / B``.

A :class:`FlowModel` sets how latency, weights and rates follow from a flow's path: ``RAW``
(the plain equations above, SimGrid's ``raw`` model) or ``LV08`` (SimGrid's default TCP
model: a latency factor for slow start, a bandwidth factor, RTT-and-bandwidth weights, a
TCP-window bound per flow and 5 % cross-traffic on the reverse path). Flows may also carry
a bound of their own and a strict priority class.

Public: ``FlowModel``, ``RAW``, ``LV08``, ``flow_model``, ``max_min_rates``, ``tcp_weights``, ``route_links``,
``reverse_links``, ``FlowNetwork``, ``SATURATION_RTOL``.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from sim.scenario.model import Network

__all__ = ["FlowModel", "RAW", "LV08", "flow_model", "max_min_rates", "tcp_weights", "route_links", "reverse_links",
           "FlowNetwork", "SATURATION_RTOL"]

# A link whose fill level is within this relative distance of the current level counts as
# saturated, so ties between links freeze together instead of leaving float crumbs.
SATURATION_RTOL = 1e-9

# Events this close (relative to the clock, floor 1e-12 s) count as "now". SimPy computes
# ``now + (t - now)``, which can miss ``t`` by an ulp; without this a flow could never end.
_TIME_RTOL = 1e-12


@dataclass(frozen=True)
class FlowModel:
    """How a flow's latency, share and rate follow from its path (SimGrid's CM02 family).

    ``latency_factor`` multiplies the one-way latency paid before sending;
    ``bandwidth_factor`` is the share of its allocation a flow's bytes move at;
    ``weight_s_bytes > 0`` weighs a flow by ``1 / (latency + sum over its links of
    weight_s_bytes / link bytes per s)`` (else by ``1 / RTT``, or equally without RTT
    weighting); ``cross_traffic`` is the share of its allocation a flow also takes on the
    links of the reverse path (TCP acknowledgements); ``tcp_window_bytes`` bounds a flow's
    allocation by ``window / RTT`` (none: no bound)."""

    latency_factor: float = 1.0
    bandwidth_factor: float = 1.0
    weight_s_bytes: float = 0.0
    cross_traffic: float = 0.0
    tcp_window_bytes: float | None = None


# SimGrid's ``raw`` model: time = latency + size / bandwidth, shares weighted by 1 / latency.
RAW = FlowModel()
# SimGrid's LV08 model (Velho, Schnorr, Casanova, Legrand, "On the validity of flow-level TCP
# network models for grid and cloud simulations", ACM TOMACS 23(4), 2013; constants as SimGrid
# 4.1 sets them in src/kernel/resource/models/network_cm02.cpp and NetworkModel.cpp):
# network/latency-factor 13.01, network/bandwidth-factor 0.97, network/weight-S 20537 bytes,
# network/crosstraffic on (5 % of the rate on the reverse route), network/TCP-gamma 4 MiB.
LV08 = FlowModel(latency_factor=13.01, bandwidth_factor=0.97, weight_s_bytes=20537.0, cross_traffic=0.05,
                 tcp_window_bytes=4194304.0)


def flow_model(network: Network) -> FlowModel:
    """The flow model a scenario's ``network`` section asks for: ``model`` (raw or lv08),
    with ``tcp_window_bytes`` when given."""
    base = LV08 if network.model == "lv08" else RAW
    window = network.tcp_window_bytes
    return base if window is None else replace(base, tcp_window_bytes=float(window))


def route_links(route: Sequence[str], shared: Collection[frozenset[str]] = ()) -> list[Hashable]:
    """The links of a region route ``(a, ..., b)``: the directed ``(u, v)`` of each hop, or
    ``frozenset({u, v})`` for a hop on a half-duplex link (in ``shared``)."""
    return [frozenset((u, v)) if frozenset((u, v)) in shared else (u, v) for u, v in pairwise(route)]


def reverse_links(route: Sequence[str], shared: Collection[frozenset[str]] = ()) -> list[Hashable]:
    """The links the reverse path of ``route`` crosses (where its acknowledgements go)."""
    return route_links(tuple(reversed(route)), shared)


def tcp_weights(rtt_ms: Sequence[float] | np.ndarray) -> np.ndarray:
    """RTT-fair weights ``1 / RTT`` (RTT in seconds): a 20 ms flow weighs 50, 80 ms 12.5.

    Raises ``ValueError`` for a non-positive RTT, which would claim infinite priority.
    """
    rtt = np.asarray(rtt_ms, dtype=float)
    if np.any(~(rtt > 0)):
        raise ValueError(f"rtt_ms: must be > 0, got {rtt.tolist()}")
    return 1000.0 / rtt


Path = Sequence[Hashable] | Mapping[Hashable, float]


def max_min_rates(flow_links: Sequence[Path], capacity: Mapping[Hashable, float],
                  weights: Sequence[float] | None = None, bounds: Sequence[float] | None = None,
                  priorities: Sequence[int] | None = None) -> np.ndarray:
    """Weighted max-min fair rate of each flow, in the unit of ``capacity``.

    ``flow_links[f]`` lists the links flow ``f`` crosses (repeats count once), or maps each
    link to the share of the flow's rate it consumes there (cross-traffic: 0.05 on the
    reverse path); a flow with no links is local and gets ``inf``. ``weights=None`` means
    all 1 (plain max-min); ``bounds`` caps flows' rates (``inf``: none); flows of a higher
    ``priority`` are served first, the next class sharing what they leave.
    """
    n = len(flow_links)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(~(w > 0)) or np.any(np.isinf(w)):
        raise ValueError(f"weights: must be {n} finite numbers > 0, got {w.tolist()}")
    cap = np.full(n, np.inf) if bounds is None else np.asarray(bounds, dtype=float)
    rank = np.zeros(n, dtype=np.int64) if priorities is None else np.asarray(priorities, dtype=np.int64)
    rates = np.full(n, np.inf)
    routed = [f for f in range(n) if len(flow_links[f]) > 0]
    if routed:
        incidence, caps = _incidence([flow_links[f] for f in routed], capacity)
        classes = rank[routed]
        for level in sorted(set(classes.tolist()), reverse=True):
            members = classes == level
            served = _progressive_fill(incidence[:, members], caps, w[routed][members], cap[routed][members])
            caps = np.maximum(caps - incidence[:, members] @ served, 0.0)
            rates[np.asarray(routed)[members]] = served
    return rates


def _incidence(flow_links: Sequence[Path],
               capacity: Mapping[Hashable, float]) -> tuple[np.ndarray, np.ndarray]:
    """Link-by-flow matrix of consumption shares (1 on a flow's path) and the capacity of
    each row's link."""
    links = list(dict.fromkeys(link for path in flow_links for link in path))
    missing = [link for link in links if link not in capacity]
    if missing:
        raise KeyError(f"capacity: no capacity for link(s) {missing}")
    row = {link: i for i, link in enumerate(links)}
    incidence = np.zeros((len(links), len(flow_links)))
    for f, path in enumerate(flow_links):
        if isinstance(path, Mapping):
            for link, share in path.items():
                incidence[row[link], f] = share
        else:
            incidence[[row[link] for link in path], f] = 1.0
    caps = np.array([float(capacity[link]) for link in links])
    if np.any(~(caps >= 0)):
        raise ValueError(f"capacity: must be >= 0, got {caps.tolist()}")
    return incidence, caps


def _progressive_fill(incidence: np.ndarray, caps: np.ndarray, w: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Progressive filling over flows that all cross at least one link; a flow whose
    bound the level reaches first freezes at its bound."""
    rates = np.zeros(len(w))
    unfrozen = np.ones(len(w), dtype=bool)
    bounded = bool(np.isfinite(bounds).any())
    while unfrozen.any():
        # Each link saturates at level (capacity left by frozen flows) / (unfrozen weight);
        # the level is absolute, not incremental, so frozen rates are w * x exactly.
        frozen_load = incidence @ np.where(unfrozen, 0.0, rates)
        active_weight = incidence @ np.where(unfrozen, w, 0.0)
        crossed = active_weight > 0
        level = np.full(len(caps), np.inf)
        level[crossed] = np.maximum(caps[crossed] - frozen_load[crossed], 0.0) / active_weight[crossed]
        x = level.min()
        if bounded:
            own = np.where(unfrozen, bounds / w, np.inf)
            if own.min() <= x * (1.0 + SATURATION_RTOL):
                capped = unfrozen & (own <= own.min() * (1.0 + SATURATION_RTOL))
                rates[capped] = bounds[capped]
                unfrozen &= ~capped
                continue
        saturated = crossed & (level <= x * (1.0 + SATURATION_RTOL))
        freeze = unfrozen & (incidence[saturated].sum(axis=0) > 0)
        rates[freeze] = w[freeze] * x
        unfrozen &= ~freeze
    return rates


def _due(t: float, now: float) -> bool:
    return t <= now + _TIME_RTOL * max(1.0, abs(now))


@dataclass
class _Flow:
    links: Path  # its links, or each link's share of its rate (with cross-traffic)
    weight: float
    start_s: float  # when the latency phase ends and sending begins
    remaining_bytes: float
    bound_bps: float = math.inf  # its allocation may not exceed this (TCP window, a caller's cap)
    priority: int = 0
    rate_bps: float = 0.0  # the rate its bytes move at (its allocation x the bandwidth factor)
    finish_s: float = math.inf
    sending: bool = False


class FlowNetwork:
    """Bookkeeping of flows on a capacitated network: the engine drives time, this tracks bytes.

    The caller adds flows, asks :meth:`next_event_s` when something next happens, and calls
    :meth:`advance` at that time; ``advance`` returns the flows that completed. Capacities
    are in bit/s, sizes in bytes, times in seconds. ``weighted``: shares by ``1 / RTT``
    (else equal) unless the ``model`` weighs flows itself (LV08).
    """

    def __init__(self, capacity_bps: Mapping[Hashable, float], weighted: bool, model: FlowModel = RAW):
        self._capacity = dict(capacity_bps)
        self._weighted = weighted
        self.model = model
        self._flows: dict[Hashable, _Flow] = {}
        self._now = 0.0

    def add(self, flow_id: Hashable, links: Sequence[Hashable], size_bytes: float, rtt_s: float,
            now_s: float, back_links: Sequence[Hashable] = (), priority: int = 0,
            bound_bps: float = math.inf) -> None:
        """Register a flow at ``now_s``; it starts sending at ``now_s + latency_factor x
        rtt_s / 2``. ``back_links``: the reverse path's links (for cross-traffic);
        ``priority``: its strict priority class; ``bound_bps``: a cap on its allocation."""
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
        model = self.model
        path = tuple(dict.fromkeys(links))
        if model.weight_s_bytes > 0 and path:
            # LV08: the flow's share falls with its latency plus S / bandwidth per link.
            weight = 1.0 / (rtt_s / 2 + sum(model.weight_s_bytes * 8.0 / self._capacity[link] for link in path))
        else:
            if self._weighted and path and rtt_s <= 0:
                raise ValueError(f"flow {flow_id!r}: RTT weighting needs rtt_s > 0, got {rtt_s}")
            weight = 1.0 / rtt_s if self._weighted and path else 1.0
        if model.tcp_window_bytes is not None and path and rtt_s > 0:
            bound_bps = min(bound_bps, model.tcp_window_bytes * 8.0 / rtt_s)
        latency = rtt_s / 2 if model.latency_factor == 1.0 else model.latency_factor * rtt_s / 2
        self._flows[flow_id] = _Flow(self._shares(path, back_links), weight, now_s + latency, float(size_bytes),
                                     bound_bps, priority)

    def _shares(self, path: tuple[Hashable, ...], back_links: Sequence[Hashable]) -> Path:
        """The flow's links, with the reverse path's at the cross-traffic share."""
        cross = self.model.cross_traffic
        if cross <= 0 or not back_links:
            return path
        unknown = [link for link in back_links if link not in self._capacity]
        if unknown:
            raise KeyError(f"back links {unknown} have no capacity")
        shares = dict.fromkeys(path, 1.0)
        for link in dict.fromkeys(back_links):
            shares[link] = shares.get(link, 0.0) + cross  # a shared medium carries both
        return shares

    def remove(self, flow_id: Hashable) -> float:
        """Take a flow out at the clock (a link on its path was cut); return its bytes not
        yet sent. The others' rates are solved again."""
        flow = self._flows.pop(flow_id)
        if flow.sending:
            self._resolve(self._now)
        return flow.remaining_bytes

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
        bounds = [f.bound_bps for f in flows]
        priorities = [f.priority for f in flows]
        rates = max_min_rates([f.links for f in flows], self._capacity, [f.weight for f in flows],
                              bounds if any(math.isfinite(b) for b in bounds) else None,
                              priorities if any(priorities) else None)
        factor = self.model.bandwidth_factor
        if factor != 1.0:
            rates = rates * factor
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
