"""Flow-level sharing checked against allocations and completion times worked out by hand.

Sizes and capacities are chosen so the hand numbers are exact floats: an 8e9 bit/s link
moves exactly 1e9 bytes per second.
"""
from __future__ import annotations

import math

import pytest

from sim.models.flows import FlowNetwork, max_min_rates, tcp_weights

GB = 1e9  # bytes
LINK_1GBPS = 8e9  # bit/s, i.e. 1e9 bytes/s


def run(net: FlowNetwork, arrivals: list[tuple[float, str, list, float, float]]) -> list[tuple[str, float]]:
    """Drive ``net`` as the engine does; arrivals are (time, id, links, bytes, rtt_s)."""
    pending = sorted(arrivals, key=lambda a: a[0])
    log: list[tuple[str, float]] = []
    while pending or math.isfinite(net.next_event_s()):
        t = min(net.next_event_s(), pending[0][0] if pending else math.inf)
        log += [(fid, t) for fid in net.advance(t)]
        while pending and pending[0][0] == t:
            _, fid, links, size, rtt = pending.pop(0)
            net.add(fid, links, size, rtt, t)
    return log


def test_lone_flow_takes_latency_plus_size_over_bandwidth_exactly():
    net = FlowNetwork({"L": LINK_1GBPS}, weighted=True)
    # start 2.0 + one-way latency 0.25 + 1e9 B * 8 / 8e9 bit/s = 1.0 s  ->  3.25 s, to the float
    assert run(net, [(2.0, "f", ["L"], GB, 0.5)]) == [("f", 3.25)]


def test_lone_flow_is_limited_by_the_narrowest_link_of_its_path():
    net = FlowNetwork({"a": 4 * LINK_1GBPS, "b": LINK_1GBPS / 2, "c": LINK_1GBPS}, weighted=False)
    # bottleneck 4e9 bit/s: 0.125 (latency) + 2e9 B * 8 / 4e9 = 4.0 s
    assert run(net, [(0.0, "f", ["a", "b", "c"], 2 * GB, 0.25)]) == [("f", 4.125)]


def test_classic_max_min_example():
    # L1 (cap 10) carries A, B; L2 (cap 6) carries B, C, D.
    # Fill level x: L1 saturates at 10 / 2 = 5, L2 at 6 / 3 = 2 -> x = 2, L2 saturates first;
    # B, C, D freeze at 2. L1 has 10 - 2 = 8 left for A alone -> A = 8.
    rates = max_min_rates([["L1"], ["L1", "L2"], ["L2"], ["L2"]], {"L1": 10.0, "L2": 6.0})
    assert rates.tolist() == [8.0, 2.0, 2.0, 2.0]


def test_rtt_weighted_split_of_one_link():
    # Weights 1/0.020 s = 50 and 1/0.080 s = 12.5; x = 10e9 / 62.5 = 1.6e8 -> 8e9 and 2e9.
    weights = tcp_weights([20.0, 80.0])
    assert weights.tolist() == [50.0, 12.5]
    assert max_min_rates([["L"], ["L"]], {"L": 10e9}, weights).tolist() == [8e9, 2e9]


def test_rtt_weighted_with_two_bottlenecks():
    # L1 = 10e9 carries A (20 ms, w 50) and B (40 ms, w 25); L2 = 5e9 carries B and C (10 ms, w 100).
    # L1 would saturate at x = 10e9 / 75 = 1.33e8, L2 at 5e9 / 125 = 4e7 -> L2 first:
    # B = 25 * 4e7 = 1e9, C = 100 * 4e7 = 4e9. Then A alone on L1: (10e9 - 1e9) / 50 = 1.8e8 -> 9e9.
    rates = max_min_rates([["L1"], ["L1", "L2"], ["L2"]], {"L1": 10e9, "L2": 5e9},
                          tcp_weights([20.0, 40.0, 10.0]))
    assert rates.tolist() == [9e9, 1e9, 4e9]


def test_flow_network_applies_the_weights_once_every_latency_phase_is_over():
    net = FlowNetwork({"L1": 10e9, "L2": 5e9}, weighted=True)
    net.add("A", ["L1"], 100 * GB, 0.020, 0.0)  # sends from 0.010
    net.add("B", ["L1", "L2"], 100 * GB, 0.040, 0.0)  # sends from 0.020
    net.add("C", ["L2"], 100 * GB, 0.010, 0.0)  # sends from 0.005
    net.advance(0.005)
    assert [net.rate_bps(f) for f in "ABC"] == [0.0, 0.0, 5e9]  # C alone on L2
    net.advance(0.010)
    assert [net.rate_bps(f) for f in "ABC"] == [10e9, 0.0, 5e9]  # A alone on L1
    net.advance(0.020)
    assert [net.rate_bps(f) for f in "ABC"] == [9e9, 1e9, 4e9]  # the two-bottleneck case


def test_two_flows_started_at_different_times_share_then_speed_up():
    # One 1e9 B/s link, no latency. A (2e9 B) alone 0-0.5 s: 0.5e9 sent, 1.5e9 left.
    # B (0.5e9 B) arrives at 0.5: each gets 0.5e9 B/s; B done at 0.5 + 1.0 = 1.5.
    # A has 1.5e9 - 0.5e9 = 1.0e9 left at 1.5, alone again at 1e9 B/s -> done at 2.5.
    net = FlowNetwork({"L": LINK_1GBPS}, weighted=False)
    log = run(net, [(0.0, "A", ["L"], 2 * GB, 0.0), (0.5, "B", ["L"], 0.5 * GB, 0.0)])
    assert [f for f, _ in log] == ["B", "A"]
    assert [t for _, t in log] == pytest.approx([1.5, 2.5], abs=1e-9)


def test_latency_phase_overlapping_another_transfer_plain():
    # A: 3e9 B, added 0 with RTT 1 s -> sends from 0.5. B: 1e9 B, added 1.0 with RTT 2 s ->
    # sends from 2.0; during 1.0-2.0 B holds no bandwidth so A keeps the whole link.
    # 0.5-2.0: A sends 1.5e9, 1.5e9 left. From 2.0 each gets 0.5e9 B/s: B ends 2.0 + 2 = 4.0,
    # A has 1.5e9 - 1.0e9 = 0.5e9 left, alone at 1e9 B/s -> ends 4.5.
    net = FlowNetwork({"L": LINK_1GBPS}, weighted=False)
    net.add("A", ["L"], 3 * GB, 1.0, 0.0)
    assert net.advance(1.0) == []
    net.add("B", ["L"], GB, 2.0, 1.0)
    assert (net.rate_bps("A"), net.rate_bps("B")) == (LINK_1GBPS, 0.0)
    assert net.remaining_bytes("A") == 2.5 * GB
    log = run(net, [])
    assert [f for f, _ in log] == ["B", "A"]
    assert [t for _, t in log] == pytest.approx([4.0, 4.5], abs=1e-9)


def test_latency_phase_overlapping_another_transfer_rtt_weighted():
    # Same arrivals, RTT weights 1/1 s = 1 and 1/2 s = 0.5: from 2.0 A gets 2/3, B 1/3 of 1e9 B/s.
    # A's 1.5e9 B at 2/3e9 B/s takes 2.25 s -> ends 4.25. B has sent 0.75e9 by then,
    # 0.25e9 left alone at 1e9 B/s -> ends 4.5.
    net = FlowNetwork({"L": LINK_1GBPS}, weighted=True)
    log = run(net, [(0.0, "A", ["L"], 3 * GB, 1.0), (1.0, "B", ["L"], GB, 2.0)])
    assert [f for f, _ in log] == ["A", "B"]
    assert [t for _, t in log] == pytest.approx([4.25, 4.5], abs=1e-9)


def test_flow_crossing_two_busy_links_dynamically():
    # Classic topology with 1e9 B/s units: L1 = 10, L2 = 6 (x 8e9 bit/s); no latency.
    # At 0 all four start: A = 8, B = C = D = 2 (GB/s). C, D have 2 GB, B 4 GB, A 40 GB.
    # C, D end at 1.0 (A has 32 left, B 2). Then L2 has only B: L1 limits B to 10 / 2 = 5,
    # A = 5: B's 2 GB take 0.4 s -> B ends 1.4 (A has 32 - 2 = 30 left), then A alone at
    # 10 GB/s -> 3.0 s -> ends 4.4.
    net = FlowNetwork({"L1": 10 * LINK_1GBPS, "L2": 6 * LINK_1GBPS}, weighted=False)
    log = run(net, [(0.0, "A", ["L1"], 40 * GB, 0.0), (0.0, "B", ["L1", "L2"], 4 * GB, 0.0),
                    (0.0, "C", ["L2"], 2 * GB, 0.0), (0.0, "D", ["L2"], 2 * GB, 0.0)])
    assert [f for f, _ in log] == ["C", "D", "B", "A"]
    assert [t for _, t in log] == pytest.approx([1.0, 1.0, 1.4, 4.4], abs=1e-9)
