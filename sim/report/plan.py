"""The chart of a capacity plan, drawn from its ``plan.json`` only.

``plot_plan(ax, report)`` draws the target metric against the varied capacity: each seed
as a dot, the mean over seeds as a line, its 95 % t interval as a band, the target as a
horizontal line and the answer as a vertical one. The points are the ones the search
evaluated, so they are dense near the answer and sparse elsewhere.

Public: ``read_plan``, ``plot_plan``, ``draw_plan_chart``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.report.charts import plain_numbers, stamp
from sim.report.labels import metric_axis, op_symbol, param_label
from sim.report.style import OBJECTIVE, PALETTE, apply_style, save_figure

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["read_plan", "plot_plan", "draw_plan_chart"]


def read_plan(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / "plan.json").read_text(encoding="utf-8"))


def plot_plan(ax: Axes, report: dict[str, Any]) -> None:
    """Metric against capacity: seeds as dots, mean line, 95 % band, target and answer lines."""
    points = [p for p in report["points"] if p["mean"] is not None]
    factor, ylabel = metric_axis(report["path"])
    x = np.array([p["value"] for p in points], dtype=float)
    mean = np.array([p["mean"] for p in points], dtype=float) * factor
    low = np.array([p["ci"][0] if p["ci"][0] is not None else p["mean"] for p in points], dtype=float) * factor
    high = np.array([p["ci"][1] if p["ci"][1] is not None else p["mean"] for p in points], dtype=float) * factor
    seeds_x = [p["value"] for p in points for v in p["values"].values() if v is not None]
    seeds_y = [v * factor for p in points for v in p["values"].values() if v is not None]
    threshold = report["threshold"] * factor
    if seeds_y and min(seeds_y) >= 0:  # a metric that is never negative: so is its band
        low = np.maximum(low, 0.0)
    ax.fill_between(x, low, high, color=PALETTE[0], alpha=0.2, linewidth=0, label="95 % interval of the mean")
    ax.plot(x, mean, color=PALETTE[0], marker="o", label=f"mean over {len(report['seeds'])} seeds")
    ax.scatter(seeds_x, seeds_y, color=PALETTE[0], s=12, alpha=0.5, label="one seed")
    ax.axhline(threshold, label=f"target {op_symbol(report['op'])} {threshold:,g}", **OBJECTIVE)
    if report["answer"] is not None:
        ax.axvline(report["answer"], color=PALETTE[2], linestyle=":", label=f"answer {report['answer']}")
    if not _scale(ax, seeds_y, threshold):
        plain_numbers(ax)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # the varied quantity is a whole number
    ax.set_xlabel(param_label(report["vary"]))
    ax.set_ylabel(ylabel)
    ax.set_title(_title(report))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the band, never on it


def _scale(ax: Axes, values: list[float], threshold: float) -> bool:
    """A log axis when the values span more than a factor of 30 (queues blow up below
    capacity); symmetric-log, linear up to a tenth of the target, when some are <= 0.
    False (a linear axis) otherwise."""
    positive = [v for v in [*values, threshold] if v > 0]
    if len(positive) < 2 or max(positive) / min(positive) <= 30:
        return False
    if min(values) > 0 and threshold > 0:
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=threshold / 10 if threshold > 0 else min(positive))
        if min(values) >= 0:
            ax.set_ylim(bottom=0)
    return True


_RULES = {"all": "on every seed", "mean": "on the mean over seeds"}


def _title(report: dict[str, Any]) -> str:
    """``Least replicas of eu-west/a100 with time to first token, p99 (ms) ≤ 1,200 on every seed: 8``."""
    what = param_label(report["vary"]).split(" (")[0]
    rule = _RULES.get(report["rule"], f"(rule {report['rule']})")
    factor, label = metric_axis(report["path"])
    target = f"{label} {op_symbol(report['op'])} {report['threshold'] * factor:,g}"
    verdict = str(report["answer"]) if report["answer"] is not None else str(report["status"])
    return f"Least {what} with {target} {rule}: {verdict}"


def draw_plan_chart(folder: Path, fmt: str = "png") -> list[Path]:
    """``charts/plan.<fmt>`` of the plan in ``folder``; nothing when no point has a value."""
    report = read_plan(folder)
    if not any(p["mean"] is not None for p in report["points"]):
        return []
    apply_style()
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    plot_plan(ax, report)
    runs = sorted(Path(folder).glob("*/manifest.json"))
    if runs:
        stamp(fig, runs[0].parent, tight=True, seeds=report.get("seeds", []))
    path = Path(folder) / "charts" / f"plan.{fmt}"
    save_figure(fig, path)
    return [path]
