"""Failures through the engine, checked by hand: outages, traced failures, failover timing,
lost training work, retried and lost requests, conservation, and input errors."""
import csv
import json

import pytest

from sim.records import CapacityChanged
from tests.conftest import run_cli
from tests.traced import traced_text

TWO_REGIONS = """\
name: failover
duration: 10h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, slots_per_replica: 2}]}
  - {name: b, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, slots_per_replica: 2}]}
links:
  - {a: a, b: b, rtt_ms: 20, bandwidth_gbps: 100}
scheduler:
  interval: 1h
  load_model: {kind: constant, L: 50}
  allocation: {weights: {a: 1}, L_max: 100}
failures:
  outages: [{region: a, at: 2h, duration: 3h}]
  detection: 60s
  warmup: 4m
"""


def simulate_text(text, overrides=()):
    run = traced_text(text, overrides)
    return run, run.records


def active(log, region, t):
    """Active GPUs of ``region``'s pool at time ``t`` (the last CapacityChanged at or before t)."""
    states = [r for r in log if isinstance(r, CapacityChanged) and r.region == region and r.t_s <= t]
    return states[-1].active_gpus


def test_outage_fails_over_to_the_standby_after_detection_and_warmup():
    result, log = simulate_text(TWO_REGIONS)
    hour = 3600.0
    # Before: a holds 50 % of its 32 GPUs (2 replicas), b is a standby with nothing active.
    assert active(log, "a", 2 * hour - 1) == 16 and active(log, "b", 2 * hour - 1) == 0
    # At 2 h a goes dark; the failure is detected at 2 h + 60 s and b, re-allocated 2
    # replicas, serves only after its 4 min warm-up: at 2 h + 300 s.
    assert active(log, "a", 2 * hour) == 0
    assert active(log, "b", 2 * hour + 299) == 0
    assert active(log, "b", 2 * hour + 300) == 16
    # Regular ticks at 3 h and 4 h keep b (a is still down); a is back at 5 h, and the
    # re-allocation at 5 h + 60 s returns the load to a (warming until 5 h + 300 s).
    assert active(log, "b", 4 * hour + 1) == 16
    assert active(log, "a", 5 * hour + 299) == 0
    assert active(log, "a", 5 * hour + 300) == 16 and active(log, "b", 5 * hour + 300) == 0
    records = result.failures
    assert [(r.kind, r.region, r.start_s, r.end_s) for r in records] == [("region", "a", 7200.0, 18000.0)]
    # Availability: a's GPUs were up 7 of 10 h, b's all the time.
    assert result.availability() == {"a": pytest.approx(0.7, abs=1e-12), "b": 1.0}
    assert result.gpu_hours_down() == pytest.approx(32 * 3)


TRACE = "time_s,region,pool,replicas,duration_s\n3600,a,p,2,7200\n7200,a,p,1,1800\n"


def test_traced_failures_by_hand(tmp_path, write_yaml):
    (tmp_path / "fail.csv").write_text(TRACE)
    text = TWO_REGIONS.replace("  outages: [{region: a, at: 2h, duration: 3h}]", "  trace: fail.csv")
    out = tmp_path / "run"
    assert run_cli("run", str(write_yaml(text)), "--out", str(out)).code == 0
    summary = json.load(open(out / "summary.json"))["failures"]
    # a has 4 replicas for 10 h: 2 down for 2 h and 1 for 0.5 h = 4.5 replica-hours of 40.
    assert summary["availability"]["by_region"]["a"] == pytest.approx(1 - 4.5 / 40, abs=1e-12)
    assert summary["gpu_hours_down"] == pytest.approx(4.5 * 8)
    assert summary["node_failures"] == 3 and summary["region_outages"] == 0
    assert summary["mttr_h_observed"] == pytest.approx((2 + 2 + 0.5) / 3)
    rows = list(csv.DictReader(open(out / "failures.csv")))
    assert [(r["region"], float(r["start_s"]), float(r["end_s"])) for r in rows] == [
        ("a", 3600.0, 10800.0), ("a", 3600.0, 10800.0), ("a", 7200.0, 9000.0)]


ONE_JOB = """\
name: job-failure
duration: 30h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8}]}
training:
  - name: t
    jobs: {source: poisson, rate_per_h: 3600000, gpus: 8, work: {kind: gpu_hours, mean: 80}}
    max_jobs: 1
    checkpoint: {interval: 1h, write: 6m, restart: 12m}
failures:
  trace: fail.csv
"""


def test_a_failure_under_a_job_loses_work_since_its_checkpoint(tmp_path, write_yaml):
    # The job (8 GPUs = one of the pool's two replicas) starts at about 0 s. A trace takes
    # both replicas down at 2.5 h for 1 h: whichever GPU the failure strikes, one of the two
    # failures hits the job. It had 2 h of compute saved (checkpoints at 1 h and 2.1 h,
    # written by 1.1 h and 2.2 h) and loses 0.3 h; it restarts when a replica is back at
    # 3.5 h, pays 12 min, and needs 8 h more compute with 7 more checkpoint writes:
    # it ends at 3.5 + 0.2 + 8 + 0.7 = 12.4 h.
    (tmp_path / "fail.csv").write_text("time_s,region,pool,replicas,duration_s\n9000,a,p,2,3600\n")
    out = tmp_path / "run"
    assert run_cli("run", str(write_yaml(ONE_JOB)), "--out", str(out)).code == 0
    (job,) = list(csv.DictReader(open(out / "jobs.csv")))
    start = float(job["start_s"])
    assert start < 0.01
    assert int(job["interruptions"]) == 1
    assert float(job["lost_gpu_h"]) == pytest.approx(0.3 * 8, abs=1e-3)
    assert float(job["end_s"]) == pytest.approx(12.4 * 3600, abs=1e-3)
    summary = json.load(open(out / "summary.json"))
    assert summary["failures"]["gpu_hours_lost"] == pytest.approx(0.3 * 8, abs=1e-3)
    assert summary["failures"]["failures_hit"]["training"] == 1


SERVING = """\
name: serving-failures
seed: 5
duration: 12h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 10, gpus_per_replica: 8, slots_per_replica: 4}]}
  - {name: b, lat: 0, lon: 20, pools: [{name: p, gpu: H100, replicas: 10, gpus_per_replica: 8, slots_per_replica: 4}]}
inference:
  - name: chat
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 15}
    service: {dist: exponential, mean_s: 2.0}
scheduler: {routing: least_loaded}
failures:
  nodes: [{mttf: 12h, repair: {mean: 2h}}]
  outages: [{region: a, at: 6h, duration: 1h}]
"""


@pytest.mark.parametrize("mode", ["retry", "drop"])
def test_requests_on_failed_replicas_are_retried_or_dropped_and_conserved(mode):
    result, _ = simulate_text(SERVING, [f"failures.inference={mode}"])
    log = result.log
    status = log.status
    counts = {code: int((status == code).sum()) for code in range(6)}
    assert counts[0] == 0  # every request ends in a state
    assert len(status) == counts[1] + counts[2] + counts[3] + counts[4] + counts[5]
    hits = sum(1 for r in result.failures if r.hit == "inference")
    assert hits > 5
    if mode == "drop":
        assert result.retries == 0 and result.lost == counts[5] > 0
    else:
        assert result.retries > 0
        retried = log.retry_s > 0
        assert 0 < retried.sum() <= result.retries  # a request may be retried more than once
        # A retried request's latency counts the time lost before its last routing.
        done = retried & (status == 1)
        assert done.any()
        expected = log.rtt_ms[done] + (log.retry_s[done] + log.wait_s[done] + log.service_s[done]) * 1000
        assert log.latency_ms[done] == pytest.approx(expected)
        assert (log.pool_arrival_s[done] >= log.t_s[done] + log.retry_s[done]).all()
    # During the outage nothing is served by a.
    hour = 3600.0
    pool_a = 0
    served_in_a = (log.pool == pool_a) & (log.status == 1) & (log.pool_arrival_s > 6 * hour + 1) \
        & (log.pool_arrival_s < 7 * hour)
    assert not served_in_a.any()


def test_failure_input_errors(tmp_path, write_yaml):
    bad = TWO_REGIONS.replace("outages: [{region: a, at: 2h, duration: 3h}]",
                              "outages: [{region: zz, at: 2h, rate_per_year: 1, duration: 3h}]\n"
                              "  nodes: [{pools: [a/nope]}]")
    result = run_cli("validate", str(write_yaml(bad)))
    assert result.code == 2 and "Traceback" not in result.err
    assert "failures.outages[0].region: unknown region" in result.err
    assert "failures.outages[0]: give exactly one of at (scheduled) or rate_per_year (random)" in result.err
    assert "failures.nodes[0].pools[0]: not a pool (region/pool) or region" in result.err
    missing = TWO_REGIONS.replace("  outages: [{region: a, at: 2h, duration: 3h}]", "  trace: nowhere.csv")
    result = run_cli("validate", str(write_yaml(missing, "m.yaml")))
    assert result.code == 2 and "failures.trace: file not found" in result.err
    (tmp_path / "bad.csv").write_text("time_s,region,pool,replicas,duration_s\n10,a,zz,1,5\n20,a,p,x,5\n")
    trace = TWO_REGIONS.replace("  outages: [{region: a, at: 2h, duration: 3h}]", "  trace: bad.csv")
    result = run_cli("run", str(write_yaml(trace, "t.yaml")), "--root", str(tmp_path / "r"))
    assert result.code == 2 and "Traceback" not in result.err
    assert "bad.csv:2: region,pool: no such pool in the scenario (got 'a/zz')" in result.err
    assert "bad.csv:3" in result.err


REPLICATED = """\
name: ckpt-replication
seed: 1
duration: 30h
regions:
  - {name: home, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}]}
  - {name: away, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}]}
links:
  - {a: home, b: away, rtt_ms: 100, bandwidth_gbps: 8}
network: {egress_usd_per_gb: 0.05}
training:
  - name: t
    jobs: {source: poisson, rate_per_h: 3600000, gpus: 8, work: {kind: gpu_hours, mean: 80}}
    max_jobs: 1
    checkpoint: {interval: 1h, write: 6m, restart: 12m, size_gb: 100, replicate_to: [away]}
failures:
  outages: [{region: home, at: 150m, duration: 10h}]
  detection: 0s
"""


@pytest.mark.parametrize("replicated", [True, False])
def test_a_replicated_checkpoint_lets_a_job_resume_in_another_region(tmp_path, write_yaml, replicated):
    # Checkpoints end at 1.1 h and 2.2 h; each 100 GB copy to `away` takes 0.05 + 100 s and
    # costs 100 GB x $0.05. Home goes dark at 2.5 h for 10 h and the job restarts in away at
    # once. Replicated: it resumes from the 2.2 h copy (8 h of work left, 0.3 h x 8 GPUs
    # lost) and ends at 2.5 h + 12 min + 8 h + 7 writes of 6 min = 41,040 s. Not
    # replicated: no copy is reachable, it starts again (lost 0.3 + 2 h x 8 GPUs) and ends at
    # 9,000 + 720 + 36,000 + 9 x 360 = 48,960 s.
    sets = [] if replicated else ["--set", "training.0.checkpoint.replicate_to=[]"]
    out = tmp_path / "run"
    assert run_cli("run", str(write_yaml(REPLICATED)), "--out", str(out), *sets).code == 0
    (job,) = list(csv.DictReader(open(out / "jobs.csv")))
    assert job["regions"] == "away" and int(job["interruptions"]) == 1 and int(job["preemptions"]) == 0
    transfers = list(csv.DictReader(open(out / "transfers.csv")))
    if replicated:
        assert float(job["end_s"]) == pytest.approx(41040, abs=0.01)
        assert float(job["lost_gpu_h"]) == pytest.approx(2.4, abs=1e-3)
        assert [(t["dataset"], t["src"], t["dst"]) for t in transfers] == [("checkpoint:0", "home", "away")] * 2
        assert [float(t["end_s"]) - float(t["start_s"]) for t in transfers] == pytest.approx([100.05] * 2, abs=1e-6)
        assert json.load(open(out / "summary.json"))["network"]["transfer_cost_usd"] == pytest.approx(10.0)
    else:
        assert float(job["end_s"]) == pytest.approx(48960, abs=0.01)
        assert float(job["lost_gpu_h"]) == pytest.approx(18.4, abs=1e-3)
        assert transfers == []


def test_gpu_hours_are_conserved_under_failures(tmp_path):
    """used + idle + down = installed x time in every bucket, with idle never negative:
    inference-busy plus training GPUs never exceed the GPUs that are up; and the observer's
    down GPU-hours equal the failure engine's."""
    from tests.conftest import SCENARIOS

    out = tmp_path / "run"
    failures = ('{nodes: [{mttf: 2d, repair: {mean: 6h}}], outages: [{region: westeurope, at: 20h, duration: 3h}],'
                ' inference: retry}')
    result = run_cli("run", str(SCENARIOS / "shared_capacity.yaml"), "--out", str(out), "--set", "duration=1d",
                     "--set", f"failures={failures}")
    assert result.code == 0, result.err
    summary = json.load(open(out / "summary.json"))
    assert summary["failures"]["node_failures"] > 10 and summary["failures"]["failures_hit"]["training"] > 0
    rows = list(csv.DictReader(open(out / "timeseries.csv")))
    down_h = 0.0
    for r in rows:
        dt = float(r["t_end_s"]) - float(r["t_start_s"])
        total, up = float(r["total_gpus"]), float(r["up_gpus"])
        used = float(r["busy_gpus"]) + float(r["training_gpus"])
        assert used <= up + 1e-6, r
        down_h += (total - up) * dt / 3600
    assert down_h == pytest.approx(summary["failures"]["gpu_hours_down"], rel=1e-9)
    t = summary["training"]
    assert t["submitted"] == t["completed"] + t["running"] + t["queued"]
    i = summary["inference"]
    assert i["arrived"] == i["completed"] + i["dropped"] + i["in_flight"]
