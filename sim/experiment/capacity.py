"""Capacity planning: the least integer capacity that meets a target, found by bisection.

A **target** is ``DOTTED.PATH OP NUMBER`` (``inference.latency_ms.p99<=800``): the path is
any number in a run's ``summary.json`` (``sim.experiment.stats.lookup``), OP one of ``<=``,
``<``, ``>=``, ``>``. The **varied quantity** is an integer scenario value named as
``--set`` names it (``regions.eu-west.pools.a100.replicas``). A **point** (one value, run
at seeds ``s .. s+n-1``) meets the target under a **rule**:

- ``all`` (default): every seed meets it; plan for the worst replication seen;
- ``mean``: the mean over seeds meets it; plan for the expected value.

A seed whose summary has no number at the path (null) does not meet the target.

The search assumes more capacity never hurts, so the values that meet form a range
``[answer, HI]``. It runs HI first (not met: "not met within range", nothing else runs),
then keeps ``bad < answer <= good`` (``bad`` starts at LO - 1) and probes ``k`` values
evenly inside ``(bad, good)`` per round, ``k = max(1, workers // seeds)`` (bisection when
``k = 1``), until ``good = bad + 1``. Evaluated points that contradict monotonicity (a
value below the answer that meets, one above that fails) are reported, not hidden.

Runs live in one plan folder, like a sweep's: ``sweep.json`` (what the runs are: scenario,
config hash, varied path, seeds), run folders ``v<value>-s<seed>`` and ``index.csv`` in
the sweep's format, then ``plan.json`` and ``plan.csv``. The folder's identity leaves out
the target, rule and range: a run's result depends on none of them, so planning again, against
another target or over another range, reuses every finished run (``_SUCCESS``).

Public: ``RULES``, ``Target``, ``parse_target``, ``parse_range``, ``CapacityPlan``,
``plan_capacity``, ``run_capacity_plan``, ``search``, ``point_meets``, ``format_plan``,
``PLAN_COLUMNS``.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError, UsageError
from sim.experiment.plan import Axis
from sim.experiment.sweep import SweepOutcome, SweepPlan, run_sweep, write_index
from sim.experiment.tasks import RunTask, check_run_count
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.metrics.stats import t_interval
from sim.scenario import LoadedScenario, load_scenario
from sim.scenario.overrides import resolve_path, split_path

__all__ = ["RULES", "Target", "parse_target", "numeric_paths", "parse_range", "CapacityPlan", "plan_capacity",
           "run_capacity_plan", "search", "point_meets", "format_plan", "PLAN_COLUMNS"]

RULES = ("all", "mean")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
PLAN_COLUMNS = ("value", "meets", "n", "mean", "ci_low", "ci_high", "min", "max",
                "gpus", "gpu_hours", "energy_kwh", "cost_usd")
# What each run reports besides the target: the measured window (for GPU-hours) and cost.
RUN_METRICS = ("sim_time_s", "warmup_s", "utilization.mean", "energy.kwh", "energy.cost_usd")
COST_MEANING = ("electricity only: energy.cost_usd = kWh x each region's price_usd_per_kwh over the measured "
                "window of one run (mean over seeds); GPU rental or purchase is not modelled: "
                "multiply gpu_hours by a price per GPU-hour for that")
_TARGET = re.compile(r"^\s*(?P<path>[^<>=\s]+)\s*(?P<op><=|>=|<|>)\s*(?P<number>\S+)\s*$")


@dataclass(frozen=True)
class Target:
    """``path op threshold``: a condition on one number of ``summary.json``."""

    path: str
    op: str
    threshold: float

    def holds(self, value: float | None) -> bool:
        return value is not None and OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.path}{self.op}{_number_text(self.threshold)}"


def _number_text(value: float) -> str:
    """The shortest text that reads back as ``value`` (no rounding, no needless ``.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def parse_target(text: str) -> Target:
    """``'inference.latency_ms.p99<=800'`` -> ``Target``; raise :class:`UsageError`."""
    match = _TARGET.match(text)
    if match is None:
        raise UsageError(f"--target: expects DOTTED.PATH OP NUMBER with OP one of <=, <, >=, > (got {text!r})")
    try:
        split_path(match["path"])
    except ValueError as exc:
        raise UsageError(f"--target: {exc} (got {text!r})") from None
    try:
        threshold = float(match["number"])
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise UsageError(f"--target: the threshold must be a finite number (got {match['number']!r})")
    return Target(match["path"], match["op"], threshold)


def parse_range(text: str) -> tuple[int, int]:
    """``'8:16'`` -> ``(8, 16)``; raise :class:`UsageError`."""
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or bounds[0] > bounds[1]:
        raise UsageError(f"--range: expects LO:HI, two integers with LO <= HI (got {text!r})")
    return bounds


@dataclass(frozen=True)
class CapacityPlan:
    """A validated plan: what to vary, over which range, against which target."""

    scenario: str  # absolute path
    sets: tuple[str, ...]
    vary: str
    low: int
    high: int
    target: Target
    rule: str
    seeds: tuple[int, ...]
    out: Path
    command: tuple[str, ...] = ()
    identity: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.target.path, *(m for m in RUN_METRICS if m != self.target.path))

    def task(self, value: int, seed: int) -> RunTask:
        overrides = (*self.sets, f"{self.vary}={value}", f"seed={seed}")
        return RunTask(self.scenario, overrides, str(self.out.resolve() / f"v{value}-s{seed}"),
                       self.metrics, self.command)


def plan_capacity(scenario: str | Path, target: str, vary: str, seeds: int = 3, value_range: str | None = None,
                  rule: str = "all", sets: Sequence[str] = (), out: Path | None = None,
                  root: Path = Path("results"), command: Sequence[str] = ()) -> CapacityPlan:
    """Check the target, the varied quantity and the range against the scenario (nothing runs)."""
    parsed = parse_target(target)
    if rule not in RULES:
        raise UsageError(f"--rule: must be one of {', '.join(RULES)} (got {rule!r})")
    if seeds < 1:
        raise UsageError(f"--seeds: must be >= 1 (got {seeds})")
    check_run_count(seeds, "--seeds (per value tried)")
    base = load_scenario(scenario, list(sets))
    current = _current_value(base, vary)
    low, high = parse_range(value_range) if value_range else (1, max(2, 2 * current))
    for value in (low, high):
        _check_value(scenario, sets, vary, value)
    first = base.scenario.seed
    seed_list = tuple(first + k for k in range(seeds))
    source = str(Path(scenario).resolve())
    identity = {"kind": "capacity plan", "scenario": source, "config_sha256": base.config_hash,
                "vary": vary, "seeds": list(seed_list)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    out = Path(out) if out is not None else Path(root) / base.scenario.name / f"plan-{digest}"
    return CapacityPlan(source, tuple(sets), vary, low, high, parsed, rule, seed_list, out, tuple(command), identity)


def _current_value(base: LoadedScenario, vary: str) -> int:
    """The scenario's value at ``vary`` (after defaults); it must be an integer."""
    if vary == "seed":
        raise UsageError("--vary: seed is set by --seeds (seeds s, s+1, ... from the scenario's seed)")
    try:
        parent, key, _ = resolve_path(base.resolved, vary)
        if isinstance(parent, dict) and key not in parent:
            raise ValueError(f"{vary}: no such key")
    except ValueError as exc:
        raise UsageError(f"--vary: {exc} (in {base.source})") from None
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"--vary: {vary}: must name an integer scenario value (got {value!r})")
    return value


def _check_value(scenario: str | Path, sets: Sequence[str], vary: str, value: int) -> None:
    try:
        load_scenario(scenario, [*sets, f"{vary}={value}"])
    except ScenarioError as exc:
        raise UsageError(f"--range: {vary}={value} is not a valid scenario: "
                         + "; ".join(p.format() for p in exc.problems)) from None


# --- the search ---------------------------------------------------------------------------

def search(low: int, high: int, meets: Callable[[list[int]], Mapping[int, bool]], per_round: int = 1) -> int | None:
    """Least value in ``[low, high]`` with ``meets``, assuming meeting is monotone; None if HI fails.

    ``meets(values)`` evaluates a round of values at once and returns ``{value: met}``.
    """
    if not meets([high])[high]:
        return None
    bad, good = low - 1, high
    while good - bad > 1:
        probes = _probes(bad, good, per_round)
        verdict = meets(probes)
        good = min([v for v in probes if verdict[v]], default=good)
        bad = max([v for v in probes if not verdict[v] and v < good], default=bad)
    return good


def _probes(bad: int, good: int, k: int) -> list[int]:
    """Up to ``k`` integers evenly inside the open interval ``(bad, good)``."""
    k = min(k, good - bad - 1)
    return sorted({bad + (i + 1) * (good - bad) // (k + 1) for i in range(k)})


class _Stop(Exception):
    """The search cannot go on: a run failed or the user pressed Ctrl-C."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


@dataclass
class _Evaluator:
    """Runs points on demand through ``run_sweep`` and remembers every result."""

    plan: CapacityPlan
    backend: str
    workers: int
    scheduler: str | None
    progress: bool
    results: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)  # every value a round asked for, finished or not
    target_found: bool = False

    @property
    def values(self) -> list[int]:
        """Values with at least one finished run."""
        return sorted({v for v, _ in self.results})

    def __call__(self, values: list[int]) -> dict[int, bool]:
        self.asked.update(values)
        wanted = sorted(self.asked)
        outcome = run_sweep(self._sweep(wanted), self.backend, self.workers, self.scheduler, self.progress,
                            "plan")
        for (value, seed), result in zip(self._pairs(wanted), outcome.results, strict=True):
            if result is not None:  # the first status seen wins: 'ok' now, not 'skipped' next round
                self.results.setdefault((value, seed), result)
        write_index(self.outcome())
        if outcome.interrupted:
            raise _Stop("interrupted")
        if any(self.results.get((v, s), {}).get("status") == "failed" for v, s in self._pairs(wanted)):
            raise _Stop("failed")
        if not self.target_found:  # checked once, on the first point run (HI)
            _check_target_found(self.plan, [self.results[(values[0], s)] for s in self.plan.seeds])
            self.target_found = True
        return {v: point_meets(self.plan.target, self.plan.rule, self.metric_values(v)) for v in values}

    def _pairs(self, values: Iterable[int]) -> list[tuple[int, int]]:
        return [(v, s) for v in values for s in self.plan.seeds]

    def _sweep(self, values: list[int]) -> SweepPlan:
        pairs = self._pairs(values)
        return SweepPlan(self.plan.out, (Axis(self.plan.vary, tuple(values)),), self.plan.seeds,
                         tuple(self.plan.task(v, s) for v, s in pairs), tuple((v,) for v, _ in pairs),
                         tuple(s for _, s in pairs), self.plan.metrics, self.plan.identity)

    def outcome(self) -> SweepOutcome:
        """Every run asked for so far as a sweep outcome (what ``index.csv`` lists)."""
        values = sorted(self.asked)
        return SweepOutcome(self._sweep(values), [self.results.get(p) for p in self._pairs(values)])

    def metric_values(self, value: int, metric: str | None = None) -> list[float | None]:
        """Per-seed values of ``metric`` (default: the target's) at ``value``, seeds in order."""
        metric = metric or self.plan.target.path
        return [self.results.get((value, s), {}).get("metrics", {}).get(metric) for s in self.plan.seeds]


def point_meets(target: Target, rule: str, values: Sequence[float | None]) -> bool:
    """Whether a point's per-seed values meet ``target`` under ``rule``."""
    numbers = [v for v in values if v is not None]
    if not values or len(numbers) < len(values):
        return False
    if rule == "all":
        return all(target.holds(v) for v in numbers)
    return target.holds(sum(numbers) / len(numbers))


def _check_target_found(plan: CapacityPlan, results: list[dict[str, Any]]) -> None:
    """A target path that no run has as a number is a mistake in ``--target``."""
    if any(plan.target.path in r["metrics"] for r in results):
        return
    run = results[0]["path"]
    summary = json.loads((Path(run) / "summary.json").read_text(encoding="utf-8"))
    if plan.target.path in numeric_paths(summary):
        raise UsageError(f"--target: {plan.target.path} is null in summary.json of {run} (see docs/metrics.md)")
    hint = difflib.get_close_matches(plan.target.path, list(numeric_paths(summary)), n=3, cutoff=0.6)
    raise UsageError(f"--target: {plan.target.path} is not a number in summary.json of {run}"
                     + (f" (did you mean {', '.join(hint)}?)" if hint else " (see docs/metrics.md)"))


def numeric_paths(node: Any, prefix: str = "") -> Iterable[str]:
    """Every dotted path to a number or a null in a summary."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            yield from numeric_paths(child, f"{prefix}{key}.")
    elif node is None or (isinstance(node, (int, float)) and not isinstance(node, bool)):
        yield prefix[:-1]


def run_capacity_plan(plan: CapacityPlan, backend: str = "process", workers: int = 1,
                      scheduler: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Search, then write ``plan.json`` and ``plan.csv``; return the report (``plan.json``)."""
    if workers < 1:
        raise UsageError(f"--workers: must be >= 1 (got {workers})")
    if scheduler is not None and backend != "dask":
        raise UsageError("--scheduler: needs --backend dask")
    evaluate = _Evaluator(plan, backend, workers, scheduler, progress)
    try:
        answer = search(plan.low, plan.high, evaluate, max(1, workers // len(plan.seeds)))
        status = "not met" if answer is None else "met"
    except _Stop as stop:
        answer, status = None, stop.status
    report = _report(plan, evaluate, answer, status)
    write_json_atomic(plan.out / "plan.json", report)
    write_csv_atomic(plan.out / "plan.csv", PLAN_COLUMNS, [_csv_row(p) for p in report["points"]])
    return report


# --- the report ---------------------------------------------------------------------------

def _report(plan: CapacityPlan, evaluate: _Evaluator, answer: int | None, status: str) -> dict[str, Any]:
    points = [_point(plan, evaluate, v) for v in evaluate.values]
    at_answer = next((p for p in points if p["value"] == answer), None)
    runs = [{"run": Path(r["path"]).name, "value": v, "seed": s, "status": r["status"], "error": r["error"]}
            for (v, s), r in sorted(evaluate.results.items())]
    return {"scenario": plan.scenario, "vary": plan.vary, "range": [plan.low, plan.high],
            "target": str(plan.target), "path": plan.target.path, "op": plan.target.op,
            "threshold": plan.target.threshold, "rule": plan.rule, "seeds": list(plan.seeds),
            "confidence": 0.95, "status": status, "answer": answer,
            "monotone": _monotone(points, answer) if status in ("met", "not met") else None, "points": points,
            "cost": None if at_answer is None else {k: at_answer[k] for k in
                                                    ("gpus", "gpu_hours", "window_h", "energy_kwh", "cost_usd")},
            "cost_meaning": COST_MEANING, "runs": runs}


def _point(plan: CapacityPlan, evaluate: _Evaluator, value: int) -> dict[str, Any]:
    values = evaluate.metric_values(value)
    found = [v for v in values if v is not None]
    interval = t_interval(found)
    gpus = _installed_gpus(plan, value)
    window_h = _mean([(t - w) / 3600 for t, w in zip(evaluate.metric_values(value, "sim_time_s"),
                                                     evaluate.metric_values(value, "warmup_s"), strict=True)
                      if t is not None and w is not None])
    return {"value": value, "meets": point_meets(plan.target, plan.rule, values), "n": interval.n,
            "mean": interval.mean, "ci": [interval.low, interval.high],
            "min": min(found, default=None), "max": max(found, default=None),
            "values": {str(s): v for s, v in zip(plan.seeds, values, strict=True)},
            "gpus": gpus, "window_h": window_h, "gpu_hours": None if window_h is None else gpus * window_h,
            "energy_kwh": _mean(evaluate.metric_values(value, "energy.kwh")),
            "cost_usd": _mean(evaluate.metric_values(value, "energy.cost_usd"))}


def _installed_gpus(plan: CapacityPlan, value: int) -> int:
    scenario = load_scenario(plan.scenario, [*plan.sets, f"{plan.vary}={value}"]).scenario
    return sum(p.replicas * p.gpus_per_replica for r in scenario.regions for p in r.pools)


def _mean(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return sum(found) / len(found) if found else None


def _monotone(points: list[dict[str, Any]], answer: int | None) -> bool:
    """False when an evaluated point below the answer meets, or one at or above it fails."""
    if answer is None:
        return not any(p["meets"] for p in points)
    return all(p["meets"] == (p["value"] >= answer) for p in points)


def _csv_row(point: dict[str, Any]) -> dict[str, Any]:
    row = {k: _num(point[k]) for k in ("mean", "min", "max", "gpu_hours", "energy_kwh", "cost_usd")}
    row.update(value=point["value"], meets=int(point["meets"]), n=point["n"], gpus=point["gpus"],
               ci_low=_num(point["ci"][0]), ci_high=_num(point["ci"][1]))
    return row


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)  # written as an empty cell


def format_plan(report: dict[str, Any]) -> str:
    """The plan as text: a table of the evaluated points, then the answer and its cost."""
    n = len(report["seeds"])
    lines = [f"plan: {report['target']} over {report['vary']} in {report['range'][0]}:{report['range'][1]}, "
             f"rule {report['rule']} over {n} seed{'s' * (n != 1)}",
             _table(report)]
    lines += _verdict(report)
    return "\n".join(lines)


def _table(report: dict[str, Any]) -> str:
    header = ("value", "meets", "mean", "95% CI", "min", "max", "GPUs", "cost_usd")
    rows = [header] + [(str(p["value"]), "yes" if p["meets"] else "no", _fmt(p["mean"]),
                        "-" if p["ci"][0] is None else f"[{_fmt(p['ci'][0])}, {_fmt(p['ci'][1])}]",
                        _fmt(p["min"]), _fmt(p["max"]), str(p["gpus"]), _fmt(p["cost_usd"]))
                       for p in report["points"]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def _verdict(report: dict[str, Any]) -> list[str]:
    vary, answer = report["vary"], report["answer"]
    low, high = report["range"]
    if report["status"] == "not met":
        return [f"not met within range {low}:{high}: {report['target']} fails at {vary}={high}"]
    if report["status"] != "met":
        return [f"stopped: {report['status']} (run the same command again to resume)"]
    point = next(p for p in report["points"] if p["value"] == answer)
    below = next((p for p in report["points"] if p["value"] == answer - 1), None)
    lines = [f"answer: {vary}={answer}: {report['path']} mean {_fmt(point['mean'])}"
             + (f" (95% CI {_fmt(point['ci'][0])} to {_fmt(point['ci'][1])})" if point["ci"][0] is not None else "")
             + (f"; at {answer - 1} it is {_fmt(below['mean'])}" if below else
                f"; {answer} is the low end of the range: try a lower LO" if answer == low else "")]
    cost = report["cost"]
    lines.append(f"cost at {answer}: {cost['gpus']} GPUs, {_fmt(cost['gpu_hours'])} GPU-hours and "
                 f"{_fmt(cost['energy_kwh'])} kWh costing ${_fmt(cost['cost_usd'])} of electricity over the "
                 f"{_fmt(cost['window_h'])} h measured window (energy.cost_usd; GPUs themselves not priced)")
    if not report["monotone"]:
        lines.append("note: the evaluated points are not monotone in the varied value (noise or a real "
                     "non-monotone effect): the answer is a boundary the search found; add seeds or check the table")
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
