"""Review of the failure model: tricky cases checked by hand against docs/failures.md.

Tests marked ``# Was a bug:`` failed when the review was written (the comment says what was
expected and what happened instead, with the code as it was then); they now guard the
fixes. The others pin behaviour that was already correct in a tricky case.
"""
import csv
import json
import math

import numpy as np
import pytest

from sim.models.reliability import random_outages
from sim.records import CapacityChanged, FailureDetected, RequestStatus
from sim.scenario import parse_scenario
from sim.streams import Streams
from tests.conftest import run_cli
from tests.engine.test_consistency import ROLLOUT as CONSISTENCY_ROLLOUT
from tests.engine.test_failures import TWO_REGIONS, active, simulate_text

HOUR = 3600.0
TRACE_HEADER = "time_s,region,pool,replicas,duration_s\n"


def trace_file(tmp_path, rows, name="fail.csv"):
    path = tmp_path / name
    path.write_text(TRACE_HEADER + "".join(f"{r}\n" for r in rows))
    return path


def run_folder(tmp_path, write_yaml, text, *sets):
    out = tmp_path / "run"
    result = run_cli("run", str(write_yaml(text)), "--out", str(out), *[a for s in sets for a in ("--set", s)])
    assert result.code == 0, result.err
    return out, json.load(open(out / "summary.json"))


# -- replica failures and repairs ---------------------------------------------------------
ONE_REPLICA = """\
name: same-instant
duration: 10h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: {n}, gpus_per_replica: 8}}]}}
failures:
  trace: {trace}
"""


def test_a_failure_at_the_instant_of_a_repair_still_takes_the_replica_down(tmp_path):
    # Was a bug: failures.py:_replay/_repair. A one-replica pool fails at 1 h for 1 h and again at
    # 2 h for 1 h (the trace's second row starts when the first repair lands). Expected: down
    # 2 h of 10, availability 0.8, 16 GPU-hours down. Actual: at 2 h the failure is applied
    # before the repair (its timeout was scheduled first), finds the pool fully down, is
    # recorded as hit "down" and never applied: availability 0.9, 8 GPU-hours down.
    trace = trace_file(tmp_path, ["3600,a,p,1,3600", "7200,a,p,1,3600"])
    result, _ = simulate_text(ONE_REPLICA.format(n=1, trace=trace))
    fe = result
    assert [r.hit for r in fe.failures] == ["idle", "idle"]
    assert fe.availability()["a"] == pytest.approx(0.8, abs=1e-12)
    assert fe.gpu_hours_down() == pytest.approx(16.0)


def test_a_trace_asking_more_replicas_than_the_pool_has_takes_down_only_what_exists(tmp_path, write_yaml):
    # Rows: all 4 replicas for 1 h at 1 h, then 2 more at 1.5 h for 3 h while none is up.
    # Only 4 replicas can go down: 4 replica-hours of 40 (availability 0.9, 32 GPU-hours).
    trace = trace_file(tmp_path, ["3600,a,p,4,3600", "5400,a,p,2,10800"])
    out, summary = run_folder(tmp_path, write_yaml, ONE_REPLICA.format(n=4, trace=trace))
    f = summary["failures"]
    assert f["availability"]["by_region"]["a"] == pytest.approx(0.9, abs=1e-12)
    assert f["gpu_hours_down"] == pytest.approx(32.0)
    rows = list(csv.DictReader(open(out / "failures.csv")))
    assert [r["hit"] for r in rows] == ["idle"] * 4 + ["down"] * 2


def test_mttr_observed_ignores_failures_that_took_nothing_down(tmp_path, write_yaml):
    # Was a bug: metrics/failures.py:26 (mttr) with failures.py:_fail_one's hit "down" records.
    # docs/metrics.md: mttr_h_observed is the mean end - start of node failures *repaired*
    # before the end. The two "down" rows above were never applied nor repaired; the four
    # real repairs took 1 h each. Expected 1.0 h; actual (4 x 1 + 2 x 3) / 6 = 1.67 h.
    trace = trace_file(tmp_path, ["3600,a,p,4,3600", "5400,a,p,2,10800"])
    _, summary = run_folder(tmp_path, write_yaml, ONE_REPLICA.format(n=4, trace=trace))
    assert summary["failures"]["mttr_h_observed"] == pytest.approx(1.0)


FULL_LOAD = """\
name: full-load
duration: 3h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, slots_per_replica: 2}}]}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: 0.01}}
    service: {{dist: constant, value_s: 1.0}}
scheduler:
  interval: 1h
  load_model: {{kind: constant, L: 100}}
  allocation: {{weights: {{a: 1}}, L_max: 100}}
failures:
  trace: {trace}
  detection: 60s
  warmup: 4m
"""


def test_detection_does_not_take_a_second_replica_out_of_service(tmp_path):
    # Was a bug: datacenter.py:71 (active = min(target - lost, up)) with scheduler.py failover.
    # All 4 replicas serve (L = L_max). A serving replica fails at 1 h: 3 serve. At 1 h + 60 s
    # the scheduler learns of it and asks for the 3 replicas it knows are up, which are
    # exactly the 3 already serving: nothing needs replacing, so 24 GPUs stay active.
    # Actual: the failed replica is subtracted twice (target 3 and lost 1): 16 GPUs serve
    # from 1 h + 60 s until the "replacement" warms at 1 h + 300 s.
    trace = trace_file(tmp_path, ["3600,a,p,1,18000"])
    result, log = simulate_text(FULL_LOAD.format(trace=trace))
    assert [r.hit for r in result.failures] == ["inference"]
    assert active(log, "a", HOUR - 1) == 32
    assert active(log, "a", HOUR) == 24
    assert active(log, "a", HOUR + 61) == 24
    assert active(log, "a", HOUR + 301) == 24


# -- failover and failback ----------------------------------------------------------------
# TWO_REGIONS: a outage 2-5 h, detection 60 s, warm-up 4 min.


def test_an_unrelated_detection_does_not_restart_a_warming_standby(tmp_path):
    # Was a bug: scheduler.py:_decide (rising = n > p.target; warm_until = now + warmup). a goes
    # dark at 2 h; detected at 2 h + 60 s, b is activated and serves at 2 h + 300 s
    # (docs/failures.md: "Replicas that this failover activates serve only after warmup").
    # A node of the dark region fails at 2 h + 120 s; its detection at 2 h + 180 s re-runs
    # the failover, b (still held back) counts as rising again and its warm-up restarts:
    # b serves only at 2 h + 480 s.
    trace = trace_file(tmp_path, ["7320,a,p,1,600"])
    text = TWO_REGIONS.replace("  detection: 60s", f"  trace: {trace}\n  detection: 60s")
    _, log = simulate_text(text)
    assert active(log, "b", 2 * HOUR + 299) == 0
    assert active(log, "b", 2 * HOUR + 300) == 16


def test_failback_keeps_the_standby_serving_until_the_home_region_is_warm():
    # Was a bug: scheduler.py:_decide / datacenter.py:set_state (falling targets apply at once,
    # rising ones after the warm-up). a returns at 5 h; at 5 h + 60 s the failback takes b
    # to 0 at once while a warms until 5 h + 300 s: 4 minutes with no serving capacity at
    # all although 64 GPUs are up and the load needs 16. Expected: b serves until a is warm.
    _, log = simulate_text(TWO_REGIONS)
    for t in (5 * HOUR + 61, 5 * HOUR + 299):
        assert active(log, "a", t) + active(log, "b", t) >= 16, t


THREE_REGIONS = """\
name: standby-outage
duration: 6h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
  - {name: b, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
  - {name: c, lat: 0, lon: 20, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
links:
  - {a: a, b: b, rtt_ms: 20, bandwidth_gbps: 100}
  - {a: b, b: c, rtt_ms: 20, bandwidth_gbps: 100}
scheduler:
  interval: 1h
  load_model: {kind: constant, L: 50}
  allocation: {weights: {a: 1}, L_max: 100}
failures:
  outages: [{region: a, at: 2h, duration: 3h}, {region: b, at: 7320s, duration: 1h}]
  detection: 60s
  warmup: 4m
"""


def test_a_standby_that_fails_during_its_warm_up_hands_over_to_the_next():
    # a dark at 2 h; detected at 7260 s: 16 GPUs spill to the standbys b and c in
    # proportion to capacity (8 each), warming until 7500 s. b goes dark at 7320 s, detected
    # at 7380 s: c is asked for all 16 GPUs and serves them from 7380 + 240 = 7620 s.
    _, log = simulate_text(THREE_REGIONS)
    assert active(log, "b", 7499) == 0 and active(log, "c", 7499) == 0
    assert active(log, "c", 7619) == 0
    assert active(log, "c", 7620) == 16
    assert active(log, "b", 7620) == 0


# -- node failures inside region outages ------------------------------------------------
OUTAGE_AND_NODES = """\
name: outage-and-nodes
duration: 10h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8}}]}}
scheduler:
  interval: 1h
  load_model: {{kind: constant, L: 50}}
  allocation: {{weights: {{a: 1}}, L_max: 100}}
failures:
  outages: [{{region: a, at: 2h, duration: 3h}}]
  trace: {trace}
"""


@pytest.mark.parametrize("row,up_gpu_h", [
    ("10800,a,p,1,14400", 32 + 16 + 48),  # fails in the outage, repaired after it (7 h)
    ("10800,a,p,1,3600", 32 + 80),        # fails and is repaired inside the outage
    ("3600,a,p,1,7200", 16 + 8 + 80),     # fails before it, repaired inside it (3 h)
])
def test_a_node_failure_overlapping_an_outage_by_hand(tmp_path, row, up_gpu_h):
    # 2 replicas x 8 GPUs, dark from 2 h to 5 h: up GPU-hours counted piece by piece.
    result, _ = simulate_text(OUTAGE_AND_NODES.format(trace=trace_file(tmp_path, [row])))
    fe = result
    assert fe.availability()["a"] == pytest.approx(up_gpu_h / 160, abs=1e-12)
    assert fe.count_failures("node") == 1 and fe.count_failures("region") == 1
    # By the end every change has been detected: the scheduler's view matches the truth.
    detected = fe.of(FailureDetected)
    assert sum(r.down for r in detected) == 0 and sum(r.dark for r in detected) == 0
    last = fe.of(CapacityChanged)[-1]
    assert last.up_gpus == 16


def test_overlapping_scheduled_and_random_outages_of_one_region(tmp_path):
    # Seed 1 draws random outages at 1.3-3.2 h, 3.6-6.4 h and 8.5-9.1 h: the first two
    # overlap the scheduled one (2-5 h), so the region is dark 1.3-6.4 h and 8.5-9.1 h.
    text = OUTAGE_AND_NODES.format(trace="x").replace("  trace: x\n", "seed: 1\n").replace(
        "outages: [{region: a, at: 2h, duration: 3h}]",
        "outages: [{region: a, at: 2h, duration: 3h}, {region: a, rate_per_year: 4383, duration: 1h}]")
    result, _ = simulate_text(text)
    seed = parse_scenario(text).scenario.seed
    spans = random_outages(Streams(seed).get("failures/outages/1"), 4383, HOUR, 10 * HOUR)
    assert len(spans) >= 2  # the seed gives overlaps worth checking
    union, reach = 0.0, -math.inf
    for a, b in sorted(spans + [(2 * HOUR, 5 * HOUR)]):
        b = min(b, 10 * HOUR)
        if b > reach:
            union += b - max(a, reach)
            reach = b
    fe = result
    assert fe.count_failures("region") == 1 + len(spans)
    assert fe.availability()["a"] == pytest.approx(1 - union / (10 * HOUR), abs=1e-12)


# -- requests: retries, timeouts ---------------------------------------------------------
QUEUED = """\
name: queued-at-outage
duration: 10m
regions:
  - {{name: a, lat: 0, lon: 0,
      pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8, slots_per_replica: 1}}]}}
  - {{name: b, lat: 0, lon: 10,
      pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8, slots_per_replica: 3}}]}}
links:
  - {{a: a, b: b, rtt_ms: 20, bandwidth_gbps: 100}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: trace, path: {requests}, loop: false}}
    service: {{dist: constant, value_s: 100}}{timeout}
failures:
  outages: [{{region: a, at: 60s, duration: 1h}}]
"""


def queued_text(tmp_path, timeout=""):
    # Three requests from a at 0, 1 and 2 s: the first is served by a's single slot, the
    # other two queue behind it. a goes dark at 60 s.
    requests = tmp_path / "requests.csv"
    requests.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,10\n1,10,10\n2,10,10\n")
    return QUEUED.format(requests=requests, timeout=timeout)


@pytest.mark.parametrize("max_retries,status,retries", [(0, [5, 5, 5], 0), (1, [1, 1, 1], 3)])
def test_max_retries_zero_loses_every_request_of_a_dark_pool(tmp_path, max_retries, status, retries):
    result, _ = simulate_text(queued_text(tmp_path), [f"failures.max_retries={max_retries}"])
    log = result.log
    assert log.status.tolist() == status
    assert result.retries == retries and result.lost == status.count(5)
    if retries:
        # Retried at 60 s to b (10 ms away), served at once in its 3 slots.
        assert log.retry_s.tolist() == [60.0, 59.0, 58.0]
        assert log.latency_ms.tolist() == pytest.approx([160020.0, 159020.0, 158020.0])
    else:
        assert (log.retry_s == 0).all()


def test_a_request_queued_past_its_timeout_is_not_revived_by_a_failure(tmp_path):
    # Was a bug: inference.py:replicas_failed (line ~228: the queue is retried wholesale). With
    # timeout_ms 5000 the two requests queued at a have waited 59 s and 58 s when a goes
    # dark: they are past their timeout and must count as timed out (status 3). Actual:
    # they are retried to b and complete, with latencies of 159 s and 158 s.
    result, _ = simulate_text(queued_text(tmp_path, "\n    timeout_ms: 5000"))
    log = result.log
    assert log.status.tolist() == [RequestStatus.COMPLETED, RequestStatus.TIMED_OUT, RequestStatus.TIMED_OUT]
    assert result.count(RequestStatus.TIMED_OUT) == 2


STALE = """\
name: stale-view
seed: 4
duration: 1h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4}},
                                      {{name: q, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4}}]}}
  - {{name: u, lat: 0, lon: 1}}
inference:
  - name: chat
    origin: {{u: 1}}
    arrival: {{process: poisson, rate_per_s: 4}}
    service: {{dist: exponential, mean_s: 1.0}}
scheduler: {{routing: least_loaded, sync_delay: 2h}}
failures:
  trace: {trace}
"""


def test_a_retry_does_not_refresh_the_stale_routing_view(tmp_path):
    # Was a bug: inference.py:_retry calls _sync_load() whatever sync_delay says. With sync_delay
    # 2 h (longer than the run) the view is refreshed once, at the first request, with both
    # pools empty, so least_loaded sends every new request to p (docs/failures.md: queue
    # lengths and busy slots of another region are refreshed at most once per sync_delay:
    # the users are in u, the pools in a). A serving replica
    # of p fails at 30 min; retrying its requests refreshes the view, and from then on
    # thousands of new requests go to q. With failures.inference=drop none does.
    trace = trace_file(tmp_path, ["1800,a,p,1,600"])
    result, _ = simulate_text(STALE.format(trace=trace))
    log = result.log
    assert result.retries >= 1
    assert int(((log.pool == 1) & (log.retry_s == 0)).sum()) == 0


# -- training ------------------------------------------------------------------------------
SPAN = """\
name: span
seed: 1
duration: 40h
regions:
  - {{name: {first}, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}}]}}
  - {{name: b, lat: 0, lon: 10, pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}}]}}
  - {{name: c, lat: 0, lon: 20, pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}}]}}
links:
  - {{a: {first}, b: b, rtt_ms: 10, bandwidth_gbps: 100}}
  - {{a: b, b: c, rtt_ms: 10, bandwidth_gbps: 100}}
training:
  - name: t
    span_regions: true
    jobs: {{source: poisson, rate_per_h: 3600000, gpus: 16, work: {{kind: gpu_hours, mean: 160}}}}
    max_jobs: 1
    checkpoint: {{interval: 1h, write: 6m, restart: 12m, size_gb: 100}}
failures:
  outages: [{{region: {first}, at: 150m, duration: 10h}}]
  detection: 0s
"""


def test_a_spanning_job_hit_by_an_outage_does_not_depend_on_region_names():
    # Was a bug: training.py:328 (_checkpointed: here = job.regions[0]) and :350 (_restore), where
    # job.regions is sorted alphabetically. A 16-GPU job spans the first region and b (8 GPUs
    # each), checkpoints hourly (100 GB, kept where it runs, not replicated); the first
    # region goes dark at 2.5 h and the job restarts on b + c. Renaming the first region from
    # "a" to "d" changes nothing physical, so the outcome must be the same. Actual: named
    # "a" it holds the only copy (regions[0]) and the job starts over (36.8 GPU-h lost, ends
    # at 48,960 s); named "d" the copy is "in b" and the job resumes (4.8 GPU-h, 41,040 s).
    outcomes = []
    for first in ("a", "d"):
        result, _ = simulate_text(SPAN.format(first=first))
        (job,) = result.jobs
        assert job.regions == "b;c" and job.interruptions == 1 and job.status == "completed"
        outcomes.append((round(job.lost_gpu_h, 6), round(job.end_s, 3)))
    assert outcomes[0] == outcomes[1]


IDLE_HIT = """\
name: idle-hit
seed: 9
duration: 10h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8}}]}}
training:
  - name: t
    jobs: {{source: poisson, rate_per_h: 3600000, gpus: 12, work: {{kind: gpu_hours, mean: 48}}}}
    max_jobs: 1
    checkpoint: {{interval: 1h, write: 6m, restart: 12m}}
failures:
  trace: {trace}
"""


def test_a_replica_failure_under_a_job_is_not_a_free_preemption(tmp_path):
    # Was a bug: failures.py:_fail_one (the GPU drawn among idle GPUs) with training.py
    # capacity_changed. A 12-GPU job holds 12 of the pool's 16 GPUs (2 replicas of 8), so
    # each replica carries at least 4 of its GPUs and a replica failure at 1 h must strike
    # the job: an interruption (docs/failures.md: "a hit on an idle replica only shrinks
    # what can be activated"). With seed 9 the drawn GPU is one of the 4 idle ones: the hit
    # is recorded "idle", the pool then has 8 GPUs up for 12 used, and the job is
    # *preempted* instead: it checkpoints for free and loses nothing (0 GPU-h instead of 12,
    # ends at 19,800 s instead of 23,400 s).
    result, _ = simulate_text(IDLE_HIT.format(trace=trace_file(tmp_path, ["3600,a,p,1,3600"])))
    (job,) = result.jobs
    assert (job.interruptions, job.preemptions) == (1, 0)
    assert [r.hit for r in result.failures] == ["training"]


DATASET_CUT = """\
name: dataset-cut
seed: 1
duration: 5h
regions:
  - {name: h, lat: 0, lon: 0}
  - {name: x, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8}]}
links:
  - {a: h, b: x, rtt_ms: 10, bandwidth_gbps: 8}
datasets:
  - {name: d, size_gb: 100, home: h}
training:
  - name: t
    dataset: d
    jobs: {source: poisson, rate_per_h: 3600000, gpus: 8, work: {kind: gpu_hours, mean: 8}}
    max_jobs: 1
failures:
  links: [{a: h, b: x, at: 0s, duration: 1h}]
"""


def test_a_dataset_copy_with_no_path_waits_instead_of_crashing():
    # Was a bug: training.py:_source_for (line ~205) checks paths on world.topology, the topology
    # without cuts, then TransferManager.start routes on the cut one and raises
    # "ValueError: no route from h to x": the whole run crashes. Expected (docs/failures.md:
    # new WAN transfers route around the cut; with no path, wait until one exists): the copy
    # starts when the link returns at 1 h, takes 100 GB x 8 / 8 Gbit/s + 5 ms, then 1 h of
    # compute.
    result, _ = simulate_text(DATASET_CUT)
    (job,) = result.jobs
    assert job.status == "completed"
    assert job.end_s >= HOUR + 100 + HOUR - 1e-6


# -- rollouts and partitions ---------------------------------------------------------------
# The rollout of tests/engine/test_consistency.py, with every request's outcome recorded.
ROLLOUT = CONSISTENCY_ROLLOUT.replace("consistency:\n", "metrics: {requests: true}\nconsistency:\n", 1)
FAR_CUT_TO_THE_END = "failures:\n  links: [{a: src, b: far, at: 30m, duration: 10h}]\n"


@pytest.mark.parametrize("mode", ["strong", "eventual"])
def test_a_region_unreachable_until_the_end_never_gets_the_version(tmp_path, write_yaml, mode):
    out, summary = run_folder(tmp_path, write_yaml, ROLLOUT + FAR_CUT_TO_THE_END, f"consistency.mode={mode}")
    rows = {r["region"]: r for r in csv.DictReader(open(out / "rollouts.csv"))}
    # rollouts.csv writes "not yet" (inf) as an empty field.
    assert float(rows["src"]["landed_s"]) == 3600.0 and rows["far"]["landed_s"] == ""
    assert rows["far"]["switched_s"] == ""
    assert rows["src"]["switched_s"] == ("" if mode == "strong" else "3600")
    c = summary["consistency"]
    assert c["rollouts"] == 1 and c["not_landed"] == 1
    # Stale by hand from the request log: strong, every service started after the release
    # (no region ever switches); eventual, those started in far after it.
    log = np.load(out / "requests.npz")
    start = log["t_s"] + log["retry_s"] + log["rtt_ms"] / 2000 + np.nan_to_num(log["wait_s"])
    done = log["status"] == RequestStatus.COMPLETED
    stale = done & (start >= 3600.0)
    if mode == "strong":
        assert c["lag_s"]["mean"] is None and c["mixed_version_s"] == 0.0
    else:
        stale &= log["pool"] == 1
        assert c["lag_s"]["max"] == 0.0 and c["mixed_version_s"] == pytest.approx(3 * HOUR)
    assert c["stale_fraction"] == pytest.approx(stale.sum() / done.sum(), abs=1e-12)
    assert 0 < c["stale_fraction"] < 1


def test_overlapping_cuts_of_one_link_cut_an_origin_off_for_their_union(tmp_path, write_yaml):
    # far-island cut from 1 h to 2 h and from 1.5 h to 3 h: island reaches nothing from 1 h
    # to 3 h; every one of its requests then is rejected and counted as cut off, nothing else.
    text = ROLLOUT + ("failures:\n  links: [{a: far, b: island, at: 1h, duration: 1h},"
                      " {a: island, b: far, at: 90m, duration: 90m}]\n")
    out, summary = run_folder(tmp_path, write_yaml, text)
    log = np.load(out / "requests.npz")
    island = log["origin"] == 2
    during = island & (log["t_s"] >= HOUR) & (log["t_s"] < 3 * HOUR)
    assert (log["status"][during] == RequestStatus.REJECTED).all()
    f, i = summary["failures"], summary["inference"]
    assert f["link_failures"] == 2
    assert f["requests_cut_off"] == int(during.sum()) == i["rejected"] == i["dropped"]


def test_a_stale_view_with_a_partition_never_routes_to_an_unreachable_pool(tmp_path, write_yaml):
    # sync_delay 1 h: the load figures are stale, reachability is current. While src and far
    # are split (30 min to 2 h) each side is served on its own side only.
    text = ROLLOUT.replace("metrics: {requests: true}",
                           "metrics: {requests: true}\nscheduler: {routing: least_loaded, sync_delay: 1h}")
    text += "failures:\n  links: [{a: src, b: far, at: 30m, duration: 90m}]\n"
    out, summary = run_folder(tmp_path, write_yaml, text)
    log = np.load(out / "requests.npz")
    split = (log["t_s"] >= 1800) & (log["t_s"] < 2 * HOUR)
    assert (log["pool"][split & (log["origin"] == 0)] == 0).all()
    assert (log["pool"][split & (log["origin"] > 0)] == 1).all()
    assert summary["inference"]["dropped"] == 0


# -- conservation under everything at once -----------------------------------------------
STRESS = """\
name: stress
seed: 9
duration: 12h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 6, gpus_per_replica: 8, slots_per_replica: 2},
                                      {name: t, gpu: H100, replicas: 2, gpus_per_replica: 8, serves: training}]}
  - {name: b, lat: 0, lon: 20, pools: [{name: p, gpu: H100, replicas: 6, gpus_per_replica: 8, slots_per_replica: 2},
                                       {name: t, gpu: H100, replicas: 2, gpus_per_replica: 8, serves: training}]}
  - {name: c, lat: 0, lon: 40, pools: [{name: p, gpu: H100, replicas: 6, gpus_per_replica: 8, slots_per_replica: 2}]}
links:
  - {a: a, b: b, rtt_ms: 40, bandwidth_gbps: 100}
  - {a: b, b: c, rtt_ms: 40, bandwidth_gbps: 100}
inference:
  - name: chat
    origin: {a: 1, c: 1}
    arrival: {process: poisson, rate_per_s: 8}
    service: {dist: exponential, mean_s: 2.0}
    timeout_ms: 4000
training:
  - name: t
    span_regions: true
    jobs: {source: poisson, rate_per_h: 2, gpus: 16, work: {kind: gpu_hours, mean: 40}}
    checkpoint: {interval: 1h, write: 6m, restart: 12m}
scheduler: {routing: least_loaded, sync_delay: 30s}
failures:
  nodes: [{mttf: 6h, repair: {mean: 1h}}]
  outages: [{region: a, at: 3h, duration: 2h}, {region: a, at: 4h, duration: 2h},
            {region: b, rate_per_year: 2000, duration: 1h}]
  links: [{a: a, b: b, at: 7h, duration: 1h}, {regions: [c], at: 450m, duration: 1h}]
  max_retries: 1
"""


def test_every_request_and_job_is_counted_once_under_overlapping_failures():
    result, _ = simulate_text(STRESS)
    log = result.log
    counts = {status.name.lower(): result.count(status) for status in RequestStatus}
    assert counts["pending"] == 0
    assert sum(counts.values()) == len(log.status)
    assert counts["failed"] == result.lost  # each lost request lost once
    assert result.retries > 0
    jobs = result.jobs
    by_status = {s: sum(1 for j in jobs if j.status == s) for s in ("completed", "running", "queued")}
    assert sum(by_status.values()) == len(jobs) > 0
    assert sum(j.interruptions for j in jobs) > 0
    for job in jobs:
        assert job.lost_gpu_h >= -1e-9 and job.useful_gpu_h >= -1e-9
