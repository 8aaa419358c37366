"""Benchmark: one simulated day of the reference world, as a user runs it.

`scenarios/reference_world.yaml`: 18 Azure regions with GPUs (43,776 GPUs), 10 million
requests and about 2,000 training jobs a day, node failures at the Llama 3 rate and a
three-hour outage, latency-aware routing. Each case is `simulate.py run ... --no-charts`
in a fresh process (start-up, imports, scenario, world, engine, metrics, run folder),
measured with ``os.wait4``: CPU seconds (user + system), wall seconds and peak RSS. The
baseline in the same run is the same day with ``nearest`` routing (no load reading), so
the ratio is what load-aware routing costs on a large world.

    python bench/reference_world.py [--hours 24]

The issue's targets: a day in under 60 s and 2 GB with latency_aware routing on this
2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "reference_world.yaml"


def measure(routing: str, hours: float, out: Path) -> dict:
    argv = [sys.executable, str(ROOT / "simulate.py"), "run", str(SCENARIO), "--no-charts", "--out", str(out),
            "--set", f"scheduler.routing={routing}", "--set", f"duration={hours}h"]
    if hours < 24:  # the outage at 14 h must fall inside the run
        argv += ["--set", f"failures.outages.0.at={hours / 2}h", "--set", f"failures.outages.0.duration={hours / 8}h"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{routing}: run failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    summary = json.loads((out / "summary.json").read_text())
    return {"routing": routing, "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall,
            "peak_mib": usage.ru_maxrss / 1024, "requests": summary["inference"]["arrived"],
            "jobs": summary["training"]["submitted"], "p99_ms": summary["inference"]["latency_ms"]["p99"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(routing, args.hours, Path(tmp) / routing) for routing in ("latency_aware", "nearest")]
    load = os.getloadavg()[0]
    print(f"reference world, {args.hours:g} h simulated (load average {load:.1f}):")
    for r in rows:
        print(f"  {r['routing']:14} {r['requests']:>11,} requests {r['jobs']:>6,} jobs  {r['cpu_s']:7.1f} CPU-s  "
              f"{r['wall_s']:7.1f} s wall  {r['peak_mib']:7.0f} MiB peak  p99 {r['p99_ms']:,.0f} ms")
    aware, nearest = rows
    print(f"  latency_aware / nearest, CPU: {aware['cpu_s'] / nearest['cpu_s']:.2f}x")


if __name__ == "__main__":
    main()
