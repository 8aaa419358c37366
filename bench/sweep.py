"""Benchmark: wall time of one sweep run serially and on a pool of worker processes.

The M/M/8 validation queue for 24 simulated hours (about 600,000 requests, about 1 s a
run), at 16 arrival rates from 6.0 to 7.5 per second, run once with 1 worker (in this process) and once with N worker
processes (``spawn``; their start-up is inside the timed region, as it is for a user), each
into a fresh folder. Prints both wall times and the speed-up, and checks that both give
byte-identical ``summary.json`` files.

    python bench/sweep.py [--runs 16] [--workers 2] [--backend process|dask] [--duration 24h]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.experiment import parse_grid, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "validation" / "mmc.yaml"


def rates(runs: int) -> str:
    values = (f"{6.0 + 1.5 * k / max(runs - 1, 1):.3f}" for k in range(runs))
    return "inference.req.arrival.rate_per_s=" + ",".join(values)


def timed_sweep(out: Path, runs: int, duration: str, backend: str, workers: int) -> float:
    plan = plan_sweep(SCENARIO, [parse_grid(rates(runs))], sets=[f"duration={duration}"], out=out)
    start = time.perf_counter()
    outcome = run_sweep(plan, backend=backend, workers=workers, progress=False)
    wall = time.perf_counter() - start
    assert outcome.count("ok") == len(plan.tasks), outcome.results
    return wall


def summaries(folder: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(folder.glob("p*/summary.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=("process", "dask"), default="process")
    parser.add_argument("--duration", default="24h")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial = timed_sweep(Path(tmp) / "serial", args.runs, args.duration, "process", 1)
        parallel = timed_sweep(Path(tmp) / "parallel", args.runs, args.duration, args.backend, args.workers)
        same = summaries(Path(tmp) / "serial") == summaries(Path(tmp) / "parallel")
    print(f"{args.runs} runs of mmc.yaml, duration {args.duration}")
    print(f"1 worker (serial, in process): {serial:.2f} s ({serial / args.runs:.2f} s per run)")
    print(f"{args.workers} workers ({args.backend}): {parallel:.2f} s")
    print(f"speed-up: {serial / parallel:.2f}x; identical summaries: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
