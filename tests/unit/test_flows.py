"""Unit tests of the flow-level network model: mechanics, edge cases, and the max-min
bottleneck property over random topologies (hypothesis)."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim.models.flows import LV08, FlowNetwork, max_min_rates, reverse_links, route_links, tcp_weights


def test_route_links_are_directed_unless_shared():
    assert route_links(("a", "b", "c")) == [("a", "b"), ("b", "c")]
    assert route_links(("c", "b")) == [("c", "b")]
    assert route_links(("a",)) == []
    shared = {frozenset({"b", "c"})}
    assert route_links(("a", "b", "c"), shared) == [("a", "b"), frozenset({"b", "c"})]
    assert reverse_links(("a", "b", "c"), shared) == [frozenset({"b", "c"}), ("b", "a")]


def test_opposite_directions_of_a_full_duplex_link_do_not_compete():
    cap = {("a", "b"): 10.0, ("b", "a"): 10.0, frozenset("cd"): 10.0}
    assert max_min_rates([[("a", "b")], [("b", "a")]], cap).tolist() == [10.0, 10.0]
    assert max_min_rates([[frozenset("cd")], [frozenset("cd")]], cap).tolist() == [5.0, 5.0]


def test_bounds_freeze_a_flow_and_leave_the_rest_to_others():
    # L = 10: f is capped at 2, g takes the other 8; h on M (6) shares with g's cap of 1.
    cap = {"L": 10.0, "M": 6.0}
    rates = max_min_rates([["L"], ["L"], ["M"], ["M"]], cap, bounds=[2.0, math.inf, math.inf, 1.0])
    assert rates.tolist() == [2.0, 8.0, 5.0, 1.0]


def test_a_higher_priority_class_is_served_first():
    # Two high-priority flows share L (10) first: 5 each, capped at 3 for one, so 7; the
    # low-priority flow gets what is left (3); on M (4) it competes with nobody of its class.
    rates = max_min_rates([["L"], ["L"], ["L", "M"]], {"L": 10.0, "M": 4.0}, bounds=[3.0, math.inf, math.inf],
                          priorities=[1, 1, 0])
    assert rates.tolist() == [3.0, 7.0, 0.0]
    rates = max_min_rates([["L"], ["M"], ["L", "M"]], {"L": 10.0, "M": 4.0}, priorities=[1, 1, 0])
    assert rates.tolist() == [10.0, 4.0, 0.0]


def test_cross_traffic_shares_count_against_capacity():
    # f sends a->b at rate r and takes 0.05 r on b->a, where g sends: 0.05 r + r_g <= 10
    # with equal weights on b->a: both at level x: 0.05 x + x = 10 -> x = 9.5238...
    cap = {("a", "b"): 100.0, ("b", "a"): 10.0}
    rates = max_min_rates([{("a", "b"): 1.0, ("b", "a"): 0.05}, [("b", "a")]], cap)
    assert rates.tolist() == pytest.approx([10 / 1.05, 10 / 1.05])


def test_lv08_one_flow_by_hand():
    # 1 GB over one 10 Gbit/s link with a 100 ms RTT (50 ms one way), LV08: the latency
    # phase is 13.01 x 0.05 s; the TCP window bounds the allocation at 4 MiB / 0.1 s
    # = 335.54 Mbit/s, of which 97 % moves bytes: 8e9 bits / (0.97 x 335.544 Mbit/s).
    net = FlowNetwork({("a", "b"): 10e9, ("b", "a"): 10e9}, weighted=True, model=LV08)
    net.add("f", [("a", "b")], 1e9, 0.1, 0.0, back_links=[("b", "a")])
    latency = 13.01 * 0.05
    bound = 4194304 * 8 / 0.1
    net.advance(latency)
    assert net.rate_bps("f") == pytest.approx(0.97 * bound)
    assert net.next_event_s() == pytest.approx(latency + 8e9 / (0.97 * bound))


def test_a_removed_flow_gives_back_its_bandwidth_and_reports_what_is_left():
    net = FlowNetwork({"L": 8e9}, weighted=False)
    net.add("f", ["L"], 4e9, 0.0, 0.0)
    net.add("g", ["L"], 4e9, 0.0, 0.0)
    net.advance(1.0)  # both at 4 Gbit/s: 0.5 GB sent each
    assert net.remove("f") == pytest.approx(3.5e9)
    assert net.rate_bps("g") == 8e9 and net.next_event_s() == pytest.approx(1.0 + 3.5e9 * 8 / 8e9)


def test_local_flow_gets_infinite_rate_and_finishes_after_its_latency():
    assert max_min_rates([[], ["L"]], {"L": 5.0}).tolist() == [math.inf, 5.0]
    net = FlowNetwork({}, weighted=True)
    net.add("x", [], 1e12, 0.0, 3.0)
    assert net.next_event_s() == 3.0
    assert net.advance(3.0) == ["x"]
    assert net.active() == []


def test_zero_byte_flow_completes_when_its_latency_ends():
    net = FlowNetwork({"L": 1e9}, weighted=False)
    net.add("z", ["L"], 0.0, 0.2, 1.0)
    assert net.advance(1.05) == []
    assert net.advance(1.1) == ["z"]


def test_plain_max_min_is_scale_invariant_in_weights():
    links = [["a"], ["a", "b"], ["b"]]
    cap = {"a": 3.0, "b": 7.0}
    np.testing.assert_allclose(max_min_rates(links, cap), max_min_rates(links, cap, [4.0] * 3))


def test_repeated_link_in_a_path_counts_once():
    assert max_min_rates([["L", "L"], ["L"]], {"L": 2.0}).tolist() == [1.0, 1.0]


def test_bad_inputs_are_named():
    with pytest.raises(KeyError, match="no capacity"):
        max_min_rates([["nope"]], {"L": 1.0})
    with pytest.raises(ValueError, match="weights"):
        max_min_rates([["L"]], {"L": 1.0}, [0.0])
    with pytest.raises(ValueError, match="rtt_ms"):
        tcp_weights([0.0])
    net = FlowNetwork({"L": 1.0}, weighted=True)
    with pytest.raises(ValueError, match="rtt_s > 0"):
        net.add("f", ["L"], 1.0, 0.0, 0.0)
    net.add("g", ["L"], 1.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="already"):
        net.add("g", ["L"], 1.0, 0.1, 0.0)


def test_time_cannot_run_backwards():
    net = FlowNetwork({"L": 1.0}, weighted=False)
    net.advance(5.0)
    with pytest.raises(ValueError, match="before the clock"):
        net.advance(4.0)


def test_completion_a_hair_early_still_counts():
    # SimPy computes now + (t - now), which may land an ulp short of t.
    net = FlowNetwork({"L": 3e9}, weighted=False)
    net.add("f", ["L"], 0.1e9, 0.3, 0.1)
    t = net.next_event_s()  # the latency end
    net.advance(t)
    t = net.next_event_s()
    assert net.advance(float(np.nextafter(t, 0.0))) == ["f"]


def test_remaining_bytes_drain_at_the_current_rate():
    net = FlowNetwork({"L": 8e9}, weighted=False)
    net.add("f", ["L"], 4e9, 0.0, 0.0)
    net.advance(1.5)
    assert net.remaining_bytes("f") == 2.5e9
    assert net.sending() == ["f"]
    assert net.next_event_s() == 4.0


def test_latency_phase_holds_no_bandwidth():
    net = FlowNetwork({"L": 8e9}, weighted=False)
    net.add("slow", ["L"], 1e9, 10.0, 0.0)
    net.add("fast", ["L"], 1e9, 0.0, 0.0)
    net.advance(0.0)
    assert (net.rate_bps("fast"), net.rate_bps("slow")) == (8e9, 0.0)
    assert net.active() == ["slow", "fast"] and net.sending() == ["fast"]


@st.composite
def random_network(draw):
    """A random connected graph, random capacities and flows routed on shortest paths."""
    n = draw(st.integers(2, 7))
    tree = [(draw(st.integers(0, i - 1)), i) for i in range(1, n)]
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=6))
    graph = nx.Graph([*tree, *((a, b) for a, b in extra if a != b)])
    shared = {frozenset(e) for e in graph.edges if draw(st.booleans())}  # half-duplex links
    cap = {}
    for a, b in graph.edges:
        for key in ([frozenset((a, b))] if frozenset((a, b)) in shared else [(a, b), (b, a)]):
            cap[key] = draw(st.floats(0.5, 1000.0))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(
        lambda p: p[0] != p[1]), min_size=1, max_size=10))
    flows = [route_links(nx.shortest_path(graph, a, b), shared) for a, b in pairs]
    rtts = draw(st.lists(st.floats(1.0, 300.0), min_size=len(flows), max_size=len(flows)))
    return flows, cap, rtts


def assert_max_min_fair(flows, cap, weights, rates):
    load = dict.fromkeys(cap, 0.0)
    for links, rate in zip(flows, rates, strict=True):
        for link in set(links):
            load[link] += rate
    for link, used in load.items():
        assert used <= cap[link] * (1 + 1e-9)
    # Bottleneck property: some link on f's path is full and no flow on it gets a
    # larger share per unit weight than f does.
    def is_bottleneck(f, link):
        share = max(rates[g] / weights[g] for g, other in enumerate(flows) if link in other)
        return (load[link] >= cap[link] * (1 - 1e-9)
                and rates[f] / weights[f] >= share * (1 - 1e-9))
    for f, links in enumerate(flows):
        assert any(is_bottleneck(f, link) for link in links), f"flow {f} has no bottleneck"


@settings(max_examples=200, deadline=None)
@given(random_network())
def test_plain_max_min_respects_capacity_and_has_bottlenecks(net):
    flows, cap, _ = net
    assert_max_min_fair(flows, cap, [1.0] * len(flows), max_min_rates(flows, cap))


@settings(max_examples=200, deadline=None)
@given(random_network())
def test_weighted_max_min_respects_capacity_and_has_bottlenecks(net):
    flows, cap, rtts = net
    weights = tcp_weights(rtts)
    assert_max_min_fair(flows, cap, weights, max_min_rates(flows, cap, weights))
