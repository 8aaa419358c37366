import math

import pytest

from sim.world.topology import LinkSpec, build_topology


def _link(a, b, rtt, bw=100.0):
    return LinkSpec(a, b, rtt, bw, "scenario")


def test_shortest_path_by_rtt_not_hops():
    topo = build_topology(["a", "b", "c"], [1, 1, 1], [_link("a", "c", 50), _link("a", "b", 10), _link("b", "c", 15)])
    assert topo.path("a", "c") == ("a", "b", "c")
    assert topo.path_rtt_ms("a", "c") == pytest.approx(25)
    assert topo.path_rtt_ms("c", "a") == pytest.approx(25)
    assert topo.path("c", "a") == ("c", "b", "a")


def test_tie_break_is_fewest_hops_then_names_whatever_the_order():
    links = [_link("a", "z", 10), _link("z", "d", 10), _link("a", "b", 10), _link("b", "d", 10)]
    for order in (links, list(reversed(links))):
        topo = build_topology(["a", "b", "z", "d"], [1, 1, 1, 1], order)
        assert topo.path("a", "d") == ("a", "b", "d")
    direct = build_topology(["a", "b", "d"], [1, 1, 1], links[2:] + [_link("a", "d", 20)])
    assert direct.path("a", "d") == ("a", "d")


def test_unreachable_pair_has_infinite_rtt_and_no_path():
    topo = build_topology(["a", "b", "c"], [2, 1, 1], [_link("a", "b", 5)])
    assert math.isinf(topo.path_rtt_ms("a", "c"))
    assert topo.path("a", "c") is None
    assert topo.path_rtt_ms("a", "a") == 2


def test_bottleneck_bandwidth_along_route():
    topo = build_topology(["a", "b", "c"], [1, 1, 1], [_link("a", "b", 5, 400), _link("b", "c", 5, 40)])
    assert topo.bottleneck_gbps("a", "c") == 40
