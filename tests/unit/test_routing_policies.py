"""Built-in routing policies on hand-built views, with the exact expected choices.

The standard view: two regions A (0) and B (1); pools 0 and 1 in A, pool 2 in B.
RTT from A: 2, 2, 80 ms; from B: 80, 80, 3 ms.
"""
import math

import numpy as np
import pytest

from sim.policies import RoutingView, available, create
from sim.scenario.model import PolicySpec

INF = math.inf
Z999 = 3.2905  # two-sided 99.9 % normal quantile


def view(origin=0, rtt=((2.0, 2.0, 80.0), (80.0, 80.0, 3.0)), total=(4, 4, 8), **arrays) -> RoutingView:
    return RoutingView.build(pool_region=[0, 0, 1], rtt_ms=rtt, total_slots=total, origin=origin, **arrays)


def policy(name, seed=0, **params):
    return create("routing", PolicySpec(name=name, params=params), np.random.default_rng(seed))


def update(v: RoutingView, field: str, values, bump: bool = True) -> None:
    """Change a view array in place the way the engine does."""
    array = getattr(v, field)
    array.flags.writeable = True
    array[:] = values
    array.flags.writeable = False
    v.version += bump


# -- the view ----------------------------------------------------------------------------------
def test_view_arrays_are_read_only_copies():
    slots = [4, 4, 8]
    v = view(total=slots)
    slots[0] = 99
    assert v.total_slots.tolist() == [4, 4, 8] and v.active_slots.tolist() == [4, 4, 8]
    assert v.share.tolist() == [0.25, 0.25, 0.5] and v.n_pools == 3
    with pytest.raises(ValueError):
        v.queue_len[0] = 1
    with pytest.raises(AttributeError):
        v.extra = 1


def test_view_checks_shapes():
    with pytest.raises(ValueError, match=r"queue_len: must have shape \(3,\), got \(2,\)"):
        view(queue_len=[0, 0])
    with pytest.raises(ValueError, match=r"rtt_ms: must have shape \(2, 3\), got \(2, 2\)"):
        view(rtt=[[1, 2], [3, 4]])


def test_available_needs_finite_rtt_and_an_active_slot():
    v = view(rtt=[[2, INF, 80], [80, 80, 3]], active_slots=[0, 4, 8])
    assert v.available().tolist() == [2]
    assert v.available(1).tolist() == [1, 2]


# -- nearest -----------------------------------------------------------------------------------
def test_nearest_lowest_rtt_ties_to_lowest_index():
    p = policy("nearest")
    assert p.choose(view(origin=0)) == 0
    assert p.choose(view(origin=1)) == 2


def test_nearest_skips_switched_off_and_unreachable_pools():
    p = policy("nearest")
    assert p.choose(view(active_slots=[0, 4, 8])) == 1
    assert p.choose(view(rtt=[[2, INF, 80], [80, 80, 3]], active_slots=[0, 4, 8])) == 2


def test_nearest_cache_follows_the_version():
    p, v = policy("nearest"), view()
    assert p.choose(v) == 0
    update(v, "active_slots", [0, 4, 8], bump=False)
    assert p.choose(v) == 0  # cached: the engine promised nothing changed
    v.version += 1
    assert p.choose(v) == 1
    update(v, "active_slots", [0, 0, 8])
    assert p.choose(v) == 2
    v.origin = 1
    assert p.choose(v) == 2
    update(v, "active_slots", [4, 4, 8])
    v.origin = 0
    assert p.choose(v) == 0


def test_nearest_returns_a_plain_int():
    assert type(policy("nearest").choose(view())) is int


# -- round robin -------------------------------------------------------------------------------
def test_round_robin_skips_a_pool_that_is_off():
    p, v = policy("round_robin"), view(active_slots=[4, 0, 8])
    assert [p.choose(v) for _ in range(4)] == [0, 2, 0, 2]


def test_round_robin_keeps_one_cycle_per_origin_and_index_order_when_pools_return():
    p, v = policy("round_robin"), view(active_slots=[4, 0, 8])
    seen = []
    for origin in (0, 1, 0, 1, 0):
        v.origin = origin
        seen.append(p.choose(v))
    assert seen == [0, 0, 2, 2, 0]
    update(v, "active_slots", [4, 4, 8])
    v.origin = 0
    assert [p.choose(v) for _ in range(4)] == [1, 2, 0, 1]


# -- weighted ----------------------------------------------------------------------------------
def within_999(counts: np.ndarray, probabilities: list[float], n: int) -> bool:
    p = np.asarray(probabilities)
    return bool(np.all(np.abs(counts - n * p) <= Z999 * np.sqrt(n * p * (1 - p))))


def draw(p, v: RoutingView, n: int = 20_000) -> np.ndarray:
    return np.bincount([p.choose(v) for _ in range(n)], minlength=v.n_pools)


def test_weighted_frequencies_follow_the_shares():
    counts = draw(policy("weighted", seed=7), view(share=[0.5, 0.2, 0.3]))
    assert within_999(counts, [0.5, 0.2, 0.3], 20_000)
    assert not within_999(counts, [0.45, 0.25, 0.3], 20_000)  # the check can fail


def test_weighted_renormalises_over_available_pools_and_never_draws_zero_shares():
    counts = draw(policy("weighted", seed=8), view(share=[0.5, 0.2, 0.3], active_slots=[4, 4, 0]))
    assert counts[2] == 0 and within_999(counts[:2], [5 / 7, 2 / 7], 20_000)
    counts = draw(policy("weighted", seed=9), view(share=[0.0, 0.4, 0.6]))
    assert counts[0] == 0 and within_999(counts[1:], [0.4, 0.6], 20_000)


def test_weighted_falls_back_to_active_slots_when_shares_are_zero():
    counts = draw(policy("weighted", seed=10), view(share=[0.0, 0.0, 1.0], active_slots=[1, 3, 0]))
    assert counts[2] == 0 and within_999(counts[:2], [0.25, 0.75], 20_000)


def test_weighted_is_reproducible_from_its_seed():
    v = view(share=[0.5, 0.2, 0.3])
    a, b = policy("weighted", seed=3), policy("weighted", seed=3)
    assert [a.choose(v) for _ in range(100)] == [b.choose(v) for _ in range(100)]


# -- least loaded ------------------------------------------------------------------------------
def test_least_loaded_picks_the_lowest_relative_load_even_far_away():
    # Loads: 7/4 = 1.75, 2/2 = 1.0, 1/8 = 0.125.
    v = view(queue_len=[3, 0, 0], busy_slots=[4, 2, 1], active_slots=[4, 2, 8])
    assert policy("least_loaded").choose(v) == 2


def test_least_loaded_ties_go_to_lower_rtt_then_lower_index():
    # 2/4 == 4/8: from B the far-index pool 2 is nearer; from A pools 0 and 1 tie on RTT too.
    v = view(origin=1, queue_len=[0, 0, 0], busy_slots=[2, 3, 4])
    assert policy("least_loaded").choose(v) == 2
    v = view(origin=0, busy_slots=[2, 2, 4])
    assert policy("least_loaded").choose(v) == 0
    v = view(origin=0, busy_slots=[3, 2, 6])
    assert policy("least_loaded").choose(v) == 1


def test_least_loaded_reads_live_load_on_every_call():
    p, v = policy("least_loaded"), view(busy_slots=[0, 0, 0])
    assert p.choose(v) == 0
    update(v, "busy_slots", [4, 0, 0], bump=False)
    assert p.choose(v) == 1


# -- latency aware -----------------------------------------------------------------------------
def expected_cost(v: RoutingView, pool: int, rtt_weight: float = 1.0) -> float:
    q, b, a = v.queue_len[pool], v.busy_slots[pool], v.active_slots[pool]
    return rtt_weight * v.rtt_ms[v.origin, pool] + max(0, q + b + 1 - a) * v.mean_service_s[pool] / a * 1000


def test_latency_aware_goes_far_when_the_near_pool_has_a_long_queue():
    # Pool 0: (10 + 4 + 1 - 4) * 2 s / 4 * 1000 + 2 = 5502 ms; pool 1 is off;
    # pool 2: (0 + 8 + 1 - 8) * 1 s / 8 * 1000 + 80 = 205 ms.
    v = view(queue_len=[10, 0, 0], busy_slots=[4, 0, 8], active_slots=[4, 0, 8],
             mean_service_s=[2.0, 2.0, 1.0])
    assert expected_cost(v, 0) == 5502.0 and expected_cost(v, 2) == 205.0
    assert policy("latency_aware").choose(v) == 2
    update(v, "queue_len", [0, 0, 0], bump=False)
    update(v, "busy_slots", [3, 0, 8], bump=False)  # a free slot at pool 0: cost 2 ms
    assert policy("latency_aware").choose(v) == 0


def test_latency_aware_rtt_weight_trades_distance_for_waiting():
    # Pool 0: 500 + 2 w, pool 2: 125 + 80 w; w = 1 -> 502 vs 205, w = 10 -> 520 vs 925.
    v = view(queue_len=[0, 0, 0], busy_slots=[4, 0, 8], active_slots=[4, 0, 8],
             mean_service_s=[2.0, 2.0, 1.0])
    assert policy("latency_aware").choose(v) == 2
    assert policy("latency_aware", rtt_weight=10).choose(v) == 0


@pytest.mark.parametrize("vector_from", [1, 10_000])
def test_latency_aware_matches_the_formula_on_random_views(vector_from, monkeypatch):
    monkeypatch.setattr(type(policy("latency_aware")), "vector_from", vector_from)
    rng = np.random.default_rng(5)
    for _ in range(300):
        n, regions = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        rtt = rng.choice([1.0, 5.0, 20.0, 80.0, INF], (regions, n))
        v = RoutingView.build(pool_region=rng.integers(0, regions, n), rtt_ms=rtt,
                              total_slots=[8] * n, active_slots=rng.integers(0, 5, n),
                              queue_len=rng.integers(0, 4, n), busy_slots=rng.integers(0, 5, n),
                              mean_service_s=rng.choice([0.5, 1.0, 2.0], n),
                              origin=int(rng.integers(regions)))
        weight = float(rng.choice([0.0, 1.0, 3.0]))
        pools = v.available().tolist()
        want = min(pools, key=lambda p: (expected_cost(v, p, weight), v.rtt_ms[v.origin, p], p)) if pools else None
        assert policy("latency_aware", rtt_weight=weight).choose(v) == want


# -- power of two ------------------------------------------------------------------------------
def loaded_view(n: int = 6) -> RoutingView:
    # Pool i has load i / 4: pool n-1 is the most loaded of all.
    return RoutingView.build(pool_region=[0] * n, rtt_ms=[[10.0] * n], total_slots=[4] * n,
                             busy_slots=[min(i, 4) for i in range(n)], queue_len=[max(0, i - 4) for i in range(n)])


def test_power_of_two_is_deterministic_for_a_seed_and_differs_across_seeds():
    v = loaded_view()
    a, b, c = policy("power_of_two", seed=11), policy("power_of_two", seed=11), policy("power_of_two", seed=12)
    seq_a, seq_b, seq_c = ([p.choose(v) for _ in range(200)] for p in (a, b, c))
    assert seq_a == seq_b and seq_a != seq_c


def test_power_of_two_takes_the_less_loaded_of_two_distinct_samples():
    counts = np.bincount(_draws("power_of_two", loaded_view(), 6000), minlength=6)
    assert counts[5] == 0  # the most loaded pool loses every pairing
    # P(pool i) = P(i is the less loaded of two distinct samples) = 2 (5 - i) / 30.
    assert within_999(counts[:5], [10 / 30, 8 / 30, 6 / 30, 4 / 30, 2 / 30], 6000)


def _draws(name, v, n, **params):
    p = policy(name, seed=4, **params)
    return [p.choose(v) for _ in range(n)]


def test_power_of_two_d_covers_uniform_and_least_loaded():
    v = loaded_view()
    assert set(_draws("power_of_two", v, 600, d=1)) == set(range(6))
    assert set(_draws("power_of_two", v, 50, d=6)) == {0}
    assert set(_draws("power_of_two", v, 50, d=100)) == {0}


def test_power_of_two_ties_go_to_lower_rtt_then_lower_index():
    v = view(origin=1, busy_slots=[2, 2, 4], active_slots=[4, 4, 8])  # all loads 0.5
    assert set(_draws("power_of_two", v, 100, d=3)) == {2}
    v = view(origin=0, busy_slots=[2, 2, 4], active_slots=[4, 4, 8])
    assert set(_draws("power_of_two", v, 100, d=3)) == {0}


def test_power_of_two_single_available_pool():
    v = view(active_slots=[0, 4, 0])
    assert set(_draws("power_of_two", v, 20)) == {1}


# -- every policy ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(available("routing")))
def test_rejects_when_nothing_is_available(name):
    p = policy(name)
    assert p.choose(view(active_slots=[0, 0, 0])) is None
    assert p.choose(view(rtt=[[INF, INF, INF], [1, 1, 1]], origin=0)) is None


@pytest.mark.parametrize("name", list(available("routing")))
def test_only_available_pools_are_chosen(name):
    p = policy(name)
    v = view(rtt=[[2, INF, 80], [80, 80, 3]], active_slots=[4, 4, 0], busy_slots=[4, 0, 0], queue_len=[9, 0, 0])
    assert {p.choose(v) for _ in range(200)} == {0}


def test_reads_load_flags():
    flags = {name: cls.reads_load for name, cls in available("routing").items()}
    assert flags == {"cache_aware": True, "latency_aware": True, "least_loaded": True, "nearest": False,
                     "power_of_two": True, "round_robin": False, "ttft_aware": True, "weighted": False}


def test_available_pools_serve_the_workload():
    v = RoutingView.build(pool_region=[0, 0, 1], rtt_ms=[[1, 1, 50]], total_slots=[4, 4, 4],
                          serves=[[True, False, True], [False, True, False]])
    assert v.key_stride == 1
    v.workload = 0
    assert v.available().tolist() == [0, 2]
    v.workload = 1
    assert v.available().tolist() == [1]
    every = RoutingView.build(pool_region=[0, 0], rtt_ms=[[1, 1]], total_slots=[4, 4])
    assert every.key_stride == 0 and every.available().tolist() == [0, 1]


@pytest.mark.parametrize("name", list(available("routing")))
def test_answers_are_kept_per_workload_when_pools_serve_different_ones(name):
    p = policy(name)
    v = RoutingView.build(pool_region=[0, 0], rtt_ms=[[1, 1]], total_slots=[4, 4],
                          serves=[[True, False], [False, True]])
    for _ in range(3):
        v.workload = 0
        assert p.choose(v) == 0
        v.workload = 1
        assert p.choose(v) == 1


# -- ttft_aware and cache_aware ------------------------------------------------------------------
def ttft_view(**arrays) -> RoutingView:
    """Two pools, 10 and 60 ms away, each one replica prefilling a token in 0.1 ms; a 1,000-token
    prompt whose first 900 tokens are shared prompt 7."""
    base = {"active_replicas": [1, 1], "prefill_ms_per_token": [0.1, 0.1], "input_tokens": 1000,
            "prefix": 7, "prefix_tokens": 900}
    return RoutingView.build(pool_region=[0, 1], rtt_ms=[[10.0, 60.0]], total_slots=[256, 256],
                             **{**base, **arrays})


@pytest.mark.parametrize("arrays, ttft, cache", [
    # Nothing ahead: 10 + 100 against 60 + 100 ms; the cached prompt at pool 1 makes it 60 + 10.
    ({"prefix_cached": [False, True]}, 0, 1),
    ({"prefix_cached": [True, False]}, 0, 0),
    # Slot pools (backlog unknown): 3 prompts waiting at pool 0, taken as long as this one:
    # 10 + 0.1 x (3,000 + 1,000) = 410 against 160 ms.
    ({"queue_len": [3, 0]}, 1, 1),
    # Batching pools: the backlog in tokens replaces the queue: 10 + 0.1 x (200 + 1,000) = 130
    # against 60 + 0.1 x (5,000 + 1,000) = 660 ms, whatever the queue says.
    ({"queue_len": [9, 0], "prefill_backlog": [200.0, 5000.0]}, 0, 0),
    # Per replica: 8,000 tokens over 4 replicas at pool 0: 10 + 0.1 x 3,000 = 310 against
    # 60 + 0.1 x 1,000 = 160 ms (pool 1 with the cache: 70 ms).
    ({"prefill_backlog": [8000.0, 0.0], "active_replicas": [4, 1], "prefix_cached": [False, True]}, 1, 1),
    # The cache saves 90 ms of prefill, not enough against 1,000 tokens more ahead.
    ({"prefill_backlog": [0.0, 1000.0], "prefix_cached": [False, True]}, 0, 0),
])
def test_ttft_and_cache_aware_by_hand(arrays, ttft, cache):
    v = ttft_view(**arrays)
    assert policy("ttft_aware").choose(v) == ttft
    assert policy("cache_aware").choose(v) == cache
