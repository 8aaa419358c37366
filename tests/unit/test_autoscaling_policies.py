"""Autoscaling policies over hand-made views: no engine."""
import math

import numpy as np
import pytest

from sim.errors import PolicyError
from sim.policies import AutoscaleView, create
from sim.scenario.model import PolicySpec


def policy(name, **params):
    return create("autoscaling", PolicySpec(name=name, params=params), np.random.default_rng(0))


def view(**fields):
    return AutoscaleView.build(keys=[f"r/p{i}" for i in range(len(fields["ready"]))], **fields)


def test_target_utilization_sizes_for_running_and_queued_requests():
    # 10 running + 5 queued over 4 slots = 3.75 replicas of load; / 0.75 = 5
    v = view(ready=[4], max_replicas=[10], slots_per_replica=[4], running=[10], queue_len=[5])
    assert policy("target_utilization", target=0.75).scale(v).tolist() == [5]


def test_target_utilization_reads_kv_use_on_batching_pools():
    # 4 active replicas with their KV cache 90 % full carry 3.6 replicas of load: / 0.6 = 6
    v = view(ready=[4], max_replicas=[10], slots_per_replica=[256], running=[40], kv_fraction=[0.9])
    assert policy("target_utilization", target=0.6).scale(v).tolist() == [6]


def test_target_utilization_stays_within_bounds():
    v = view(ready=[2, 2], min_replicas=[1, 2], max_replicas=[3, 8], running=[100, 0])
    assert policy("target_utilization").scale(v).tolist() == [3, 2]


def test_a_queue_at_a_pool_with_nothing_serving_asks_for_a_replica():
    v = view(ready=[0], active=[0], max_replicas=[4], slots_per_replica=[256], queue_len=[1])
    assert policy("target_utilization").scale(v).tolist() == [1]


def test_ttft_slo_grows_shrinks_and_holds():
    v = view(ready=[4, 4, 4, 1], starting=[0, 0, 0, 0], max_replicas=[10, 10, 10, 10],
             ttft_p99_ms=[3000.0, 400.0, 1500.0, math.nan])
    # 3000 > 2000: 4 x 1.5 = 6; 400 < 0.5 x 2000 and no queue: 3; 1500: hold; nothing arrived
    # and nothing runs: 0 (at min)
    assert policy("ttft_slo", ttft_ms=2000).scale(v).tolist() == [6, 3, 4, 0]


def test_ttft_slo_counts_replicas_already_starting():
    v = view(ready=[2], starting=[2], max_replicas=[10], ttft_p99_ms=[5000.0])
    assert policy("ttft_slo", ttft_ms=1000, growth=2.0).scale(v).tolist() == [8]


def test_allocation_model_follows_the_plan_within_bounds():
    v = view(ready=[1, 1], min_replicas=[2, 0], max_replicas=[6, 6], planned=[0, 5])
    assert policy("allocation_model").scale(v).tolist() == [2, 5]


def test_the_view_is_read_only():
    v = view(ready=[1])
    with pytest.raises(ValueError):
        v.ready[0] = 3


def test_bad_params_name_the_policy():
    with pytest.raises(PolicyError, match=r"params.target: input should be less than or equal to 1"):
        policy("target_utilization", target=2)
    with pytest.raises(PolicyError, match=r"params.growth: input should be greater than 1"):
        policy("ttft_slo", growth=1)


def test_a_full_kv_cache_sets_what_a_replica_runs():
    # 40 sequences fill half the KV cache of 4 replicas: a replica fits 20; 40 running and
    # 60 queued are 5 replicas of load, 10 at a target of 0.5 (256 slots would say 1)
    v = view(ready=[4], max_replicas=[12], slots_per_replica=[256], running=[40], queue_len=[60], kv_fraction=[0.5])
    assert policy("target_utilization", target=0.5).scale(v).tolist() == [10]
