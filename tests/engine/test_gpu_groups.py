"""Two models on one cluster: autoscaled pools sharing a GPU group never hold more than its
GPUs, and a model grows into GPUs another released, paying its own cold start."""
from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.records import ColdStart, ProvisionChanged, ReplicasReady
from sim.scenario import parse_scenario
from tests.traced import traced

SCENARIO = """\
name: two-models
seed: 2
duration: 2h
regions:
  - name: eastus
    gpu_groups: [{{name: cluster, gpus: {gpus}}}]
    pools:
      - {{name: small, gpu: H100, replicas: 4, gpus_per_replica: 8, serves: inference,
         serving: {{model: Llama-3.1-70B}},
         autoscale: {{min: 1, initial: 2, group: cluster, provisioning_s: 30, load_gbps: 10}}}}
      - {{name: big, gpu: H100, replicas: 4, gpus_per_replica: 8, serves: inference,
         serving: {{model: Llama-2-70B}},
         autoscale: {{min: 1, initial: 1, group: cluster, provisioning_s: 30, load_gbps: 10}}}}
inference:
  - name: small-traffic
    origin: {{eastus: 1}}
    model: Llama-3.1-70B
    arrival:
      process: poisson
      rate_per_s: 20
      profile: {{kind: piecewise, points: [{{at: 0, L: 1}}, {{at: 30m, L: 1}}, {{at: 31m, L: 0.02}}]}}
    service: {{dist: tokens, input_tokens: {{mean: 500}}, output_tokens: {{mean: 100}}}}
  - name: big-traffic
    origin: {{eastus: 1}}
    model: Llama-2-70B
    arrival:
      process: poisson
      rate_per_s: 20
      profile: {{kind: piecewise, points: [{{at: 0, L: 0.025}}, {{at: 30m, L: 0.025}}, {{at: 31m, L: 1}}]}}
    service: {{dist: tokens, input_tokens: {{mean: 1000}}, output_tokens: {{mean: 200}}}}
scheduler:
  routing: nearest
  autoscaling:
    policy: {{name: target_utilization, params: {{target: 0.5}}}}
    interval: 30s
    scale_down_cooldown: 5m
"""


def scenario(gpus=32):
    return parse_scenario(SCENARIO.format(gpus=gpus), "groups.yaml").scenario


def test_the_group_never_holds_more_than_its_gpus_and_models_trade_them():
    run = traced(scenario())
    held: dict[str, int] = {}
    for record in run.of(ProvisionChanged):
        held[record.pool] = (record.ready + record.starting) * 8
        assert sum(held.values()) <= 32, record
    starts = {r.pool: [] for r in run.of(ColdStart)}
    for r in run.of(ColdStart):
        starts[r.pool].append(r)
    # The big model starts replicas only once the small one released its GPUs.
    released = [r.t_s for r in run.of(ProvisionChanged) if r.pool == "small" and r.cause == "scale_down"]
    assert released and starts.get("big")
    assert starts["big"][0].t_s >= released[0]
    # It asked for 4 but the group had room for one more replica (8 of 32 GPUs) at first.
    assert starts["big"][0].replicas == 1
    # ...and each of its cold starts takes provisioning + weights / bandwidth, to the second.
    big_ready = {r.started_s: r.t_s for r in run.of(ReplicasReady) if r.pool == "big"}
    for start in starts["big"]:
        if start.t_s in big_ready:
            assert big_ready[start.t_s] - start.t_s == pytest.approx(30 + start.weights_bytes * 8 / 10e9, abs=1e-6)


def test_a_group_must_exist_and_hold_the_pools_at_the_start():
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.gpu_groups\[0\]\.gpus: its pools start with 24 GPUs"):
        scenario(gpus=16)
    bad = SCENARIO.format(gpus=32).replace("group: cluster, provisioning_s: 30, load_gbps: 10}}\n      - {name: big",
                                           "group: nope, provisioning_s: 30, load_gbps: 10}}\n      - {name: big")
    with pytest.raises(ScenarioError, match="no such gpu group in eastus"):
        parse_scenario(bad, "groups.yaml")


def test_a_group_s_gpus_are_installed_once_whatever_its_pools_may_use():
    """Two pools of 4 x 8 GPUs share a 32-GPU cluster: the region has 32 GPUs installed (not
    64), so utilisation divides by 32 and an idle hour draws the idle power of 32 GPUs."""
    from sim.metrics.energy import IDLE_FRACTION, energy_summary
    from sim.world import build_world
    from sim.world.catalogue import gpu_spec

    region = build_world(scenario()).regions[0]
    assert region.total_gpus == 32
    assert region.tdp_w == 32 * gpu_spec("H100").tdp_w
    idle_hour = [{"region": "eastus", "t_start_s": 0.0, "t_end_s": 3600.0, "busy_gpus": 0.0, "training_gpus": 0.0}]
    kwh = energy_summary(idle_hour, [region], 0.0)["kwh"]
    assert kwh == pytest.approx(region.pue * IDLE_FRACTION * gpu_spec("H100").tdp_w * 32 / 1000)


def test_the_pools_of_a_group_share_one_gpu_type():
    bad = SCENARIO.format(gpus=32).replace("{name: big, gpu: H100", "{name: big, gpu: A100")
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.pools\[1\]\.gpu: pools of gpu group cluster share one "
                                            r"GPU type \(H100\) \(got 'A100'\)"):
        parse_scenario(bad, "groups.yaml")
