"""The chart of a build plan over quarters, drawn from its ``plan_calendar.json`` only.

Top: the target metric per quarter as a fan (median, 50 % and 90 % bands over the growth
samples), the target as a line, and each quarter's share of samples meeting it. Bottom:
the fleet per quarter, stacked by pool, with each quarter's arrivals marked.

Public: ``draw_calendar_chart``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.report.labels import metric_label
from sim.report.style import PALETTE, apply_style, save_figure

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt

__all__ = ["draw_calendar_chart"]


def draw_calendar_chart(folder: Path, fmt: str = "png") -> list[Path]:
    """``charts/calendar.<fmt>`` of the plan in ``folder``."""
    report: dict[str, Any] = json.loads((Path(folder) / "plan_calendar.json").read_text(encoding="utf-8"))
    rows = report["quarters"]
    cal = report["calendar"]
    apply_style()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    q = np.array([r["quarter"] for r in rows], dtype=float)

    def column(key: str, i: int | None = None) -> np.ndarray:
        return np.array([np.nan if (v := (r[key] if i is None else r[key][i])) is None else v for r in rows])

    top.fill_between(q, column("band_90", 0), column("band_90", 1), color=PALETTE[0], alpha=0.15, linewidth=0,
                     label="90 % of growth samples")
    top.fill_between(q, column("band_50", 0), column("band_50", 1), color=PALETTE[0], alpha=0.3, linewidth=0,
                     label="50 %")
    top.plot(q, column("median"), color=PALETTE[0], marker="o", label="median")
    path, threshold = report["target"]["path"], report["target"]["threshold"]
    top.axhline(threshold, color=PALETTE[3], linestyle="--", label=f"target {cal['target']}")
    for row in rows:
        top.annotate(f"P {row['share_meeting']:.2f}", (row["quarter"], row["band_90"][1] or threshold),
                     textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8,
                     color="#000000" if row["met"] else PALETTE[3])
    top.set_ylabel(metric_label(path))
    top.set_ylim(bottom=0)
    top.set_title(f"{metric_label(path)} per quarter, with the share of growth samples meeting the target "
                  f"(needed: {cal['probability']:g})", fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    pools = list(rows[0]["fleet"]) if rows else []
    base = np.zeros(len(rows))
    for k, pool in enumerate(pools):
        values = np.array([r["fleet"][pool] for r in rows], dtype=float)
        bottom.bar(q, values, bottom=base, color=PALETTE[k % len(PALETTE)], label=pool, width=0.7)
        base += values
    arriving: dict[int, int] = {}
    for order in report["orders"]:
        arriving[order["arrival_quarter"]] = arriving.get(order["arrival_quarter"], 0) + order["replicas"]
    for quarter, n in arriving.items():
        bottom.annotate(f"+{n}", (quarter, base[quarter - 1]), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=8)
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("quarter")
    bottom.set_xticks(q)
    bottom.set_title(f"Fleet by pool (+n: replicas arriving); orders cost {report['total_usd']:,.0f} USD to the "
                     "horizon", fontsize=10)
    bottom.legend(loc="upper left", fontsize=8, ncol=2)
    fig.tight_layout()
    out = Path(folder) / "charts" / f"calendar.{fmt}"
    save_figure(fig, out)
    return [out]

