"""Benchmark: the cost estimate against what runs really take.

Each case is run in a fresh process (scenario -> world -> engine -> metrics, in memory, as
``sim.runner.execute``) and its peak resident memory, wall time, requests and events are
set beside the estimate ``validate`` and ``run`` print (``sim/workload/cost.py``). The
coefficients of the estimate were read off these figures: slot pools cost about 350 bytes
and 3 us a request, batching replicas about 800 bytes and 40 us, a time-series row about
1.7 kB and 50 us, a scheduler tick about 600 bytes and 60 us, an autoscaler tick (two
pools) about 600 us.

    python bench/cost.py            # every case, about two minutes
    python bench/cost.py --quick    # the small half
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.scenario import load_scenario  # noqa: E402  (needs ROOT on sys.path, set just above)
from sim.workload.cost import estimate_cost  # noqa: E402

MEASURE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from sim.runner import execute
from sim.scenario import load_scenario
loaded = load_scenario(sys.argv[1], sys.argv[2:])
start = time.perf_counter()
outcome = execute(loaded)
wall = time.perf_counter() - start
print(json.dumps({{"requests": outcome.summary.get("inference", {{}}).get("arrived", 0),
                  "events": outcome.events_processed, "wall_s": wall,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""
SCENARIOS = ROOT / "scenarios"
QUICK = [
    ("slots, M/M/8 2 h", "validation/mmc.yaml", ["duration=2h"]),
    ("slots, M/M/8 24 h", "validation/mmc.yaml", ["duration=24h"]),
    ("batching, default 2 h", "default.yaml", ["duration=2h"]),
    ("batching, planning", "planning.yaml", []),
    ("rows, 72,000 buckets", "validation/mmc.yaml", ["duration=2h", "metrics.bucket=0.1"]),
    ("ticks, 86,400", "two_regions.yaml", ["scheduler.interval=1s"]),
    ("autoscaler ticks, 10,800", "autoscale.yaml", ["scheduler.autoscaling.interval=1s"]),
]
FULL = QUICK + [
    ("slots, 6 million requests", "validation/mmc.yaml",
     ["duration=24h", "inference.0.arrival.rate_per_s=72", "regions.0.pools.0.replicas=80"]),
    ("batching, default 24 h", "default.yaml", []),
    ("slots + training", "shared_capacity.yaml", []),
]


def measure(path: Path, sets: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE.format(root=str(ROOT)), str(path), *sets],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small cases only")
    args = parser.parse_args()
    print(f"{'case':28} {'requests':>10} {'events':>10} {'peak MB':>8} {'est MB':>7} {'wall s':>7} {'est s':>6}")
    for name, file, sets in QUICK if args.quick else FULL:
        estimate = estimate_cost(load_scenario(SCENARIOS / file, sets))
        real = measure(SCENARIOS / file, sets)
        # execute() draws no charts: the estimate's share for them (about 50 MB) is left out here.
        print(f"{name:28} {real['requests']:>10,} {real['events']:>10,} {real['peak_bytes'] / 1e6:>8.0f} "
              f"{(estimate.bytes - 50e6) / 1e6:>7.0f} {real['wall_s']:>7.2f} {estimate.seconds - 1:>6.2f}")


if __name__ == "__main__":
    main()
