"""Benchmark: microseconds per ``choose`` call for each built-in routing policy.

A 12-pool view over 4 regions (one pool unreachable from the origin, one switched off),
with queues and busy slots changed between calls the way the engine changes them, so
load-reading policies cannot coast on constant input. Availability (``version``) stays
fixed, as it does between scheduler ticks.

    python bench/routing.py [--calls 200000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.policies import RoutingView, available, create
from sim.scenario.model import PolicySpec

N_POOLS, N_REGIONS = 12, 4


def make_view(rng: np.random.Generator) -> RoutingView:
    rtt = rng.uniform(1.0, 200.0, (N_REGIONS, N_POOLS))
    rtt[0, 5] = np.inf
    active = rng.integers(4, 64, N_POOLS)
    active[7] = 0
    return RoutingView.build(pool_region=np.arange(N_POOLS) % N_REGIONS, rtt_ms=rtt,
                             total_slots=active + 8, active_slots=active,
                             mean_service_s=rng.uniform(0.5, 3.0, N_POOLS))


def time_policy(name: str, calls: int) -> float:
    rng = np.random.default_rng(0)
    view = make_view(rng)
    policy = create("routing", PolicySpec(name=name), np.random.default_rng(1))
    queues = rng.integers(0, 40, (64, N_POOLS))
    origins = rng.integers(0, N_REGIONS, 64).tolist()
    choose, elapsed = policy.choose, 0.0
    for block in range(calls // 64):
        _set(view.queue_len, queues[block % 64])
        _set(view.busy_slots, queues[(block + 1) % 64])
        start = time.perf_counter()
        for origin in origins:
            view.origin = origin
            choose(view)
        elapsed += time.perf_counter() - start
    return elapsed / (calls // 64 * 64) * 1e6


def _set(array: np.ndarray, values: np.ndarray) -> None:
    array.flags.writeable = True
    array[:] = values
    array.flags.writeable = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args(argv)
    print(f"{'policy':<16}{'us/call':>10}   ({N_POOLS} pools, {args.calls} calls)")
    for name in available("routing"):
        print(f"{name:<16}{time_policy(name, args.calls):>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
