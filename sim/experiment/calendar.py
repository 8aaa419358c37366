"""A build plan over quarters: which replicas to order, where and when, so that a target
holds with a given probability in every quarter, at least cost (``simulate.py
plan-calendar``).

The scenario is one quarter's busy period (simulated in fluid mode) and holds a ``plan``
section::

    plan:
      quarters: 8
      target: "inference.ttft_ms.p99<=2000"
      probability: 0.9             # share of growth samples that must meet the target
      samples: 16                  # Latin-hypercube samples of the growth
      growth: {dist: uniform, low: 0.08, high: 0.15}   # per quarter, on every workload's rate
      options:                     # what can be ordered: replicas of a pool of the scenario
        - {pool: eastus/h100, lead_quarters: 2, usd_per_replica_quarter: 52000}
        - {pool: westeurope/h100, lead_quarters: 3, usd_per_replica_quarter: 48000}
      power_caps:                  # MW a region may draw (GPUs x TDP x PUE), from a quarter on
        - {region: westeurope, mw: 0.3, from_quarter: 1}
        - {region: westeurope, mw: 1.0, from_quarter: 5}

Quarter q's demand is the scenario's rates times ``(1 + g)^q`` for a sample ``g`` of the
growth (a number is a fixed growth). The planner walks the quarters in order. In each it
evaluates the fleet that exists then (the scenario's replicas plus every order that has
arrived) on every sample with the fluid mode; while the share of samples meeting the target
is below ``probability`` it adds the replica that raises that share most per dollar, among
the options that can arrive by then (ordered ``lead_quarters`` earlier, not before quarter
0) and fit the region's power cap; a replica is paid from its arrival to the horizon. A
quarter no option can rescue is reported with the constraint that binds (lead time, power
cap, or no option left). Greedy, not a global optimum; exact where one pool's capacity is
all that matters (``tests/experiment/test_calendar.py``: the Erlang C answer each quarter).

Public: ``CalendarPlan``, ``read_calendar``, ``plan_calendar``, ``format_calendar``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError, UsageError
from sim.experiment.capacity import Target, parse_target
from sim.experiment.stats import lookup
from sim.experiment.uncertainty import Input, draw_samples
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.runner import execute, preflight
from sim.scenario import load_scenario
from sim.scenario.model import Plan, PlanGrowth, PlanOption
from sim.world import build_world

__all__ = ["CalendarPlan", "read_calendar", "plan_calendar", "confirm_plan", "format_calendar", "PLAN_COLUMNS"]

PLAN_COLUMNS = ("order_quarter", "arrival_quarter", "pool", "replicas", "usd_per_replica_quarter", "usd_to_horizon")


@dataclass
class CalendarPlan:
    calendar: Plan
    scenario: Path
    sets: tuple[str, ...]
    target: Target
    growth: list[float]
    out: Path | None
    pool_keys: list[str]
    base_replicas: dict[str, int]
    replica_mw: dict[str, float]
    region_of: dict[str, str]
    region_pools: dict[str, list[tuple[str, int]]]
    orders: list[dict[str, Any]] = field(default_factory=list)
    quarters: list[dict[str, Any]] = field(default_factory=list)


def read_calendar(path: str | Path, out: Path | None = None, sets: Sequence[str] = ()) -> CalendarPlan:
    """Read a scenario with a ``plan`` section and check it (nothing runs)."""
    path = Path(path).resolve()
    sets = (*sets, "fidelity=fluid")
    loaded = load_scenario(path, sets)
    preflight(loaded)  # what the fluid mode cannot model is refused here, with its location
    calendar = loaded.scenario.plan
    if calendar is None:
        raise UsageError(f"{path}: has no plan section (quarters, target, growth, options; see docs/planning.md)")
    target = parse_target(calendar.target)
    world = build_world(loaded.scenario)
    pools = {p.key: p for p in world.pools}
    pue = {r.name: r.pue for r in world.regions}
    problems = []
    for k, option in enumerate(calendar.options):
        if option.pool not in pools:
            problems.append(loaded.problem(("plan", "options", k, "pool"),
                                           f"no such pool (known: {', '.join(pools)})", option.pool))
    regions = {r.name for r in world.regions}
    for k, cap in enumerate(calendar.power_caps):
        if cap.region not in regions:
            problems.append(loaded.problem(("plan", "power_caps", k, "region"), "no such region", cap.region))
    if problems:
        raise ScenarioError(problems)
    if isinstance(calendar.growth, PlanGrowth):
        params = {k: v for k, v in calendar.growth.model_dump().items() if k != "dist" and v is not None}
        growth = [float(v) for (v,) in draw_samples([Input("plan.growth", calendar.growth.dist, params)],
                                                    calendar.samples, loaded.scenario.seed)]
    else:
        growth = [float(calendar.growth)] * calendar.samples
    keys = [o.pool for o in calendar.options]
    return CalendarPlan(
        calendar, path, tuple(sets), target, growth, out, keys,
        {key: pools[key].replicas for key in keys},
        {key: pools[key].gpus_per_replica * pools[key].gpu.tdp_w * pue[pools[key].region] / 1e6 for key in pools},
        {key: pools[key].region for key in pools},
        {r.name: [(p.key, p.replicas) for p in r.pools] for r in world.regions})


def _pool_path(key: str) -> str:
    region, pool = key.split("/", 1)
    return f"regions.{region}.pools.{pool}.replicas"


class _Evaluator:
    """Fluid runs of the scenario at one quarter's demand and one fleet, memoised."""

    def __init__(self, plan: CalendarPlan):
        self.plan = plan
        self.cache: dict[tuple, float | None] = {}
        base = load_scenario(plan.scenario, plan.sets).scenario
        self.rates = [(k, wl.arrival.rate_per_s) for k, wl in enumerate(base.inference)
                      if hasattr(wl.arrival, "rate_per_s")]
        self.runs = 0

    def value(self, quarter: int, sample: int, fleet: Mapping[str, int], exact: bool = False) -> float | None:
        growth = (1.0 + self.plan.growth[sample]) ** quarter
        key = (round(growth, 12), tuple(sorted(fleet.items())), exact)
        if key not in self.cache:
            sets = [*self.plan.sets, *(f"{_pool_path(p)}={n}" for p, n in fleet.items()),
                    *(f"inference.{k}.arrival.rate_per_s={rate * growth!r}" for k, rate in self.rates),
                    *(["fidelity=exact"] if exact else [])]
            try:
                summary = execute(load_scenario(self.plan.scenario, sets)).summary
            except ScenarioError as exc:
                raise UsageError(f"quarter {quarter}: {exc}") from None
            self.cache[key] = lookup(summary, self.plan.target.path)
            self.runs += 1
        return self.cache[key]

    def share(self, quarter: int, fleet: Mapping[str, int]) -> tuple[float, list[float | None]]:
        values = [self.value(quarter, s, fleet) for s in range(len(self.plan.growth))]
        return sum(self.plan.target.holds(v) for v in values) / len(values), values


def _cap(plan: CalendarPlan, region: str, quarter: int) -> float:
    caps = [c for c in plan.calendar.power_caps if c.region == region and c.from_quarter <= quarter]
    return max(caps, key=lambda c: c.from_quarter).mw if caps else math.inf


def _power(plan: CalendarPlan, fleet: Mapping[str, int], region: str) -> float:
    """MW of the region's pools: the ordered pools at their fleet size, the others at their replicas."""
    return sum(fleet.get(key, replicas) * plan.replica_mw[key] for key, replicas in plan.region_pools[region])


def plan_calendar(plan: CalendarPlan) -> dict[str, Any]:
    """Walk the quarters, ordering replicas until each meets the target with the probability."""
    cal = plan.calendar
    evaluate = _Evaluator(plan)
    fleet = dict(plan.base_replicas)
    added = {o.pool: 0 for o in cal.options}
    horizon = cal.quarters
    for q in range(1, horizon + 1):
        share, values = evaluate.share(q, fleet)
        binding = None
        while share < cal.probability:
            best = None
            reasons = []
            for option in cal.options:
                if q - option.lead_quarters < 0:
                    reasons.append(f"{option.pool}: ordered now it arrives in quarter {option.lead_quarters}")
                    continue
                if option.max_replicas is not None and added[option.pool] >= option.max_replicas:
                    reasons.append(f"{option.pool}: its {option.max_replicas} replicas are all ordered")
                    continue
                region = plan.region_of[option.pool]
                trial = dict(fleet)
                trial[option.pool] += 1
                cap = _cap(plan, region, q)
                if _power(plan, trial, region) > cap + 1e-12:
                    reasons.append(f"{region}: power cap {cap:g} MW in quarter {q}")
                    continue
                gain, _ = evaluate.share(q, trial)
                cost = option.usd_per_replica_quarter * (horizon - q + 1)
                rank = ((gain - share) / cost, -cost)
                if best is None or rank > best[0]:
                    best = (rank, option, gain)
            if best is None:
                binding = "; ".join(dict.fromkeys(reasons)) or "no option"
                break
            _, option, share = best
            fleet[option.pool] += 1
            added[option.pool] += 1
            _order(plan, option, q)
        share, values = evaluate.share(q, fleet)
        plan.quarters.append(_quarter_row(plan, q, fleet, share, values, binding))
    target = plan.target
    report = {"calendar": cal.model_dump(), "scenario": str(plan.scenario), "growth_samples": plan.growth,
              "target": {"path": target.path, "op": target.op, "threshold": target.threshold},
              "orders": plan.orders, "quarters": plan.quarters, "fluid_runs": evaluate.runs,
              "total_usd": sum(o["usd_to_horizon"] for o in plan.orders),
              "met": all(row["met"] for row in plan.quarters)}
    if plan.out is not None:
        plan.out.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(plan.out / "plan.csv", PLAN_COLUMNS, plan.orders)
        write_json_atomic(plan.out / "plan_calendar.json", report)
    return report


def confirm_plan(plan: CalendarPlan, report: dict[str, Any], worst: int) -> dict[str, Any]:
    """Run the planned fleet of every quarter exactly (every request simulated) on the
    ``worst`` growth samples (the highest growth) and record, per quarter, their values and
    the share meeting the target: the fluid search's answer checked where it matters most."""
    evaluate = _Evaluator(plan)
    order = sorted(range(len(plan.growth)), key=lambda s: -plan.growth[s])[:max(worst, 0)]
    for row in report["quarters"]:
        values = [evaluate.value(row["quarter"], s, row["fleet"], exact=True) for s in order]
        row["exact"] = {"growth": [plan.growth[s] for s in order], "values": values,
                        "share_meeting": sum(plan.target.holds(v) for v in values) / len(values) if values else None}
    report["exact_runs"] = evaluate.runs
    if plan.out is not None:
        write_json_atomic(plan.out / "plan_calendar.json", report)
    return report


def _order(plan: CalendarPlan, option: PlanOption, arrival: int) -> None:
    for order in plan.orders:
        if order["pool"] == option.pool and order["arrival_quarter"] == arrival:
            order["replicas"] += 1
            order["usd_to_horizon"] += option.usd_per_replica_quarter * (plan.calendar.quarters - arrival + 1)
            return
    plan.orders.append({"order_quarter": arrival - option.lead_quarters, "arrival_quarter": arrival,
                        "pool": option.pool, "replicas": 1,
                        "usd_per_replica_quarter": option.usd_per_replica_quarter,
                        "usd_to_horizon": option.usd_per_replica_quarter * (plan.calendar.quarters - arrival + 1)})


def _quarter_row(plan: CalendarPlan, q: int, fleet: Mapping[str, int], share: float,
                 values: Sequence[float | None], binding: str | None) -> dict[str, Any]:
    import numpy as np

    present = np.array([v for v in values if v is not None], dtype=float)
    bands = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist() if len(present) else [None] * 5
    return {"quarter": q, "fleet": dict(fleet), "share_meeting": share, "met": share >= plan.calendar.probability,
            "median": bands[2], "band_50": [bands[1], bands[3]], "band_90": [bands[0], bands[4]],
            "binding": binding}


def format_calendar(report: dict[str, Any]) -> str:
    cal = report["calendar"]
    exact = "exact_runs" in report
    lines = [f"target {cal['target']} with probability {cal['probability']:g} in each of {cal['quarters']} quarters "
             f"({len(report['growth_samples'])} growth samples, {report['fluid_runs']} fluid runs"
             + (f"; the worst samples run exactly: {report['exact_runs']} runs)" if exact else ")"), "",
             f"{'quarter':>7}  {'P(meet)':>7}  {'median':>10}  {'90 % band':>23}  "
             + (f"{'exact, worst':>22}  " if exact else "") + "fleet"]
    for row in report["quarters"]:
        band = row["band_90"]
        fleet = ", ".join(f"{k}={v}" for k, v in row["fleet"].items())
        median = "-" if row["median"] is None else f"{row['median']:,.4g}"
        band_text = "-" if band[0] is None else f"[{band[0]:,.4g}, {band[1]:,.4g}]"
        check = ""
        if exact:
            values = [v for v in row["exact"]["values"] if v is not None]
            check = f"{(max(values) if values else float('nan')):>12,.4g} (P {row['exact']['share_meeting']:.2f})  "
        lines.append(f"{row['quarter']:>7}  {row['share_meeting']:>7.2f}  {median:>10}  {band_text:>23}  {check}"
                     f"{fleet}" + ("" if row["met"] else f"  NOT MET: {row['binding']}"))
    lines += ["", f"{'order in':>8}  {'arrives':>7}  {'pool':24} {'replicas':>8}  {'USD to horizon':>14}"]
    for o in report["orders"]:
        lines.append(f"{o['order_quarter']:>8}  {o['arrival_quarter']:>7}  {o['pool']:24} {o['replicas']:>8}  "
                     f"{o['usd_to_horizon']:>14,.0f}")
    lines.append(f"total {report['total_usd']:,.0f} USD" + ("" if report["met"] else "  (the target is not met in "
                                                                                       "every quarter)"))
    return "\n".join(lines)
