"""Policy comparisons: several routing policies on the same seeds, paired.

Every policy runs the scenario at seeds ``s, s+1, ..., s+n-1`` (``s`` the scenario's
seed). Random streams are keyed by name (``sim.streams``), so at a given seed every
policy sees the same arrivals, origins and service draws (common random numbers) and the
per-seed difference between two policies measures the policies, not the luck of the draw.
For each metric the comparison reports each policy's mean over seeds with a t interval,
and the mean paired difference against the first (baseline) policy with a paired t
interval.

The comparison folder (``results/<scenario>/compare-<UTC time>/`` by default) holds one
run folder per policy and seed (``<policy>-s<seed>``), ``comparison.json`` and
``comparison.csv``; the CLI adds charts (``sim.report.compare``).

Public: ``PolicyChoice``, ``ComparisonPlan``, ``plan_comparison``, ``run_comparison``,
``summarise``, ``format_table``, ``policy_label``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import PolicyError, ScenarioError, UsageError
from sim.experiment.executors import check_executor, execute_tasks
from sim.experiment.stats import DEFAULT_METRICS
from sim.experiment.sweep import claim_folder
from sim.experiment.tasks import RunTask, check_run_count
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.metrics.stats import paired_interval, t_interval
from sim.policies import create
from sim.progress import Progress
from sim.scenario import load_scenario
from sim.scenario.kinds import kind_path
from sim.scenario.model import PolicySpec
from sim.scenario.overrides import parse_assignment

__all__ = ["PolicyChoice", "ComparisonPlan", "plan_comparison", "run_comparison", "summarise",
           "format_table", "policy_label", "parse_policy_params", "CSV_COLUMNS"]

CSV_COLUMNS = ("metric", "policy", "n", "mean", "ci_low", "ci_high", "diff_mean", "diff_ci_low", "diff_ci_high")


@dataclass(frozen=True)
class PolicyChoice:
    """A policy to compare: a registered name or ``pkg.mod:Class``, its params, its kind."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    kind: str = "routing"

    @property
    def label(self) -> str:
        return policy_label(self.name)

    def override(self) -> str:
        spec = {"name": self.name, "params": dict(self.params)}
        return f"{kind_path(self.kind)}={json.dumps(spec)}"


@dataclass(frozen=True)
class ComparisonPlan:
    out: Path
    scenario: str
    policies: tuple[PolicyChoice, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    tasks: tuple[RunTask, ...]  # policy-major: tasks[p * len(seeds) + k]
    identity: dict[str, Any] | None = None  # what the folder holds (compare.json)
    explicit_metrics: bool = False  # --metric given: keep every path, even if no run has it


def policy_label(name: str) -> str:
    """A folder-safe label: ``my_pkg.mod:Cls`` -> ``my_pkg.mod-Cls``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def parse_policy_params(policies: Sequence[str], assignments: Sequence[str],
                        kind: str = "routing") -> list[PolicyChoice]:
    """Attach ``POLICY.key=value`` assignments (``--policy-param``) to their policies."""
    params: dict[str, dict[str, Any]] = {name: {} for name in policies}
    for text in assignments:
        try:
            target, value = parse_assignment(text)
        except ValueError:
            raise UsageError(f"--policy-param: expects POLICY.key=value (got {text!r})") from None
        except ScenarioError as exc:  # a value that is not valid YAML, named as the option
            rules = "; ".join(p.rule for p in exc.problems)
            raise UsageError(f"--policy-param: {text!r}: {rules}") from None
        name, dot, key = target.rpartition(".")
        if not dot or name not in params:
            raise UsageError(f"--policy-param: {text!r} names no --policy (policies: {', '.join(policies)})")
        params[name][key] = value
    return [PolicyChoice(name, tuple(sorted(params[name].items())), kind) for name in policies]


def plan_comparison(scenario: str | Path, policies: Sequence[PolicyChoice], seeds: int = 10,
                    sets: Sequence[str] = (), metrics: Sequence[str] | None = None,
                    out: Path | None = None, root: Path = Path("results"),
                    command: Sequence[str] = ()) -> ComparisonPlan:
    """Check the policies and the scenario, and lay out one run per policy and seed."""
    _check_policies(policies, seeds)
    base = load_scenario(scenario, list(sets))
    for choice in policies:  # each policy must enter the scenario (exit 2 before any run)
        load_scenario(scenario, [*sets, choice.override()])
    first = base.scenario.seed
    seed_list = tuple(first + k for k in range(seeds))
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = root / base.scenario.name / f"compare-{stamp}"
    explicit = bool(metrics)
    metrics = tuple(metrics or DEFAULT_METRICS)
    source = str(Path(scenario).resolve())
    tasks = [RunTask(source, (*sets, choice.override(), f"seed={seed}"),
                     str(Path(out).resolve() / f"{choice.label}-s{seed}"), metrics, tuple(command))
             for choice in policies for seed in seed_list]
    identity = {"scenario": source, "config_sha256": base.config_hash, "set": list(sets),
                "policies": [{"kind": c.kind, "name": c.name, "params": dict(c.params)} for c in policies],
                "seeds": list(seed_list)}
    return ComparisonPlan(Path(out), source, tuple(policies), seed_list, metrics, tuple(tasks), identity, explicit)


def _check_policies(policies: Sequence[PolicyChoice], seeds: int) -> None:
    if len(policies) < 1:
        raise UsageError("compare: needs at least one --policy")
    if seeds < 1:
        raise UsageError(f"--seeds: must be >= 1 (got {seeds})")
    check_run_count(len(policies) * seeds, "--policy x --seeds")
    labels = [p.label for p in policies]
    for label in labels:
        if labels.count(label) > 1:
            raise UsageError(f"--policy: {label} is given twice")
    for choice in policies:
        try:  # unknown names and bad params fail now, with the valid choices listed
            create(choice.kind, PolicySpec(name=choice.name, params=dict(choice.params)), np.random.default_rng(0))
        except PolicyError as exc:
            raise UsageError(f"--policy: {exc}") from None


def run_comparison(plan: ComparisonPlan, backend: str = "process", workers: int = 1,
                   scheduler: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run every (policy, seed) and write ``comparison.json`` and ``comparison.csv``;
    ``progress``: show the runs done on stderr (:mod:`sim.progress`).

    Runs already complete in the folder are reused, which is only right for the same
    comparison: ``compare.json`` records what the folder holds and a different one is refused."""
    check_executor(backend, workers, scheduler)
    claim_folder(plan.out, "compare.json", plan.identity or {}, "comparison")
    results: list[dict[str, Any] | None] = [None] * len(plan.tasks)
    with Progress(f"compare {plan.out.name}", len(plan.tasks), "runs", quiet=not progress) as bar:
        for index, result in execute_tasks(plan.tasks, backend, workers, scheduler):
            results[index] = result
            bar.advance()
    report = summarise(plan, results)
    write_json_atomic(plan.out / "comparison.json", report)
    write_csv_atomic(plan.out / "comparison.csv", CSV_COLUMNS, _csv_rows(report))
    return report


def summarise(plan: ComparisonPlan, results: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Per-metric, per-policy means and intervals, and paired differences to the baseline."""
    n_seeds = len(plan.seeds)
    values: dict[str, dict[str, dict[int, float]]] = {c.label: {} for c in plan.policies}  # label -> metric -> seed
    runs = []
    for i, result in enumerate(results):
        choice, seed = plan.policies[i // n_seeds], plan.seeds[i % n_seeds]
        result = result or {"status": "failed", "error": "did not run", "metrics": {}}
        runs.append({"policy": choice.label, "name": choice.name, "seed": seed,
                     "run": Path(plan.tasks[i].out).name, "status": result["status"], "error": result["error"]})
        for metric, value in result["metrics"].items():
            values[choice.label].setdefault(metric, {})[seed] = value
    baseline = plan.policies[0].label
    metrics = list(plan.metrics) if plan.explicit_metrics else [
        m for m in plan.metrics if any(m in v for v in values.values())]
    table = {m: {label: _policy_stats(values[label].get(m, {}), values[baseline].get(m, {}), label == baseline)
                 for label in values} for m in metrics}
    return {"scenario": plan.scenario, "baseline": baseline, "confidence": 0.95,
            "policies": [{"label": c.label, "name": c.name, "params": dict(c.params)} for c in plan.policies],
            "seeds": list(plan.seeds), "metrics": metrics, "results": table, "runs": runs}


def _policy_stats(mine: dict[int, float], base: dict[int, float], is_baseline: bool) -> dict[str, Any]:
    own = t_interval([mine[s] for s in sorted(mine)])
    stats: dict[str, Any] = {"n": own.n, "mean": own.mean, "ci": [own.low, own.high],
                             "values": {str(s): mine[s] for s in sorted(mine)}}
    if not is_baseline:
        diff = paired_interval(mine, base)
        stats["diff"] = {"n": diff.n, "mean": diff.mean, "ci": [diff.low, diff.high]}
    return stats


def _csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric, by_policy in report["results"].items():
        for label, stats in by_policy.items():
            diff = stats.get("diff", {"mean": None, "ci": [None, None]})
            rows.append({"metric": metric, "policy": label, "n": stats["n"], "mean": _num(stats["mean"]),
                         "ci_low": _num(stats["ci"][0]), "ci_high": _num(stats["ci"][1]),
                         "diff_mean": _num(diff["mean"]), "diff_ci_low": _num(diff["ci"][0]),
                         "diff_ci_high": _num(diff["ci"][1])})
    return rows


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)  # written as an empty cell


def format_table(report: dict[str, Any]) -> str:
    """The comparison as a fixed-width text table (one line per metric and policy)."""
    base = report["baseline"]
    header = ("metric", "policy", "mean", f"diff vs {base}", "95% CI of diff", "n")
    lines = [header]
    for metric, by_policy in report["results"].items():
        for k, (label, stats) in enumerate(by_policy.items()):
            diff = stats.get("diff")
            lines.append((metric if k == 0 else "", label, _fmt(stats["mean"]),
                          _fmt(diff["mean"]) if diff else "", _fmt_ci(diff["ci"]) if diff else "", str(stats["n"])))
    widths = [max(len(row[c]) for row in lines) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _fmt_ci(ci: Sequence[float | None]) -> str:
    return "-" if ci[0] is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"
