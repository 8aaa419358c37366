"""The tables of a report: key results and provenance, read from result files.

- a run: ``summary.json`` sections (inference, capacity, training, network, autoscaling,
  energy), the per-origin and per-region breakdowns, and ``manifest.json`` (scenario,
  config hash, seed, overrides, versions, git commit, command);
- a comparison: the paired table of ``comparison.json`` (each policy's mean over seeds with
  its 95 % interval, and its paired difference to the baseline) and its runs;
- a sweep: the mean and 95 % interval over seeds at each grid point, and ``index.csv``.

A row appears only when its value is in the file, so a run without training has no
training table. Numbers are shown to 4 significant digits, shares as percentages.

Public: ``Row``, ``fmt``, ``run_tables``, ``run_provenance``, ``comparison_tables``,
``sweep_tables``, ``experiment_provenance``, ``reproduce_command``.
"""
from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from sim.metrics.stats import t_interval
from sim.report.document import Table

__all__ = ["Row", "fmt", "run_tables", "run_provenance", "comparison_tables", "sweep_tables",
           "experiment_provenance", "reproduce_command"]

Row = tuple[str, str, str]  # label, dotted path into summary.json, kind (see fmt)

INFERENCE: tuple[Row, ...] = (
    ("requests arrived", "arrived", "int"), ("completed", "completed", "int"),
    ("dropped", "dropped", "int"), ("in flight at the end", "in_flight", "int"),
    ("latency mean (ms)", "latency_ms.mean", "num"), ("latency p50 (ms)", "latency_ms.p50", "num"),
    ("latency p95 (ms)", "latency_ms.p95", "num"), ("latency p99 (ms)", "latency_ms.p99", "num"),
    ("wait mean (ms)", "wait_ms.mean", "num"), ("wait p99 (ms)", "wait_ms.p99", "num"),
    ("time to first token p50 (ms)", "ttft_ms.p50", "num"), ("time to first token p99 (ms)", "ttft_ms.p99", "num"),
    ("time per output token mean (ms)", "tpot_ms.mean", "num"),
    ("time per output token p99 (ms)", "tpot_ms.p99", "num"),
    ("SLO attainment", "slo_attainment", "pct"), ("goodput (requests/s)", "goodput_rps", "num"))
SERVING: tuple[Row, ...] = (
    ("prefix cache hit rate", "prefix_cache.hit_rate", "pct"),
    ("prompt tokens spared by the cache", "prefix_cache.prefill_tokens_saved", "int"),
    ("conversations", "sessions.sessions", "int"), ("turns per conversation", "sessions.turns_per_session", "num"),
    ("later turns finding their context cached", "sessions.later_turn_hit_rate", "pct"),
    ("KV caches sent to decode pools", "disaggregation.kv_transferred", "int"),
    ("of which to another region", "disaggregation.across_regions", "int"),
    ("KV copy p50 (ms)", "disaggregation.kv_transfer_ms.p50", "num"),
    ("KV copy p99 (ms)", "disaggregation.kv_transfer_ms.p99", "num"))
CAPACITY: tuple[Row, ...] = (
    ("utilisation, mean", "utilization.mean", "pct"), ("of which training", "utilization.training", "pct"),
    ("of which inference", "utilization.inference", "pct"), ("load L(t), mean", "load.mean", "num"),
    ("load L(t), max", "load.max", "num"), ("resources R(t), mean", "resources.mean", "num"),
    ("unmet GPU-hours", "allocation.unmet_gpu_hours", "num"))
TRAINING: tuple[Row, ...] = (
    ("jobs submitted", "submitted", "int"), ("completed", "completed", "int"), ("running", "running", "int"),
    ("queued", "queued", "int"), ("completion time mean (h)", "jct_h.mean", "num"),
    ("completion time p50 (h)", "jct_h.p50", "num"), ("completion time p95 (h)", "jct_h.p95", "num"),
    ("queueing delay mean (h)", "wait_h.mean", "num"), ("queueing delay p95 (h)", "wait_h.p95", "num"),
    ("GPU-hours used", "gpu_hours_used", "num"), ("GPU-hours lost", "gpu_hours_lost", "num"),
    ("goodput", "goodput", "pct"), ("preemptions", "preemptions", "int"), ("interruptions", "interruptions", "int"))
NETWORK: tuple[Row, ...] = (
    ("copies over the WAN (datasets, checkpoints, KV caches)", "transfers", "int"),
    ("bytes copied across regions", "bytes_cross_region", "bytes"),
    ("egress cost (USD)", "transfer_cost_usd", "num"), ("bytes across borders", "border_crossings_bytes", "bytes"),
    ("residency violations", "residency_violations", "int"))
AUTOSCALING: tuple[Row, ...] = (
    ("replica-hours (warm + starting)", "replica_hours", "num"),
    ("of which cold starts", "cold_start_replica_hours", "num"), ("GPU-hours", "gpu_hours", "num"),
    ("cold starts", "cold_starts", "int"), ("cold start mean (s)", "cold_start_s.mean", "num"),
    ("time with a scale-up in progress (s)", "scale_up_time_s", "num"),
    ("requests arrived during scale-up", "during_scale_up.arrived", "int"),
    ("SLO attainment during scale-up", "during_scale_up.slo_attainment", "pct"),
    ("SLO attainment otherwise", "outside_scale_up.slo_attainment", "pct"))
ENERGY: tuple[Row, ...] = (
    ("energy (kWh)", "kwh", "num"), ("carbon (kg CO2e)", "co2_kg", "num"),
    ("electricity cost (USD)", "cost_usd", "num"), ("idle share of TDP", "idle_fraction", "pct"))


def fmt(value: Any, kind: str = "num") -> str:
    """A value for a table cell: ``int`` with thousands separators, ``num`` to 4 significant
    digits (whole above 10,000), ``pct`` a share as a percentage, ``bytes`` in GB or TB;
    absent -> ``n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if kind == "int":
        return f"{round(value):,}"
    if kind == "pct":
        return f"{value * 100:.2f} %"
    if kind == "bytes":
        return f"{value / 1e12:,.4g} TB" if abs(value) >= 1e12 else f"{value / 1e9:,.4g} GB"
    if 1e4 <= abs(value) < 1e15:  # whole numbers read better than 1.715e+04
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _metric_table(title: str, section: Any, rows: Sequence[Row]) -> Table | None:
    found = [(label, _get(section, path), kind) for label, path, kind in rows]
    cells = tuple((label, fmt(value, kind)) for label, value, kind in found if value is not None)
    return Table(title, ("metric", "value"), cells) if cells else None


def _breakdown(title: str, groups: Any, first: str) -> Table | None:
    """One row per origin/region of an ``inference.by_*`` mapping."""
    if not isinstance(groups, Mapping) or not groups:
        return None
    rows = tuple((name, fmt(g.get("arrived"), "int"), fmt(g.get("completed"), "int"), fmt(g.get("dropped"), "int"),
                  fmt(_get(g, "latency_ms.p50")), fmt(_get(g, "latency_ms.p99")), fmt(g.get("slo_attainment"), "pct"))
                 for name, g in groups.items())
    return Table(title, (first, "arrived", "completed", "dropped", "p50 (ms)", "p99 (ms)", "SLO attainment"), rows)


def _by_region(summary: Mapping[str, Any]) -> Table | None:
    util = _get(summary, "utilization.by_region") or {}
    energy = _get(summary, "energy.by_region") or {}
    share = _get(summary, "allocation.by_region") or {}
    regions = list(dict.fromkeys([*util, *energy]))
    if not regions:
        return None
    rows = tuple((r, fmt(share.get(r), "pct"), fmt(util.get(r), "pct"), fmt(_get(energy, f"{r}.kwh")),
                  fmt(_get(energy, f"{r}.co2_kg")), fmt(_get(energy, f"{r}.cost_usd"))) for r in regions)
    return Table("By region", ("region", "allocation share", "utilisation", "kWh", "kg CO2e", "USD"), rows)


def run_tables(summary: Mapping[str, Any]) -> list[Table]:
    """Key-result tables of one run's ``summary.json``."""
    inference = summary.get("inference")
    tables = [
        _metric_table("Inference", inference, INFERENCE),
        _metric_table("Serving: caches, conversations, disaggregation", inference, SERVING),
        _breakdown("Inference by origin region", _get(inference, "by_origin"), "origin"),
        _metric_table("Capacity", summary, CAPACITY),
        _by_region(summary),
        _metric_table("Training", summary.get("training"), TRAINING),
        _metric_table("Network and data", summary.get("network"), NETWORK),
        _metric_table("Autoscaling", summary.get("autoscaling"), AUTOSCALING),
        _metric_table("Energy (after the warm-up)", summary.get("energy"), ENERGY),
    ]
    return [t for t in tables if t is not None]


def reproduce_command(command: Sequence[str]) -> str:
    """The shell command that ran (``manifest.json`` stores it without the interpreter)."""
    words = list(command) or ["simulate.py"]
    return shlex.join(["python", *words] if words[0].endswith(".py") else words)


def _versions(manifest: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items())


def run_provenance(manifest: Mapping[str, Any], summary: Mapping[str, Any]) -> Table:
    rows = [("scenario", manifest.get("scenario")), ("scenario file", manifest.get("source")),
            ("config sha256", manifest.get("config_sha256")), ("seed", manifest.get("seed")),
            ("overrides", " ".join(manifest.get("overrides") or []) or "none"),
            ("simulated time (h)", fmt((summary.get("sim_time_s") or 0) / 3600)),
            ("warm-up (h)", fmt((summary.get("warmup_s") or 0) / 3600)),
            ("status", manifest.get("status")), ("started (UTC)", manifest.get("started_utc")),
            ("wall time (s)", fmt(manifest.get("wall_seconds"))),
            ("events processed", fmt(manifest.get("events_processed"), "int")),
            ("git commit", manifest.get("git_commit")), ("versions", _versions(manifest))]
    if manifest.get("approximate"):  # a fluid run: its figures come from formulas (docs/fluid.md)
        rows.insert(0, ("fidelity", f"{manifest.get('fidelity')}: APPROXIMATE, "
                                    f"{manifest['approximate'].get('method', '')}"))
    return Table("Run", ("field", "value"), tuple((k, _cell(v)) for k, v in rows if v is not None))


def experiment_provenance(title: str, fields: Sequence[tuple[str, Any]], manifest: Mapping[str, Any]) -> Table:
    """Provenance of a comparison or sweep: its own fields, then the versions of its first run."""
    rows = [*fields, ("git commit", manifest.get("git_commit")), ("versions", _versions(manifest))]
    return Table(title, ("field", "value"), tuple((k, _cell(v)) for k, v in rows if v not in (None, "")))


def _cell(value: Any) -> str:
    """Provenance values verbatim (seeds, hashes), except floats."""
    return fmt(value) if isinstance(value, float) else str(value)


def _ci(interval: Any) -> str:
    if not interval or interval[0] is None:
        return "n/a"
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def comparison_tables(report: Mapping[str, Any], metrics: Sequence[str],
                      config_hashes: Mapping[str, str] | None = None) -> list[Table]:
    """The paired table (each metric x policy) and the list of runs (with the first 12
    digits of each run's config hash when ``config_hashes`` maps run folders to them)."""
    hashes = config_hashes or {}
    rows = []
    for metric in metrics:
        for policy, s in report["results"][metric].items():
            diff = s.get("diff") or {}
            rows.append((metric, policy, fmt(s.get("n"), "int"), fmt(s.get("mean")), _ci(s.get("ci")),
                         fmt(diff.get("mean")) if diff else "baseline", _ci(diff.get("ci")) if diff else ""))
    confidence = fmt(report.get("confidence", 0.95), "pct").replace(".00", "")
    paired = Table(f"Policies on the same seeds: mean over seeds and paired difference to the baseline "
                   f"({confidence} intervals)",
                   ("metric", "policy", "n", "mean", "CI", "diff vs baseline", "CI of diff"), tuple(rows))
    runs = Table("Runs", ("policy", "seed", "status", "folder", "config sha256", "error"),
                 tuple((r["policy"], str(r["seed"]), r["status"], r["run"], hashes.get(r["run"], "")[:12],
                        r.get("error") or "") for r in report["runs"]))
    return [paired, runs]


def sweep_tables(rows: Sequence[Mapping[str, str]], params: Sequence[str], metrics: Sequence[str]) -> list[Table]:
    """Mean and 95 % interval over seeds per grid point and metric; then ``index.csv`` itself."""
    points: dict[str, list[Mapping[str, str]]] = {}
    for row in rows:
        points.setdefault(row.get("point", ""), []).append(row)
    summary = []
    for point, members in points.items():
        done = [r for r in members if r["status"] in ("ok", "skipped")]
        for metric in metrics:
            ci = t_interval([float(r[metric]) for r in done if r.get(metric, "") != ""])
            summary.append((point, *(members[0][p] for p in params), metric, fmt(ci.n, "int"), fmt(ci.mean),
                            _ci((ci.low, ci.high))))
    columns = [c for c in (rows[0] if rows else {}) if c not in ("path",)]
    index = tuple(tuple(fmt(_float(r[c])) if c in metrics else r[c] for c in columns) for r in rows)
    return [Table("Mean over seeds per grid point (95 % t interval)",
                  ("point", *params, "metric", "n", "mean", "CI"), tuple(summary)),
            Table("index.csv (one row per run)", tuple(columns), index)]


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
