"""Fluid against exact on the shipped scenarios with inference: mean latency, utilisation
and SLO attainment, and the gap in per cent (the table of VALIDATION.md).

    python bench/fluid_accuracy.py [SCENARIO...]      default: every shipped one with inference
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.errors import UsageError
from sim.runner import execute
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def headline(summary: dict) -> tuple[float | None, float, float | None]:
    inference = summary["inference"]
    return inference["latency_ms"]["mean"], summary["utilization"]["mean"], inference["slo_attainment"]


def gap(a: float | None, b: float | None) -> str:
    return f"{(b - a) / a * 100:+.2f} %" if a and b is not None else "-"


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    paths = argv or [str(p.relative_to(ROOT)) for p in sorted((ROOT / "scenarios").glob("*.yaml"))
                     if load_scenario(p).scenario.inference and p.name != "fluid_day.yaml"]
    print("| scenario | latency exact / fluid (ms) | gap | utilisation exact / fluid | gap "
          "| SLO exact / fluid | gap |")
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        try:
            fluid = headline(execute(load_scenario(path, ["fidelity=fluid"])).summary)
        except UsageError as exc:
            print(f"| `{Path(path).name}` | refused: {exc} |")
            continue
        exact = headline(execute(load_scenario(path, ["fidelity=exact"])).summary)
        cells = [f"{e:.4g} / {f:.4g} | {gap(e, f)}" if e is not None and f is not None else "- | -"
                 for e, f in zip(exact, fluid, strict=True)]
        print(f"| `{Path(path).name}` | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
