"""The SimGrid reference for Meridian's flow model: replays a copies scenario in SimGrid.

Run with a Python that has SimGrid 4.1 (``pip install simgrid`` with the build constraint
``pybind11<3``, after ``apt-get install libboost-dev``; about 7 minutes to build) and PyYAML::

    python tests/validation/simgrid_reference.py scenarios/validation/transfers_1000.yaml \\
        --model raw --out tests/validation/golden/simgrid_transfers_1000_raw.csv

It reads only the scenario file and its copy trace, never Meridian's code: one host per
region; each link a SimGrid link of latency RTT / 2 and the link's bandwidth, split-duplex
(one link per direction) unless the scenario says ``duplex: half`` (one SHARED link); the
route of each pair the lowest-RTT path (ties: fewer hops, then the smaller sequence of
names: Meridian's documented rule, written again here); one actor per copy that sleeps until
its start and sends its bytes with ``Comm.sendto``. It writes ``row,start_s,end_s`` per row
of the trace. ``--model`` is SimGrid's ``network/model`` (``raw`` or ``LV08``), with its
defaults (LV08: cross-traffic on, TCP-gamma 4 MiB); ``--duplex`` overrides
``network.duplex``. The goldens in ``tests/validation/golden/`` came from::

    for m in raw LV08; do for d in full half; do python tests/validation/simgrid_reference.py \
        scenarios/validation/transfers_1000.yaml --model $m --duplex $d \
        --out tests/validation/golden/simgrid_transfers_1000_${m,,}_$d.csv; done; done
"""
from __future__ import annotations

import argparse
import csv
import heapq
import sys
import warnings
from pathlib import Path

import yaml


def lowest_rtt_routes(names: list[str], links: list[dict]) -> dict[tuple[str, str], list[str]]:
    """Every ordered pair's path: least total RTT in whole microseconds, then fewer hops,
    then the lexicographically smallest sequence of names."""
    edges: dict[str, list[tuple[str, int]]] = {n: [] for n in names}
    for link in links:
        us = round(float(link["rtt_ms"]) * 1000)
        edges[link["a"]].append((link["b"], us))
        edges[link["b"]].append((link["a"], us))
    routes = {}
    for src in names:
        best: dict[str, tuple[int, int, list[str]]] = {}
        heap = [(0, 0, [src])]
        while heap:
            rtt, hops, path = heapq.heappop(heap)
            node = path[-1]
            if node in best:
                continue
            best[node] = (rtt, hops, path)
            for other, us in edges[node]:
                if other not in best:
                    heapq.heappush(heap, (rtt + us, hops + 1, path + [other]))
        for dst, (_, _, path) in best.items():
            if dst != src:
                routes[(src, dst)] = path
    return routes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--model", default="raw", choices=["raw", "LV08"])
    parser.add_argument("--duplex", choices=["full", "half"], help="override the scenario's network.duplex")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import simgrid as sg

    warnings.filterwarnings("ignore", "Actor.create", DeprecationWarning)  # 4.1's Python add_actor is unusable

    scenario_path = Path(args.scenario)
    scenario = yaml.safe_load(scenario_path.read_text())
    network = scenario.get("network", {})
    if args.duplex is not None:
        network["duplex"] = args.duplex
    trace = scenario_path.parent / scenario["transfers"]["trace"]
    rows = list(csv.DictReader(open(trace)))
    names = [r["name"] for r in scenario["regions"]]

    engine = sg.Engine([sys.argv[0], f"--cfg=network/model:{args.model}"])
    zone = engine.netzone_root.add_netzone_full("world")
    hosts = {name: zone.add_host(name, 1e9) for name in names}
    links = {}
    for link in scenario["links"]:
        bps = float(link.get("bandwidth_gbps", network.get("default_bandwidth_gbps", 100.0))) * 1e9 / 8
        latency = float(link["rtt_ms"]) / 2000.0
        name = f"{link['a']}-{link['b']}"
        if link.get("duplex", network.get("duplex", "full")) == "half":
            made = zone.add_link(name, bps)
        else:
            made = zone.add_split_duplex_link(name, bps)
        made.set_latency(latency)
        links[frozenset((link["a"], link["b"]))] = (link["a"], made, link.get("duplex", network.get("duplex", "full")))
    for (src, dst), path in lowest_rtt_routes(names, scenario["links"]).items():
        hops = []
        for u, v in zip(path, path[1:], strict=False):
            first, made, duplex = links[frozenset((u, v))]
            if duplex == "half":
                hops.append(sg.LinkInRoute(made, sg.LinkInRoute.Direction.NONE))
            else:
                hops.append(sg.LinkInRoute(made, sg.LinkInRoute.Direction.UP if u == first
                                           else sg.LinkInRoute.Direction.DOWN))
        zone.add_route(hosts[src], hosts[dst], hops, False)
    zone.seal()

    ends: dict[int, float] = {}

    def copy(i: int, src: str, dst: str, size: int, start: float) -> None:
        sg.this_actor.sleep_until(start)
        sg.Comm.sendto(hosts[src], hosts[dst], size)
        ends[i] = sg.Engine.clock

    for i, row in enumerate(rows):
        # The trace gives GB to 6 decimals: whole bytes, as SimGrid wants them.
        sg.Actor.create(f"copy{i}", hosts[row["src"]], copy, i, row["src"], row["dst"],
                        round(float(row["size_gb"]) * 1e9), float(row["time_s"]))
    engine.run()
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["row", "start_s", "end_s"])
        for i, row in enumerate(rows):
            out.writerow([i, row["time_s"], repr(ends[i])])
    print(f"{args.out}: {len(rows)} copies, makespan {max(ends.values()):.6f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
