"""Benchmark: what prefix caching and cache-aware routing cost the simulator.

`scenarios/geo_cache.yaml` (three regions, batching replicas with prefix caches, cache-aware
routing) for a stretch of simulated time, against the same scenario with prefix caching
off and cache-blind routing (`ttft_aware`), on the same arrivals, each in a fresh child
process (scenario -> world -> engine -> metrics in memory). Prints requests per second,
peak RSS and the ratio of the cost per request with caching to without.

    python bench/geo_serving.py [--hours 24]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "scenarios" / "geo_cache.yaml"
OFF = [f"regions.{r}.pools.h100.serving.prefix_caching=false" for r in ("eastus", "westeurope", "japaneast")]
MODES = {"caching": [], "no caching": [*OFF, "scheduler.routing=ttft_aware"]}


def measure(mode: str, hours: float) -> dict:
    from sim.runner import execute
    from sim.scenario import load_scenario

    loaded = load_scenario(SCENARIO, [f"duration={hours}h", *MODES[mode]])
    start = time.perf_counter()
    outcome = execute(loaded)
    elapsed = time.perf_counter() - start
    inference = outcome.summary["inference"]
    cache = inference.get("prefix_cache") or {}
    return {"mode": mode, "seconds": elapsed, "arrived": inference["arrived"], "hit_rate": cache.get("hit_rate"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--child", choices=sorted(MODES))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.hours)))
        return
    runs = {}
    for mode in ("no caching", "caching"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--hours", str(args.hours)],
                             check=True, capture_output=True, text=True)
        runs[mode] = json.loads(out.stdout.splitlines()[-1])
    for mode, r in runs.items():
        hit = "n/a" if r["hit_rate"] is None else f"{r['hit_rate']:.3f}"
        print(f"{mode:10} {r['arrived']:>10,} requests  {r['arrived'] / r['seconds']:>9,.0f} requests/s  "
              f"({r['seconds']:.1f} s)  hit rate {hit}  peak RSS {r['peak_rss_mib']:.0f} MiB")
    per = {mode: r["seconds"] / r["arrived"] for mode, r in runs.items()}
    print(f"caching / no caching, time per request: {per['caching'] / per['no caching']:.2f}x")


if __name__ == "__main__":
    main()
