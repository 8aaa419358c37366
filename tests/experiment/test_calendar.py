"""The calendar planner against Erlang C: with fixed growth and one pool, the fleet it plans
for each quarter is the least number of servers whose Erlang C mean wait meets the target;
with a lead time it orders exactly that many quarters earlier; a power cap binds and is
named."""
from __future__ import annotations

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
    from sim.experiment.calendar import confirm_plan
    from sim.report.calendar import draw_calendar_chart

    path = tmp_path / "busy.yaml"
    path.write_text(SCENARIO + CALENDAR.format(lead=0, caps="").replace("quarters: 6", "quarters: 2"))
    plan_ = read_calendar(path, tmp_path / "out")
    report = confirm_plan(plan_, plan_calendar(plan_), worst=1)
    assert report["exact_runs"] == 2
    for row in report["quarters"]:
        (value,) = row["exact"]["values"]
        # The exact mean wait of the planned fleet, one hour of M/M/c: near Erlang C's.
        lam = 5.0 * 1.1 ** row["quarter"]
        assert value == pytest.approx(erlang_c_wait_s(lam, row["fleet"]["solo/gpu"]) * 1000, rel=0.5)
    assert "exact, worst" in format_calendar(report)
    assert draw_calendar_chart(tmp_path / "out")[0].is_file()
