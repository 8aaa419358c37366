"""The calendar planner against Erlang C: with fixed growth and one pool, the fleet it plans
for each quarter is the least number of servers whose Erlang C mean wait meets the target;
with a lead time it orders exactly that many quarters earlier; a power cap binds and is
named."""
from __future__ import annotations

import json
import math
import re

import pytest

from sim.errors import ScenarioError
from sim.experiment.calendar import format_calendar, plan_calendar, read_calendar
from tests.experiment.test_uncertainty import erlang_c_wait_s

SCENARIO = """\
name: busy-hour
seed: 1
duration: 1h
regions:
  - name: solo
    lat: 0.0
    lon: 0.0
    intra_rtt_ms: 0
    pools:
      - {name: gpu, gpu: H100, replicas: 6, gpus_per_replica: 1, slots_per_replica: 1}
inference:
  - name: req
    origin: {solo: 1.0}
    arrival: {process: poisson, rate_per_s: 5.0}
    service: {dist: exponential, mean_s: 1.0}
scheduler:
  routing: nearest
"""

CALENDAR = """\
plan:
  quarters: 6
  target: "inference.wait_ms.mean<=100"
  probability: 1.0
  samples: 1
  growth: 0.1
  options:
    - {{pool: solo/gpu, lead_quarters: {lead}, usd_per_replica_quarter: 1000}}
{caps}
"""


def least_servers(lam: float, target_s: float) -> int:
    c = 1
    while erlang_c_wait_s(lam, c) > target_s:
        c += 1
    return c


def plan(tmp_path, lead=0, caps=""):
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=lead, caps=caps))
    return plan_calendar(read_calendar(path, tmp_path / "out"))


def test_each_quarter_gets_the_erlang_c_answer(tmp_path):
    report = plan(tmp_path)
    fleets = [row["fleet"]["solo/gpu"] for row in report["quarters"]]
    expected = [max(6, least_servers(5.0 * 1.1**q, 0.1)) for q in range(1, 7)]
    assert fleets == expected and expected[-1] > 6  # growth forces orders
    assert all(row["met"] for row in report["quarters"])
    # Orders arrive when needed and are paid from then to the horizon.
    arrivals = {o["arrival_quarter"]: o["replicas"] for o in report["orders"]}
    growth = [b - a for a, b in zip([6, *expected], expected, strict=False)]
    assert arrivals == {q + 1: n for q, n in enumerate(growth) if n}
    assert report["total_usd"] == sum(n * 1000 * (6 - q + 1) for q, n in arrivals.items())
    assert (tmp_path / "out" / "plan.csv").is_file()
    assert "total" in format_calendar(report)


def test_a_lead_time_orders_that_many_quarters_earlier(tmp_path):
    report = plan(tmp_path, lead=2)
    for order in report["orders"]:
        assert order["order_quarter"] == order["arrival_quarter"] - 2
    # Quarter 1 would need an order placed a quarter ago, if it needs one at all.
    if least_servers(5.5, 0.1) > 6:
        assert not report["quarters"][0]["met"] and "arrives in quarter 2" in report["quarters"][0]["binding"]


def test_a_power_cap_binds_and_is_named(tmp_path):
    # Seven H100s (700 W, PUE 1.2 by default) draw 5.88 kW: a 5 kW cap holds six at most.
    caps = "  power_caps:\n    - {region: solo, mw: 0.005, from_quarter: 1}"
    report = plan(tmp_path, caps=caps)
    assert all(row["fleet"]["solo/gpu"] == 6 for row in report["quarters"])
    unmet = [row for row in report["quarters"] if not row["met"]]
    assert unmet and "power cap 0.005 MW" in unmet[0]["binding"]
    assert report["met"] is False


def test_uncertain_growth_reports_the_share_of_samples_meeting(tmp_path):
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("growth: 0.1", "growth: {dist: uniform, "
                                                                                     "low: 0.0, high: 0.2}")
                    .replace("samples: 1\n", "samples: 10\n").replace("probability: 1.0", "probability: 0.8"))
    report = plan_calendar(read_calendar(path))
    for row in report["quarters"]:
        assert row["share_meeting"] >= 0.8
        assert row["band_90"][0] <= row["median"] <= row["band_90"][1]
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("solo/gpu", "solo/nope"))
    with pytest.raises(ScenarioError, match=r"plan\.options\[0\]\.pool: no such pool \(known: solo/gpu\) "
                                            r"\(got 'solo/nope'\)"):
        read_calendar(path)


def test_the_plan_is_confirmed_by_exact_runs_and_drawn(tmp_path):
    from sim.report.calendar import draw_calendar_chart

    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("quarters: 6", "quarters: 2"))
    report = plan_calendar(read_calendar(path, tmp_path / "out"), exact="confirm")
    assert report["exact_runs"] == 2  # one sample, two quarters
    for row in report["quarters"]:
        (value,) = row["exact"]["values"]
        # The exact mean wait of the planned fleet, one hour of M/M/c: near Erlang C's.
        lam = 5.0 * 1.1 ** row["quarter"]
        assert value == pytest.approx(erlang_c_wait_s(lam, row["fleet"]["solo/gpu"]) * 1000, rel=0.5)
        assert row["exact"]["met"] == (row["exact"]["share_meeting"] >= 1.0)
        assert row["met"] == (row["share_meeting"] >= 1.0)  # confirm: the fluid decides, exact runs beside it
    assert report["decided_by"] == "fluid" and "P exact" in format_calendar(report)
    assert draw_calendar_chart(tmp_path / "out")[0].is_file()
    from sim.report.build import build_report

    built = build_report(tmp_path / "out")
    text = built.markdown.read_text()
    assert built.kind == "calendar" and "## Key results" in text and "Orders:" in text
    assert "| 1 | 1.00 |" in text and "charts/calendar.png" in text


def growth_at_most(lam0: float, c: int, quarter: int, target_s: float) -> float:
    """The largest quarterly growth g at which c servers still meet the Erlang C target in
    ``quarter`` (bisection on the formula)."""
    low, high = -0.5, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if erlang_c_wait_s(lam0 * (1 + mid) ** quarter, c) <= target_s:
            low = mid
        else:
            high = mid
    return low


@pytest.mark.parametrize("checks", [40, pytest.param(300, marks=pytest.mark.slow)])
def test_the_reported_probability_is_the_closed_form_one_and_brute_force_agrees(tmp_path, checks):
    """Uniform growth on one M/M/c pool: the probability that a fleet meets the target is
    P(g <= g*) with g* from Erlang C. Latin-hypercube sampling puts one sample in each of n
    strata, so the share it reports is within 1/n of it; a Monte Carlo check of the same plan
    covers it with its interval."""
    from sim.experiment.calendar import check_plan

    n, low, high = 20, 0.0, 0.2
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("growth: 0.1", f"growth: {{dist: uniform, "
                                                                                     f"low: {low}, high: {high}}}")
                    .replace("samples: 1\n", f"samples: {n}\n").replace("probability: 1.0", "probability: 0.8"))
    plan_ = read_calendar(path)
    report = check_plan(plan_, plan_calendar(plan_), checks)
    checked = 0
    for row in report["quarters"]:
        g_star = growth_at_most(5.0, row["fleet"]["solo/gpu"], row["quarter"], 0.1)
        truth = min(max((g_star - low) / (high - low), 0.0), 1.0)
        assert abs(row["share_meeting"] - truth) <= 1 / n + 1e-9, (row["quarter"], row["share_meeting"], truth)
        assert row["check"]["ci"][0] <= truth <= row["check"]["ci"][1], (row["quarter"], row["check"], truth)
        assert row["check"]["agrees"]
        checked += 0 < truth < 1
    assert checked >= 3  # the probabilities checked are not all 0 or 1


def test_retirement_is_replaced_and_prices_are_counted(tmp_path):
    path = tmp_path / "busy.yaml"
    calendar = CALENDAR.format(lead=0, caps="  retire:\n    - {pool: solo/gpu, replicas: 2, quarter: 3}")
    path.write_text(SCENARIO + calendar.replace("usd_per_replica_quarter: 1000", "usd_per_replica: 5000"))
    report = plan_calendar(read_calendar(path, tmp_path / "out"))
    fleets = [row["fleet"]["solo/gpu"] for row in report["quarters"]]
    expected = [max(6 - (2 if q >= 3 else 0), least_servers(5.0 * 1.1**q, 0.1)) for q in range(1, 7)]
    # From quarter 3 the pool has 4 of its own: the plan orders what the formula needs on top.
    bought = {o["arrival_quarter"]: o["replicas"] for o in report["orders"]}
    own = [6 - (2 if q >= 3 else 0) for q in range(1, 7)]
    need = [max(least_servers(5.0 * 1.1**q, 0.1) - o, 0) for q, o in zip(range(1, 7), own, strict=True)]
    running = 0
    for q in range(1, 7):
        running += bought.get(q, 0)
        assert running == max(need[:q]), (q, running, need)
        assert fleets[q - 1] == own[q - 1] + running
    assert all(row["met"] for row in report["quarters"]) and expected
    assert report["total_usd"] == 5000 * sum(bought.values())  # bought once, whatever the quarter
    assert report["quarters"][bought and min(bought) - 1]["usd"] == 5000 * bought[min(bought)]


def test_an_hourly_price_and_a_gpu_cap(tmp_path):
    path = tmp_path / "busy.yaml"
    caps = "  power_caps:\n    - {region: solo, gpus: 7, from_quarter: 1}"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps=caps).replace("usd_per_replica_quarter: 1000",
                                                                          "usd_per_gpu_hour: 2.5"))
    report = plan_calendar(read_calendar(path, tmp_path / "out"))
    assert max(row["fleet"]["solo/gpu"] for row in report["quarters"]) == 7
    unmet = [row for row in report["quarters"] if not row["met"]]
    assert unmet and "GPU cap 7" in unmet[0]["binding"]
    (order,) = report["orders"]
    # One GPU per replica, 2,191.5 hours a quarter, from its arrival to quarter 6.
    assert order["usd_each"] == pytest.approx(2.5 * 2191.5 * (6 - order["arrival_quarter"] + 1))


TWO = """\
name: two
seed: 3
duration: 1h
regions:
  - name: a
    lat: 0.0
    lon: 0.0
    intra_rtt_ms: 0
    pools: [{name: gpu, gpu: H100, replicas: 4, gpus_per_replica: 1, slots_per_replica: 1}]
  - name: b
    lat: 0.0
    lon: 90.0
    intra_rtt_ms: 0
    pools: [{name: gpu, gpu: H100, replicas: 4, gpus_per_replica: 1, slots_per_replica: 1}]
inference:
  - name: north
    origin: {a: 1.0}
    arrival: {process: poisson, rate_per_s: 3.0}
    service: {dist: exponential, mean_s: 1.0}
  - name: south
    origin: {b: 1.0}
    arrival: {process: poisson, rate_per_s: 3.0}
    service: {dist: exponential, mean_s: 1.0}
scheduler:
  routing: nearest
plan:
  quarters: 4
  target: "inference.by_workload.north.wait_ms.mean<=100"
  probability: 1.0
  samples: 1
  growth: {north: 0.25, south: 0.5}
  kpis: [inference.by_workload.south.arrived, inference.by_workload.north.arrived]
  options:
    - {pool: a/gpu, usd_per_replica_quarter: 1000}
    - {pool: b/gpu, usd_per_replica_quarter: 1000}
"""


def test_growth_per_workload(tmp_path):
    """Each workload grows at its own rate: north's pool is sized by Erlang C on north's rate
    alone (the target is north's wait), and the arrivals counted grow by each one's factor."""
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    report = plan_calendar(read_calendar(path, tmp_path / "out"))
    assert {o["pool"] for o in report["orders"]} == {"a/gpu"}
    for row in report["quarters"]:
        q, fleet = row["quarter"], row["fleet"]
        assert fleet["a/gpu"] == max(least_servers(3.0 * 1.25**q, 0.1), 4), (q, fleet)
        assert fleet["b/gpu"] == 4
        for name, growth in (("north", 1.25), ("south", 1.5)):
            arrived = row["kpis"][f"inference.by_workload.{name}.arrived"]["median"]
            assert arrived == pytest.approx(3.0 * growth**q * 3600, rel=0.05)  # a Poisson count over an hour
    path.write_text(TWO.replace("{north: 0.25, south: 0.5}", "{west: 0.25}"))
    with pytest.raises(ScenarioError, match=r"plan\.growth\.west: no such workload"):
        read_calendar(path)


def test_an_interrupted_plan_resumes_from_its_evaluations(tmp_path):
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps=""))
    first = plan_calendar(read_calendar(path, tmp_path / "out"))
    assert first["fluid_runs"] > 0 and (tmp_path / "out" / "evaluations.jsonl").is_file()
    again = plan_calendar(read_calendar(path, tmp_path / "out"))
    assert again["fluid_runs"] == 0 and again["orders"] == first["orders"]
    lines = (tmp_path / "out" / "evaluations.jsonl").read_text().splitlines()
    (tmp_path / "out" / "evaluations.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # cut short
    third = plan_calendar(read_calendar(path, tmp_path / "out"))
    assert third["fluid_runs"] == len(lines) - 3 and third["orders"] == first["orders"]
    # The plan's files are the same as a fresh plan's; how this attempt went is in manifest.json.
    plan_calendar(read_calendar(path, tmp_path / "fresh"))
    for name in ("plan.csv", "plan_calendar.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["fluid_runs"], manifest["reused_runs"]) == (len(lines) - 3, 3)


def test_uncertain_scenario_values_are_drawn_with_the_growth(tmp_path):
    """A scenario value written as a law is one more input of the Latin hypercube: every
    sample runs at its own value, and the plan is decided on every sample (no single
    deciding sample when more than the growth is uncertain)."""
    path = tmp_path / "busy.yaml"
    text = (SCENARIO + CALENDAR.format(lead=0, caps="")).replace(
        "mean_s: 1.0}", "mean_s: {dist: uniform, low: 0.9, high: 1.1}}").replace(
        "growth: 0.1", "growth: {dist: uniform, low: 0.05, high: 0.15}").replace(
        "samples: 1\n", "samples: 8\n").replace("quarters: 6", "quarters: 2")
    path.write_text(text)
    plan_ = read_calendar(path, tmp_path / "out")
    assert [i.path for i in plan_.inputs] == ["inference.0.service.mean_s", "plan.growth"]
    assert plan_.critical is None
    means = sorted(sample[0] for sample in plan_.samples)
    assert all(0.9 + k * 0.025 <= m <= 0.9 + (k + 1) * 0.025 for k, m in enumerate(means))  # one per stratum
    report = plan_calendar(plan_)
    for row in report["quarters"]:
        assert row["share_meeting"] >= 1.0
        # The worst sample is the one with the longest service and the highest growth.
        c = row["fleet"]["solo/gpu"]
        worst = max(erlang_c_wait_s(5.0 * (1 + g) ** row["quarter"] * m, c) for m, g in plan_.samples)
        assert worst <= 0.1


@pytest.mark.slow
def test_a_plan_on_a_process_pool_and_on_a_dask_scheduler_is_the_same_plan(tmp_path, cli):
    import logging

    distributed = pytest.importorskip("dask.distributed")
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("quarters: 6", "quarters: 3"))
    serial = cli("plan-calendar", str(path), "--out", str(tmp_path / "serial"), "--quiet")
    pooled = cli("plan-calendar", str(path), "--out", str(tmp_path / "pool"), "--workers", "2", "--quiet")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        dasked = cli("plan-calendar", str(path), "--out", str(tmp_path / "dask"), "--backend", "dask",
                     "--scheduler", cluster.scheduler_address, "--quiet")
    for result in (serial, pooled, dasked):
        assert result.code == 0, result.err
    assert (tmp_path / "pool" / "plan.csv").read_bytes() == (tmp_path / "serial" / "plan.csv").read_bytes()
    assert (tmp_path / "dask" / "plan.csv").read_bytes() == (tmp_path / "serial" / "plan.csv").read_bytes()
    def table(out: str) -> str:  # the quarters and the orders, not the header's run counts or the folder
        return out.split("\n\n", 1)[1].rsplit("\n", 2)[0]

    assert table(pooled.out) == table(serial.out) and table(dasked.out) == table(serial.out)


def test_auto_refines_only_where_the_fluid_mode_is_biased(tmp_path):
    """One M/M/c pool is Erlang C in fluid mode: the fluid decides and exact runs check it.
    Load-aware routing over two regions pools their capacity, which the fluid mode does not
    see: exact runs decide."""
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps=""))
    assert read_calendar(path).fluid_bias is None
    path.write_text(TWO.replace("routing: nearest", "routing: latency_aware").replace("quarters: 4", "quarters: 1"))
    plan_ = read_calendar(path, tmp_path / "out")
    assert "latency_aware routing pools the capacity of 2 pools" in plan_.fluid_bias
    report = plan_calendar(plan_, exact="auto")
    assert report["exact"] == "refine" and report["decided_by"] == "exact" and report["exact_option"] == "auto"
    assert "decided by exact runs" in format_calendar(report)


def test_the_same_command_into_two_folders_writes_identical_files(tmp_path, cli):
    """plan.csv and plan_calendar.json depend on the scenario and the options that decide the
    plan, not on the folder they are written to (the command line goes to manifest.json)."""
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("quarters: 6", "quarters: 2"))
    for name in ("a", "b"):
        assert cli("plan-calendar", str(path), "--out", str(tmp_path / name), "--quiet").code == 0
    for name in ("plan.csv", "plan_calendar.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["command"][-3:] == ["--out", str(tmp_path / "b"), "--quiet"]
    assert str(tmp_path / "b") in (tmp_path / "b" / "report.md").read_text()  # the report still shows it


@pytest.mark.parametrize(("growth", "message"), [
    ("{dist: uniform, low: 0.2, high: 0.1}", "plan.growth: a uniform growth needs low <= high"),
    ("{dist: triangular, low: 0.0, mode: 0.3, high: 0.2}",
     "plan.growth: a triangular growth needs low <= mode <= high"),
    ("{req: {dist: uniform, low: 0.2, high: 0.1}}", "plan.growth.req: a uniform growth needs low <= high"),
    ("-1.5", r"plan.growth: a growth must be > -1 \(a rate cannot fall to 0 or below\) \(got -1.5\)"),
    ("{req: -1}", r"plan.growth.req: a growth must be > -1 \(a rate cannot fall to 0 or below\) \(got -1"),
    ("{dist: normal, mean: 0.1, sd: 0.2}", r"plan.growth: a growth must be > -1 \(a rate cannot fall to 0 or below\): "
                                           r"this normal law reaches -1.1 \(6 sd below its mean\) \(got \{"),
    ("{dist: uniform, low: -1, high: 0.1}", r"plan.growth: a growth must be > -1 \(a rate cannot fall to 0 or below\): "
                                            r"this uniform law reaches -1 \(got \{'dist': 'uniform'"),
])
def test_a_growth_that_cannot_be_is_a_located_error(tmp_path, growth, message):
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("growth: 0.1", f"growth: {growth}")
                    .replace("samples: 1\n", "samples: 20\n"))
    with pytest.raises(ScenarioError, match=rf"busy\.yaml:\d+: {message}"):
        read_calendar(path)


def test_a_target_that_cannot_be_read_is_a_located_error(tmp_path, cli):
    path = tmp_path / "busy.yaml"
    text = SCENARIO + CALENDAR.format(lead=0, caps="")
    path.write_text(text.replace('mean<=100"', 'mean=<100"'))
    with pytest.raises(ScenarioError, match=r"busy\.yaml:\d+: plan\.target: expects DOTTED\.PATH OP NUMBER with OP one "
                                            r"of <=, <, >=, > \(got 'inference\.wait_ms\.mean=<100'\)"):
        read_calendar(path)
    # A path the summary does not have: every run would read nothing, and no replica helps.
    path.write_text(text.replace("wait_ms.mean<=100", "wait_ms.p90<=100"))
    result = cli("plan-calendar", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert result.code == 2 and "Traceback" not in result.err
    assert re.search(r"busy\.yaml:\d+: plan\.target: inference\.wait_ms\.p90 is not a number in the summary "
                     r"\(did you mean inference\.wait_ms\.p\d+", result.err), result.err
    path.write_text(text.replace("  growth: 0.1\n", "  growth: 0.1\n  kpis: [utilisation.mean]\n"))
    result = cli("plan-calendar", str(path), "--out", str(tmp_path / "out2"), "--quiet")
    assert result.code == 2 and re.search(r"busy\.yaml:\d+: plan\.kpis\[0\]: utilisation\.mean is not a number in "
                                          r"the summary \(did you mean utilization\.mean", result.err), result.err


SIZES = """\
name: sizes
seed: 1
duration: 1h
regions:
  - name: solo
    lat: 0.0
    lon: 0.0
    intra_rtt_ms: 0
    pools:
      - {name: one, gpu: H100, replicas: 4, gpus_per_replica: 1, slots_per_replica: 1}
      - {name: two, gpu: H100, replicas: 3, gpus_per_replica: 2, slots_per_replica: 2}
inference:
  - name: req
    origin: {solo: 1.0}
    arrival: {process: poisson, rate_per_s: 6.9}
    service: {dist: exponential, mean_s: 1.0}
scheduler:
  routing: least_loaded
plan:
  quarters: 1
  target: "utilization.mean<=0.7"
  probability: 1.0
  samples: 1
  growth: GROWTH
  options:
    - {pool: solo/one, usd_per_replica_quarter: 1000}
    - {pool: solo/two, usd_per_replica_quarter: 1500}
"""


@pytest.mark.parametrize(("growth", "slots"), [(0.15, 2), (0.3, 3), (0.6, 6)])
def test_the_cheaper_of_two_replica_sizes_is_ordered(tmp_path, growth, slots):
    """A pool of 1-slot replicas at 1,000 USD and one of 2-slot replicas at 1,500: the mean
    utilisation is the offered load over the slots, so the slots missing under 70 % cost
    1,500 per pair and 1,000 for an odd one. Greedy by shortfall cut per dollar alone would
    take the 1-slot replica first (it closes more of the gap per dollar) and then another."""
    path = tmp_path / "sizes.yaml"
    path.write_text(SIZES.replace("GROWTH", str(growth)))
    load = 6.9 * (1 + growth)
    assert math.ceil(load / 0.7 - 1e-9) - 10 == slots  # the slots to add, by hand
    report = plan_calendar(read_calendar(path))
    bought = {o["pool"]: o["replicas"] for o in report["orders"]}
    assert bought == {**({"solo/two": slots // 2} if slots // 2 else {}), **({"solo/one": 1} if slots % 2 else {})}
    assert report["total_usd"] == 1500 * (slots // 2) + 1000 * (slots % 2)
    assert report["met"]


@pytest.mark.parametrize(("prices", "message"), [
    ("", r"plan\.options\[0\]: give exactly one price: usd_per_replica_quarter, usd_per_gpu_hour or "
         r"usd_per_replica \(got \{'pool': 'solo/gpu'"),
    (", usd_per_replica_quarter: 1000, usd_per_replica: 5000",
     r"plan\.options\[0\]: give exactly one price: usd_per_replica_quarter, usd_per_gpu_hour or usd_per_replica; "
     r"usd_per_replica_quarter and usd_per_replica are given \(got \{"),
])
def test_an_option_has_one_price(tmp_path, cli, prices, message):
    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace(", usd_per_replica_quarter: 1000", prices))
    result = cli("plan-calendar", str(path), "--out", str(tmp_path / "out"))
    assert result.code == 2 and result.out == "" and "Traceback" not in result.err
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: {message}.*\n", result.err), result.err


def test_the_header_says_why_exact_runs_decide_and_which_way_they_moved_the_cost():
    base = {"calendar": {"target": "x<=1", "probability": 0.9, "quarters": 1}, "samples": [[0.1]], "fluid_runs": 1,
            "exact_runs": 1, "exact": "refine", "decided_by": "exact", "fluid_bias": None, "quarters": [],
            "orders": [], "met": True, "target": {"path": "x"}}
    text = format_calendar({**base, "fluid_total_usd": 39_000, "total_usd": 40_000})
    assert "decided by exact runs (--exact refine)" in text
    assert "the fluid search alone would order 39,000 USD; exact runs raise it to 40,000 USD" in text
    text = format_calendar({**base, "fluid_bias": "prefix caches", "fluid_total_usd": 50_000, "total_usd": 40_000})
    assert "the fluid mode is biased here (prefix caches)" in text and "exact runs cut it to 40,000 USD" in text


def test_a_cap_that_drops_later_binds_on_what_would_still_be_held(tmp_path):
    """Replicas are held to the horizon: a power cap that falls to six H100s (0.84 kW each at
    PUE 1.2) from quarter 3 forbids a seventh arriving in quarter 1, though quarter 1's own cap
    would hold ten; the reason names the quarter where it binds."""
    caps = ("  power_caps:\n    - {region: solo, mw: 0.0084, from_quarter: 1}\n"
            "    - {region: solo, mw: 0.00504, from_quarter: 3}")
    report = plan(tmp_path, caps=caps)
    assert all(row["fleet"]["solo/gpu"] == 6 for row in report["quarters"])
    assert not report["orders"]
    first = report["quarters"][0]
    assert not first["met"] and "power cap 0.00504 MW in quarter 3" in first["binding"]
