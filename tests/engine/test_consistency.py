"""Model rollouts and partitions, by hand: copy times, eventual and strong switching,
stale service, copies held back by a partition, origins cut off from every pool."""
import csv
import json

import numpy as np
import pytest

from tests.conftest import run_cli

ROLLOUT = """\
name: rollout
seed: 2
duration: 4h
regions:
  - {name: src, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, slots_per_replica: 4}]}
  - {name: far, lat: 0, lon: 30, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, slots_per_replica: 4}]}
  - {name: island, lat: 30, lon: 30}
links:
  - {a: src, b: far, rtt_ms: 100, bandwidth_gbps: 8}
  - {a: far, b: island, rtt_ms: 10, bandwidth_gbps: 8}
inference:
  - name: chat
    origin: {src: 0.5, far: 0.3, island: 0.2}
    arrival: {process: poisson, rate_per_s: 5}
    service: {dist: exponential, mean_s: 1.0}
consistency:
  model_gb: 100
  source: src
  at: [1h]
  mode: eventual
"""


def run(tmp_path, write_yaml, text, *sets):
    out = tmp_path / "run"
    result = run_cli("run", str(write_yaml(text)), "--out", str(out), *[a for s in sets for a in ("--set", s)])
    assert result.code == 0, result.err
    return json.load(open(out / "summary.json")), list(csv.DictReader(open(out / "rollouts.csv")))


def test_eventual_rollout_switches_each_region_when_its_copy_lands(tmp_path, write_yaml):
    summary, rows = run(tmp_path, write_yaml, ROLLOUT)
    # One way latency 0.05 s + 100e9 bytes * 8 / 8e9 bit/s = 100.05 s.
    by_region = {r["region"]: r for r in rows}
    assert float(by_region["src"]["switched_s"]) == 3600.0
    assert float(by_region["far"]["landed_s"]) == pytest.approx(3600 + 100.05, abs=1e-6)
    assert float(by_region["far"]["switched_s"]) == pytest.approx(3600 + 100.05, abs=1e-6)
    c = summary["consistency"]
    assert c["rollouts"] == 1 and c["lag_s"]["max"] == pytest.approx(100.05, abs=1e-6)
    assert c["lag_s"]["mean"] == pytest.approx(100.05 / 2, abs=1e-6)
    assert c["mixed_version_s"] == pytest.approx(100.05, abs=1e-6)
    # Stale: requests whose service started in `far` during those 100 s, out of all.
    served_far = summary["inference"]["by_region"]["far"]["completed"]
    assert 0 < c["stale_fraction"] < 1.2 * 100.05 / (4 * 3600) * served_far / summary["inference"]["completed"] + 0.002


def test_strong_rollout_switches_everyone_at_the_last_landing(tmp_path, write_yaml):
    summary, rows = run(tmp_path, write_yaml, ROLLOUT, "consistency.mode=strong")
    assert [float(r["switched_s"]) for r in rows] == pytest.approx([3600 + 100.05] * 2, abs=1e-6)
    c = summary["consistency"]
    assert c["mixed_version_s"] == 0.0 and c["lag_s"]["mean"] == pytest.approx(100.05, abs=1e-6)
    # Every region serves the old version for 100 s: about 100 / 14400 of the requests.
    assert c["stale_fraction"] == pytest.approx(100.05 / (4 * 3600), rel=0.25)


def test_a_partition_holds_the_copy_back_and_cuts_an_origin_off(tmp_path, write_yaml):
    text = ROLLOUT + ("failures:\n"
                      "  links: [{a: src, b: far, at: 50m, duration: 1h},"
                      " {regions: [island], at: 2h, duration: 30m}]\n")
    summary, rows = run(tmp_path, write_yaml, text)
    by_region = {r["region"]: r for r in rows}
    # The release at 1 h finds src and far split until 1 h 50 m; the copy then takes 100.05 s.
    assert float(by_region["far"]["landed_s"]) == pytest.approx(6600 + 100.05, abs=1e-6)
    f = summary["failures"]
    assert f["link_failures"] == 1 and f["partitions"] == 1
    # While cut off, island's users (20 % of 5/s) reach no pool: about 0.2 * 5 * 1800 = 1800
    # requests are rejected and counted as cut off; nobody else is.
    assert f["requests_cut_off"] == summary["inference"]["rejected"]
    assert 1800 * 0.85 < f["requests_cut_off"] < 1800 * 1.15
    # While src and far are split, each side's users are served on their side only.
    assert summary["inference"]["dropped"] == summary["inference"]["rejected"]


STALE = """\
name: stale-view
seed: 4
duration: 1h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4},
                                      {name: q, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4}]}
  - {name: u, lat: 0, lon: 1}
inference:
  - name: chat
    origin: {u: 1}
    arrival: {process: poisson, rate_per_s: 4}
    service: {dist: exponential, mean_s: 1.0}
scheduler: {routing: least_loaded, sync_delay: 2h}
"""


def inference_summary(tmp_path, write_yaml, text, name, *sets):
    out = tmp_path / name
    assert run_cli("run", str(write_yaml(text, f"{name}.yaml")), "--out", str(out), *sets).code == 0
    return json.load(open(out / "summary.json"))["inference"]


def test_a_stale_view_keeps_sending_to_what_looked_least_loaded(tmp_path, write_yaml):
    # The users are in u, the pools in a: the view of a is refreshed once, at the first
    # request, when both pools are empty: the tie goes to the first pool, and without a
    # refresh every request follows it.
    stale = inference_summary(tmp_path, write_yaml, STALE, "stale")
    fresh = inference_summary(tmp_path, write_yaml, STALE, "fresh", "--set", "scheduler.sync_delay=0s")
    assert stale["arrived"] == fresh["arrived"]  # the same requests (common random numbers)
    assert stale["wait_ms"]["mean"] > 2 * fresh["wait_ms"]["mean"]
    # The same delay for a alone (sync_delay_by_region) herds the same way.
    by_region = inference_summary(tmp_path, write_yaml, STALE, "by-region", "--set", "scheduler.sync_delay=0s",
                                  "--set", "scheduler.sync_delay_by_region={a: 2h}")
    assert by_region == stale


def test_the_routers_own_region_is_never_stale(tmp_path, write_yaml):
    # Users in a itself: the pools of their own region are seen as they are, whatever
    # sync_delay says, so the run is the one with an always-current view.
    local = STALE.replace("origin: {u: 1}", "origin: {a: 1}")
    stale = inference_summary(tmp_path, write_yaml, local, "stale")
    fresh = inference_summary(tmp_path, write_yaml, local, "fresh", "--set", "scheduler.sync_delay=0s")
    assert stale == fresh


LOCAL_AND_REMOTE = """\
name: stale-view
seed: 4
duration: 1h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4}]}
  - {name: b, lat: 0, lon: 1, pools: [{name: q, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 4}]}
inference:
  - name: chat
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 4}
    service: {dist: exponential, mean_s: 1.0}
scheduler: {routing: least_loaded, sync_delay: 2h}
"""


def test_a_remote_region_is_seen_late_and_the_own_region_now(tmp_path, write_yaml):
    # Users in a, one pool in a and one in b, both empty at the first request. The view of
    # b stays empty for 2 h; a's own pool is seen as it is: least_loaded sends a request to
    # b whenever a's pool is busy at all, so b takes most of the traffic and queues.
    text = LOCAL_AND_REMOTE
    stale = inference_summary(tmp_path, write_yaml, text, "stale", "--set", "metrics.requests=true")
    log = np.load(tmp_path / "stale" / "requests.npz")
    assert (log["pool"] == 1).mean() > 0.7  # the remote pool, seen empty, takes most requests
    fresh = inference_summary(tmp_path, write_yaml, text, "fresh", "--set", "scheduler.sync_delay=0s")
    assert stale["wait_ms"]["mean"] > 2 * fresh["wait_ms"]["mean"]
