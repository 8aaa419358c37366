"""Charts of training jobs, drawn from a run's ``jobs.csv`` (one row per job).

- job completion time (``end_s - arrival_s``) as a CDF per workload, completed jobs only;
- queueing delay (``wait_s``, every attempt) as a CDF per workload, jobs that started;
- GPU-hours held per workload, split into useful work, work lost to interruptions and the
  rest of the held time (data waits, restarts, checkpoint writes).

A CDF panel is drawn only when at least two jobs give it a value (one job's "CDF" is a
single step, none is an empty frame); the GPU-hours panel always is.

Public: ``ecdf``, ``plot_jct_cdf``, ``plot_wait_cdf``, ``plot_gpu_hours``, ``gpu_hours_unit``,
``training_figure``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.report.style import PALETTE

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["ecdf", "plot_jct_cdf", "plot_wait_cdf", "plot_gpu_hours", "gpu_hours_unit", "training_figure"]

Rows = list[dict[str, str]]


def ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and the share of values at or below each (in %)."""
    x = np.sort(values)
    return x, np.arange(1, len(x) + 1) / len(x) * 100


def _number(text: str) -> float:
    return float(text) if text not in ("", None) else np.nan


def _by_workload(rows: Rows, value: Callable[[dict[str, str]], float]) -> dict[str, np.ndarray]:
    """Workload -> finite values of ``value(row)``, plus ``"*"`` for all workloads."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        v = value(row)
        if np.isfinite(v):
            groups.setdefault(row["workload"], []).append(v)
            groups.setdefault("*", []).append(v)
    if len(groups) == 2:  # one workload: its curve would repeat "all jobs"
        groups = {"*": groups["*"]}
    return {k: np.asarray(v) for k, v in sorted(groups.items(), key=lambda kv: (kv[0] != "*", kv[0]))}


def _plot_cdfs(ax: Axes, groups: dict[str, np.ndarray], xlabel: str, title: str) -> None:
    for k, (name, values) in enumerate(groups.items()):
        x, y = ecdf(values)
        style = {"color": "#000000", "linewidth": 2.2} if name == "*" else {"color": PALETTE[k % len(PALETTE)]}
        ax.step(x, y, where="post", label=f"all jobs (n={len(x)})" if name == "*" else f"{name} (n={len(x)})", **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("jobs within (%)")
    ax.set_ylim(0, 100.5)
    ax.set_title(title)
    if groups:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no jobs", ha="center", transform=ax.transAxes)


def _jct_groups(rows: Rows) -> dict[str, np.ndarray]:
    done = [r for r in rows if r["status"] == "completed"]
    return _by_workload(done, lambda r: (_number(r["end_s"]) - _number(r["arrival_s"])) / 3600.0)


def _wait_groups(rows: Rows) -> dict[str, np.ndarray]:
    started = [r for r in rows if r["start_s"] != ""]
    return _by_workload(started, lambda r: _number(r["wait_s"]) / 3600.0)


def plot_jct_cdf(ax: Axes, rows: Rows) -> None:
    _plot_cdfs(ax, _jct_groups(rows), "job completion time (h)", "Job completion time (completed jobs)")


def plot_wait_cdf(ax: Axes, rows: Rows) -> None:
    _plot_cdfs(ax, _wait_groups(rows), "queueing delay (h)", "Queueing delay (jobs that started)")


def gpu_hours_unit(top: float) -> tuple[float, str]:
    """(divisor, axis label) for GPU-hours up to ``top``: plain, thousands or millions (no
    ``1e7`` offset printed at the axis' end)."""
    for divisor, label in ((1e6, "GPU-hours held (millions)"), (1e3, "GPU-hours held (thousands)")):
        if top >= 10 * divisor:
            return divisor, label
    return 1.0, "GPU-hours held"


def plot_gpu_hours(ax: Axes, rows: Rows) -> None:
    """Stacked horizontal bars per workload: useful, lost to interruptions, other held GPU-hours."""
    names = sorted({r["workload"] for r in rows})
    total = {k: np.zeros(len(names)) for k in ("held_gpu_h", "useful_gpu_h", "lost_gpu_h")}
    for row in rows:
        i = names.index(row["workload"])
        for key in total:
            total[key][i] += np.nan_to_num(_number(row.get(key, "")))
    other = np.maximum(total["held_gpu_h"] - total["useful_gpu_h"] - total["lost_gpu_h"], 0.0)
    y = np.arange(len(names))
    left = np.zeros(len(names))
    divisor, xlabel = gpu_hours_unit(float(np.max(total["held_gpu_h"], initial=0.0)))
    for values, label, color in ((total["useful_gpu_h"], "useful", PALETTE[2]),
                                 (total["lost_gpu_h"], "lost to interruptions", PALETTE[3]),
                                 (other, "other held (data waits, restarts, checkpoints)", PALETTE[5])):
        ax.barh(y, values / divisor, left=left, height=0.5, color=color, label=label)
        left += values / divisor
    ax.set_yticks(y, names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.set_title("GPU-hours held by training")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8)


def _enough(groups: dict[str, np.ndarray]) -> bool:
    return len(groups.get("*", ())) >= 2


def training_figure(rows: Rows) -> plt.Figure:
    """The CDF panels that have data for two jobs or more, then GPU-hours held."""
    panels = [p for p, groups in ((plot_jct_cdf, _jct_groups(rows)), (plot_wait_cdf, _wait_groups(rows)))
              if _enough(groups)] + [plot_gpu_hours]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + (1.5 if len(panels) == 1 else 0), 4.6),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        panel(ax, rows)
    fig.tight_layout()
    return fig
