"""Several models in one fleet: a workload that names a model is served only where that
model is loaded, whatever the routing policy; a model no pool serves is a located error."""
from __future__ import annotations

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.policies import available
from sim.policies.routing import RoutingPolicy
from sim.policies.views import RoutingView
from sim.records import RequestStatus
from sim.scenario import parse_scenario
from tests.traced import traced

SCENARIO = """\
name: fleet
seed: 5
duration: 20m
regions:
  - name: eastus
    pools:
      - {{name: big, gpu: H100, replicas: 2, gpus_per_replica: 8, serving: {{model: Llama-3.1-70B}}}}
      - {{name: small, gpu: A100, replicas: 2, gpus_per_replica: 1, serving: {{model: Llama-3.1-8B}}}}
  - name: westeurope
    pools:
      - {{name: small, gpu: H100, replicas: 1, gpus_per_replica: 1, serving: {{model: Llama-3.1-8B}}}}
      - {{name: slots, gpu: H100, replicas: 1, gpus_per_replica: 8, slots_per_replica: 4}}
inference:
  - name: chat
    origin: {{eastus: 0.5, westeurope: 0.5}}
    arrival: {{process: poisson, rate_per_s: 2}}
    service: {{dist: tokens, input_tokens: {{mean: 500}}, output_tokens: {{mean: 100}}}}
    model: {big}
  - name: autocomplete
    origin: {{eastus: 0.3, westeurope: 0.7}}
    arrival: {{process: poisson, rate_per_s: 6}}
    service: {{dist: tokens, input_tokens: {{mean: 200}}, output_tokens: {{mean: 20}}}}
    model: Llama-3.1-8B
  - name: anything
    origin: {{westeurope: 1}}
    arrival: {{process: poisson, rate_per_s: 1}}
    service: {{dist: tokens, input_tokens: {{mean: 200}}, output_tokens: {{mean: 20}}}}
scheduler:
  routing: {policy}
"""


def scenario(policy="nearest", big="Llama-3.1-70B"):
    return parse_scenario(SCENARIO.format(policy=policy, big=big), "fleet.yaml").scenario


@pytest.mark.parametrize("policy", sorted(available("routing")))
def test_requests_go_only_where_their_model_is_loaded(policy):
    log = traced(scenario(policy)).log
    routed = log.pool >= 0
    # Pools in order: eastus/big (70B), eastus/small (8B), westeurope/small (8B), westeurope/slots.
    assert set(log.pool[routed & (log.workload == 0)].tolist()) <= {0}
    assert set(log.pool[routed & (log.workload == 1)].tolist()) <= {1, 2}
    assert (log.status[log.workload <= 1] == RequestStatus.COMPLETED).mean() > 0.95
    # A workload without a model may go anywhere; westeurope's nearest pools serve it.
    assert routed[log.workload == 2].all()
    if policy == "nearest":
        assert set(log.pool[log.workload == 1].tolist()) == {1, 2}  # each origin's own region
        assert np.isin(log.pool[log.workload == 2], [2, 3]).all()


def test_a_model_no_pool_serves_is_an_error():
    with pytest.raises(ScenarioError, match=r"inference\[0\]\.model: no pool serves this model"):
        scenario(big="Mixtral-8x7B")


class FastGpuForTightTtft(RoutingPolicy):
    """A request whose TTFT objective is under a second goes to the nearest H100 pool that
    serves it, any other to the nearest pool of another GPU type (else the nearest)."""

    reads_load = False

    def choose(self, view: RoutingView) -> int | None:
        pools = view.available()
        if not len(pools):
            return None
        fast = view.slo_ttft_ms[view.workload] < 1000.0
        wanted = [p for p in pools.tolist() if (view.pool_gpu[p] == "H100") == fast] or pools.tolist()
        return min(wanted, key=lambda p: (view.rtt_ms[view.origin, p], p))


def test_the_view_carries_each_pools_gpu_and_each_workloads_objectives():
    text = SCENARIO.format(policy='"tests.engine.test_multi_model:FastGpuForTightTtft"', big="Llama-3.1-70B")
    text = text.replace("    model: Llama-3.1-8B\n", "    model: Llama-3.1-8B\n    slo: {ttft_ms: 300, tpot_ms: 50}\n")
    sc = parse_scenario(text, "fleet.yaml").scenario
    log = traced(sc).log
    view = RoutingView.build(pool_region=[0], rtt_ms=[[1.0]], total_slots=[1])
    assert view.pool_gpu == ("",) and view.slo_ttft_ms.tolist() == [np.inf]  # defaults: no GPU named, no SLO
    # Pools: eastus/big (H100, 70B), eastus/small (A100, 8B), westeurope/small (H100, 8B), westeurope/slots (H100).
    # autocomplete (TTFT objective 300 ms) only on H100: westeurope/small, even from eastus.
    assert set(log.pool[log.workload == 1].tolist()) == {2}
    # anything (no objective) on the A100 pool, from westeurope; chat (70B) where its model is.
    assert set(log.pool[log.workload == 2].tolist()) == {1}
    assert set(log.pool[log.workload == 0].tolist()) == {0}


class RewritesTheView(RoutingPolicy):
    """Says every request is of the model-free workload 2 and sends it to the slot pool."""

    reads_load = False

    def choose(self, view: RoutingView) -> int | None:
        view.workload = 2
        return 3


def test_a_policy_cannot_escape_the_model_check_by_writing_the_view():
    from sim.errors import PolicyError

    with pytest.raises(PolicyError, match=r"sent a request of workload [01] to pool 3, which does not serve its model"):
        traced(scenario('"tests.engine.test_multi_model:RewritesTheView"'))
