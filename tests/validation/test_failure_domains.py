"""Failure domains against the closed form for k-out-of-n availability, and by hand.

``n`` racks of ``m`` replicas each fail as independent alternating renewal processes (up
for an exponential time of mean MTTF, down for an exponential repair of mean MTTR); a rack's
event takes all its replicas down together. Starting with every rack up, rack i is up at
time t with probability ``p(t) = A + (1 - A) e^{-(l + u) t}``, ``A = MTTF / (MTTF + MTTR)``,
so the number of racks up is Binomial(n, p(t)) and

* the time-average probability that at least ``k`` racks are up (a service needing k of n)
  is ``1/T integral of sum_{i >= k} C(n, i) p(t)^i (1 - p(t))^(n - i) dt`` (-> the textbook
  k-out-of-n availability as T grows);
* a demand of ``k`` racks' GPUs leaves ``m g E[(k - up)+]`` GPUs unmet (failures detected at
  once, no warm-up).

Both are measured from the engine's records (the pool's up GPUs; ``unmet_gpu_hours``) and
compared over seeds with a 99 % Student-t interval. Run ``python -m
tests.validation.test_failure_domains`` for the table VALIDATION.md quotes.
"""
import math

import numpy as np
import pytest

from sim.engine import simulate
from sim.metrics import CapacityObserver
from sim.records import CapacityChanged, FailureRecord
from sim.scenario import parse_scenario
from sim.streams import Streams
from sim.world import build_world
from tests.traced import traced_text

RACKS = """\
name: k-of-n
seed: {seed}
duration: {days}d
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: {replicas}, gpus_per_replica: 8}}]}}
scheduler:
  interval: 30d
  load_model: {{kind: constant, L: {load}}}
  allocation: {{weights: {{a/p: 1}}, L_max: 100}}
failures:
  domains:
{domains}
  detection: 0s
  warmup: 0s
"""


def racks_text(seed: int, days: float, n: int, m: int, k: int, mttf_h: float, mttr_h: float) -> str:
    domains = "\n".join(f"    - {{name: rack{i}, members: {{a/p: \"{i * m}-{i * m + m - 1}\"}}, mttf: {mttf_h}h, "
                        f"repair: {{mean: {mttr_h}h}}}}" for i in range(n))
    return RACKS.format(seed=seed, days=days, replicas=n * m, load=100.0 * k / n, domains=domains)


def binomial_tail(n: int, k: int, p: np.ndarray) -> np.ndarray:
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def theory(n: int, k: int, m: int, mttf_h: float, mttr_h: float, days: float) -> tuple[float, float, float]:
    """(steady-state k-of-n availability, its time average from all up, unmet GPU-hours)."""
    lam, mu = 1 / mttf_h, 1 / mttr_h
    a = mttf_h / (mttf_h + mttr_h)
    ts = np.linspace(0.0, days * 24.0, 20001)
    p = a + (1 - a) * np.exp(-(lam + mu) * ts)
    tail = binomial_tail(n, k, p)
    missing = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) * max(k - i, 0) for i in range(n + 1))
    hours = days * 24.0
    return (float(binomial_tail(n, k, np.array(a))), float(np.trapezoid(tail, ts) / hours),
            float(np.trapezoid(missing, ts) * m * 8))


class UpFraction:
    """Time during which the pool had at least ``need`` GPUs up (from the capacity records)."""

    subscribes = (CapacityChanged,)

    def __init__(self, need: int):
        self.need, self.since, self.ok, self.time = need, 0.0, True, 0.0

    def __call__(self, record: CapacityChanged) -> None:
        if record.up_gpus is None:
            return
        if self.ok:
            self.time += record.t_s - self.since
        self.since, self.ok = record.t_s, record.up_gpus >= self.need

    def fraction(self, end_s: float) -> float:
        return (self.time + (end_s - self.since if self.ok else 0.0)) / end_s


def measure(seed: int, days: float, n: int, m: int, k: int, mttf_h: float, mttr_h: float) -> tuple[float, float]:
    scenario = parse_scenario(racks_text(seed, days, n, m, k, mttf_h, mttr_h)).scenario
    up, capacity = UpFraction(k * m * 8), CapacityObserver({"a": n * m * 8})
    result = simulate(scenario, build_world(scenario), [up, capacity], Streams(scenario.seed))
    return up.fraction(result.end_s), capacity.summary(0.0, result.end_s)["allocation"]["unmet_gpu_hours"]


CASES = [(4, 2, 3, 100.0, 50.0), (4, 3, 3, 240.0, 24.0), (6, 4, 2, 120.0, 36.0)]  # n, k, m, MTTF h, MTTR h


def check(case, seeds, days):
    from tests.validation.test_mmc import T99

    n, k, m, mttf_h, mttr_h = case
    runs = np.array([measure(seed, days, n, m, k, mttf_h, mttr_h) for seed in seeds])
    _, avail, unmet = theory(n, k, m, mttf_h, mttr_h, days)
    half = T99[len(seeds) - 1] * runs.std(axis=0, ddof=1) / math.sqrt(len(seeds))
    return runs.mean(axis=0), half, (avail, unmet)


def test_two_of_four_racks_match_the_binomial_and_not_independent_replicas():
    # 4 racks of 3 replicas, MTTF 100 h, MTTR 50 h (A = 2/3); a service needs 2 racks' worth:
    # P(at least 2 of 4 racks up) = 0.889, where 12 replicas failing independently would
    # have 6 of 12 up with probability 0.934. Six seeds of 2,000 days.
    case = CASES[0]
    mean, half, (avail, unmet) = check(case, range(1, 7), 2000)
    assert abs(mean[0] - avail) <= half[0], (mean[0], avail, half[0])
    assert abs(mean[1] - unmet) <= half[1], (mean[1], unmet, half[1])
    n, k, m, mttf_h, mttr_h = case
    independent = float(binomial_tail(n * m, k * m, np.array(mttf_h / (mttf_h + mttr_h))))
    assert abs(mean[0] - independent) > half[0]  # rejected at 99 %


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_k_out_of_n_availability_and_unmet_demand_match_the_binomial(case):
    mean, half, (avail, unmet) = check(case, range(1, 9), 8000)
    assert abs(mean[0] - avail) <= half[0], (mean[0], avail, half[0])
    assert abs(mean[1] - unmet) <= half[1], (mean[1], unmet, half[1])


OVERLAP = """\
name: overlap
duration: 10h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 8, gpus_per_replica: 8}]}
  - {name: b, lat: 0, lon: 10, pools: [{name: q, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
failures:
  domains:
    - {name: pdu, kind: power, members: {a/p: all}, at: [2h], repair: {kind: constant, mean: 1h}}
    - {name: rack0, kind: rack, members: {a/p: 0-3}, at: [150m], repair: {kind: constant, mean: 1h}}
    - {name: push, kind: software, members: {a/p: 4-5, b/q: all}, at: [6h], repair: {kind: constant, mean: 30m}}
"""


def test_overlapping_domains_by_hand():
    # The power domain takes a's 8 replicas down from 2 h to 3 h; rack0 (replicas 0-3)
    # fails at 2.5 h for 1 h, inside it: replicas 0-3 are down 2-3.5 h, 4-7 down 2-3 h.
    # The push takes a's replicas 4-5 and all of b down from 6 h to 6.5 h.
    # a: 4 x 1.5 + 4 x 1 + 2 x 0.5 = 11 replica-hours down of 80; b: 4 x 0.5 of 40.
    run = traced_text(OVERLAP)
    assert run.availability() == {"a": pytest.approx(1 - 11 / 80, abs=1e-12), "b": pytest.approx(1 - 2 / 40)}
    assert run.gpu_hours_down() == pytest.approx((11 + 2) * 8)
    rows = [(r.kind, r.domain, r.region, r.start_s, r.end_s) for r in run.of(FailureRecord)]
    assert rows == [("power", "pdu", "a", 7200.0, 10800.0)] * 8 + [("rack", "rack0", "a", 9000.0, 12600.0)] * 4 \
        + [("software", "push", "a", 21600.0, 23400.0)] * 2 + [("software", "push", "b", 21600.0, 23400.0)] * 4
    assert [r.hit for r in run.of(FailureRecord)][8:12] == ["down"] * 4  # rack0's replicas were already down
    summary = run.observers.failures.summary(run.end_s, {"a": 64, "b": 32})
    assert summary["domain_failures"] == 3 and summary["node_failures"] == 0
    assert summary["failures_hit"]["idle"] == 14


RACK_AND_NODE = """\
name: rack-and-node
duration: 10h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]}
failures:
  nodes: [{mttf: 1000d}]
  domains: [{name: rack, members: {a/p: 0-1}, at: [RACK_AT], repair: {kind: constant, mean: RACK_FOR}}]
"""


@pytest.mark.parametrize("node,rack,down_h", [
    # Replica 0 fails alone 1-4 h; the rack (0 and 1) fails 2-3 h: only replica 1 goes down
    # with it (0 is down already), so 3 + 1 replica-hours down (5 when the rack took another).
    ((1.0, 3.0), ("2h", "1h"), 4.0),
    # The rack is down 1-4 h; replica 0 fails 2-3 h inside it: nothing more goes down, and
    # it is back with its rack at 4 h: 2 x 3 replica-hours (7 when the failure took another).
    ((2.0, 1.0), ("1h", "3h"), 6.0),
    # Replica 0 fails 2-5 h, past the rack's 1-4 h: 0 is back at 5 h, 1 at 4 h: 4 + 3 (9).
    ((2.0, 3.0), ("1h", "3h"), 7.0),
])
def test_a_replica_down_on_its_own_is_not_taken_twice_by_its_rack(monkeypatch, node, rack, down_h):
    import sim.engine.failures as engine

    def one_failure(rng, replicas, horizon, *args):
        start, hours = node
        return np.array([start * 3600]), np.array([(start + hours) * 3600]), np.array([0])
    monkeypatch.setattr(engine, "replica_failure_ids", one_failure)
    run = traced_text(RACK_AND_NODE.replace("RACK_AT", rack[0]).replace("RACK_FOR", rack[1]))
    assert run.availability() == {"a": pytest.approx(1 - down_h / 40, abs=1e-12)}
    assert run.gpu_hours_down() == pytest.approx(down_h * 8)


def test_racks_and_independent_replica_failures_multiply_availabilities():
    # Six replicas in two racks (MTTF 100 h, MTTR 20 h), each replica failing on its own too
    # (MTTF 50 h, MTTR 10 h): a replica is up when both it and its rack are, with probability
    # 5/6 x 5/6 = 0.694; counting the two kinds of failure apart gave 0.681 (six seeds of
    # 2,000 days, 99 % interval 0.008).
    text = """\
name: mix
duration: 2000d
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 6, gpus_per_replica: 8}]}
failures:
  nodes: [{mttf: 50h, repair: {mean: 10h}}]
  domains:
    - {name: r0, members: {a/p: 0-2}, mttf: 100h, repair: {mean: 20h}}
    - {name: r1, members: {a/p: 3-5}, mttf: 100h, repair: {mean: 20h}}
  detection: 0s
"""
    from tests.validation.test_mmc import T99

    seeds = range(1, 7)
    ups = np.array([traced_text(text, [f"seed={seed}"]).availability()["a"] for seed in seeds])
    half = T99[len(seeds) - 1] * ups.std(ddof=1) / math.sqrt(len(seeds))
    assert abs(ups.mean() - 5 / 6 * 5 / 6) <= half, (ups.mean(), half)


def main() -> None:
    print("| n racks | k needed | m replicas | MTTF (h) | MTTR (h) | A(k of n) steady | expected (8,000 d from all up) "
          "| measured (8 seeds, 99 % CI) | unmet GPU-h expected | measured |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case in CASES:
        n, k, m, mttf_h, mttr_h = case
        mean, half, (avail, unmet) = check(case, range(1, 9), 8000)
        steady, _, _ = theory(n, k, m, mttf_h, mttr_h, 8000)
        print(f"| {n} | {k} | {m} | {mttf_h:g} | {mttr_h:g} | {steady:.5f} | {avail:.5f} | {mean[0]:.5f} +- "
              f"{half[0]:.5f} | {unmet:.0f} | {mean[1]:.0f} +- {half[1]:.0f} |")


if __name__ == "__main__":
    main()
