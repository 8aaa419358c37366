"""Placement policies and the engine's check of their answers, on hand-built views.

The standard view: three pools in two regions, the dataset ``corpus`` lives in ``eu``.

    pool  region/name  GPU   total  price $/kWh  carbon g/kWh  PUE
    0     us/a         A100      8  0.08         400           1.25
    1     us/b         H100     16  0.08         400           1.25
    2     eu/c         H100      8  0.20          50           1.10

A 4-GPU job runs 2 h on an A100 and 1 h on an H100 (700 W each), so its energy is
7.0 kWh on pool 0, 3.5 kWh on pool 1 and 3.08 kWh on pool 2; carbon 2.8, 1.4 and
0.154 kg; energy cost 0.56, 0.28 and 0.616 USD. Copying ``corpus`` to ``us`` takes 900 s
and costs ``egress`` USD.
"""
import dataclasses
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.errors import PolicyError
from sim.policies import Greenest, PlacementView, available, create, validate_assignments
from sim.policies.placement import Reservation, easy_reservation
from sim.scenario.model import PolicySpec

ROOT = Path(__file__).resolve().parents[2]
INF = math.inf
H = 3600.0
BUILT_IN = ["backfill", "cheapest", "data_local", "fifo_first_fit", "greenest", "least_loaded"]

POOLS = [
    {"region": "us", "name": "a", "gpu": "A100", "total_gpus": 8, "price_usd_per_kwh": 0.08, "carbon_g_per_kwh": 400.0,
         "pue": 1.25},
    {"region": "us", "name": "b", "gpu": "H100", "total_gpus": 16, "price_usd_per_kwh": 0.08, "carbon_g_per_kwh": 400.0,
         "pue": 1.25},
    {"region": "eu", "name": "c", "gpu": "H100", "total_gpus": 8, "price_usd_per_kwh": 0.20, "carbon_g_per_kwh": 50.0,
         "pue": 1.10},
]


def job(id, gpus=4, egress=0.2, dataset="corpus", **fields):
    """A job of the standard view; without a dataset nothing is copied."""
    values = {"id": id, "gpus": gpus, "dataset": dataset, "duration_s": (2 * H, H, H)}
    if dataset:
        values.update(transfer_gb=(100.0, 100.0, 0.0), transfer_s=(900.0, 900.0, 0.0),
                      transfer_cost_usd=(egress, egress, 0.0))
    return {**values, **fields}


def view(*jobs, free=(6, 16, 8), running=(), t_s=0.0) -> PlacementView:
    pools = [{**p, "free_gpus": f} for p, f in zip(POOLS, free, strict=True)]
    return PlacementView.build(pools=pools, queue=jobs, running=running, t_s=t_s)


def policy(name, **params):
    return create("placement", PolicySpec(name=name, params=params), np.random.default_rng(0))


def place(name, v, **params):
    answer = policy(name, **params).place(v)
    validate_assignments(v, answer, name)  # every built-in answer must pass the engine's check
    return answer


# -- the view ----------------------------------------------------------------------------------
def test_energy_cost_and_carbon_by_hand():
    v = view(job(1))
    j = v.queue[0]
    assert [v.energy_kwh(j, p) for p in range(3)] == pytest.approx([7.0, 3.5, 3.08])
    assert [v.energy_cost_usd(j, p) for p in range(3)] == pytest.approx([0.56, 0.28, 0.616])
    assert [v.carbon_kg(j, p) for p in range(3)] == pytest.approx([2.8, 1.4, 0.154])


def test_feasible_needs_residency_a_usable_gpu_and_room():
    v = view(job(1, gpus=8, allowed=(True, True, False), duration_s=(INF, H, H)))
    j = v.queue[0]
    assert [v.feasible(j, p) for p in range(3)] == [False, True, False]  # GPU type, ok, residency
    assert v.eligible(j) == (1,)
    assert not view(job(1, gpus=8), free=(6, 7, 8)).feasible(j, 1)


def test_build_defaults_and_broadcast():
    v = PlacementView.build(pools=[{}, {"region": "r1", "free_gpus": 3}], queue=[{"gpus": 2}])
    assert [(p.index, p.key, p.free_gpus, p.total_gpus) for p in v.pools] == [(0, "r0/p0", 8, 8), (1, "r1/p1", 3, 8)]
    j = v.queue[0]
    assert (j.id, j.gpus, j.duration_s, j.allowed, j.transfer_gb) == (0, 2, (H, H), (True, True), (0.0, 0.0))


def test_view_is_frozen_and_checks_lengths():
    v = view(job(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.t_s = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.pools[0].free_gpus = 99
    with pytest.raises(ValueError, match=r"queue\[0\]\.allowed: must have 3 entries \(one per pool\), got 2"):
        view(job(1, allowed=(True, True)))
    bad = dataclasses.replace(v.pools[1], index=0)
    with pytest.raises(ValueError, match=r"pools\[1\]\.index: must equal its position 1, got 0"):
        PlacementView(t_s=0.0, queue=(), pools=(v.pools[0], bad))


# -- each policy on one job ------------------------------------------------------------------
@pytest.mark.parametrize("name, pool", [
    ("fifo_first_fit", 0),  # first pool with room
    ("backfill", 0),        # nothing blocked: FIFO first fit
    ("data_local", 2),      # only eu holds corpus
    ("least_loaded", 1),    # free fractions 0.75, 1.0, 1.0: tie to the lower index
    ("cheapest", 1),        # 0.56 + 0.2, 0.28 + 0.2, 0.616
    ("greenest", 2),        # 2.8, 1.4, 0.154 kg
])
def test_each_policy_on_the_standard_view(name, pool):
    assert place(name, view(job(1))) == [(1, ((pool, 4),))]


def test_cheapest_counts_egress_and_soft_penalty():
    assert place("cheapest", view(job(1, egress=0.4))) == [(1, ((2, 4),))]  # 0.96, 0.68, 0.616
    # A soft rule against us costs 0.2 there: 0.96, 0.68 and 0.616 again.
    assert place("cheapest", view(job(1, penalty_usd=(0.2, 0.2, 0.0)))) == [(1, ((2, 4),))]


def test_greenest_breaks_carbon_ties_by_cost_not_index():
    pools = [{"price_usd_per_kwh": 0.10}, {"price_usd_per_kwh": 0.05}]
    v = PlacementView.build(pools=pools, queue=[{"id": 7, "gpus": 2}])
    assert place("greenest", v) == [(7, ((1, 2),))]
    assert place("cheapest", v) == [(7, ((1, 2),))]


def test_hard_residency_and_gpu_type_are_respected():
    # ``ledger`` lives in us and a hard rule keeps it there.
    ledger = {"dataset": "ledger", "transfer_gb": (0.0, 0.0, 100.0), "transfer_s": (0.0, 0.0, 900.0),
                  "transfer_cost_usd": (0.0, 0.0, 0.2)}
    assert place("greenest", view(job(1, **ledger))) == [(1, ((2, 4),))]
    assert place("greenest", view(job(1, **ledger, allowed=(True, True, False)))) == [(1, ((1, 4),))]
    assert place("data_local", view(job(1, **ledger, allowed=(False, True, False)))) == [(1, ((1, 4),))]
    h100_only = job(1, duration_s=(INF, H, H), dataset=None)
    assert place("fifo_first_fit", view(h100_only, free=(8, 0, 8))) == [(1, ((2, 4),))]


# -- queue discipline ------------------------------------------------------------------------
HOL = (job(1), job(2, gpus=20), job(3, dataset=None, gpus=2))  # job 2 fits in no pool


def test_fifo_blocks_behind_a_job_that_cannot_start():
    assert place("fifo_first_fit", view(*HOL)) == [(1, ((0, 4),))]


def test_data_local_skips_a_job_that_cannot_start():
    assert place("data_local", view(*HOL)) == [(1, ((2, 4),)), (3, ((0, 2),))]


@pytest.mark.parametrize("arrival_s, placed", [(0.0, [1]), (5000.0, [1, 3])])
def test_max_wait_stops_skipping_an_old_job(arrival_s, placed):
    jobs = (job(1), job(2, gpus=20, arrival_s=arrival_s), job(3, dataset=None, gpus=2))
    answer = place("data_local", view(*jobs, t_s=2 * H), max_wait_h=1.0)  # job 2 waited 2 h or 0.6 h
    assert [job_id for job_id, _ in answer] == placed


def test_capacity_is_counted_across_jobs_in_one_call():
    jobs = [job(k, dataset=None) for k in range(1, 6)] + [job(6, dataset=None, gpus=8)]
    assert place("fifo_first_fit", view(*jobs)) == [
        (1, ((0, 4),)), (2, ((1, 4),)), (3, ((1, 4),)), (4, ((1, 4),)), (5, ((1, 4),)), (6, ((2, 8),))]
    # pool 1 is cheapest until full, then pool 2 (0.616) before pool 0 (0.56 + 0.2)
    assert [p[0][0] for _, p in place("cheapest", view(*[job(k) for k in range(1, 7)]))] == [1, 1, 1, 1, 2, 2]


def test_least_loaded_follows_the_free_fraction_as_it_places():
    jobs = [job(k, dataset=None) for k in range(1, 6)]
    answer = place("least_loaded", view(*jobs, free=(8, 16, 8)))
    # fractions before each job: (1, 1, 1) (.5, 1, 1) (.5, .75, 1) (.5, .75, .5) (.5, .5, .5)
    assert [parts[0][0] for _, parts in answer] == [0, 1, 2, 1, 0]


# -- spanning ----------------------------------------------------------------------------------
def test_a_spanning_job_splits_only_when_no_pool_fits_in_preference_order():
    big = job(1, gpus=20, span_regions=True)
    assert place("fifo_first_fit", view(big, free=(8, 16, 8))) == [(1, ((0, 8), (1, 12)))]
    assert place("data_local", view(big, free=(8, 16, 8))) == [(1, ((2, 8), (0, 8), (1, 4)))]
    assert place("greenest", view(big, free=(8, 16, 8))) == [(1, ((2, 8), (1, 12)))]
    assert place("fifo_first_fit", view(job(1, gpus=12, span_regions=True))) == [(1, ((1, 12),))]
    assert place("fifo_first_fit", view(job(1, gpus=20), free=(8, 16, 8))) == []
    assert place("fifo_first_fit", view(big, free=(4, 8, 4))) == []  # 16 free in all


# -- EASY backfilling --------------------------------------------------------------------------
# t = 1000 s. Pool 0: 2 free, 6 GPUs end at 5000. Pool 1: none free, 16 end at 20000.
# Pool 2: 2 free, 4 end at 3000 and 2 at 8000. The 8-GPU head job fits nowhere now; it
# could start on pool 0 at 5000 (2 + 6), pool 1 at 20000, pool 2 at 8000 (2 + 4 + 2):
# reservation at 5000 on pool 0 with 0 extra GPUs.
RUNNING = ({"id": 90, "pools": ((0, 6),), "expected_end_s": 5000.0},
           {"id": 91, "pools": ((1, 16),), "expected_end_s": 20000.0},
           {"id": 92, "pools": ((2, 4),), "expected_end_s": 3000.0},
           {"id": 93, "pools": ((2, 2),), "expected_end_s": 8000.0})
HEAD = {"id": 1, "gpus": 8, "dataset": None, "duration_s": (H, H, H)}
NOT_POOL_2 = (H, H, INF)


def easy_view(*jobs, free=(2, 0, 2)):
    return view(HEAD, *jobs, free=free, running=RUNNING, t_s=1000.0)


def test_reservation_by_hand():
    v = easy_view()
    releases = [(r.expected_end_s, p, g) for r in v.running for p, g in r.pools]
    assert easy_reservation(v, v.queue[0], [2, 0, 2], releases) == Reservation(5000.0, frozenset({0}), 0)
    # A spanning head pools every runnable pool: 4 now, 8 at 3000, 14 at 5000 >= 10.
    span = dataclasses.replace(v.queue[0], gpus=10, span_regions=True)
    assert easy_reservation(v, span, [2, 0, 2], releases) == Reservation(5000.0, frozenset({0, 1, 2}), 4)
    # Every release at the shadow time counts towards the extra GPUs.
    assert easy_reservation(v, v.queue[0], [2, 0, 2], releases + [(5000.0, 0, 7)]) == Reservation(
        5000.0, frozenset({0}), 7)


def test_a_short_job_backfills_and_a_long_one_must_not():
    long = job(2, gpus=2, dataset=None, duration_s=(10000.0, 10000.0, INF))   # would end at 11000
    short = job(3, gpus=2, dataset=None, duration_s=(3000.0, 3000.0, INF))   # ends at 4000 <= 5000
    assert place("backfill", easy_view(long, short)) == [(3, ((0, 2),))]
    assert place("fifo_first_fit", easy_view(long, short)) == []


def test_the_copy_counts_towards_a_backfilled_job_s_end():
    late = job(3, gpus=2, dataset=None, duration_s=(3000.0, 3000.0, INF), transfer_s=(1500.0, 0.0, 0.0))
    assert place("backfill", easy_view(late)) == []  # 1000 + 1500 + 3000 = 5500 > 5000


def test_long_jobs_may_use_only_the_extra_gpus():
    # Pool 0 has 3 free: at 5000 it has 9 for the 8-GPU head, so 1 extra GPU.
    long1 = job(2, gpus=1, dataset=None, duration_s=(10000.0, 10000.0, INF))
    long2 = job(3, gpus=1, dataset=None, duration_s=(10000.0, 10000.0, INF))
    short = job(4, gpus=2, dataset=None, duration_s=(3000.0, 3000.0, INF))
    assert place("backfill", easy_view(long1, long2, short, free=(3, 0, 2))) == [(2, ((0, 1),)), (4, ((0, 2),))]


def test_a_long_job_may_backfill_outside_the_reserved_pool():
    long = job(2, gpus=2, dataset=None, duration_s=(10000.0, 10000.0, 10000.0))
    assert place("backfill", easy_view(long)) == [(2, ((2, 2),))]


def test_jobs_ahead_of_the_head_start_and_their_ends_count():
    # Job 0 (2 GPUs, ends at 1000 + 1800) takes pool 0's 2 free GPUs. The head then has
    # 2 + 6 = 8 on pool 0 at 5000 only thanks to job 0's end; without it the reservation
    # would be pool 2 at 8000, and job 2 (pool 2 only, ends at 9000) could not backfill.
    first = job(0, gpus=2, dataset=None, duration_s=(1800.0, 1800.0, 1800.0))
    mid = job(2, gpus=1, dataset=None, duration_s=(INF, INF, 8000.0))
    v = view(first, HEAD, mid, free=(2, 0, 2), running=RUNNING, t_s=1000.0)
    assert place("backfill", v) == [(0, ((0, 2),)), (2, ((2, 1),))]
    releases = [(r.expected_end_s, p, g) for r in v.running for p, g in r.pools]
    assert easy_reservation(v, v.queue[1], [0, 0, 2], releases) == Reservation(8000.0, frozenset({2}), 0)
    assert easy_reservation(v, v.queue[1], [0, 0, 2], releases + [(2800.0, 0, 2)]) == Reservation(
        5000.0, frozenset({0}), 0)


def test_a_head_that_can_never_start_holds_no_reservation():
    never = dict(HEAD, gpus=40)
    long = job(2, gpus=2, dataset=None, duration_s=(10000.0, 10000.0, INF))
    v = view(never, long, free=(2, 0, 2), running=RUNNING, t_s=1000.0)
    assert place("backfill", v) == [(2, ((0, 2),))]


# -- the engine's check ----------------------------------------------------------------------
def check(answer, v=None):
    validate_assignments(v or view(job(1), job(2, gpus=8, span_regions=True), job(3, dataset=None)), answer, "p")


@pytest.mark.parametrize("answer, message", [
    ({1: ((0, 4),)}, "place() must return a list of (job id, ((pool, gpus), ...)), got dict"),
    ([(1, 4)], "assignment 0: must be (job id, ((pool, gpus), ...)), got (1, 4)"),
    ([(1, ())], "assignment 0: must be (job id, ((pool, gpus), ...)), got (1, ())"),
    ([(1, ((0, 4.0),))], "assignment 0: must be (job id, ((pool, gpus), ...)), got (1, ((0, 4.0),))"),
    ([(99, ((0, 4),))], "assignment 0: job 99 is not in the queue"),
    ([(1, ((0, 4),)), (1, ((1, 4),))], "job 1 is assigned twice"),
    ([(1, ((5, 4),))], "job 1: pool 5 does not exist (pools are 0..2)"),
    ([(1, ((0, 4), (1, 0)))], "job 1: pool 1 given 0 GPUs (must be >= 1)"),
    ([(1, ((0, 2), (0, 2)))], "job 1: a pool is listed more than once (0, 0)"),
    ([(1, ((1, 3),))], "job 1: gang of 4 GPUs assigned 3"),
    ([(1, ((1, 2), (2, 2)))], "job 1: may not span regions, assigned to eu, us"),
    ([(1, ((0, 4), (1, 4)))], "job 1: gang of 4 GPUs assigned 8"),
    ([(1, ((0, 4),)), (3, ((0, 4),))], "pool 0 (us/a) over capacity: assigned 8 GPUs in total, 6 free"),
])
def test_bad_answers_are_named(answer, message):
    with pytest.raises(PolicyError) as caught:
        check(answer)
    assert str(caught.value) == f"policy 'p': {message}"


def test_gpu_type_and_hard_residency_are_named():
    v = view(job(1, duration_s=(INF, H, H), allowed=(False, False, True)))
    with pytest.raises(PolicyError, match=re.escape(
            "policy 'p': job 1: cannot run on pool 0 (us/a): its duration there is inf "
            "(GPU type A100 not usable by its workload, or the pool takes no training)")):
        check([(1, ((0, 4),))], v)
    with pytest.raises(PolicyError, match=re.escape(
            "policy 'p': job 1: dataset 'corpus' may not be processed in region 'us' "
            "(hard residency rule), assigned pool 1 (us/b)")):
        check([(1, ((1, 4),))], v)


def test_good_answers_pass_with_numpy_integers_and_spanning():
    check([])
    check([(np.int64(1), ((np.int64(2), np.int64(4)),)), (2, ((0, 2), (1, 6))), (3, ((1, 4),))])


# -- every built-in on many random views -----------------------------------------------------
def random_view(rng: np.random.Generator) -> PlacementView:
    n_pools = int(rng.integers(1, 5))
    pools = [{"region": f"r{rng.integers(2)}", "total_gpus": 8, "free_gpus": int(rng.integers(0, 9)),
              "price_usd_per_kwh": float(rng.uniform(0.05, 0.3)), "carbon_g_per_kwh": float(rng.uniform(20, 600))}
             for _ in range(n_pools)]
    jobs = [{"id": k, "gpus": int(rng.choice([1, 2, 4, 8, 12])), "span_regions": bool(rng.random() < 0.3),
             "duration_s": [float(rng.uniform(60, 9 * H)) if rng.random() < 0.8 else INF for _ in range(n_pools)],
             "allowed": [bool(rng.random() < 0.8) for _ in range(n_pools)],
             "transfer_gb": [float(rng.choice([0.0, 50.0])) for _ in range(n_pools)],
             "transfer_s": [float(rng.uniform(0, 600)) for _ in range(n_pools)]}
            for k in range(int(rng.integers(0, 8)))]
    running = [{"id": 100 + k, "pools": ((int(rng.integers(n_pools)), int(rng.integers(1, 8))),),
                "expected_end_s": float(rng.uniform(0, 5 * H))} for k in range(int(rng.integers(0, 4)))]
    return PlacementView.build(pools=pools, queue=jobs, running=running, t_s=100.0)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_answer_passes_the_engine_check_and_is_deterministic(name):
    for seed in range(300):
        v = random_view(np.random.default_rng(seed))
        first = place(name, v)
        assert first == policy(name).place(v)
        assert all(isinstance(pools, tuple) for _, pools in first)


# -- registry ----------------------------------------------------------------------------------
def test_registry_creates_placement_policies():
    assert list(available("placement")) == BUILT_IN
    greenest = create("placement", PolicySpec(name="greenest"), np.random.default_rng(1))
    assert isinstance(greenest, Greenest)
    assert greenest.place(view(job(1))) == [(1, ((2, 4),))]


def test_unknown_placement_policy_lists_the_valid_ones():
    with pytest.raises(PolicyError) as caught:
        policy("nope")
    assert str(caught.value) == ("policy 'nope': unknown placement policy 'nope' "
                                 "(valid: backfill, cheapest, data_local, fifo_first_fit, greenest, least_loaded)")


def test_placement_params_are_strict():
    with pytest.raises(PolicyError, match=r"params\.max_wait_h: extra inputs are not permitted"):
        policy("fifo_first_fit", max_wait_h=1.0)
    with pytest.raises(PolicyError, match=r"params\.max_wait_h: input should be greater than 0 \(got 0\)"):
        policy("data_local", max_wait_h=0)


# -- the worked example of docs/policies.md ----------------------------------------------------
@pytest.fixture
def deadline_first(tmp_path, monkeypatch):
    docs = (ROOT / "docs" / "policies.md").read_text()
    source = re.search(r"```python\n(# my_pkg/placement\.py\n.*?)```", docs, re.DOTALL).group(1)
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "placement.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        del sys.modules[name]


def test_the_documented_placement_examples_run(deadline_first):
    edf = create("placement", PolicySpec(name="my_pkg.placement:DeadlineFirst"), np.random.default_rng(0))
    jobs = (job(1, dataset=None, gpus=8), job(2, dataset=None, gpus=8, deadline_s=2 * H),
            job(3, dataset=None, gpus=8, deadline_s=H))
    v = view(*jobs, free=(0, 8, 8))
    assert place_checked(edf, v) == [(3, ((1, 8),)), (2, ((2, 8),))]  # earliest deadline first; job 1 waits
    small = PlacementView.build(pools=[{"free_gpus": 0}, {}],
                                queue=[{"id": 1, "gpus": 8}, {"id": 2, "gpus": 8, "deadline_s": 3600.0}])
    assert place_checked(edf, small) == [(2, ((1, 8),))]  # as the page says

    pue = create("placement", PolicySpec(name="my_pkg.placement:LowestPue", params={"max_wait_h": 2}),
                 np.random.default_rng(0))
    assert place_checked(pue, view(job(1), job(2, gpus=20), job(3))) == [(1, ((2, 4),)), (3, ((2, 4),))]


def place_checked(p, v):
    answer = p.place(v)
    validate_assignments(v, answer, "example")
    return answer
