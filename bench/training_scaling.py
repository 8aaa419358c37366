"""Benchmark: a year of the Gavel trace with failures, CPU seconds against simulated time.

Eight tenants replay the Philly-derived Gavel trace (``gavel_msr_vc_ee9e8c_seed0.csv``,
2,000 jobs over 52 days, in ``../shared/data``) stretched over a year, each tenant's clock
2 % slower than the last so that their jobs interleave and the year stays loaded (14,697
jobs arrive within it), on two regions of 8 A100 nodes of 8 GPUs, with node failures (MTBF
30 days a node, the default repair) and hourly checkpoints. For each duration a fresh
process simulates the scenario in memory (scenario -> world -> engine -> metrics, with
``sim.runner.execute``: no files, so CSV writing does not blur the picture) and reports its
CPU seconds, jobs and events; then, per step between durations, CPU seconds per simulated
day and per thousand events. Linear scaling shows as a flat cost per thousand events (the
trace ramps up over its first quarter, so the cost per day grows until day ~90).

``--tree DIR`` runs another checkout instead (for example ``git archive main`` unpacked),
so the same command gives the before and after curves.

    python bench/training_scaling.py [--days 46,91,182,273,365] [--tree DIR] [--data DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE, THROUGHPUTS = "gavel_msr_vc_ee9e8c_seed0.csv", "gavel_isolated_throughputs_steps_per_s.csv"
TENANTS = 8
TRACE_DAYS = 52.2  # the trace's span

# Simulate in a fresh interpreter and print what it did; CPU time comes from wait4.
DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from sim.runner import execute
from sim.scenario import load_scenario
outcome = execute(load_scenario(sys.argv[2], [f"duration={sys.argv[3]}d"]))
t = outcome.summary["training"]
print(json.dumps({"jobs": t["submitted"], "completed": t["completed"], "interruptions": t["interruptions"],
                  "events": outcome.events_processed}))
"""


def scenario_text(data: Path) -> str:
    """The bench scenario: two regions, eight tenants replaying the trace, node failures."""
    lines = ["name: gavel-year", "seed: 3", "duration: 365d", "regions:"]
    for region in ("eastus", "westeurope"):
        lines += [f"  - name: {region}",
                  "    pools: [{name: a100, gpu: A100, replicas: 8, gpus_per_replica: 8, serves: training}]"]
    lines.append("training:")
    for k in range(TENANTS):
        time_scale = TRACE_DAYS / 365.0 * (1.0 - 0.02 * k)
        lines += [f"  - name: tenant{k}",
                  f"    jobs: {{source: gavel, path: {data / TRACE}, throughputs_path: {data / THROUGHPUTS}, "
                  f"time_scale: {time_scale:.6f}}}",
                  "    checkpoint: {interval: 1h, write: 30s, restart: 2m}"]
    lines += ["failures:", "  nodes: [{mtbf: 30d}]"]
    return "\n".join(lines) + "\n"


def measure(tree: Path, scenario: Path, days: float) -> dict:
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tree), str(scenario), f"{days:g}"],
                                stdout=out, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{days:g} days failed: {proc.stderr.read() if proc.stderr else ''}")
        out.seek(0)
        result = json.loads(out.read().splitlines()[-1])
    return {**result, "days": days, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="46,91,182,273,365", help="comma-separated simulated durations")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding the Gavel trace and throughput table")
    args = parser.parse_args()
    if not (args.data / TRACE).is_file():
        print(f"no {TRACE} in {args.data} (see --data)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="meridian-training-") as tmp:
        scenario = Path(tmp) / "gavel_year.yaml"
        scenario.write_text(scenario_text(args.data.resolve()))
        rows = [measure(args.tree.resolve(), scenario, float(d)) for d in args.days.split(",")]
    print(f"tree: {args.tree.resolve()}")
    print(f"{'days':>5} {'jobs':>6} {'interr.':>6} {'events':>8} {'CPU-s':>7} {'peak MiB':>8}"
          f" {'step CPU-s/day':>14} {'step CPU-s/1k events':>20}")
    previous = {"days": 0.0, "cpu_s": 0.0, "events": 0}
    for row in rows:
        per_day = (row["cpu_s"] - previous["cpu_s"]) / (row["days"] - previous["days"])
        per_event = (row["cpu_s"] - previous["cpu_s"]) / max(row["events"] - previous["events"], 1) * 1000
        print(f"{row['days']:5g} {row['jobs']:6,} {row['interruptions']:6,} {row['events']:8,} {row['cpu_s']:7.2f}"
              f" {row['rss_mib']:8.0f} {per_day:14.4f} {per_event:20.3f}")
        previous = row
    return 0


if __name__ == "__main__":
    sys.exit(main())
