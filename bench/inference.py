"""Benchmark: inference requests per second through the full simulator vs bare SimPy.

Runs the M/M/c validation shape (c = 8, 7.2 requests/s, exponential service of mean 1 s)
long enough for at least 300,000 requests through Meridian (scenario -> world -> engine ->
metrics, in memory), and the same queue as an idiomatic SimPy model with one process per
customer, in the same run. Prints both throughputs, their ratio, the peak traced memory of
the Meridian run and the bytes retained per finished request.

    python bench/inference.py [--hours 12]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.runner import execute  # noqa: E402  (needs ROOT on sys.path, set just above)
from sim.scenario import load_scenario  # noqa: E402

MMC = ROOT / "scenarios" / "validation" / "mmc.yaml"


def meridian(hours: float) -> tuple[int, float, object]:
    loaded = load_scenario(MMC, [f"duration={hours}h"])
    start = time.perf_counter()
    outcome = execute(loaded)
    elapsed = time.perf_counter() - start
    return outcome.summary["inference"]["arrived"], elapsed, outcome


def bare_simpy(n: int, c: int = 8, rate: float = 7.2, mean_s: float = 1.0, seed: int = 1) -> float:
    """Idiomatic SimPy: a source process and one process per customer on a Resource."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / rate, n).tolist()
    services = rng.exponential(mean_s, n).tolist()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    waits = []

    def customer(service):
        arrived = env.now
        with servers.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(service)

    def source():
        for gap, service in zip(gaps, services, strict=True):
            yield env.timeout(gap)
            env.process(customer(service))

    env.process(source())
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def erlang_c_wait_s(c: int, rate: float, mean_s: float) -> float:
    """Mean wait in M/M/c by Erlang C, for a sanity line next to the measured ones."""
    offered = rate * mean_s
    term = sum(offered ** k / math.factorial(k) for k in range(c))
    top = offered ** c / math.factorial(c) * c / (c - offered)
    return top / (term + top) / (c / mean_s - rate)


def ciw_queue(hours: float, c: int = 8, rate: float = 7.2, mean_s: float = 1.0) -> tuple[int, float, float] | None:
    """The same queue in Ciw, if installed (it is not a Meridian dependency)."""
    try:
        import ciw
    except ImportError:
        return None
    network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=rate)],
                                 service_distributions=[ciw.dists.Exponential(rate=1 / mean_s)],
                                 number_of_servers=[c])
    ciw.seed(1)
    sim = ciw.Simulation(network)
    start = time.perf_counter()
    sim.simulate_until_max_time(hours * 3600)
    elapsed = time.perf_counter() - start
    records = sim.get_all_records()
    return len(records), elapsed, float(np.mean([r.waiting_time for r in records]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0, help="simulated hours (7.2 req/s)")
    parser.add_argument("--ciw-hours", type=float, default=2.0, help="simulated hours for Ciw (slower)")
    args = parser.parse_args()
    n, t_meridian, outcome = meridian(args.hours)
    t_simpy = bare_simpy(n)
    log = outcome.extra["requests"]
    outcome_wait_s = outcome.summary["inference"]["wait_ms"]["mean"] / 1000.0
    # A column no request has (first token and TPOT without token workloads) is a
    # zero-stride view of one NaN: it holds no memory.
    retained = sum(a.nbytes for a in (getattr(log, f) for f in log.__dataclass_fields__) if 0 not in a.strides)
    del outcome, log
    tracemalloc.start()
    meridian(args.hours)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"requests                      {n:,}")
    print(f"meridian (full simulator)     {n / t_meridian:,.0f} requests/s  ({t_meridian:.2f} s)")
    print(f"bare SimPy, process/customer  {n / t_simpy:,.0f} requests/s  ({t_simpy:.2f} s)")
    print(f"ratio meridian / bare SimPy   {t_simpy / t_meridian:.2f}x")
    ciw_result = ciw_queue(args.ciw_hours)
    if ciw_result is None:
        print("Ciw                           not installed (pip install ciw to compare)")
    else:
        n_ciw, t_ciw, wait_ciw = ciw_result
        print(f"Ciw {args.ciw_hours:g} h ({n_ciw:,} customers)  {n_ciw / t_ciw:,.0f} requests/s; "
              f"ratio meridian / Ciw {n / t_meridian / (n_ciw / t_ciw):.1f}x; Ciw mean wait {wait_ciw:.3f} s")
    print(f"meridian mean wait            {outcome_wait_s:.3f} s (Erlang C: {erlang_c_wait_s(8, 7.2, 1.0):.3f} s)")
    print(f"peak traced memory (meridian) {peak / 2**20:.1f} MiB  ({peak / n:.0f} B per request)")
    print(f"retained per finished request {retained / n:.1f} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
