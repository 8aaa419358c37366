"""Every shipped scenario validates, runs, and keeps its books: requests are conserved, and
the load model's demand is conserved (demand = served + unmet)."""
import csv
import json

import numpy as np
import pytest

from sim.models import load_at
from sim.scenario import load_scenario
from sim.scenario.model import ObservedLoad
from tests.conftest import SCENARIOS, run_cli

FILES = sorted(SCENARIOS.rglob("*.yaml"))
# The default scenario runs in full in the default tier already (tests/test_cli.py: no arguments,
# as a new user's first command); its books are checked here in the slow tier, with the day of
# a large fleet (bench/reference_world.py), which takes a minute and more.
SLOW = {"default.yaml", "reference_world.yaml"}
PARAMS = [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in FILES]


@pytest.mark.parametrize("path", PARAMS, ids=[str(p.relative_to(SCENARIOS)) for p in FILES])
def test_shipped_scenario_runs(path, tmp_path):
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    run_dir = tmp_path / "run"
    assert (run_dir / "_SUCCESS").exists() and (run_dir / "charts" / "overview.png").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["utilization"]["mean"] <= 1.0
    inference = summary.get("inference")
    if inference is not None:
        assert inference["arrived"] == inference["completed"] + inference["dropped"] + inference["in_flight"]
        assert inference["dropped"] == inference["rejected"] + inference["timed_out"]
        for part in ("by_origin", "by_workload"):
            assert sum(v["arrived"] for v in inference[part].values()) == inference["arrived"]
        assert (run_dir / "charts" / "latency_cdf.png").exists()
    # The resolved scenario is itself a valid scenario that means the same thing.
    again = load_scenario(run_dir / "resolved.yaml")
    assert again.resolved == load_scenario(path).resolved
    check_demand_is_conserved(load_scenario(path).scenario, summary["allocation"], run_dir / "timeseries.csv")


def weighted_gpus(scenario) -> int:
    """GPUs of the pools the allocation weights name with r_i > 0 (C_w of docs/models.md)."""
    weights = scenario.scheduler.allocation.weights
    return sum(p.replicas * p.gpus_per_replica for r in scenario.regions for p in r.pools
               if weights.get(f"{r.name}/{p.name}", weights.get(r.name, 0.0)) > 0)


def formula_demand_gpu_hours(scenario) -> float:
    """The load model evaluated at the scheduler's ticks, as GPUs, integrated over the
    summary's window [warmup, end): written from docs/models.md, not from the engine."""
    config = scenario.scheduler
    ticks = np.arange(0.0, scenario.duration, config.interval)
    ends = np.minimum(ticks + config.interval, scenario.duration)
    held = np.maximum(ends - np.maximum(ticks, scenario.warmup), 0.0)
    gpus = load_at(config.load_model, ticks) / config.allocation.L_max * weighted_gpus(scenario)
    return float((gpus * held).sum() / 3600.0)


def check_demand_is_conserved(scenario, allocation, timeseries) -> None:
    """demand = served + unmet; the demand is the load model's (recomputed here), the
    served part never exceeds the active GPUs, and without request-level workloads it is
    exactly the busy GPU-hours of timeseries.csv."""
    if scenario.scheduler.load_model is None:
        assert allocation["demand_gpu_hours"] is None and allocation["unmet_gpu_hours"] == 0.0
        return
    demand, served, unmet = (allocation[k] for k in ("demand_gpu_hours", "served_gpu_hours", "unmet_gpu_hours"))
    assert demand == pytest.approx(served + unmet, rel=1e-9, abs=1e-9)
    assert unmet >= -1e-9 and served >= -1e-9
    if not isinstance(scenario.scheduler.load_model, ObservedLoad):
        assert demand == pytest.approx(formula_demand_gpu_hours(scenario), rel=1e-9)
    rows = [r for r in csv.DictReader(open(timeseries)) if float(r["t_start_s"]) >= scenario.warmup]
    assert float(rows[0]["t_start_s"]) == scenario.warmup  # the summary's window starts on a bucket edge

    def gpu_hours(column: str) -> float:
        return sum(float(r[column]) * (float(r["t_end_s"]) - float(r["t_start_s"])) for r in rows) / 3600.0
    assert served <= gpu_hours("active_gpus") * (1 + 1e-9)
    if not scenario.inference:
        assert served == pytest.approx(gpu_hours("busy_gpus"), rel=1e-9)


def test_the_conservation_check_fails_on_a_gap(tmp_path):
    """The check above is itself checked: a summary whose unmet demand is off, or whose
    demand is not the load model's, fails it."""
    scenario = load_scenario(SCENARIOS / "growth.yaml", overrides=["duration=3h"]).scenario
    demand = formula_demand_gpu_hours(scenario)
    rows = "t_start_s,t_end_s,active_gpus,busy_gpus\n0,10800,512,%r\n" % (demand * 3600 / 10800)
    (tmp_path / "t.csv").write_text(rows)
    good = {"demand_gpu_hours": demand, "served_gpu_hours": demand, "unmet_gpu_hours": 0.0}
    check_demand_is_conserved(scenario, good, tmp_path / "t.csv")
    for bad in ({**good, "unmet_gpu_hours": 1.0}, {**good, "demand_gpu_hours": demand + 1, "unmet_gpu_hours": 1.0},
                {**good, "served_gpu_hours": demand - 1, "unmet_gpu_hours": 1.0}):
        with pytest.raises(AssertionError):
            check_demand_is_conserved(scenario, bad, tmp_path / "t.csv")
