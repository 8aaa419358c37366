"""The few lines ``simulate.py run`` prints when a run ends, read from its folder's files.

What a capacity planner looks at first: latency (p50 and p99; TTFT and TPOT where the
serving model gives them), SLO attainment, dropped requests, GPU-hours and cost, then the
training jobs, those not finished with how far they got. A figure that ``summary.json``
holds as null is left out when its absence says it all (no TTFT without a token model) and
explained otherwise (no latency when no request completed in the measured window).
Definitions are those of ``docs/metrics.md``; this module computes nothing new except
GPU-hours, the time integrals of ``timeseries.csv``'s ``active_gpus`` and ``busy_gpus``
over the measured window.

Public: ``closing_summary``.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["closing_summary"]

_UNFINISHED_SHOWN = 5  # jobs listed by name; the rest are counted


def closing_summary(run_dir: Path) -> list[str]:
    """The closing lines for the run folder ``run_dir`` (no trailing newlines)."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    lines = [_headline(summary)]
    if "inference" in summary:
        lines += _inference(summary["inference"])
    if "training" in summary:
        lines += _training(summary["training"], Path(run_dir) / "jobs.csv")
    lines.append(_capacity(summary, Path(run_dir) / "timeseries.csv"))
    return lines


def _headline(summary: Mapping[str, Any]) -> str:
    util = summary["utilization"]["mean"]
    window_h = (summary["sim_time_s"] - summary["warmup_s"]) / 3600
    return (f"{summary['scenario']}: seed {summary['seed']}, {summary['sim_time_s'] / 3600:g} h simulated "
            f"({window_h:g} h measured after the warm-up), mean utilisation {util * 100:.1f} %")


def _inference(inf: Mapping[str, Any]) -> list[str]:
    latency = inf["latency_ms"]
    if latency["p50"] is None:
        figures = "latency: none (no request completed in the measured window)"
    else:
        figures = f"latency p50 {_ms(latency['p50'])}, p99 {_ms(latency['p99'])}"
    for key, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")):
        stats = inf.get(key) or {}
        if stats.get("p50") is not None:  # null: this run has no token model
            figures += f"; {name} p50 {_ms(stats['p50'])}, p99 {_ms(stats['p99'])}"
    slo = inf.get("slo_attainment")
    attainment = ("SLO attainment: none (no workload sets an objective)" if slo is None
                  else f"SLO attainment {slo * 100:.2f} %")
    dropped = (f"{inf['dropped']:,} dropped ({inf['rejected']:,} rejected, {inf['timed_out']:,} timed out"
               + (f", {inf['failed']:,} lost to failures" if inf.get("failed") else "") + ")")
    return [f"  requests: {inf['arrived']:,} arrived, {inf['completed']:,} completed, {dropped}, "
            f"{inf['in_flight']:,} still in flight at the end",
            f"  {figures}", f"  {attainment}"]


def _training(training: Mapping[str, Any], jobs_csv: Path) -> list[str]:
    line = (f"  training: {training['submitted']} jobs submitted, {training['completed']} completed, "
            f"{training['running']} running and {training['queued']} queued at the end")
    jct = training["jct_h"]["p50"]
    if jct is not None:
        line += f"; job completion time p50 {jct:.3g} h"
    lines = [line]
    unfinished = _unfinished_jobs(jobs_csv)
    if unfinished:
        shown = ", ".join(f"job {job} {done * 100:.0f} % done ({status})"
                          for job, status, done in unfinished[:_UNFINISHED_SHOWN])
        more = len(unfinished) - _UNFINISHED_SHOWN
        tail = f" and {more} more (jobs.csv: work and remaining)" if more > 0 else ""
        lines.append(f"  not finished: {shown}{tail}")
    return lines


def _unfinished_jobs(jobs_csv: Path) -> list[tuple[str, str, float]]:
    """(job, status, fraction of its work done) of every job not completed, most done first."""
    if not jobs_csv.is_file():
        return []
    with open(jobs_csv, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] != "completed"]
    found = [(r["job"], r["status"], _done_fraction(float(r["work"]), float(r["remaining"]))) for r in rows]
    return sorted(found, key=lambda f: -f[2])


def _done_fraction(work: float, remaining: float) -> float:
    return 0.0 if work <= 0 or math.isnan(remaining) else min(max(1.0 - remaining / work, 0.0), 1.0)


def _capacity(summary: Mapping[str, Any], timeseries: Path) -> str:
    active, busy = _gpu_hours(timeseries, summary["warmup_s"])
    energy = summary["energy"]
    cost = f"${energy['cost_usd']:,.2f} of electricity for {energy['kwh']:,.0f} kWh"
    transfers = (summary.get("network") or {}).get("transfer_cost_usd")
    if transfers:
        cost += f" and ${transfers:,.2f} of data transfer"
    return (f"  GPU-hours: {active:,.0f} active, {busy:,.0f} busy; cost {cost} "
            "(GPUs themselves are not priced)")


def _gpu_hours(timeseries: Path, warmup_s: float) -> tuple[float, float]:
    """Active and busy GPU-hours over the measured window, from ``timeseries.csv``."""
    active = busy = 0.0
    with open(timeseries, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            start, end = float(row["t_start_s"]), float(row["t_end_s"])
            if start >= warmup_s:
                active += float(row["active_gpus"]) * (end - start) / 3600
                busy += float(row["busy_gpus"]) * (end - start) / 3600
    return active, busy


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"
