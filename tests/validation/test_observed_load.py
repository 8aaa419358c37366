"""The seed's feedback loop: an observed load follows real demand; a forecast does not."""
import csv
import json

import numpy as np
import pytest

from sim.models import ObservedRate
from tests.conftest import SCENARIOS, run_cli


def test_ewma_rate_by_hand():
    est = ObservedRate(window_s=100.0, initial_rate=2.0)
    assert est.update(0.0, lambda a, b: 0) == 2.0
    # 50 arrivals over 10 s = 5/s; weight 1 - exp(-0.1) = 0.0951626
    assert est.update(10.0, lambda a, b: 50) == pytest.approx(2.0 + (1 - np.exp(-0.1)) * 3.0)


@pytest.mark.slow  # long statistics: the slow tier (CI runs it with -m slow)
def test_observed_allocation_tracks_a_demand_step_that_the_forecast_misses(tmp_path):
    runs = {}
    for drive in ("observed", "forecast"):
        out = tmp_path / drive
        result = run_cli("run", str(SCENARIOS / "demand_surprise.yaml"), "--out", str(out),
                         "--set", f"scheduler.load_model.drive={drive}")
        assert result.code == 0, result.err
        rows = [r for r in csv.DictReader(open(out / "timeseries.csv")) if r["region"] == "eastus"]
        runs[drive] = (json.loads((out / "summary.json").read_text()), rows)
    _, rows = runs["observed"]
    late = [float(r["observed_load"]) for r in rows if float(r["t_start_s"]) >= 8 * 3600]
    early = [float(r["observed_load"]) for r in rows if 3600 <= float(r["t_start_s"]) < 6 * 3600]
    # The rate estimate settles within a few windows at the true rates: 10/s, then 22/s.
    assert np.mean(early) == pytest.approx(10.0, rel=0.05)
    assert np.mean(late) == pytest.approx(22.0, rel=0.05)
    assert all(float(r["forecast_load"]) == 10.0 for r in rows)
    observed, forecast = runs["observed"][0]["inference"], runs["forecast"][0]["inference"]
    assert observed["slo_attainment"] > 0.9 > 0.5 > forecast["slo_attainment"]
    assert forecast["in_flight"] > 100 * observed["in_flight"]  # the formula leaves a backlog


def test_the_observed_load_counts_every_turn_of_a_conversation():
    """Conversations send their later turns as the run goes; the scheduler's observed rate
    counts them too. Reference: the EWMA written out by hand over the arrival times in the
    request log (every turn), at each of the scheduler's ticks."""
    from sim.records import LoadSample
    from tests.traced import traced_text

    text = """\
name: turns
seed: 5
duration: 1h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 8, slots_per_replica: 8}]}
inference:
  - name: chat
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 1}
    service: {dist: tokens, input_tokens: {mean: 200}, output_tokens: {mean: 50}}
    sessions: {turns: 4, think: 20s}
scheduler:
  interval: 60s
  load_model: {kind: observed, window: 5m, scale: 1.0, initial: 1}
  allocation: {weights: {a: 1}, L_max: 4}
"""
    run = traced_text(text)
    arrivals = np.sort(run.log.t_s[run.log.t_s < run.end_s])
    assert len(arrivals) > 2.5 * 3600  # most conversations have later turns
    samples = run.of(LoadSample)
    rate, last = 1.0, None
    for sample in samples:
        if last is not None:
            n = np.searchsorted(arrivals, sample.t_s, "left") - np.searchsorted(arrivals, last, "left")
            dt = sample.t_s - last
            rate += (1 - np.exp(-dt / 300.0)) * (n / dt - rate)
        last = sample.t_s
        assert sample.observed == pytest.approx(rate, rel=1e-12)
    assert samples[-1].observed > 2.5  # about 3.5 requests/s, not the 1/s of first turns
