"""The chart of a build plan over quarters, drawn from its ``plan_calendar.json`` only.

Left, one panel per KPI (the target's first): its median per quarter with the 50 % and
90 % bands over the samples (from the exact runs when the plan was confirmed, the fluid
search's median dashed beside them), the target as a line and each quarter's probability
of meeting it. Right: the fleet per quarter stacked by pool (+n: replicas arriving), the
power each capped region draws against its cap (when a region is capped), and the spend
per quarter; the last panel of the shorter column spans the rows left over.

``simulate.py plan-calendar`` draws it into ``charts/``; ``simulate.py report`` on a plan
folder redraws it with the tables (:func:`calendar_charts`, :func:`calendar_tables`).

Public: ``read_calendar_report``, ``calendar_figure``, ``draw_calendar_chart``, ``calendar_charts``,
``calendar_tables``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sim.report.files import read_json
from sim.report.labels import metric_axis, op_symbol
from sim.report.style import OBJECTIVE, PALETTE, apply_style, save_figure

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

__all__ = ["read_calendar_report", "calendar_figure", "draw_calendar_chart", "calendar_charts", "calendar_tables"]


def _series(items: list[dict[str, Any]], key: str, index: int | None = None) -> np.ndarray:
    """``item[key]`` (or ``item[key][index]``) of each item, NaN where absent."""
    values = [item.get(key) for item in items]
    if index is not None:
        values = [None if v is None else v[index] for v in values]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _moves(decided: list[dict[str, Any]], path: str) -> bool:
    """Whether KPI ``path`` takes more than one value over the quarters and samples."""
    values = [v for d in decided for v in (d["kpis"][path]["band_90"] + [d["kpis"][path]["median"]])
              if v is not None]
    return bool(values) and max(values) - min(values) > 1e-9 * max(1.0, abs(max(values)))


def read_calendar_report(folder: Path) -> dict[str, Any]:
    """``plan_calendar.json`` of a plan folder, with the command and run counts of its
    ``manifest.json`` (when there is one)."""
    report = read_json(Path(folder) / "plan_calendar.json")
    manifest = Path(folder) / "manifest.json"
    if manifest.is_file():
        report.update(read_json(manifest))
    return report


def draw_calendar_chart(folder: Path, fmt: str = "png") -> list[Path]:
    """``charts/calendar.<fmt>`` of the plan in ``folder``."""
    fig = calendar_figure(read_calendar_report(folder))
    out = Path(folder) / "charts" / f"calendar.{fmt}"
    save_figure(fig, out)
    return [out]


def calendar_figure(report: dict[str, Any]) -> Any:
    """The plan's figure (see the module's docstring)."""
    rows = report["quarters"]
    exact = bool(report.get("exact", "none") != "none" and rows and "exact" in rows[0])
    by_exact = exact and report.get("decided_by", "exact") == "exact"
    decided = [(r["exact"] if by_exact else r) for r in rows]
    target = report["target"]
    # The target always; another KPI when it moves across quarters and samples (a flat panel
    # says nothing a caption could not).
    kpis = [k for k in report.get("kpis", [target["path"]]) if k == target["path"] or _moves(decided, k)]
    apply_style()
    q = np.array([r["quarter"] for r in rows], dtype=float)
    # Right: the fleet, the power of capped regions (only if a region is capped), the cost.
    capped = _capped(rows)
    right_panels = [lambda ax: _plot_fleet(ax, report, q), *([lambda ax: _plot_power(ax, rows, capped, q)]
                                                              if capped else []),
                    lambda ax: _plot_cost(ax, report, q)]
    n_left = max(len(kpis), 1)
    n_rows = max(n_left, len(right_panels))
    fig = plt.figure(figsize=(13, 2.6 * max(n_rows, 2) + 0.6))
    grid = fig.add_gridspec(n_rows, 2)
    left, right = _column(fig, grid, 0, n_left, n_rows), _column(fig, grid, 1, len(right_panels), n_rows)
    for ax, path in zip(left, kpis, strict=False):
        _plot_kpi(ax, report, path, q, exact, by_exact)
    for ax, draw in zip(right, right_panels, strict=True):
        draw(ax)
    for ax in [*left, *right]:
        ax.set_xticks(q)
    left[-1].set_xlabel("quarter")
    right[-1].set_xlabel("quarter")
    seed = f", seed {report['seed']}" if "seed" in report else ""
    n = len(report["samples"])
    fig.suptitle(f"Build plan for {Path(report['scenario']).name}{seed}: {n} sample{'s' if n != 1 else ''}, "
                 + ("decided by exact runs" if by_exact else "fluid search, checked by exact runs" if exact
                    else "fluid search only"), fontsize=11)
    fig.tight_layout()
    return fig


def _plot_kpi(ax: Any, report: dict[str, Any], path: str, q: np.ndarray, exact: bool, by_exact: bool) -> None:
    """KPI ``path`` per quarter: median and bands of the deciding runs, the other mode's
    median dashed beside them (when both ran), and the target on the target's panel."""
    rows = report["quarters"]
    decided = [(r["exact"] if by_exact else r) for r in rows]
    label, other = ("exact runs", "fluid search") if by_exact else ("fluid", "exact runs")
    shown = [d["kpis"][path] for d in decided]
    factor, axis_label = metric_axis(path, max((v for b in shown for v in b["band_90"] if v is not None),
                                               default=None))

    def scaled(items: list[dict[str, Any]], key: str, index: int | None = None) -> np.ndarray:
        return _series(items, key, index) * factor

    ax.fill_between(q, scaled(shown, "band_90", 0), scaled(shown, "band_90", 1), color=PALETTE[0],
                    alpha=0.15, linewidth=0, label=f"90 % of samples ({label})")
    ax.fill_between(q, scaled(shown, "band_50", 0), scaled(shown, "band_50", 1), color=PALETTE[0],
                    alpha=0.3, linewidth=0, label="50 %")
    ax.plot(q, scaled(shown, "median"), color=PALETTE[0], marker="o", label=f"median ({label})")
    if exact:
        beside = [(r if by_exact else r["exact"])["kpis"][path] for r in rows]
        ax.plot(q, scaled(beside, "median"), color=PALETTE[1], linestyle="--", marker=".",
                label=f"median ({other})")
    ax.set_ylabel(axis_label, fontsize=8)
    ax.set_ylim(bottom=0)
    if path == report["target"]["path"]:
        _mark_target(ax, report, decided, factor, axis_label)
    else:
        ax.set_title(axis_label, fontsize=9)
    ax.legend(loc="best", fontsize=7)


def _mark_target(ax: Any, report: dict[str, Any], decided: list[dict[str, Any]], factor: float,
                 axis_label: str) -> None:
    """The target as a line, and above each quarter the share of samples meeting it (in
    colour where the quarter misses the probability)."""
    target, path = report["target"], report["target"]["path"]
    threshold = target["threshold"] * factor
    ax.axhline(threshold, label=f"target {op_symbol(target['op'])} {threshold:,g}", **OBJECTIVE)
    for row, d in zip(report["quarters"], decided, strict=True):
        top = d["kpis"][path]["band_90"][1]
        ax.annotate(f"P {d['share_meeting']:.2f}", (row["quarter"], threshold if top is None else top * factor),
                    textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7,
                    color="#000000" if row["met"] else PALETTE[3])
    ax.set_ylim(0, max(ax.get_ylim()[1], threshold) * 1.15)
    ax.set_title(f"{axis_label}: P = share of samples meeting the target (needed "
                 f"{report['calendar']['probability']:g})", fontsize=9, pad=12)


def _plot_fleet(ax: Any, report: dict[str, Any], q: np.ndarray) -> None:
    """The fleet per quarter stacked by pool, each change annotated (+n arriving, -n retired)."""
    rows = report["quarters"]
    pools = list(rows[0]["fleet"]) if rows else []
    base = np.zeros(len(rows))
    for k, pool in enumerate(pools):
        values = np.array([r["fleet"][pool] for r in rows], dtype=float)
        ax.bar(q, values, bottom=base, color=PALETTE[k % len(PALETTE)], label=pool, width=0.7)
        base += values
    for quarter, text in _fleet_changes(report).items():
        if quarter > len(rows):
            continue
        ax.annotate(text, (quarter, base[quarter - 1]), textcoords="offset points", xytext=(0, 3),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("replicas")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(base.max() if len(base) else 1, 1) * 1.3)
    ax.set_title("Fleet of the planned pools (+n: replicas arriving, -n: retired)", fontsize=9)
    ax.legend(loc="upper left", fontsize=7, ncol=2)


def _fleet_changes(report: dict[str, Any]) -> dict[int, str]:
    """Per quarter with a change, in quarter order: ``+n`` replicas arriving over ``-n retired``."""
    arriving: dict[int, int] = {}
    for order in report["orders"]:
        arriving[order["arrival_quarter"]] = arriving.get(order["arrival_quarter"], 0) + order["replicas"]
    retiring: dict[int, int] = {}
    for gone in report["calendar"].get("retire", []):
        retiring[gone["quarter"]] = retiring.get(gone["quarter"], 0) + gone["replicas"]
    return {quarter: "\n".join(([f"+{arriving[quarter]}"] if quarter in arriving else [])
                               + ([f"-{retiring[quarter]} retired"] if quarter in retiring else []))
            for quarter in sorted(set(arriving) | set(retiring))}


def _column(fig: Any, grid: Any, col: int, n: int, n_rows: int) -> list[Any]:
    """``n`` axes down column ``col`` of ``grid``, the last one spanning the rows left over
    (no empty cells when one column has fewer panels than the other)."""
    return [fig.add_subplot(grid[i, col] if i < n - 1 else grid[i:n_rows, col]) for i in range(n)]


def _capped(rows: list[dict[str, Any]]) -> list[str]:
    """The regions with a power cap in some quarter."""
    return sorted({region for r in rows for region, use in r.get("regions", {}).items()
                   if use.get("mw_cap") is not None})


def _plot_power(ax: Any, rows: list[dict[str, Any]], capped: list[str], q: np.ndarray) -> None:
    """The power each capped region draws against its cap."""
    uses = {region: [r["regions"].get(region, {}) for r in rows] for region in capped}
    top = max((v for use in uses.values() for key in ("mw", "mw_cap") for v in _series(use, key)
               if np.isfinite(v)), default=0.0)
    scale, unit = (1.0, "MW") if top >= 1.0 else (1e3, "kW")  # a site under a megawatt reads in kW
    for k, (region, use) in enumerate(uses.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(q, _series(use, "mw") * scale, color=color, marker="o", label=f"{region}: drawn")
        ax.step(q, _series(use, "mw_cap") * scale, where="mid", color=color, linestyle="--",
                label=f"{region}: cap")
    ax.set_ylabel(f"{unit} (GPUs x TDP x PUE)")
    ax.set_ylim(0, top * scale * 1.15 or None)  # room above the cap, which would sit on the frame
    ax.legend(loc="lower left", fontsize=7)  # the lines run near the cap, at the top
    ax.set_title("Power of the capped regions against their caps", fontsize=9)


def _plot_cost(ax: Any, report: dict[str, Any], q: np.ndarray) -> None:
    """The spend per quarter and its running total, in thousand USD."""
    spend = np.array([r.get("usd", 0.0) for r in report["quarters"]], dtype=float) / 1e3
    ax.bar(q, spend, color=PALETTE[2], width=0.7, label="spend in the quarter")
    ax.plot(q, np.cumsum(spend), color="#000000", marker=".", label="cumulative")
    ax.set_ylabel("thousand USD")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(f"Cost of the orders: {report['total_usd']:,.0f} USD to the horizon", fontsize=9)


def calendar_charts(folder: Path, report: dict[str, Any]) -> list[Any]:
    from sim.report.chartspec import Chart

    return [Chart("calendar", "Build plan: KPIs per quarter, fleet, power and cost", "plan_calendar.json",
                  lambda: calendar_figure(report))]


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:,.4g}"


def _share(share: dict[str, Any]) -> str:
    """``0.94 [0.72, 0.99]``: a share meeting the target with its 95 % interval."""
    return f"{share['share_meeting']:.2f} [{share['ci'][0]:.2f}, {share['ci'][1]:.2f}]"


def calendar_tables(report: dict[str, Any]) -> list[Any]:
    """Per quarter: the probabilities, the target's median and band, the fleet and what binds;
    then the orders."""
    from sim.report.document import Table

    by_exact = report.get("decided_by") == "exact"
    path = report["target"]["path"]
    rows = []
    for r in report["quarters"]:
        shown = r["exact"]["kpis"][path] if by_exact else r
        exact, check = (_share(r[k]) if k in r else "-" for k in ("exact", "check"))
        rows.append((str(r["quarter"]), f"{r['share_meeting']:.2f}", exact, check, _number(shown["median"]),
                     f"[{_number(shown['band_90'][0])}, {_number(shown['band_90'][1])}]",
                     ", ".join(f"{k}={v}" for k, v in r["fleet"].items()),
                     "met" if r["met"] else f"NOT MET: {r['binding']}"))
    quarters = Table(f"Quarters: {report['calendar']['target']} with probability {report['calendar']['probability']:g} "
                     f"(decided by {'exact runs' if by_exact else 'the fluid search'})",
                     ("quarter", "P fluid", "P exact [95 % CI]", "P brute force", "median", "90 % band", "fleet",
                      "status"), tuple(rows))
    orders = Table(f"Orders: {report['total_usd']:,.0f} USD to the horizon",
                   ("order in", "arrives", "pool", "replicas", "price", "USD to horizon"),
                   tuple((str(o["order_quarter"]), str(o["arrival_quarter"]), o["pool"], str(o["replicas"]),
                          o.get("price", ""), f"{o['usd_to_horizon']:,.0f}") for o in report["orders"]))
    return [quarters, orders]
