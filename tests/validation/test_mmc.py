"""The inference engine against queueing theory (Erlang C, Little's law) and against an
independent FCFS multi-server recursion."""
import csv
import heapq
import json
import math

import numpy as np
import pytest

from sim.engine import simulate
from sim.records import RequestLog, RequestStatus
from sim.scenario import load_scenario, parse_scenario
from sim.streams import Streams
from sim.workload import generate_requests
from sim.world import build_world
from tests.conftest import SCENARIOS, run_cli

MMC = SCENARIOS / "validation" / "mmc.yaml"
# Two-sided 99 % Student t quantiles by degrees of freedom.
T99 = {4: 4.604, 5: 4.032, 7: 3.499, 9: 3.250}  # df = seeds - 1


def request_log(scenario, world) -> RequestLog:
    """The request log the engine publishes at the end of the run."""
    logs: list[RequestLog] = []
    logs_of = logs.append
    simulate(scenario, world, [_Only(RequestLog, logs_of)], Streams(scenario.seed))
    (log,) = logs
    return log


class _Only:
    def __init__(self, kind, callback):
        self.subscribes, self._callback = (kind,), callback

    def __call__(self, record):
        self._callback(record)


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda / mu < c."""
    term = sum(offered ** k / math.factorial(k) for k in range(c))
    top = offered ** c / math.factorial(c) * c / (c - offered)
    return top / (term + top)


def run_case(c, rate, mean_s, seed, tmp_path, duration="4h"):
    out = tmp_path / f"c{c}-r{rate}-s{seed}"
    result = run_cli("run", str(MMC), "--out", str(out), "--seed", str(seed), "--set", f"duration={duration}",
                     "--set", f"regions.solo.pools.gpu.replicas={c}",
                     "--set", f"inference.req.arrival.rate_per_s={rate}",
                     "--set", f"inference.req.service.mean_s={mean_s}")
    assert result.code == 0, result.err
    return out


def waits_of(out):
    summary = json.loads((out / "summary.json").read_text())
    return summary


CASES = [(1, 0.7, 1.0), (8, 7.2, 1.0), (16, 29.44, 0.5)]  # utilisation 0.7, 0.9, 0.92


def measure(c, rate, mean_s, seeds=range(1, 7)):
    """Per-seed mean wait and fraction of requests that waited, after warm-up."""
    mean_waits, p_waits = [], []
    for seed in seeds:
        scenario = load_scenario(MMC, [f"regions.solo.pools.gpu.replicas={c}", f"seed={seed}",
                                       f"inference.req.arrival.rate_per_s={rate}",
                                       f"inference.req.service.mean_s={mean_s}"]).scenario
        world = build_world(scenario)
        log = request_log(scenario, world)
        measured = (log.status == RequestStatus.COMPLETED) & (log.t_s >= scenario.warmup)
        waits = log.wait_s[measured]
        mean_waits.append(waits.mean())
        p_waits.append((waits > 0).mean())
    return np.asarray(mean_waits), np.asarray(p_waits)


def theory(c, rate, mean_s):
    p_wait = erlang_c(c, rate * mean_s)
    return p_wait / (c / mean_s - rate), p_wait


def interval(values):
    half = T99[len(values) - 1] * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean(), half


@pytest.mark.parametrize("c, rate, mean_s", CASES)
def test_mean_wait_and_wait_probability_match_erlang_c(c, rate, mean_s):
    mean_waits, p_waits = measure(c, rate, mean_s)
    offered = rate * mean_s
    p_theory = erlang_c(c, offered)
    wq_theory = p_theory / (c / mean_s - rate)
    for values, expected in ((mean_waits, wq_theory), (p_waits, p_theory)):
        mean, half = interval(values)
        assert abs(mean - expected) <= half, (mean, expected, half)


def test_littles_law_on_the_recorded_time_series(tmp_path):
    out = run_case(8, 7.2, 1.0, 3, tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    rows = [r for r in csv.DictReader(open(out / "timeseries.csv")) if float(r["t_start_s"]) >= 1200]
    in_system = np.mean([float(r["queue_len"]) + float(r["busy_slots"]) for r in rows])
    arrivals = sum(float(r["arrivals"]) for r in rows)
    span = float(rows[-1]["t_end_s"]) - float(rows[0]["t_start_s"])
    time_in_system_s = summary["inference"]["latency_ms"]["mean"] / 1000.0  # no network delay
    assert in_system == pytest.approx(arrivals / span * time_in_system_s, rel=0.02)


def test_waits_equal_an_independent_fcfs_recursion_to_the_last_bit():
    scenario = load_scenario(MMC, ["duration=1h", "seed=5"]).scenario
    world = build_world(scenario)
    batch = generate_requests(scenario, world, Streams(scenario.seed), MMC.parent)
    log = request_log(scenario, world)
    free = [0.0] * 8  # Kiefer-Wolfowitz: each arrival takes the server that frees first
    expected = []
    for a, s in zip(batch.t_s.tolist(), batch.service_s.tolist(), strict=True):
        start = max(a, heapq.heappop(free))
        expected.append(start - a)
        heapq.heappush(free, start + s)
    expected = np.array(expected)
    done = log.status == RequestStatus.COMPLETED
    assert done.sum() > 20000
    assert np.array_equal(log.wait_s[done], expected[done])
    assert np.array_equal(log.service_s, batch.service_s)


TWO_REGIONS = """\
name: exact
seed: 4
duration: 1h
regions:
  - name: here
    lat: 0
    lon: 0
    intra_rtt_ms: 2
    pools: [{name: p, gpu: H100, replicas: 50, slots_per_replica: 4}]
  - name: users
    lat: 10
    lon: 10
links:
  - {a: here, b: users, rtt_ms: 40}
inference:
  - name: chat
    origin: {here: 1, users: 3}
    arrival: {process: poisson, rate_per_s: 20}
    service: {dist: constant, value_s: 0.25}
"""


def test_each_latency_is_rtt_plus_service_when_nothing_queues():
    scenario = parse_scenario(TWO_REGIONS).scenario
    log = request_log(scenario, build_world(scenario))
    done = log.status == RequestStatus.COMPLETED
    assert done.sum() > 60000 and (log.wait_s[done] == 0).all()
    expected = np.where(log.origin[done] == 0, 2.0, 40.0) + 250.0
    assert np.array_equal(log.latency_ms[done], expected)


if __name__ == "__main__":  # python -m tests.validation.test_mmc prints the VALIDATION.md table
    print("| c | lambda (1/s) | mean service (s) | rho | Wq Erlang C (s) | Wq measured (99 % CI) "
          "| P(wait) Erlang C | P(wait) measured (99 % CI) |")
    print("|---|---|---|---|---|---|---|---|")
    for c, rate, mean_s in CASES + [(4, 3.8, 1.0)]:
        wq, pw = theory(c, rate, mean_s)
        (mw, hw), (mp, hp) = (interval(v) for v in measure(c, rate, mean_s))
        print(f"| {c} | {rate} | {mean_s} | {rate * mean_s / c:.2f} | {wq:.4f} | {mw:.4f} +- {hw:.4f} | "
              f"{pw:.4f} | {mp:.4f} +- {hp:.4f} |")


@pytest.mark.slow
@pytest.mark.parametrize("c, rate, mean_s", [(4, 3.8, 1.0), (32, 30.4, 1.0), (2, 1.5, 2.0 / 3.0)])
def test_erlang_c_heavy_traffic_and_more_seeds(c, rate, mean_s):
    mean_waits, p_waits = measure(c, rate, mean_s, seeds=range(11, 21))
    wq_theory, p_theory = theory(c, rate, mean_s)
    for values, expected in ((mean_waits, wq_theory), (p_waits, p_theory)):
        mean, half = interval(values)
        assert abs(mean - expected) <= half, (mean, expected, half)
