"""The autoscaler in the engine: event logs of scale-ups, cooldowns and abandoned cold
starts; conservation of requests and of GPU-hours; the seed's allocation model as an
autoscaling policy."""
import functools
import math

import numpy as np
import pytest
from pydantic import Field

from sim.errors import PolicyError
from sim.policies import AutoscaleView, AutoscalingPolicy, PolicyParams
from sim.records import CapacityChanged, ColdStart, ProvisionChanged, ReplicasReady, RequestStatus
from sim.scenario import parse_scenario
from tests.traced import traced


class ScriptedParams(PolicyParams):
    at_s: list[float] = Field(description="Times from which each count applies.")
    replicas: list[int] = Field(description="Replicas asked for every pool from the matching time.")


class Scripted(AutoscalingPolicy):
    """Asks for a scripted number of replicas of every pool (a test double)."""

    Params = ScriptedParams
    params: ScriptedParams

    def scale(self, view: AutoscaleView) -> np.ndarray:
        k = max(i for i, t in enumerate(self.params.at_s) if t <= view.t_s)
        return np.full(view.n, self.params.replicas[k])


class OutOfBounds(AutoscalingPolicy):
    """Asks for one replica more than any pool may have."""

    def scale(self, view: AutoscaleView) -> np.ndarray:
        return view.max_replicas + 1


BASE = """\
name: scaled
duration: 30m
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: 6
        slots_per_replica: 2
        autoscale: {min: 1, max: 6, initial: 1, provisioning_s: 30, load_gbps: 10, weights_gb: 100}
inference:
  - name: api
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 2, profile: {kind: step, before: 1, after: 3, at: 10m}}
    service: {dist: exponential, mean_s: 1.5}
    slo_ms: 3000
scheduler:
  autoscaling:
    policy: {name: "tests.engine.test_autoscaling:Scripted", params: {at_s: [0, 60, 300], replicas: [1, 4, 2]}}
    interval: 60s
    scale_down_cooldown: 5m
"""
# cold start: 30 s + 100e9 B x 8 / 10e9 bit/s = 30 + 80 = 110 s


def _run(text, overrides=()):
    return traced(parse_scenario(text, "scaled.yaml", overrides).scenario)


def _provision_log(run):
    return [(r.t_s, r.cause, r.ready, r.starting, r.desired) for r in run.of(ProvisionChanged)]


def test_scale_up_cold_start_then_scale_down_after_the_cooldown():
    run = _run(BASE)
    assert _provision_log(run) == [
        (0.0, "initial", 1, 0, 1),
        (60.0, "scale_up", 1, 3, 4),      # three replicas start at 60 s ...
        (170.0, "ready", 4, 0, 4),        # ... and serve 110 s later
        # the policy asks for 2 from 300 s; the pool shrinks to the largest wish of the
        # past 5 min (ticks at 300 ... 600 s: all 2) once its last change (170 s) is 5 min
        # behind it: at 600 s
        (600.0, "scale_down", 2, 0, 2),
    ]


def test_a_scale_down_abandons_cold_starts_before_warm_replicas():
    text = BASE.replace("at_s: [0, 60, 300], replicas: [1, 4, 2]", "at_s: [0, 60, 120], replicas: [1, 5, 2]")
    run = _run(text, ["scheduler.autoscaling.scale_down_cooldown=60", "scheduler.autoscaling.interval=30",
                      "regions.a.pools.p.autoscale.weights_gb=400"])  # cold start 30 + 320 s
    log = _provision_log(run)
    # The wishes of the past minute held the pool at 5 until 180 s (ticks 120, 150, 180
    # ask for 2): three of the four cold starts are abandoned, one finishes at 410 s.
    assert log == [(0.0, "initial", 1, 0, 1), (60.0, "scale_up", 1, 4, 5), (180.0, "cancelled", 1, 1, 2),
                   (410.0, "ready", 2, 0, 2)]
    assert [(r.t_s, r.replicas, r.started_s) for r in run.of(ReplicasReady)] == [(410.0, 1, 60.0)]
    summary = run.observers.autoscaling.summary(run.end_s)
    assert (summary["cold_starts"], summary["completed"], summary["abandoned"]) == (4, 1, 3)


def test_requests_are_conserved():
    run = _run(BASE)
    log = run.log
    statuses = np.bincount(log.status, minlength=len(RequestStatus))
    assert statuses.sum() == len(log.t_s) > 2000
    inference = run.observers.inference.summary(run.end_s)
    assert inference["arrived"] == inference["completed"] + inference["dropped"] + inference["in_flight"]
    section = run.observers.autoscaling.summary(run.end_s)
    during, outside = section["during_scale_up"], section["outside_scale_up"]
    for key in ("arrived", "completed", "dropped", "in_flight"):
        assert during[key] + outside[key] == inference[key]
    assert during["arrived"] > 0


def test_gpu_hours_are_conserved():
    """Replica-hours paid = warm + starting; the warm ones are exactly the pool's active
    GPU-hours the capacity observer integrates from CapacityChanged; the starting ones are
    the cold starts' replicas x durations (none abandoned here)."""
    run = _run(BASE)
    end = run.end_s
    section = run.observers.autoscaling.summary(end)
    pool = section["by_pool"]["a/p"]
    assert math.isclose(pool["replica_hours"], pool["warm_replica_hours"] + pool["cold_start_replica_hours"])
    assert math.isclose(pool["gpu_hours"], pool["replica_hours"] * 8)
    active = run.observers.capacity.summary(0.0, end)["allocation"]["active_gpus"]["a"] * end / 3600.0
    assert math.isclose(pool["warm_replica_hours"] * 8, active)
    cold = sum(r.replicas * (r.provisioning_s + r.load_s) for r in run.of(ColdStart)) / 3600.0
    assert math.isclose(pool["cold_start_replica_hours"], cold)
    assert section["cold_start_s"]["mean"] == 110.0


def test_capacity_follows_the_provisioned_replicas():
    run = _run(BASE)
    active = [(r.t_s, r.active_gpus) for r in run.of(CapacityChanged) if r.cause == "autoscaler"]
    assert active == [(0.0, 8), (170.0, 32), (600.0, 16)]


def test_a_decision_out_of_bounds_is_a_policy_error():
    text = BASE.replace('{name: "tests.engine.test_autoscaling:Scripted", params: {at_s: [0, 60, 300], '
                        'replicas: [1, 4, 2]}}', '"tests.engine.test_autoscaling:OutOfBounds"')
    with pytest.raises(PolicyError, match=r"asked for 7 replicas of a/p, outside its bounds 1..6"):
        _run(text)


SEED = """\
name: seed-as-autoscaler
duration: 2h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 8, slots_per_replica: 2}]}
  - {name: b, lat: 0, lon: 20, pools: [{name: q, gpu: H100, replicas: 8, slots_per_replica: 2}]}
inference:
  - name: api
    origin: {a: 0.5, b: 0.5}
    arrival: {process: poisson, rate_per_s: 1.5, profile: {kind: piecewise, points: [{at: 0, L: 1}, {at: 2h, L: 3}]}}
    service: {dist: exponential, mean_s: 2}
    slo_ms: 5000
scheduler:
  interval: 10m
  routing: least_loaded
  load_model: {kind: piecewise, points: [{at: 0, L: 20}, {at: 40m, L: 50}, {at: 80m, L: 90}, {at: 2h, L: 40}]}
  allocation: {weights: {a: 0.5, b: 0.5}, L_max: 100}
"""
AUTOSCALED = SEED.replace("slots_per_replica: 2}", "slots_per_replica: 2, autoscale: {initial: 8, weights_gb: 0}}") + \
    "  autoscaling: {policy: allocation_model, interval: 10m, scale_down_cooldown: 0}\n"


@functools.cache
def _seed():
    return _run(SEED)


def test_the_allocation_model_policy_with_free_cold_starts_is_the_seed_scheduler():
    seed, scaled = _seed(), _run(AUTOSCALED)
    assert len(scaled.of(ColdStart)) > 0 and any(r.cause == "scale_down" for r in scaled.of(ProvisionChanged))
    for name in ("status", "pool", "wait_s", "service_s"):
        assert np.array_equal(getattr(seed.log, name), getattr(scaled.log, name), equal_nan=True), name


def test_the_allocation_model_policy_pays_its_cold_starts():
    seed = _seed()
    slow = _run(AUTOSCALED.replace("weights_gb: 0", "weights_gb: 140, provisioning_s: 120"))
    ups = slow.of(ColdStart)
    assert ups and all(r.provisioning_s + r.load_s == 232.0 for r in ups)  # 120 + 140e9 x 8 / 10e9
    assert np.nanmean(slow.log.wait_s) > np.nanmean(seed.log.wait_s)


class Recorder(AutoscalingPolicy):
    """Holds every pool where it is and keeps each view it was shown (a test double)."""

    views: list[AutoscaleView] = []

    def scale(self, view: AutoscaleView) -> np.ndarray:
        Recorder.views.append(view)
        return view.clamp(view.ready + view.starting)


BATCHING = """\
name: signals
seed: 2
duration: 20m
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: 4
        gpus_per_replica: 2
        serving: {model: Llama-2-70B}
        autoscale: {min: 1, max: 4, weights_gb: 1}
inference:
  - name: chat
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 1, profile: {kind: step, before: 1, after: 8, at: 10m}}
    service: {dist: tokens, input_tokens: {mean: 1000, cv: 0.5}, output_tokens: {mean: 200, cv: 0.5}}
scheduler:
  autoscaling: {policy: "tests.engine.test_autoscaling:Recorder", interval: 60s}
"""


def test_the_view_shows_what_the_requests_did():
    Recorder.views = []
    run = _run(BATCHING)
    log, views = run.log, Recorder.views
    assert [v.t_s for v in views] == [60.0 * k for k in range(20)]
    for v in views:
        in_window = (log.t_s >= v.t_s - 60.0) & (log.t_s < v.t_s) & (log.pool == 0)
        assert v.arrivals[0] == in_window.sum()
        assert (v.ready[0], v.active[0], v.slots_per_replica[0]) == (1, 1, 256)
    calm, surge = views[9], views[-1]  # before the step at 10 min, and 9 min into 8x the traffic
    assert surge.queue_len[0] > 0 and surge.kv_fraction[0] > calm.kv_fraction[0]
    assert surge.ttft_p99_ms[0] > 10 * calm.ttft_p99_ms[0] and surge.wait_mean_s[0] > calm.wait_mean_s[0]


def test_ttft_slo_scales_up_when_the_surge_misses_the_objective():
    text = BATCHING.replace('"tests.engine.test_autoscaling:Recorder"', "{name: ttft_slo, params: {ttft_ms: 2000}}")
    ups = _run(text).of(ColdStart)
    assert ups and ups[0].t_s > 600.0  # only after the step


ZERO = """\
name: from-zero
seed: 2
duration: 20m
regions:
  - name: near
    lat: 0
    lon: 0
    pools:
      - {name: p, gpu: H100, replicas: 4, slots_per_replica: 2,
         autoscale: {min: 0, initial: 0, provisioning_s: 30, load_gbps: 10, weights_gb: 100}}
inference:
  - name: api
    origin: {near: 1}
    arrival: {process: poisson, rate_per_s: 1}
    service: {dist: exponential, mean_s: 1.0}
scheduler:
  routing: nearest
  autoscaling:
    policy: {name: target_utilization, params: {target: 0.5}}
    interval: 30s
"""
WARM_FAR = """\
  - name: far
    lat: 0
    lon: 60
    pools: [{name: w, gpu: H100, replicas: 2, slots_per_replica: 2}]
inference:"""


def zero_run(warm_far: bool = False):
    text = ZERO.replace("inference:", WARM_FAR, 1) if warm_far else ZERO
    return _run(text)


def test_a_pool_scaled_to_zero_holds_requests_and_starts_a_replica_for_them():
    """Nothing warm anywhere: requests wait at the pool held at zero, the next tick sees the
    queue and starts a replica, and the first request is served once its cold start ends
    (30 s + 100 GB / 10 Gbit/s = 110 s after the tick), not rejected."""
    run = zero_run()
    log = run.log
    assert run.count(RequestStatus.REJECTED) == 0
    (first_start, *_) = run.of(ColdStart)
    first = int(np.argmin(log.t_s))
    assert first_start.t_s == 30.0 * math.ceil(log.t_s[first] / 30.0)  # the first tick that sees it
    ready = first_start.t_s + 30 + 100e9 * 8 / 10e9
    assert log.t_s[first] + log.rtt_ms[first] / 2000 + log.wait_s[first] == pytest.approx(ready, abs=1e-9)
    assert not (log.t_s + log.rtt_ms / 2000 + log.wait_s < ready - 1e-9).any()  # nobody served before


def test_a_warm_pool_elsewhere_is_preferred_to_a_cold_start():
    """A warm pool in a far region takes the requests the policy can place; the pool held at
    zero near them is never asked to start."""
    run = zero_run(warm_far=True)
    assert run.count(RequestStatus.REJECTED) == 0
    assert not run.of(ColdStart)
    assert set(run.log.pool.tolist()) == {1}
