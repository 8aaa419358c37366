"""The scheduler process, observed as a time-stamped event log."""
from sim.engine import simulate
from sim.records import CapacityChanged, LoadSample
from sim.scenario import parse_scenario
from sim.world import build_world

SCENARIO = """\
name: trace
duration: 3h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
  - {name: b, lat: 0, lon: 10, pools: [{name: q, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
  - {name: s, lat: 0, lon: 20, pools: [{name: r, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
scheduler:
  interval: 1h
  load_model: {kind: linear, L0: 50, alpha: 50, T0: 0}
  allocation: {weights: {a: 0.5, b: 0.5}, L_max: 100}
"""


def run(text):
    log = []
    scenario = parse_scenario(text).scenario
    result = simulate(scenario, build_world(scenario), [log.append])
    return log, result


def test_scheduler_ticks_hourly_and_wakes_the_standby_when_load_exceeds_l_max():
    log, result = run(SCENARIO)
    ticks = [(r.t_s, r.load, r.resources, r.unmet_gpus) for r in log if isinstance(r, LoadSample)]
    # L = 50, 100, 150 at t = 0, 1, 2 h; R = sum r_i L / L_max; D = L / 100 * 64 GPUs
    assert ticks == [(0.0, 50.0, 0.5, 0.0), (3600.0, 100.0, 1.0, 0.0), (7200.0, 150.0, 1.5, 0.0)]
    active = [(r.t_s, r.region, r.active_gpus) for r in log if isinstance(r, CapacityChanged)]
    assert active == [
        (0.0, "a", 16), (0.0, "b", 16), (0.0, "s", 0),
        (3600.0, "a", 32), (3600.0, "b", 32), (3600.0, "s", 0),
        (7200.0, "a", 32), (7200.0, "b", 32), (7200.0, "s", 32),  # 96 GPUs asked: 32 spill to s
    ]
    assert result.end_s == 10800.0


def test_without_scheduler_everything_is_active_from_the_start():
    text = SCENARIO.split("scheduler:")[0]
    log, _ = run(text)
    assert [(r.t_s, r.region, r.active_gpus, r.busy_gpus) for r in log] == [
        (0.0, "a", 32, 0.0), (0.0, "b", 32, 0.0), (0.0, "s", 32, 0.0)]
