"""Exact against fluid: wall time of ``execute`` on the 10-region, 10-million-request day.

    python bench/fluid.py [SCENARIO] [--set PATH=VALUE]...

Runs the scenario (default ``scenarios/fluid_day.yaml``) once with ``fidelity=exact`` and
once with ``fidelity=fluid`` (each after a warm-up call of the fluid run, so imports are
not counted), in one process, and prints the wall time of each, their ratio, and the
headline figures of both summaries side by side. The target of issue 14 is a fluid run in
at most 1/30 of the exact run's time.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.runner import execute
from sim.scenario import load_scenario


def figures(summary: dict) -> dict[str, float | None]:
    inference = summary["inference"]
    return {"requests": inference["arrived"], "latency_mean_ms": inference["latency_ms"]["mean"],
            "latency_p99_ms": inference["latency_ms"]["p99"], "utilization": summary["utilization"]["mean"],
            "slo_attainment": inference["slo_attainment"]}


def main(argv: list[str]) -> int:
    path = argv[0] if argv and not argv[0].startswith("--") else "scenarios/fluid_day.yaml"
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    warnings.simplefilter("ignore")
    execute(load_scenario(path, [*sets, "fidelity=fluid"]))  # imports, caches
    timed = {}
    for fidelity in ("fluid", "exact"):
        loaded = load_scenario(path, [*sets, f"fidelity={fidelity}"])
        clock = time.perf_counter()
        outcome = execute(loaded)
        timed[fidelity] = (time.perf_counter() - clock, figures(outcome.summary))
    (exact_s, exact), (fluid_s, fluid) = timed["exact"], timed["fluid"]
    print(f"{path}: exact {exact_s:.2f} s, fluid {fluid_s:.3f} s, fluid/exact = 1/{exact_s / fluid_s:.0f}")
    for key in exact:
        a, b = exact[key], fluid[key]
        gap = f"{(b - a) / a * 100:+.2f} %" if a and b is not None else ""
        print(f"  {key:16s} exact {a!s:>22}  fluid {b!s:>22}  {gap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
