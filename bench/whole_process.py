"""Benchmark: ``simulate.py run`` as a user pays for it, against a hand-written heapq loop.

The M/M/8 validation queue (``scenarios/validation/mmc.yaml``: 7.2 requests/s, exponential
service of 1 s, rho 0.9) with its duration set for about ``--requests`` requests, run as a
whole process (interpreter start-up, imports, scenario, world, engine, metrics, run
folder, charts), against ``bench/heapq_mmc.py`` on the same queue and number of customers,
also a whole process. The runs alternate back to back (heapq loop, ``run``,
``run --no-charts``) for ``--pairs`` rounds; each is timed in CPU seconds (user + system,
children included) from ``os.wait4``, and the medians give throughputs in requests per
CPU second and their ratio (Meridian / heapq loop; the target is at least 0.66).

Memory: the peak RSS of ``run`` at each of ``--memory-sizes`` requests, and the marginal
bytes per request between the smallest and the largest (the target is at most 120 B).

Both sides run as a user's Python runs them: with bytecode caching (this machine's
environment sets ``PYTHONDONTWRITEBYTECODE``; the bench clears it for both, and one untimed
small run of each fills the caches first); ``--no-bytecode-cache`` keeps it set.
``--tree DIR`` measures another checkout's ``simulate.py`` (for example ``git archive main``
unpacked), for a before/after in the same conditions; a tree without ``--no-charts`` skips
that line.

    python bench/whole_process.py [--requests 1000000] [--pairs 3] [--memory-sizes 1000000,3000000]
                                  [--tree DIR] [--no-bytecode-cache]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMC = ROOT / "scenarios" / "validation" / "mmc.yaml"
RATE_PER_S = 7.2
WARM_UP = 20_000  # requests of the untimed first runs (longer than the scenario's 20-minute warm-up)
# One thread per process for both sides, as sweeps run (BLAS pools would blur CPU seconds).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)


@dataclass(frozen=True)
class Measured:
    """One whole process: CPU seconds (user + system) and peak resident set size."""

    cpu_s: float
    peak_rss_bytes: int
    stdout: str


def measure(argv: list[str]) -> Measured:
    """Run ``argv`` to completion and read its resource use from ``wait4``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.read()[-2000:]}")
        return Measured(usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.read())


def heapq_loop(n: int) -> Measured:
    return measure([sys.executable, str(ROOT / "bench" / "heapq_mmc.py"), str(n)])


def meridian(tree: Path, n: int, out: Path, charts: bool = True) -> tuple[Measured, int]:
    """``simulate.py run`` of ``tree`` on the M/M/8 for about ``n`` requests; also the requests that arrived."""
    argv = [sys.executable, str(tree / "simulate.py"), "run", str(MMC), "--set", f"duration={n / RATE_PER_S:.0f}s",
            "--out", str(out)] + ([] if charts else ["--no-charts"])
    measured = measure(argv)
    run_dir = Path(measured.stdout.splitlines()[-1])
    arrived = json.loads((run_dir / "summary.json").read_text())["inference"]["arrived"]
    return measured, arrived


def warm_up(tree: Path, scratch: Path, bare: bool) -> None:
    """One small untimed run of each command, so that every process after it starts with
    its bytecode cached, as a user's does."""
    heapq_loop(WARM_UP)
    meridian(tree, WARM_UP, scratch / "warm-run")
    if bare:
        meridian(tree, WARM_UP, scratch / "warm-bare", charts=False)


def throughput_table(tree: Path, n: int, pairs: int, scratch: Path, bare: bool) -> None:
    rows = []
    for k in range(pairs):
        heap = heapq_loop(n)
        run, arrived = meridian(tree, n, scratch / f"run-{k}")
        bare_s = meridian(tree, n, scratch / f"bare-{k}", charts=False)[0].cpu_s if bare else float("nan")
        rows.append((heap.cpu_s, run.cpu_s, bare_s))
        print(f"round {k + 1}: heapq loop {heap.cpu_s:.2f} CPU-s, run {run.cpu_s:.2f}, "
              f"run --no-charts {bare_s:.2f}", flush=True)
    heap_s, run_s, bare_s = (statistics.median(col) for col in zip(*rows, strict=True))
    heap_rate = n / heap_s
    print(f"requests: heapq loop {n:,}, Meridian {arrived:,}")
    print(f"{'process':28} {'CPU-s (median)':>14} {'requests/CPU-s':>15} {'ratio':>6}")
    lines = [("heapq loop (bench/heapq_mmc)", heap_s, n), ("simulate.py run", run_s, arrived)]
    if bare:
        lines.append(("simulate.py run --no-charts", bare_s, arrived))
    for name, cpu_s, count in lines:
        print(f"{name:28} {cpu_s:14.2f} {count / cpu_s:15,.0f} {count / cpu_s / heap_rate:6.2f}")


def memory_table(tree: Path, sizes: list[int], scratch: Path) -> None:
    points = []
    for n in sizes:
        run, arrived = meridian(tree, n, scratch / f"mem-{n}")
        points.append((arrived, run.peak_rss_bytes))
        print(f"peak RSS of run at {arrived:,} requests: {run.peak_rss_bytes / 2**20:,.1f} MiB", flush=True)
    (n0, rss0), (n1, rss1) = points[0], points[-1]
    if n1 > n0:
        print(f"marginal peak RSS: {(rss1 - rss0) / (n1 - n0):.1f} B per request "
              f"({n0:,} -> {n1:,} requests)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=3, help="rounds of (heapq loop, run, run --no-charts)")
    parser.add_argument("--memory-sizes", default="1000000,3000000",
                        help="comma-separated request counts for peak RSS ('' to skip)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the Meridian checkout to run (default: this one)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="leave PYTHONDONTWRITEBYTECODE as the environment has it")
    args = parser.parse_args()
    tree = args.tree.resolve()
    if args.no_bytecode_cache and "PYTHONDONTWRITEBYTECODE" in os.environ:
        ENV["PYTHONDONTWRITEBYTECODE"] = os.environ["PYTHONDONTWRITEBYTECODE"]
    bare = "--no-charts" in (tree / "simulate.py").read_text(encoding="utf-8")
    print(f"tree: {tree}; bytecode cache: {'off' if 'PYTHONDONTWRITEBYTECODE' in ENV else 'on'}")
    with tempfile.TemporaryDirectory(prefix="meridian-whole-") as tmp:
        scratch = Path(tmp)
        warm_up(tree, scratch, bare)
        if args.pairs:
            throughput_table(tree, args.requests, args.pairs, scratch, bare)
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        if sizes:
            memory_table(tree, sizes, scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
