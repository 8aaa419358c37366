"""The power model by hand."""
import pytest

from sim.metrics.energy import IDLE_FRACTION, energy_summary
from sim.scenario import parse_scenario
from sim.world import build_world

TEXT = """\
name: e
duration: 2h
regions:
  - {name: a, lat: 0, lon: 0, pue: 1.5, price_usd_per_kwh: 0.1, carbon_g_per_kwh: 400,
     pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8}]}
"""


def test_energy_by_hand():
    world = build_world(parse_scenario(TEXT).scenario)
    rows = [
        {"region": "a", "t_start_s": 0.0, "t_end_s": 3600.0, "busy_gpus": 0.0, "training_gpus": 0.0},
        {"region": "a", "t_start_s": 3600.0, "t_end_s": 7200.0, "busy_gpus": 4.0, "training_gpus": 4.0},
    ]
    summary = energy_summary(rows, world.regions, 0.0)
    idle = IDLE_FRACTION * 700
    # hour 1: 16 idle GPUs; hour 2: 8 busy at 700 W + 8 idle; times PUE 1.5
    kwh = 1.5 * (16 * idle + (16 * idle + 8 * (700 - idle))) / 1000
    assert summary["kwh"] == pytest.approx(kwh)
    assert summary["co2_kg"] == pytest.approx(kwh * 0.4)
    assert summary["cost_usd"] == pytest.approx(kwh * 0.1)
    kwh_at_load = 1.5 * (16 * idle + 8 * (700 - idle)) / 1000
    assert energy_summary(rows, world.regions, 3600.0)["kwh"] == pytest.approx(kwh_at_load)
