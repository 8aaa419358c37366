"""Uncertain inputs: any number of a scenario may be a distribution; what do the KPIs do?

A value written as a distribution is an **uncertain input** (its path is where it sits):

- ``{dist: uniform, low: A, high: B}``;
- ``{dist: triangular, low: A, mode: M, high: B}``;
- ``{dist: normal, mean: M, sd: S}``;
- ``{dist: lognormal, median: M, sigma: S}`` (the log's standard deviation);
- ``{dist: choice, values: [...], weights: [...]}`` (any values, e.g. scenario names or
  policies; weights optional).

The keys tell them apart from the scenario's own distributions (a service time
``{dist: lognormal, mean, cv}`` is not an uncertain input). A draw is an integer when every
number of its distribution is one (``replicas: {dist: uniform, low: 8, high: 12}``).

``simulate.py uncertainty FILE --samples N`` draws N samples of every input at once by
Latin hypercube (each input's range cut into N equally likely strata, each stratum used
exactly once, strata paired at random across inputs; ``scipy.stats.qmc``), seeded from the
scenario's seed. Each sample runs at ``--seeds`` seeds (the scenario's seed, +1, ...: common
random numbers across samples) on the experiment machinery (resumable folder, process pool
or Dask). The report gives, per KPI, the median over samples (each sample's value the mean
over its seeds) with 50 % and 90 % bands; for each ``--target``, the probability that a
sample meets it, with a Wilson 95 % interval (over samples, the seeds' noise inside); and
which inputs move each KPI most (Spearman rank correlation).

Files: ``uncertainty.json`` (what the folder holds), run folders ``u<sample>-s<seed>``,
``samples.csv`` (one row per sample: inputs, then KPIs) and ``uncertainty_report.json``.

Public: ``Input``, ``find_inputs``, ``draw_samples``, ``UncertaintyPlan``,
``plan_uncertainty``, ``run_uncertainty``, ``format_uncertainty``.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError, UsageError
from sim.experiment.capacity import Target, parse_target
from sim.experiment.executors import check_executor, execute_tasks
from sim.experiment.stats import DEFAULT_METRICS, wilson_interval
from sim.experiment.sweep import claim_folder
from sim.experiment.tasks import RunTask, check_run_count
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.scenario import load_scenario
from sim.scenario.yaml_io import LineMap, format_path, load_yaml_file
from sim.streams import Streams

__all__ = ["Input", "find_inputs", "draw_samples", "override", "UncertaintyPlan", "plan_uncertainty", "run_uncertainty",
           "format_uncertainty", "DISTRIBUTIONS"]

# Each distribution and the keys (besides ``dist``) it takes; ``weights`` of choice is optional.
DISTRIBUTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "uniform": (frozenset({"low", "high"}), frozenset()),
    "triangular": (frozenset({"low", "mode", "high"}), frozenset()),
    "normal": (frozenset({"mean", "sd"}), frozenset()),
    "lognormal": (frozenset({"median", "sigma"}), frozenset()),
    "choice": (frozenset({"values"}), frozenset({"weights"})),
}


@dataclass(frozen=True)
class Input:
    """An uncertain input: where it sits (``path``, as ``--set`` names it) and its law."""

    path: str
    dist: str
    params: Mapping[str, Any]

    @property
    def integer(self) -> bool:
        numbers = [v for k, v in self.params.items() if k != "weights" and k != "values"]
        return self.dist != "choice" and all(isinstance(v, int) and not isinstance(v, bool) for v in numbers)

    def value(self, u: float) -> Any:
        """The input's value at quantile ``u`` (0 < u < 1)."""
        from scipy import stats

        p = self.params
        if self.dist == "uniform":
            x = p["low"] + u * (p["high"] - p["low"])
        elif self.dist == "triangular":
            width = p["high"] - p["low"]
            x = stats.triang.ppf(u, (p["mode"] - p["low"]) / width, loc=p["low"], scale=width) if width else p["low"]
        elif self.dist == "normal":
            x = p["mean"] + p["sd"] * stats.norm.ppf(u)
        elif self.dist == "lognormal":
            x = p["median"] * math.exp(p["sigma"] * stats.norm.ppf(u))
        else:
            weights = np.asarray(p.get("weights") or [1.0] * len(p["values"]), dtype=float)
            edges = np.cumsum(weights) / weights.sum()
            return p["values"][min(int(np.searchsorted(edges, u, side="right")), len(edges) - 1)]
        return int(round(float(x))) if self.integer else float(x)

    def median(self) -> Any:
        return self.value(0.5)


def _problems(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, rule)`` for what is wrong with one distribution's parameters (key "" : the whole)."""
    dist = spec["dist"]
    numbers = {k: v for k, v in spec.items() if k not in ("dist", "values", "weights")}
    bad = [k for k, v in numbers.items() if isinstance(v, bool) or not isinstance(v, (int, float))
           or not math.isfinite(v)]
    if bad:
        return [(k, "must be a finite number") for k in bad]
    if dist == "uniform" and not spec["low"] <= spec["high"]:
        return [("", "a uniform distribution needs low <= high")]
    if dist == "triangular" and not spec["low"] <= spec["mode"] <= spec["high"]:
        return [("", "a triangular distribution needs low <= mode <= high")]
    if dist == "normal" and spec["sd"] < 0:
        return [("sd", "must be >= 0")]
    if dist == "lognormal" and (spec["sigma"] < 0 or spec["median"] <= 0):
        return [("", "a lognormal distribution needs median > 0 and sigma >= 0")]
    if dist == "choice":
        values, weights = spec["values"], spec.get("weights")
        if not isinstance(values, list) or not values:
            return [("values", "must be a non-empty list")]
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(values)
                                    or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0
                                           for w in weights) or not sum(weights) > 0):
            return [("weights", "must be one number >= 0 per value, not all 0")]
    return []


def find_inputs(data: Any, source: str = "<scenario>", lines: LineMap | None = None) -> list[Input]:
    """Every uncertain input of raw scenario ``data``, in document order; a distribution
    with bad parameters is a :class:`ScenarioError` naming the file, line and path."""
    found: list[Input] = []
    problems: list[Problem] = []

    def walk(node: Any, prefix: tuple[str | int, ...]) -> None:
        if isinstance(node, Mapping):
            dist = node.get("dist")
            if isinstance(dist, str) and dist in DISTRIBUTIONS:
                required, optional = DISTRIBUTIONS[dist]
                if required <= set(node) - {"dist"} <= required | optional:
                    path = ".".join(str(p) for p in prefix)
                    for where, rule in _problems(node):
                        line = lines.line((*prefix, where) if where else prefix) if lines else None
                        problems.append(Problem(source, line, format_path((*prefix, where) if where else prefix),
                                                rule, node.get(where, dict(node)) if where else dict(node)))
                    found.append(Input(path, dist, {k: v for k, v in node.items() if k != "dist"}))
                    return
            for key, value in node.items():
                walk(value, (*prefix, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*prefix, index))

    walk(data, ())
    if problems:
        raise ScenarioError(problems)
    return found


def draw_samples(inputs: Sequence[Input], n: int, seed: int) -> list[list[Any]]:
    """``n`` Latin-hypercube samples of ``inputs`` (one list of values per sample)."""
    from scipy.stats import qmc

    if not inputs:
        return [[] for _ in range(n)]
    rng = Streams(seed).get("uncertainty/latin-hypercube")
    u = qmc.LatinHypercube(d=len(inputs), seed=rng).random(n)
    return [[inp.value(float(u[i, k])) for k, inp in enumerate(inputs)] for i in range(n)]


def override(path: str, value: Any) -> str:
    """``--set`` text giving ``path`` the value ``value`` (strings quoted as JSON)."""
    return f"{path}={json.dumps(value) if isinstance(value, str) else value!r}"


@dataclass(frozen=True)
class UncertaintyPlan:
    scenario: str
    sets: tuple[str, ...]
    inputs: tuple[Input, ...]
    samples: tuple[tuple[Any, ...], ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    targets: tuple[Target, ...]
    out: Path
    tasks: tuple[RunTask, ...]
    identity: dict[str, Any]


def plan_uncertainty(scenario: str | Path, samples: int, seeds: int = 1, metrics: Sequence[str] = (),
                     targets: Sequence[str] = (), sets: Sequence[str] = (), out: Path | None = None,
                     root: Path = Path("results"), command: Sequence[str] = ()) -> UncertaintyPlan:
    """Read the inputs, check the scenario at their medians, draw the samples (nothing runs)."""
    if samples < 2:
        raise UsageError(f"--samples: must be >= 2 (got {samples})")
    if seeds < 1:
        raise UsageError(f"--seeds: must be >= 1 (got {seeds})")
    check_run_count(samples * seeds, "--samples x --seeds")
    parsed_targets = tuple(parse_target(t) for t in targets)
    data, lines, _ = load_yaml_file(scenario)
    inputs = tuple(find_inputs(data, str(scenario), lines))
    if not inputs:
        raise UsageError(f"{scenario}: no uncertain input (a value written as {{dist: uniform, low: .., high: ..}} "
                         "or another distribution; see docs/planning.md)")
    medians = [override(i.path, i.median()) for i in inputs]
    base = load_scenario(scenario, [*sets, *medians])  # the scenario is valid at its medians
    drawn = draw_samples(inputs, samples, base.scenario.seed)
    seed_list = tuple(base.scenario.seed + k for k in range(seeds))
    wanted = list(metrics) or [*DEFAULT_METRICS, "inference.ttft_ms.p99", "inference.tpot_ms.p99"]
    chosen = tuple(dict.fromkeys([*wanted, *(t.path for t in parsed_targets)]))  # targets are always measured
    source = str(Path(scenario).resolve())
    text_hash = hashlib.sha256(Path(scenario).read_bytes()).hexdigest()
    identity = {"kind": "uncertainty", "scenario": source, "file_sha256": text_hash, "set": list(sets),
                "samples": samples, "seeds": list(seed_list)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    folder = Path(out) if out is not None else Path(root) / base.scenario.name / f"uncertainty-{digest}"
    tasks = tuple(RunTask(source, (*sets, *(override(i.path, v) for i, v in zip(inputs, values, strict=True)),
                                   f"seed={seed}"),
                          str(folder.resolve() / f"u{k:03d}-s{seed}"), chosen, tuple(command))
                  for k, values in enumerate(drawn) for seed in seed_list)
    return UncertaintyPlan(source, tuple(sets), inputs, tuple(tuple(v) for v in drawn), seed_list, chosen,
                           parsed_targets, folder, tasks, identity)


def run_uncertainty(plan: UncertaintyPlan, backend: str = "process", workers: int = 1,
                    scheduler: str | None = None) -> dict[str, Any]:
    """Run every (sample, seed) not already finished; write ``samples.csv`` and the report."""
    check_executor(backend, workers, scheduler)
    claim_folder(plan.out, "uncertainty.json", plan.identity, "uncertainty study")
    results: list[dict[str, Any] | None] = [None] * len(plan.tasks)
    for index, result in execute_tasks(plan.tasks, backend, workers, scheduler):
        results[index] = result
    report = summarise(plan, results)
    columns = ["sample", *(i.path for i in plan.inputs), *plan.metrics]
    rows = [{"sample": k, **{i.path: v for i, v in zip(plan.inputs, plan.samples[k], strict=True)},
             **{m: _blank(report["per_sample"][m][k]) for m in plan.metrics}} for k in range(len(plan.samples))]
    write_csv_atomic(plan.out / "samples.csv", columns, rows)
    write_json_atomic(plan.out / "uncertainty_report.json", report)
    return report


def _blank(value: float | None) -> Any:
    return "" if value is None else value


def summarise(plan: UncertaintyPlan, results: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Per-sample means over seeds, then quantile bands, target probabilities and rank
    correlations over samples."""
    n, s = len(plan.samples), len(plan.seeds)
    failed = [plan.tasks[i].out for i, r in enumerate(results) if r is None or r["status"] == "failed"]
    per_sample: dict[str, list[float | None]] = {}
    for metric in plan.metrics:
        means: list[float | None] = []
        for k in range(n):
            values = [(results[k * s + j] or {}).get("metrics", {}).get(metric) for j in range(s)]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            means.append(float(np.mean(finite)) if len(finite) == s else None)
        per_sample[metric] = means
    kpis = {}
    for metric, means in per_sample.items():
        present = np.array([v for v in means if v is not None], dtype=float)
        if not len(present):
            continue
        q = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
        kpis[metric] = {"n": len(present), "median": float(q[2]), "band_50": [float(q[1]), float(q[3])],
                        "band_90": [float(q[0]), float(q[4])],
                        "sensitivity": _sensitivity(plan, means)}
    targets = []
    for target in plan.targets:
        met = [target.holds(v) for v in per_sample[target.path]]
        low, high = wilson_interval(sum(met), n)
        targets.append({"target": str(target), "probability": sum(met) / n, "ci": [low, high], "n": n})
    return {"scenario": plan.scenario, "samples": n, "seeds": list(plan.seeds),
            "inputs": [{"path": i.path, "dist": i.dist, "params": dict(i.params)} for i in plan.inputs],
            "kpis": kpis, "targets": targets, "per_sample": per_sample, "failed_runs": failed}


def _sensitivity(plan: UncertaintyPlan, means: Sequence[float | None]) -> dict[str, float | None]:
    """Spearman rank correlation of each numeric input with the KPI over samples."""
    from scipy.stats import spearmanr

    keep = [k for k, v in enumerate(means) if v is not None]
    out: dict[str, float | None] = {}
    for j, inp in enumerate(plan.inputs):
        xs = [plan.samples[k][j] for k in keep]
        ys = [float(means[k] or 0.0) for k in keep]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        if not numeric or len(set(xs)) < 2 or len(set(ys)) < 2:
            out[inp.path] = None
            continue
        rho = float(spearmanr(xs, ys).statistic)
        out[inp.path] = rho if math.isfinite(rho) else None
    return out


def format_uncertainty(report: dict[str, Any]) -> str:
    """The KPI table, the targets' probabilities and the strongest input per KPI."""
    lines = [f"{report['samples']} samples x {len(report['seeds'])} seeds; inputs: "
             + ", ".join(f"{i['path']} ({i['dist']})" for i in report["inputs"]), "",
             f"{'KPI':42} {'median':>12} {'50 % band':>25} {'90 % band':>25}  moved most by"]
    for metric, k in report["kpis"].items():
        sens = {p: r for p, r in k["sensitivity"].items() if r is not None}
        top = max(sens, key=lambda p: abs(sens[p]), default=None)
        moved = f"{top} (rho {sens[top]:+.2f})" if top else "-"
        lines.append(f"{metric:42} {_g(k['median']):>12} {_band(k['band_50']):>25} {_band(k['band_90']):>25}  "
                     f"{moved}")
    for t in report["targets"]:
        lines.append(f"P({t['target']}) = {t['probability']:.2f}  (95 % interval {t['ci'][0]:.2f} to "
                     f"{t['ci'][1]:.2f}, {t['n']} samples)")
    if report["failed_runs"]:
        lines.append(f"{len(report['failed_runs'])} runs failed (their samples are left out of the KPIs they miss)")
    return "\n".join(lines)


def _g(value: float) -> str:
    return f"{value:,.4g}"


def _band(band: Sequence[float]) -> str:
    return f"[{_g(band[0])}, {_g(band[1])}]"
