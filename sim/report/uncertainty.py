"""Charts and tables of an uncertainty study, drawn from its ``uncertainty_report.json`` and
``samples.csv`` only (``simulate.py uncertainty``, ``docs/planning.md``).

- **KPI bands**: one panel per KPI that varies across samples: each sample's value (its mean
  over seeds) against the uncertain input that moves that KPI most (largest Spearman rank
  correlation), the median over samples as a line, its 50 % band shaded dark and its 90 %
  band light, and the KPI's target, when one was asked for, in the objective style.
- **Targets**: the probability that a sample meets each target, with its Wilson 95 % interval.

``simulate.py uncertainty`` draws both into ``charts/`` (:func:`draw_uncertainty_charts`);
``simulate.py report`` redraws them with the tables.

Public: ``read_uncertainty``, ``input_values``, ``varying_kpis``, ``plot_kpi_band``,
``plot_targets``, ``uncertainty_charts``, ``uncertainty_tables``, ``draw_uncertainty_charts``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import UsageError
from sim.report.charts import plain_numbers
from sim.report.chartspec import Chart, Skipped, render_charts
from sim.report.compare import experiment_footer
from sim.report.document import Table
from sim.report.files import read_json, read_rows
from sim.report.kpis import fmt
from sim.report.labels import metric_axis, op_symbol, param_label
from sim.report.palette import OBJECTIVE, PALETTE

# isort: split
# pyplot after sim.report.style (imported by sim.report.charts), which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["read_uncertainty", "input_values", "varying_kpis", "plot_kpi_band", "plot_targets",
           "uncertainty_charts", "uncertainty_tables", "draw_uncertainty_charts"]

Entry = Chart | Skipped
_TARGET = re.compile(r"^(?P<path>[^<>=]+?)\s*(?P<op><=|>=|<|>)\s*(?P<value>[-+0-9.eE]+)$")


def read_uncertainty(folder: Path) -> dict[str, Any]:
    """``uncertainty_report.json``, checked to be one (a clear error otherwise)."""
    path = Path(folder) / "uncertainty_report.json"
    report = read_json(path)
    missing = [k for k in ("inputs", "kpis", "targets", "per_sample") if k not in report]
    if missing:
        raise UsageError(f"{path}: not a study written by simulate.py uncertainty (missing {', '.join(missing)})")
    return report


def input_values(folder: Path, report: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each uncertain input's value per sample, in sample order, from ``samples.csv``."""
    rows = sorted(read_rows(Path(folder) / "samples.csv"), key=lambda r: int(r.get("sample") or 0))
    out = {}
    for spec in report["inputs"]:
        values = [r.get(spec["path"], "") for r in rows]
        if values and all(_number(v) is not None for v in values):
            out[spec["path"]] = np.array([_number(v) for v in values], dtype=float)
    return out


def varying_kpis(report: dict[str, Any]) -> list[str]:
    """The KPIs whose value differs between samples (a constant, such as no drops, shows nothing)."""
    kept = []
    for kpi in report["kpis"]:
        values = np.array([v for v in report["per_sample"].get(kpi, []) if v is not None], dtype=float)
        if len(values) > 1 and np.nanmax(values) > np.nanmin(values):
            kept.append(kpi)
    return kept


def _driver(report: dict[str, Any], kpi: str, inputs: dict[str, np.ndarray]) -> str | None:
    """The input with the largest absolute rank correlation with ``kpi`` (None when none is known)."""
    sensitivity = {k: abs(v) for k, v in (report["kpis"][kpi].get("sensitivity") or {}).items()
                   if k in inputs and v is not None}
    if sensitivity:
        return max(sensitivity, key=lambda k: sensitivity[k])
    return next(iter(inputs), None)


def _targets_for(report: dict[str, Any], kpi: str) -> list[tuple[str, float]]:
    found = []
    for target in report["targets"]:
        match = _TARGET.match(str(target.get("target", "")).strip())
        if match and match["path"] == kpi:
            found.append((match["op"], float(match["value"])))
    return found


def plot_kpi_band(ax: Axes, report: dict[str, Any], kpi: str, inputs: dict[str, np.ndarray]) -> None:
    """Samples of ``kpi`` against its main input, with the median and the 50 % and 90 % bands."""
    stats = report["kpis"][kpi]
    raw = [v for v in report["per_sample"][kpi] if v is not None]
    factor, label = metric_axis(kpi, max([*raw, *(v for v in stats.get("band_90") or [] if v is not None)],
                                          default=None))
    values = np.array([np.nan if v is None else v for v in report["per_sample"][kpi]], dtype=float) * factor
    driver = _driver(report, kpi, inputs)
    x = inputs[driver] if driver is not None else np.arange(len(values), dtype=float)
    for band, alpha, name in (("band_90", 0.15, "90 % of samples"), ("band_50", 0.3, "50 % of samples")):
        if stats.get(band) and None not in stats[band]:
            ax.axhspan(stats[band][0] * factor, stats[band][1] * factor, color=PALETTE[0], alpha=alpha, linewidth=0,
                       label=name)
    if stats.get("median") is not None:
        ax.axhline(stats["median"] * factor, color=PALETTE[0], linewidth=1.5, label="median")
    ax.scatter(x[: len(values)], values, s=16, color="#000000", alpha=0.7, zorder=3, label="one sample")
    for _op, threshold in _targets_for(report, kpi):
        ax.axhline(threshold * factor, label="target", **OBJECTIVE)
    if np.nanmin(values) >= 0:
        ax.set_ylim(bottom=0)
    plain_numbers(ax)
    rho = (stats.get("sensitivity") or {}).get(driver) if driver else None
    ax.set_xlabel(param_label(driver) if driver else "sample")
    ax.set_ylabel(label)
    ax.set_title(label.split(" (")[0] + (f" (rank correlation {rho:+.2f})" if rho is not None else ""), fontsize=9)


def plot_targets(ax: Axes, report: dict[str, Any]) -> None:
    """The probability that a sample meets each target, with its Wilson 95 % interval."""
    targets = report["targets"]
    y = np.arange(len(targets))
    p = np.array([t["probability"] * 100 for t in targets], dtype=float)
    low = np.array([(t["ci"][0] if t.get("ci") else t["probability"]) * 100 for t in targets], dtype=float)
    high = np.array([(t["ci"][1] if t.get("ci") else t["probability"]) * 100 for t in targets], dtype=float)
    ax.barh(y, p, height=0.5, color=PALETTE[2], xerr=np.vstack([p - low, high - p]), capsize=4)
    ax.set_yticks(y, [_target_words(t["target"]) for t in targets])
    ax.set_ylim(len(targets) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("samples meeting the target (%, with 95 % interval)")
    ax.set_title(f"Probability of meeting each target ({targets[0].get('n', '?')} samples)" if targets else "")


def _target_words(text: str) -> str:
    match = _TARGET.match(text.strip())
    if not match:
        return text
    factor, label = metric_axis(match["path"])
    return f"{label} {op_symbol(match['op'])} {float(match['value']) * factor:,g}"


def _kpi_figure(report: dict[str, Any], kpis: Sequence[str], inputs: dict[str, np.ndarray]) -> plt.Figure:
    cols = min(3, len(kpis))
    rows = -(-len(kpis) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows + 0.6), squeeze=False)
    for ax, kpi in zip(axes.flat, kpis, strict=False):
        plot_kpi_band(ax, report, kpi, inputs)
    for ax in list(axes.flat)[len(kpis):]:
        ax.set_visible(False)
    fig.suptitle("Each KPI against the input that moves it most (dots: samples; line: median; bands: 50 % and 90 %)")
    legend: dict[str, Any] = {}  # one entry per kind of mark, from whichever panel has it
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(text, handle)
    fig.legend(list(legend.values()), list(legend), loc="upper center", ncol=len(legend), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1.0 - 22.0 / (fig.get_figheight() * 72.0)))
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 44.0 / (fig.get_figheight() * 72.0)))
    return fig


def _targets_figure(report: dict[str, Any]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.5 * len(report["targets"])))
    plot_targets(ax, report)
    fig.tight_layout()
    return fig


def uncertainty_charts(folder: Path, metrics: Sequence[str] | None = None) -> list[Entry]:
    """The KPI bands and the target probabilities of a study (skips included)."""
    report = read_uncertainty(folder)
    inputs = input_values(folder, report)
    kpis = [k for k in (metrics or varying_kpis(report)) if k in report["kpis"] and k in report["per_sample"]]
    entries: list[Entry] = []
    entries.append(Chart("uncertainty", "KPIs across the uncertain inputs", "uncertainty_report.json, samples.csv",
                         lambda: _kpi_figure(report, kpis, inputs)) if kpis
                   else Skipped("uncertainty", "no KPI varies across the samples"))
    entries.append(Chart("targets", "Probability of meeting each target", "uncertainty_report.json",
                         lambda: _targets_figure(report)) if report["targets"]
                   else Skipped("targets", "the study was run without --target"))
    return entries


def uncertainty_tables(report: dict[str, Any], kpis: Sequence[str]) -> list[Table]:
    """Each KPI's median with its 50 % and 90 % bands and its main input; each target's odds."""
    rows = []
    for kpi in kpis:
        s = report["kpis"][kpi]
        band = [f"[{fmt(b[0])}, {fmt(b[1])}]" if b and None not in b else "" for b in (s.get("band_50"),
                                                                                   s.get("band_90"))]
        moved = max((s.get("sensitivity") or {}).items(), key=lambda kv: abs(kv[1] or 0.0), default=None)
        rows.append((kpi, fmt(s.get("median")), *band,
                     f"{moved[0]} ({moved[1]:+.2f})" if moved and moved[1] is not None else ""))
    tables = [Table("KPIs over the samples", ("KPI", "median", "50 % band", "90 % band", "moved most by (rho)"),
                    tuple(rows))]
    if report["targets"]:
        tables.append(Table("Targets", ("target", "probability", "95 % interval", "samples"), tuple(
            (t["target"], fmt(t["probability"], "pct"),
             f"[{fmt(t['ci'][0], 'pct')}, {fmt(t['ci'][1], 'pct')}]" if t.get("ci") else "", str(t.get("n", "")))
            for t in report["targets"])))
    return tables


def draw_uncertainty_charts(folder: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """``charts/uncertainty.<fmt>`` and ``charts/targets.<fmt>`` of the study in ``folder``."""
    report = read_uncertainty(folder)
    runs = sorted(p.name for p in Path(folder).iterdir() if (p / "manifest.json").is_file())
    rendered, _ = render_charts(uncertainty_charts(folder), Path(folder) / "charts", formats,
                                experiment_footer(folder, runs, report.get("seeds", [])))
    return [path for r in rendered for path in r.files.values()]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
