"""A build plan over quarters: which replicas to order, where and when, so that a target
holds with a given probability in every quarter, at least cost (``simulate.py
plan-calendar``; docs/planning.md is the worked study).

The scenario is one quarter's busy period and holds a ``plan`` section::

    plan:
      quarters: 8
      target: "inference.ttft_ms.p99<=2000"
      probability: 0.9             # share of samples that must meet the target
      samples: 16                  # Latin-hypercube samples of what is uncertain
      growth: {dist: uniform, low: 0.08, high: 0.15}   # per quarter; or one per workload name
      options:                     # what can be ordered: replicas of a pool of the scenario
        - {pool: eastus/h100, lead_quarters: 2, usd_per_replica_quarter: 52000}
        - {pool: westeurope/b200, lead_quarters: 3, usd_per_replica: 420000}   # bought
      power_caps:                  # MW (GPUs x TDP x PUE) and GPUs a site may hold, from a quarter on
        - {region: westeurope, mw: 0.3, from_quarter: 1}
        - {region: westeurope, mw: 1.0, gpus: 512, from_quarter: 5}
      retire:                      # old GPUs leaving service
        - {pool: japaneast/a100, replicas: 2, quarter: 4}

What is uncertain: the growth laws, and any value of the scenario itself written as a
distribution (``{dist: ...}``, as ``simulate.py uncertainty`` reads them). One set of
Latin-hypercube samples of all of them is drawn (seeded by the scenario's seed); quarter
q of sample s runs the scenario with that sample's values and every workload's rate times
``(1 + g)^q``.

The search, quarter by quarter, in fluid mode: evaluate the fleet that exists then (the
scenario's replicas, minus those retired, plus every order that has arrived) on every
sample; while the share of samples meeting the target is below ``probability``, add the
replica that cuts the shortfall most per dollar, among the options that can arrive by then
(ordered ``lead_quarters`` earlier, not before quarter 0) and fit the region's caps then
and in every later quarter (replicas are held to the horizon). The
shortfall is the sum of the smallest ``ceil(probability x samples)`` relative deficits
(``(value - threshold) / threshold`` where a sample misses, 0 where it meets): zero exactly
when enough samples meet, and blind to samples the probability lets miss. A replica that
takes a sample across the line is weighed by how far it had to go, so two cheap replicas
beat one dear one that does the same. Cut per dollar alone can overpay (a 1-slot replica
closes more of a two-slot gap per dollar than a 2-slot one that costs 1.5 times as much,
and then a second one is needed), so the quarter's choice gives way to n replicas of one
option when they meet the need for less. A quarter no option can rescue is reported
with the constraint that binds (lead time, power or GPU cap, no option left, or no option
that helps).

Then exact simulation (every request). ``auto`` (the default) refines where the fluid
mode is known to be biased (``fluid_bias``: load-aware routing over several pools, whose
capacity it pools while the fluid queues each pool alone; batching replicas; prefix
caches; docs/fluid.md) and confirms elsewhere (an M/M/c pool is Erlang C in fluid mode,
and one exact busy hour is one noisy draw of it):

- ``refine`` (default): a second pass over the quarters with exact runs. Each quarter gets
  the cheaper of two answers: the fluid plan's arrivals for it, less those the exact runs
  show are not needed (most expensive first; missing ones added greedily), and the same
  greedy search as above from no arrivals, with exact runs. With one uncertain input
  (the growth) the outcome is monotone in it, so a quarter is decided by the sample at
  rank ``ceil(probability x samples)``; otherwise every sample is run.
- ``confirm``: the fluid plan decides, the exact runs are a check beside it.
- either way every quarter is then run exactly on every sample, and the share meeting the
  target reported with its 95 % Wilson interval; with ``refine`` that is the probability
  the plan is held to. ``none`` keeps the fluid answer alone.

``--check N`` draws N fresh Monte Carlo samples and runs the final plan on them (at the
fidelity of the reported probability): a brute-force estimate of each quarter's
probability with its interval, beside the reported one.

Evaluations run on the sweep machinery (a local process pool or Dask) and each finished
one is appended to ``evaluations.jsonl`` in the plan folder, so an interrupted plan
resumes without running them again.

Costs: a replica's price is a lease per quarter, an hourly price per GPU (2,191.5 h a
quarter) or a purchase price paid on arrival; leases run from arrival to the horizon.

Public: ``CalendarPlan``, ``read_calendar``, ``plan_calendar``, ``check_plan``,
``format_calendar``, ``evaluate``, ``Evaluation``.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError, UsageError
from sim.experiment.capacity import Target, numeric_paths, parse_target
from sim.experiment.executors import Executor
from sim.experiment.stats import lookup, wilson_interval
from sim.experiment.tasks import describe_error
from sim.experiment.uncertainty import Input, draw_samples, find_inputs, override
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.progress import Progress
from sim.runner import execute, preflight
from sim.scenario import LoadedScenario, Scenario, load_scenario
from sim.scenario.model import HOURS_PER_QUARTER, Plan, PlanGrowth, PlanOption
from sim.scenario.yaml_io import load_yaml_file
from sim.streams import Streams
from sim.world import World, build_world

__all__ = ["CalendarPlan", "read_calendar", "plan_calendar", "check_plan",
           "format_calendar", "evaluate", "Evaluation", "PLAN_COLUMNS", "EXACT_MODES"]

PLAN_COLUMNS = ("order_quarter", "arrival_quarter", "pool", "replicas", "price", "usd_each", "usd_to_horizon")
EXACT_MODES = ("auto", "refine", "confirm", "none")
_LOAD_AWARE = ("least_loaded", "power_of_two", "latency_aware", "ttft_aware", "cache_aware")
_MISSING = 1e3  # the shortfall of a sample whose run gave no value (the worst there is)
_MAX_ADDED = 100_000  # replicas one quarter may add: a guard against a target nothing moves


@dataclass(frozen=True)
class Evaluation:
    """One busy period to simulate in a worker: the scenario with overrides, the values to read."""

    scenario: str
    overrides: tuple[str, ...]
    paths: tuple[str, ...]
    out: str = ""


def evaluate(task: Evaluation) -> dict[str, Any]:
    """Run ``task`` in memory; ``{"status": "ok", "values": {path: number or None}}`` or failed.
    A path the summary does not have at all (not even as null) is also listed under
    ``absent`` with the closest paths it has: a misspelt target, not a missing value."""
    try:
        summary = execute(load_scenario(task.scenario, task.overrides)).summary
    except Exception as exc:  # reported with the evaluation that raised it
        return {"status": "failed", "error": describe_error(exc)}
    values = {path: lookup(summary, path) for path in task.paths}
    known = list(numeric_paths(summary))
    absent = {path: difflib.get_close_matches(path, known, n=3, cutoff=0.6) for path in task.paths
              if values[path] is None and path not in known}
    return {"status": "ok", "values": values, **({"absent": absent} if absent else {})}


@dataclass
class CalendarPlan:
    name: str  # the scenario's name
    calendar: Plan
    scenario: Path
    sets: tuple[str, ...]
    target: Target
    kpis: tuple[str, ...]
    inputs: list[Input]
    samples: list[list[Any]]  # per sample, one value per input
    scenario_inputs: int  # the first inputs are the scenario's own, the others growths
    growth_of: list[int | None]  # per workload: the input that draws its growth (None: fixed)
    fixed_growth: list[float]  # per workload: its growth when no input sets it
    rates: list[tuple[int, float]]  # (workload index, base rate) of the workloads that grow
    out: Path | None
    pool_keys: list[str]
    base_replicas: dict[str, int]
    gpus_per_replica: dict[str, int]
    replica_mw: dict[str, float]
    region_of: dict[str, str]
    region_pools: dict[str, list[tuple[str, int]]]
    critical: int | None  # the sample that decides a quarter when the outcome is monotone in it
    fluid_bias: str | None  # why the fluid mode's answer is known to be biased here (None: it is not)
    file_sha256: str
    seed: int
    orders: list[dict[str, Any]] = field(default_factory=list)
    quarters: list[dict[str, Any]] = field(default_factory=list)
    written_at: dict[str, Problem] = field(default_factory=dict)  # per KPI path: where the file names it

    def path_problem(self, path: str, close: Sequence[str]) -> Problem:
        """``plan.target`` (or ``plan.kpis[i]``) names a path the summary does not have."""
        at = self.written_at[path]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see docs/metrics.md)"
        return Problem(at.file, at.line, at.path, f"{path} is not a number in the summary{hint}")

    def growth(self, sample: int, workload: int) -> float:
        pick = self.growth_of[workload]
        return float(self.samples[sample][pick]) if pick is not None else self.fixed_growth[workload]

    def sample_growth(self, sample: int) -> float:
        """The sample's mean growth over the workloads that grow (for tables and ordering)."""
        values = [self.growth(sample, k) for k, _ in self.rates]
        return float(np.mean(values)) if values else 0.0


def read_calendar(path: str | Path, out: Path | None = None, sets: Sequence[str] = ()) -> CalendarPlan:
    """Read a scenario with a ``plan`` section, check it and draw the samples (nothing runs)."""
    path = Path(path).resolve()
    sets = tuple(sets)
    loaded, scenario_inputs = _load_fluid(path, sets)
    calendar = loaded.scenario.plan
    if calendar is None:
        raise UsageError(f"{path}: has no plan section (quarters, target, growth, options; see docs/planning.md)")
    target = _plan_target(loaded, calendar)
    world = build_world(loaded.scenario)
    problems = [*_fleet_problems(loaded, calendar, world), *_growth_name_problems(loaded, calendar),
                *_growth_problems(loaded, calendar.growth)]
    if problems:
        raise ScenarioError(problems)
    growing = _growing(loaded.scenario)
    inputs, growth_of, fixed = _growth_inputs(calendar, scenario_inputs, loaded.scenario, growing)
    samples = draw_samples(inputs, calendar.samples, loaded.scenario.seed)
    pools = {p.key: p for p in world.pools}
    keys = list(dict.fromkeys([*(o.pool for o in calendar.options), *(g.pool for g in calendar.retire)]))
    base_rates = [(k, float(loaded.scenario.inference[k].arrival.rate_per_s)) for k in growing]  # type: ignore[union-attr]
    plan = CalendarPlan(
        loaded.scenario.name, calendar, path, sets, target, tuple(dict.fromkeys([target.path, *calendar.kpis])),
        inputs, samples, len(scenario_inputs), growth_of, fixed, base_rates, out, keys,
        {key: pools[key].replicas for key in keys}, {key: p.gpus_per_replica for key, p in pools.items()},
        _replica_mw(calendar, world), {key: p.region for key, p in pools.items()},
        {r.name: [(p.key, p.replicas) for p in r.pools] for r in world.regions},
        _critical_sample(calendar, samples, len(inputs), len(scenario_inputs)), _fluid_bias(loaded, world, calendar),
        hashlib.sha256(path.read_bytes()).hexdigest(), loaded.scenario.seed)
    written = calendar.kpis if "kpis" in calendar.model_fields_set else []  # the defaults may be null
    for k, kpi in reversed(list(enumerate(written))):
        plan.written_at[kpi] = loaded.problem(("plan", "kpis", k), "")
    plan.written_at[target.path] = loaded.problem(("plan", "target"), "")
    return plan


def _load_fluid(path: Path, sets: tuple[str, ...]) -> tuple[LoadedScenario, list[Input]]:
    """The scenario in fluid mode with its uncertain values (outside the plan section) at
    their medians, checked for what the fluid mode cannot model; and those uncertain inputs."""
    data, lines, _ = load_yaml_file(path)
    own = {k: v for k, v in data.items() if k != "plan"} if isinstance(data, Mapping) else data
    scenario_inputs = find_inputs(own, str(path), lines)
    medians = [override(i.path, i.median()) for i in scenario_inputs]
    loaded = load_scenario(path, [*sets, *medians, "fidelity=fluid"])
    preflight(loaded)  # what the fluid mode cannot model is refused here, with its location
    return loaded, scenario_inputs


def _plan_target(loaded: LoadedScenario, calendar: Plan) -> Target:
    """``plan.target`` read, or a located error."""
    try:
        return parse_target(calendar.target)
    except UsageError as exc:
        raise ScenarioError([loaded.problem(("plan", "target"), str(exc).removeprefix("--target: ")
                                            .rsplit(" (got ", 1)[0], calendar.target)]) from None


def _fleet_problems(loaded: LoadedScenario, calendar: Plan, world: World) -> list[Problem]:
    """Options and retirements of pools the scenario lacks, caps of regions it lacks, and
    retirements of more replicas than a pool has."""
    pools = {p.key: p for p in world.pools}
    problems: list[Problem] = []
    for k, option in enumerate(calendar.options):
        if option.pool not in pools:
            problems.append(loaded.problem(("plan", "options", k, "pool"),
                                           f"no such pool (known: {', '.join(pools)})", option.pool))
    regions = {r.name for r in world.regions}
    for k, cap in enumerate(calendar.power_caps):
        if cap.region not in regions:
            problems.append(loaded.problem(("plan", "power_caps", k, "region"), "no such region", cap.region))
    retired: dict[str, int] = {}
    for k, gone in enumerate(calendar.retire):
        if gone.pool not in pools:
            problems.append(loaded.problem(("plan", "retire", k, "pool"),
                                           f"no such pool (known: {', '.join(pools)})", gone.pool))
            continue
        retired[gone.pool] = retired.get(gone.pool, 0) + gone.replicas
        if retired[gone.pool] > pools[gone.pool].replicas:
            problems.append(loaded.problem(("plan", "retire", k, "replicas"), f"retires more replicas than the "
                                           f"pool has ({pools[gone.pool].replicas})", gone.replicas))
    return problems


def _growing(scenario: Scenario) -> list[int]:
    """Indices of the workloads whose rate can grow (those with a ``rate_per_s``)."""
    return [k for k, wl in enumerate(scenario.inference) if hasattr(wl.arrival, "rate_per_s")]


def _growth_name_problems(loaded: LoadedScenario, calendar: Plan) -> list[Problem]:
    """A growth per workload that names no workload, or one without a rate to grow."""
    if not isinstance(calendar.growth, dict):
        return []
    workloads = [wl.name for wl in loaded.scenario.inference]
    growing = _growing(loaded.scenario)
    problems = []
    for name in calendar.growth:
        if name not in workloads:
            problems.append(loaded.problem(("plan", "growth", name), f"no such workload (known: "
                                           f"{', '.join(workloads)})", name))
        elif workloads.index(name) not in growing:
            problems.append(loaded.problem(("plan", "growth", name), "grows a rate_per_s: this workload's "
                                           "arrivals have none (a trace or sessions)", name))
    return problems


def _growth_inputs(calendar: Plan, scenario_inputs: list[Input], scenario: Scenario,
                   growing: list[int]) -> tuple[list[Input], list[int | None], list[float]]:
    """The uncertain inputs (the scenario's, then one per growth law), and per workload the
    input that draws its growth (None: fixed) and its fixed growth."""
    workloads = [wl.name for wl in scenario.inference]
    inputs = list(scenario_inputs)
    growth_of: list[int | None] = [None] * len(workloads)
    fixed = [0.0] * len(workloads)

    def law(value: float | PlanGrowth, where: str, ks: Iterable[int]) -> None:
        if isinstance(value, PlanGrowth):
            params = {k: v for k, v in value.model_dump().items() if k != "dist" and v is not None}
            inputs.append(Input(where, value.dist, params))
            for k in ks:
                growth_of[k] = len(inputs) - 1
        else:
            for k in ks:
                fixed[k] = float(value)

    if isinstance(calendar.growth, dict):
        for name, value in calendar.growth.items():
            law(value, f"plan.growth.{name}", [workloads.index(name)])
    else:
        law(calendar.growth, "plan.growth", growing)
    return inputs, growth_of, fixed


def _replica_mw(calendar: Plan, world: World) -> dict[str, float]:
    """Per pool: the MW one replica draws (GPUs x TDP, or the option's kW per GPU, x PUE)."""
    pue = {r.name: r.pue for r in world.regions}
    kw = {o.pool: o.kw_per_gpu for o in calendar.options if o.kw_per_gpu is not None}
    return {p.key: p.gpus_per_replica * (kw[p.key] * 1e3 if p.key in kw else p.gpu.tdp_w) * pue[p.region] / 1e6
            for p in world.pools}


def _critical_sample(calendar: Plan, samples: list[list[Any]], n_inputs: int, n_scenario_inputs: int) -> int | None:
    """The sample that decides a quarter when the outcome is monotone in it: the one at
    rank ``ceil(probability x samples)`` in growth when the growth alone is uncertain, the
    first when nothing is; else None."""
    if n_inputs == n_scenario_inputs + 1 and not n_scenario_inputs:  # the growth alone is uncertain
        rank = math.ceil(calendar.probability * calendar.samples - 1e-9)
        return sorted(range(len(samples)), key=lambda s: (samples[s][0], s))[max(rank, 1) - 1]
    if n_inputs == 0:  # nothing uncertain: every sample is the same
        return 0
    return None


def _fluid_bias(loaded: LoadedScenario, world: World, calendar: Plan) -> str | None:
    """Why the fluid mode's answer is known to be biased for this plan (None: it is not)."""
    serving = [p for p in world.pools if p.key in {o.pool for o in calendar.options} or p.replicas > 0]
    if any(p.serving is not None for p in serving):
        return "batching replicas (KV admission and preemption are not in the fluid model)"
    if any(wl.shared_prefix is not None for wl in loaded.scenario.inference):
        return "prefix caches (not in the fluid model)"
    if loaded.scenario.scheduler.routing.name in _LOAD_AWARE and len(serving) > 1:
        return (f"{loaded.scenario.scheduler.routing.name} routing pools the capacity of {len(serving)} pools, "
                "which the fluid model queues one by one")
    return None


_FALLS = "a growth must be > -1 (a rate cannot fall to 0 or below)"


def _growth_problems(loaded: Any, growth: float | PlanGrowth | Mapping[str, float | PlanGrowth]) -> list[Problem]:
    """A growth at or below -1, or a law that can draw one (a rate times ``(1 + g)^q`` must
    stay positive, in the plan's samples and in a brute-force check's), located at
    ``plan.growth`` or ``plan.growth.NAME``."""
    laws = growth.items() if isinstance(growth, Mapping) else [(None, growth)]
    problems = []
    for name, value in laws:
        where = ("plan", "growth") if name is None else ("plan", "growth", name)
        if not isinstance(value, PlanGrowth):
            if not value > -1:
                problems.append(loaded.problem(where, _FALLS, value))
        elif not _lowest(value) > -1:
            problems.append(loaded.problem(where, f"{_FALLS}: this {value.dist} law reaches {_lowest(value):g}"
                                           + (" (6 sd below its mean)" if value.dist == "normal" else ""),
                                           value.model_dump(exclude_none=True)))
    return problems


def _lowest(law: PlanGrowth) -> float:
    """The lowest growth ``law`` draws: its low end, 6 sd below the mean of a normal one."""
    if law.dist == "normal":
        return float(law.mean) - 6 * float(law.sd)  # type: ignore[arg-type]
    return float(law.low) if law.dist in ("uniform", "triangular") else 0.0  # type: ignore[arg-type]


def _pool_path(key: str) -> str:
    region, pool = key.split("/", 1)
    return f"regions.{region}.pools.{pool}.replicas"


class _Evaluator:
    """Runs of the scenario at one quarter's demand and one fleet, memoised in memory and in
    ``evaluations.jsonl`` (one line per finished run: an interrupted plan resumes there)."""

    def __init__(self, plan: CalendarPlan, executor: Executor, quiet: bool = True):
        self.plan, self.executor, self.quiet = plan, executor, quiet
        self.cache: dict[str, dict[str, Any]] = {}
        self.runs = {"fluid": 0, "exact": 0}
        self.reused: set[str] = set()  # evaluations asked for that an earlier attempt ran
        self.file = plan.out / "evaluations.jsonl" if plan.out is not None else None
        if self.file is not None and self.file.is_file():
            for line in self.file.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.cache[row["key"]] = row["result"]
                except (ValueError, KeyError, TypeError, RecursionError):  # a line cut short by an interruption
                    continue
        self.loaded = frozenset(self.cache)

    def overrides(self, quarter: int, sample: int, fleet: Mapping[str, int], exact: bool) -> tuple[str, ...]:
        plan = self.plan
        own = [override(i.path, v) for i, v in zip(plan.inputs[:plan.scenario_inputs],
                                                    plan.samples[sample][:plan.scenario_inputs], strict=True)]
        rates = [f"inference.{k}.arrival.rate_per_s={rate * (1.0 + plan.growth(sample, k)) ** quarter!r}"
                 for k, rate in plan.rates]
        return (*plan.sets, *own, *(f"{_pool_path(p)}={n}" for p, n in sorted(fleet.items())), *rates,
                f"fidelity={'exact' if exact else 'fluid'}")

    def key(self, overrides: Sequence[str]) -> str:
        text = "\n".join([self.plan.file_sha256, *overrides, *self.plan.kpis])
        return hashlib.sha256(text.encode()).hexdigest()

    def run(self, wanted: Iterable[tuple[int, int, Mapping[str, int], bool]], label: str = "") -> None:
        """Evaluate every ``(quarter, sample, fleet, exact)`` not already known, as one batch."""
        todo: dict[str, tuple[str, ...]] = {}
        for quarter, sample, fleet, exact in wanted:
            overrides = self.overrides(quarter, sample, fleet, exact)
            key = self.key(overrides)
            if key not in self.cache:
                todo[key] = overrides
            elif key in self.loaded:
                self.reused.add(key)
        if not todo:
            return
        keys = list(todo)
        tasks = [Evaluation(str(self.plan.scenario), todo[k], self.plan.kpis) for k in keys]
        with Progress(label or "plan-calendar", len(tasks), "runs", quiet=self.quiet or len(tasks) < 8) as progress:
            for index, result in self.executor.run(tasks, evaluate):
                absent = {path: close for path, close in result.get("absent", {}).items()
                          if path in self.plan.written_at}
                if absent:
                    raise ScenarioError([self.plan.path_problem(path, close) for path, close in absent.items()])
                key = keys[index]
                self.cache[key] = result
                self.runs["exact" if todo[key][-1] == "fidelity=exact" else "fluid"] += 1
                if self.file is not None and result.get("status") == "ok":
                    self.file.parent.mkdir(parents=True, exist_ok=True)
                    with self.file.open("a", encoding="utf-8") as f:
                        f.write(json.dumps({"key": key, "result": result}) + "\n")
                progress.advance()

    def values(self, quarter: int, sample: int, fleet: Mapping[str, int], exact: bool) -> dict[str, float | None]:
        key = self.key(self.overrides(quarter, sample, fleet, exact))
        if key not in self.cache:
            self.run([(quarter, sample, fleet, exact)])
        result = self.cache[key]
        if result.get("status") != "ok":
            raise UsageError(f"quarter {quarter}, sample {sample}: {result.get('error', 'the run failed')}")
        return result["values"]

    def target_values(self, quarter: int, fleet: Mapping[str, int], exact: bool,
                      samples: Sequence[int]) -> list[float | None]:
        self.run([(quarter, s, fleet, exact) for s in samples])
        return [self.values(quarter, s, fleet, exact)[self.plan.target.path] for s in samples]


def _shortfall(target: Target, values: Sequence[float | None], need: float) -> float:
    """How far the fleet is from meeting the target on the share ``need`` of the samples: the
    sum of the smallest ``ceil(need x n)`` deficits, each in units of the threshold (0: met).
    The samples beyond that share may miss: making them better is worth nothing."""
    scale = abs(target.threshold) or 1.0
    deficits = []
    for v in values:
        if v is None or not math.isfinite(v):
            deficits.append(_MISSING)
        elif target.op in ("<=", "<"):
            deficits.append(0.0 if target.holds(v) else max((v - target.threshold) / scale, 1e-9))
        else:
            deficits.append(0.0 if target.holds(v) else max((target.threshold - v) / scale, 1e-9))
    return float(sum(sorted(deficits)[:max(math.ceil(need * len(values) - 1e-9), 1)]))


def _cap(plan: CalendarPlan, region: str, quarter: int, kind: str) -> float:
    caps = [c for c in plan.calendar.power_caps if c.region == region and c.from_quarter <= quarter
            and getattr(c, kind) is not None]
    return float(getattr(max(caps, key=lambda c: c.from_quarter), kind)) if caps else math.inf


def _region_use(plan: CalendarPlan, fleet: Mapping[str, int], region: str) -> tuple[float, int]:
    """MW and GPUs of the region's pools: planned pools at their fleet size, others as built."""
    mw = sum(fleet.get(key, n) * plan.replica_mw[key] for key, n in plan.region_pools[region])
    gpus = sum(fleet.get(key, n) * plan.gpus_per_replica[key] for key, n in plan.region_pools[region])
    return mw, gpus


def _replica_cost(plan: CalendarPlan, option: PlanOption, arrival: int) -> float:
    """What one replica arriving in ``arrival`` costs to the horizon, USD."""
    held = plan.calendar.quarters - arrival + 1
    if option.usd_per_replica_quarter is not None:
        return option.usd_per_replica_quarter * held
    if option.usd_per_gpu_hour is not None:
        return option.usd_per_gpu_hour * plan.gpus_per_replica[option.pool] * HOURS_PER_QUARTER * held
    assert option.usd_per_replica is not None
    return option.usd_per_replica


def _quarter_cost(plan: CalendarPlan, option: PlanOption, arrival: int, quarter: int) -> float:
    """What one replica arriving in ``arrival`` costs in ``quarter``, USD."""
    if quarter < arrival:
        return 0.0
    if option.usd_per_replica is not None:
        return option.usd_per_replica if quarter == arrival else 0.0
    return _replica_cost(plan, option, plan.calendar.quarters)  # one quarter's lease or hours


def _retired(plan: CalendarPlan, pool: str, quarter: int) -> int:
    return sum(g.replicas for g in plan.calendar.retire if g.pool == pool and g.quarter <= quarter)


def _fleet(plan: CalendarPlan, quarter: int, arrivals: Sequence[tuple[int, int]]) -> dict[str, int]:
    """The fleet in ``quarter``: base replicas, less those retired, plus ``(option, arrival)`` arrived."""
    fleet = {key: plan.base_replicas[key] - _retired(plan, key, quarter) for key in plan.pool_keys}
    for k, arrival in arrivals:
        if arrival <= quarter:
            fleet[plan.calendar.options[k].pool] += 1
    return fleet


def _over_cap(plan: CalendarPlan, fleet: Mapping[str, int], region: str, quarter: int) -> str | None:
    """Which cap ``fleet`` (as in ``quarter``) breaks in the region, in that quarter or any
    later one while its replicas are held (a cap that drops later binds now); None if none."""
    for later in range(quarter, plan.calendar.quarters + 1):
        held = {key: n - (_retired(plan, key, later) - _retired(plan, key, quarter)) for key, n in fleet.items()}
        mw, gpus = _region_use(plan, held, region)
        mw_cap, gpu_cap = _cap(plan, region, later, "mw"), _cap(plan, region, later, "gpus")
        if mw > mw_cap + 1e-12:
            return f"{region}: power cap {mw_cap:g} MW in quarter {later}"
        if gpus > gpu_cap:
            return f"{region}: GPU cap {gpu_cap:g} in quarter {later}"
    return None


def _feasible(plan: CalendarPlan, fleet: Mapping[str, int], quarter: int,
              added: Mapping[int, int]) -> tuple[list[int], list[str]]:
    """The options one more replica of which can arrive by ``quarter`` and fits the caps, and
    why each of the others cannot."""
    ok, reasons = [], []
    for k, option in enumerate(plan.calendar.options):
        if quarter - option.lead_quarters < 0:
            reasons.append(f"{option.pool}: ordered now it arrives in quarter {option.lead_quarters}")
            continue
        if option.max_replicas is not None and added.get(k, 0) >= option.max_replicas:
            reasons.append(f"{option.pool}: its {option.max_replicas} replicas are all ordered")
            continue
        region = plan.region_of[option.pool]
        trial = dict(fleet)
        trial[option.pool] += 1
        why = _over_cap(plan, trial, region, quarter)
        if why is not None:
            reasons.append(why)
            continue
        ok.append(k)
    return ok, reasons


def _grow(plan: CalendarPlan, evaluate_: _Evaluator, quarter: int, arrivals: list[tuple[int, int]],
          samples: Sequence[int], exact: bool, need: float) -> str | None:
    """Add replicas arriving in ``quarter`` (to ``arrivals``) until the share of ``samples``
    meeting the target reaches ``need``; the binding constraint when it cannot. The greedy's
    choice gives way to n replicas of one option when they meet the need for less."""
    start = len(arrivals)
    binding = _greedy(plan, evaluate_, quarter, arrivals, samples, exact, need)
    if binding is None and len(arrivals) > start:
        cheaper = _one_kind(plan, evaluate_, quarter, arrivals[:start], arrivals[start:], samples, exact, need)
        if cheaper is not None:
            arrivals[start:] = [(cheaper[0], quarter)] * cheaper[1]
    return binding


def _one_kind(plan: CalendarPlan, evaluate_: _Evaluator, quarter: int, before: Sequence[tuple[int, int]],
              chosen: Sequence[tuple[int, int]], samples: Sequence[int], exact: bool,
              need: float) -> tuple[int, int] | None:
    """``(option, n)``: n replicas of one option that meet the need for less than the greedy's
    ``chosen``, the cheapest such; None if there is none. Greedy by cut per dollar can miss
    it: a 1-slot replica at 1,000 USD closes more of a 2-slot gap per dollar than a 2-slot
    one at 1,500, and then a second 1-slot replica is needed (2,000 USD against 1,500)."""
    options = plan.calendar.options
    each = {k: _replica_cost(plan, option, quarter) for k, option in enumerate(options)}
    bound = sum(each[k] for k, _ in chosen)  # what one kind must cost less than
    found = None
    counts = {k: 0 for k in each if {j for j, _ in chosen} != {k}}
    while counts:
        trials = {}
        for k, n in list(counts.items()):
            arrivals = [*before, *[(k, quarter)] * n]
            feasible, _ = _feasible(plan, _fleet(plan, quarter, arrivals), quarter, _counts(arrivals))
            if k not in feasible or each[k] * (n + 1) >= bound - 1e-9:
                del counts[k]
                continue
            counts[k] = n + 1
            trials[k] = _fleet(plan, quarter, [*arrivals, (k, quarter)])
        evaluate_.run([(quarter, s, fleet, exact) for fleet in trials.values() for s in samples],
                      f"quarter {quarter}: {'exact' if exact else 'fluid'} runs")
        for k, fleet in trials.items():
            values = evaluate_.target_values(quarter, fleet, exact, samples)
            if _shortfall(plan.target, values, need) <= 0.0:
                n = counts.pop(k)
                if each[k] * n < bound - 1e-9:
                    bound, found = each[k] * n, (k, n)
    return found


def _counts(arrivals: Sequence[tuple[int, int]]) -> dict[int, int]:
    added: dict[int, int] = {}
    for k, _ in arrivals:
        added[k] = added.get(k, 0) + 1
    return added


def _greedy(plan: CalendarPlan, evaluate_: _Evaluator, quarter: int, arrivals: list[tuple[int, int]],
            samples: Sequence[int], exact: bool, need: float) -> str | None:
    """The greedy of :func:`_grow`: one replica at a time, the one that cuts the shortfall most per dollar."""
    added = _counts(arrivals)
    fleet = _fleet(plan, quarter, arrivals)
    values = evaluate_.target_values(quarter, fleet, exact, samples)
    for _ in range(_MAX_ADDED):
        short = _shortfall(plan.target, values, need)
        if short <= 0.0:
            return None
        options, reasons = _feasible(plan, fleet, quarter, added)
        if not options:
            return "; ".join(dict.fromkeys(reasons)) or "no option"
        trials = {}
        for k in options:
            trial = dict(fleet)
            trial[plan.calendar.options[k].pool] += 1
            trials[k] = trial
        evaluate_.run([(quarter, s, trials[k], exact) for k in options for s in samples],
                      f"quarter {quarter}: {'exact' if exact else 'fluid'} runs")
        best = None
        for k in options:
            got = evaluate_.target_values(quarter, trials[k], exact, samples)
            cost = _replica_cost(plan, plan.calendar.options[k], quarter)
            rank = ((short - _shortfall(plan.target, got, need)) / cost, -cost)
            if best is None or rank > best[0]:
                best = (rank, k, got)
        assert best is not None
        (cut_rate, _), k, got = best
        if cut_rate <= 0:
            return "no option brings the target closer (" + ", ".join(plan.calendar.options[j].pool
                                                                        for j in options) + ")"
        arrivals.append((k, quarter))
        added[k] = added.get(k, 0) + 1
        fleet, values = trials[k], got
    return "too many replicas"


def _orders(plan: CalendarPlan, arrivals: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    grouped: dict[tuple[int, int], int] = {}
    for k, arrival in arrivals:
        grouped[(arrival, k)] = grouped.get((arrival, k), 0) + 1
    rows = []
    for (arrival, k), n in sorted(grouped.items()):
        option = plan.calendar.options[k]
        each = _replica_cost(plan, option, arrival)
        price = ("usd_per_replica_quarter" if option.usd_per_replica_quarter is not None else
                 "usd_per_gpu_hour" if option.usd_per_gpu_hour is not None else "usd_per_replica")
        rows.append({"order_quarter": arrival - option.lead_quarters, "arrival_quarter": arrival,
                     "pool": option.pool, "replicas": n, "price": f"{price}={getattr(option, price):g}",
                     "usd_each": each, "usd_to_horizon": each * n, "option": k})
    return rows


def _arrivals(report: Mapping[str, Any]) -> list[tuple[int, int]]:
    return [(o["option"], o["arrival_quarter"]) for o in report["orders"] for _ in range(o["replicas"])]


def _bands(values: Sequence[float | None]) -> dict[str, Any]:
    present = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(present):
        return {"median": None, "band_50": [None, None], "band_90": [None, None]}
    q = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist()
    return {"median": q[2], "band_50": [q[1], q[3]], "band_90": [q[0], q[4]]}


def _assess(plan: CalendarPlan, evaluate_: _Evaluator, quarter: int, fleet: Mapping[str, int],
            exact: bool) -> dict[str, Any]:
    """Every sample's values for the fleet: the share meeting the target with its interval,
    and each KPI's median and bands."""
    n = len(plan.samples)
    evaluate_.run([(quarter, s, fleet, exact) for s in range(n)],
                  f"quarter {quarter}: {'exact' if exact else 'fluid'} runs")
    rows = [evaluate_.values(quarter, s, fleet, exact) for s in range(n)]
    met = sum(plan.target.holds(r[plan.target.path]) for r in rows)
    low, high = wilson_interval(met, n)
    return {"share_meeting": met / n, "ci": [low, high], "values": [r[plan.target.path] for r in rows],
            "kpis": {path: _bands([r[path] for r in rows]) for path in plan.kpis}}


def _summarise(plan: CalendarPlan, evaluate_: _Evaluator, arrivals: Sequence[tuple[int, int]],
               bindings: Mapping[int, str | None], exact: bool, exact_decides: bool) -> list[dict[str, Any]]:
    cal = plan.calendar
    rows = []
    for q in range(1, cal.quarters + 1):
        fleet = _fleet(plan, q, arrivals)
        fluid = _assess(plan, evaluate_, q, fleet, False)
        target = fluid["kpis"][plan.target.path]
        row: dict[str, Any] = {"quarter": q, "fleet": fleet, "share_meeting": fluid["share_meeting"],
                               "ci": fluid["ci"], "median": target["median"], "band_50": target["band_50"],
                               "band_90": target["band_90"], "kpis": fluid["kpis"], "values": fluid["values"]}
        if exact:
            row["exact"] = _assess(plan, evaluate_, q, fleet, True)
        decided = row["exact"] if exact_decides else row
        row["met"] = decided["share_meeting"] >= cal.probability - 1e-12
        if exact and not exact_decides:
            row["exact"]["met"] = row["exact"]["share_meeting"] >= cal.probability - 1e-12
        row["binding"] = bindings.get(q) if not row["met"] else None
        if not row["met"] and row["binding"] is None:
            row["binding"] = (f"the share meeting the target over every sample is {decided['share_meeting']:.2f}, "
                              "below the probability (the deciding sample met it)")
        row["regions"] = {}
        for region in plan.region_pools:
            mw, gpus = _region_use(plan, fleet, region)
            if gpus:
                row["regions"][region] = {"mw": mw, "gpus": gpus, "mw_cap": _finite(_cap(plan, region, q, "mw")),
                                          "gpus_cap": _finite(_cap(plan, region, q, "gpus"))}
        row["usd"] = sum(_quarter_cost(plan, cal.options[k], arrival, q) for k, arrival in arrivals)
        rows.append(row)
    return rows


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plan_calendar(plan: CalendarPlan, exact: str = "none", backend: str = "process", workers: int = 1,
                  scheduler: str | None = None, quiet: bool = True, command: Sequence[str] = ()) -> dict[str, Any]:
    """The fluid search over the quarters, then (``exact`` = refine or confirm) exact runs;
    the report, also written to ``plan_calendar.json`` and ``plan.csv`` in ``plan.out``.
    ``auto`` refines where the fluid mode is known to be biased (``plan.fluid_bias``) and
    confirms elsewhere."""
    if exact not in EXACT_MODES:
        raise UsageError(f"--exact: must be one of {', '.join(EXACT_MODES)} (got {exact!r})")
    chosen = exact
    if exact == "auto":
        exact = "refine" if plan.fluid_bias is not None else "confirm"
    cal = plan.calendar
    every = list(range(len(plan.samples)))
    with Executor(backend, workers, scheduler) as executor:
        evaluate_ = _Evaluator(plan, executor, quiet)
        arrivals, bindings = _fluid_search(plan, evaluate_, quiet)
        fluid_orders = _orders(plan, arrivals)
        if exact == "refine":
            arrivals, bindings = _refine(plan, evaluate_, arrivals, quiet)
        rows = _summarise(plan, evaluate_, arrivals, bindings, exact != "none", exact == "refine")
        runs = dict(evaluate_.runs)
        reused = len(evaluate_.reused)
    orders = _orders(plan, arrivals)
    target = plan.target
    report = {"calendar": cal.model_dump(), "scenario": str(plan.scenario), "seed": plan.seed, "command": list(command),
              "exact": exact, "exact_option": chosen,
              "fluid_bias": plan.fluid_bias, "decided_by": "exact" if exact == "refine" else "fluid",
              "inputs": [{"path": i.path, "dist": i.dist, "params": dict(i.params)} for i in plan.inputs],
              "samples": plan.samples, "growth_samples": [plan.sample_growth(s) for s in every],
              "deciding_sample": plan.critical,
              "target": {"path": target.path, "op": target.op, "threshold": target.threshold},
              "kpis": list(plan.kpis), "orders": orders, "fluid_orders": fluid_orders, "quarters": rows,
              "fluid_runs": runs["fluid"], "exact_runs": runs["exact"], "reused_runs": reused,
              "total_usd": sum(o["usd_to_horizon"] for o in orders),
              "fluid_total_usd": sum(o["usd_to_horizon"] for o in fluid_orders),
              "met": all(row["met"] for row in rows)}
    plan.orders, plan.quarters = orders, rows
    _write(plan, report)
    return report


def _fluid_search(plan: CalendarPlan, evaluate_: _Evaluator,
                  quiet: bool) -> tuple[list[tuple[int, int]], dict[int, str | None]]:
    """The fluid pass, quarter by quarter over every sample: the arrivals it orders
    (option index, arrival quarter) and per quarter what binds where the target is missed."""
    cal = plan.calendar
    every = list(range(len(plan.samples)))
    arrivals: list[tuple[int, int]] = []
    bindings: dict[int, str | None] = {}
    with Progress("plan-calendar: fluid search", cal.quarters, "quarters", quiet=quiet) as progress:
        for q in range(1, cal.quarters + 1):
            bindings[q] = _grow(plan, evaluate_, q, arrivals, every, False, cal.probability)
            progress.advance()
    return arrivals, bindings


_ATTEMPT = ("command", "fluid_runs", "exact_runs", "reused_runs")  # how this attempt went, not the plan


def _write(plan: CalendarPlan, report: Mapping[str, Any]) -> None:
    """``plan.csv`` and ``plan_calendar.json``, which depend on the plan only (the same plan
    in another folder, or resumed after an interruption, gives the same bytes), and
    ``manifest.json`` with the command and the runs this attempt made and read back."""
    if plan.out is None:
        return
    plan.out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(plan.out / "plan.csv", PLAN_COLUMNS, report["orders"])
    write_json_atomic(plan.out / "plan_calendar.json", {k: v for k, v in report.items() if k not in _ATTEMPT})
    write_json_atomic(plan.out / "manifest.json", {"scenario_sha256": plan.file_sha256,
                                                   **{k: report[k] for k in _ATTEMPT if k in report}})


def _refine(plan: CalendarPlan, evaluate_: _Evaluator, fluid: Sequence[tuple[int, int]],
            quiet: bool) -> tuple[list[tuple[int, int]], dict[int, str | None]]:
    """The exact pass, quarter by quarter: two candidates for the quarter's arrivals, the
    cheaper kept: the fluid plan's arrivals less what exact runs show is not needed (plus
    what they miss), and a greedy search from no arrivals with exact runs alone."""
    cal = plan.calendar
    samples = [plan.critical] if plan.critical is not None else list(range(len(plan.samples)))
    need = 1.0 if plan.critical is not None else cal.probability
    arrivals: list[tuple[int, int]] = []
    bindings: dict[int, str | None] = {}

    def cost(chosen: Sequence[tuple[int, int]]) -> float:
        return sum(_replica_cost(plan, cal.options[k], q) for k, q in chosen)

    with Progress("plan-calendar: exact refinement", cal.quarters, "quarters", quiet=quiet) as progress:
        for q in range(1, cal.quarters + 1):
            planned = sorted((k for k, arrival in fluid if arrival == q),
                             key=lambda k: -_replica_cost(plan, cal.options[k], q))
            pruned = _pruned(plan, evaluate_, q, arrivals, planned, samples, need)
            if pruned is None:
                from_fluid = [*arrivals, *((k, q) for k in planned)]
                fluid_binding = _grow(plan, evaluate_, q, from_fluid, samples, True, need)
            else:
                from_fluid, fluid_binding = [*arrivals, *((k, q) for k in pruned)], None
            fresh = list(arrivals)
            fresh_binding = _grow(plan, evaluate_, q, fresh, samples, True, need)
            new_fluid, new_fresh = from_fluid[len(arrivals):], fresh[len(arrivals):]
            if fresh_binding is None and (fluid_binding is not None or cost(new_fresh) < cost(new_fluid)):
                arrivals, bindings[q] = fresh, None
            else:
                arrivals, bindings[q] = from_fluid, fluid_binding
            progress.advance()
    return arrivals, bindings


def _pruned(plan: CalendarPlan, evaluate_: _Evaluator, q: int, arrivals: Sequence[tuple[int, int]],
            planned: list[int], samples: Sequence[int], need: float) -> list[int] | None:
    """``planned`` (options arriving in ``q``, the most expensive first) less every replica
    whose absence exact runs do not notice; None when even all of them do not meet the need."""
    if _share(plan, evaluate_, q, [*arrivals, *((k, q) for k in planned)], samples) < need - 1e-12:
        return None
    while planned:
        candidates = [planned[:i] + planned[i + 1:] for i in range(len(planned))]
        evaluate_.run([(q, s, _fleet(plan, q, [*arrivals, *((k, q) for k in keep)]), True)
                       for keep in candidates for s in samples], f"quarter {q}: exact runs")
        for keep in candidates:  # ordered: dropping the most expensive first
            if _share(plan, evaluate_, q, [*arrivals, *((k, q) for k in keep)], samples) >= need - 1e-12:
                planned = keep
                break
        else:
            break
    return planned


def _share(plan: CalendarPlan, evaluate_: _Evaluator, quarter: int, arrivals: Sequence[tuple[int, int]],
           samples: Sequence[int]) -> float:
    values = evaluate_.target_values(quarter, _fleet(plan, quarter, arrivals), True, samples)
    return sum(plan.target.holds(v) for v in values) / len(values)


def check_plan(plan: CalendarPlan, report: dict[str, Any], n: int, backend: str = "process", workers: int = 1,
               scheduler: str | None = None, quiet: bool = True) -> dict[str, Any]:
    """Brute force: run the plan on ``n`` fresh Monte Carlo samples of the uncertain inputs
    (plain random, their own seed stream) at the fidelity of the reported probability, and
    record per quarter the share meeting the target with its 95 % interval."""
    if n < 1:
        raise UsageError(f"--check: must be >= 1 (got {n})")
    exact = report.get("decided_by") == "exact"
    rng = Streams(plan.seed).get("plan-calendar/monte-carlo")
    draws = rng.random((n, len(plan.inputs)))
    checked = CalendarPlan(**{**plan.__dict__, "samples": [[inp.value(float(u[j])) for j, inp in
                                                              enumerate(plan.inputs)] for u in draws],
                              "orders": [], "quarters": []})
    arrivals = _arrivals(report)
    with Executor(backend, workers, scheduler) as executor:
        evaluate_ = _Evaluator(checked, executor, quiet)
        for row in report["quarters"]:
            fleet = _fleet(plan, row["quarter"], arrivals)
            got = _assess(checked, evaluate_, row["quarter"], fleet, exact)
            reported = row["exact"] if exact else row
            agrees = got["ci"][0] <= reported["ci"][1] and reported["ci"][0] <= got["ci"][1]
            row["check"] = {"samples": n, "share_meeting": got["share_meeting"], "ci": got["ci"],
                            "agrees": agrees}
    report["check_samples"] = n
    _write(plan, report)
    return report


def _share_text(share: Mapping[str, Any]) -> str:
    """``0.94 [0.72, 0.99]``: a share meeting the target with its 95 % interval."""
    return f"{share['share_meeting']:.2f} [{share['ci'][0]:.2f}, {share['ci'][1]:.2f}]"


def format_calendar(report: Mapping[str, Any]) -> str:
    """The plan as text: how it was decided, a row per quarter, the orders and their total."""
    lines = [*_calendar_header(report), "", *_quarter_lines(report), ""]
    lines.append(f"{'order in':>8}  {'arrives':>7}  {'pool':24} {'replicas':>8}  {'USD to horizon':>14}")
    for o in report["orders"]:
        lines.append(f"{o['order_quarter']:>8}  {o['arrival_quarter']:>7}  {o['pool']:24} {o['replicas']:>8}  "
                     f"{o['usd_to_horizon']:>14,.0f}")
    lines.append(f"total {report['total_usd']:,.0f} USD" + ("" if report["met"] else "  (the target is not met in "
                                                                                       "every quarter)"))
    return "\n".join(lines)


def _calendar_header(report: Mapping[str, Any]) -> list[str]:
    """The target and the runs it took; who decided and, when exact runs did, how they
    moved the cost."""
    cal = report["calendar"]
    exact = report.get("exact", "none") != "none"
    by_exact = report.get("decided_by") == "exact"
    lines = [f"target {cal['target']} with probability {cal['probability']:g} in each of {cal['quarters']} quarters "
             f"({len(report['samples'])} samples; {report['fluid_runs']} fluid runs"
             + (f", {report['exact_runs']} exact runs ({report['exact']})" if exact else "")
             + (f"; {report['reused_runs']} read back from evaluations.jsonl)" if report.get("reused_runs") else ")")]
    if by_exact:
        bias = report.get("fluid_bias")
        lines.append(f"decided by exact runs: the fluid mode is biased here ({bias})" if bias else
                     "decided by exact runs (--exact refine)")
    elif exact:
        lines.append("decided by the fluid search; exact runs of every sample beside it as a check")
    if by_exact and report.get("fluid_total_usd") != report["total_usd"]:
        lines.append(f"the fluid search alone would order {report['fluid_total_usd']:,.0f} USD; exact runs "
                     f"{'cut' if report['total_usd'] < report['fluid_total_usd'] else 'raise'} it to "
                     f"{report['total_usd']:,.0f} USD")
    return lines


def _quarter_lines(report: Mapping[str, Any]) -> list[str]:
    """The quarter table: shares meeting the target (fluid, exact, brute force), the
    target's median and 90 % band from the deciding runs, the fleet, and what binds."""
    exact = report.get("exact", "none") != "none"
    by_exact = report.get("decided_by") == "exact"
    check = "check_samples" in report
    head = f"{'quarter':>7}  {'P fluid':>7}  "
    if exact:
        head += f"{'P exact [95 % CI]':>20}  "
    if check:
        head += f"{'P brute force':>20}  "
    lines = [head + f"{'median':>9}  {'90 % band':>20}  fleet"]
    for row in report["quarters"]:
        shown = row["exact"]["kpis"][report["target"]["path"]] if by_exact else row
        band = shown["band_90"]
        fleet = ", ".join(f"{k}={v}" for k, v in row["fleet"].items())
        median = "-" if shown["median"] is None else f"{shown['median']:,.4g}"
        band_text = "-" if band[0] is None else f"[{band[0]:,.4g}, {band[1]:,.4g}]"
        text = f"{row['quarter']:>7}  {row['share_meeting']:>7.2f}  "
        for shown_share in ([row["exact"]] if exact else []) + ([row["check"]] if check else []):
            text += _share_text(shown_share).rjust(20) + "  "
        text += f"{median:>9}  {band_text:>20}  {fleet}"
        if not row["met"]:
            text += f"  NOT MET: {row['binding']}"
        lines.append(text)
    return lines
