"""Failures against theory: availability MTBF / (MTBF + MTTR), failure counts against the
renewal interval, Young's checkpoint interval, and the Llama 3 run against the paper."""
import csv
import json
import math

import numpy as np
import pytest

from sim.engine import simulate
from sim.models.reliability import LLAMA3_FAILURES_PER_GPU_DAY, default_mtbf_s, replica_failures, young_interval
from sim.scenario import load_scenario, parse_scenario
from sim.streams import Streams
from sim.world import build_world
from tests.conftest import SCENARIOS, run_cli
from tests.traced import traced

POOL = """\
name: availability
seed: {seed}
duration: {days}d
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: {n}, gpus_per_replica: 8}}]}}
failures:
  nodes: [{{mttf: {mtbf_h}h, repair: {{mean: {mttr_h}h}}}}]
"""


def run_pool(seed, days, n, mtbf_h, mttr_h):
    text = POOL.format(seed=seed, days=days, n=n, mtbf_h=mtbf_h, mttr_h=mttr_h)
    scenario = parse_scenario(text).scenario
    return traced(scenario)


def ctmc_expectations(m, r, T):
    """Two-state Markov chain, up at 0 (rates lam = 1/m, mu = 1/r), over [0, T], per replica:
    expected up fraction, its standard deviation, expected failures and their variance."""
    lam, mu = 1 / m, 1 / r
    a = mu / (lam + mu)
    k = lam + mu
    transient = (1 - a) * (1 - math.exp(-k * T)) / k  # extra up time from starting up
    up = (a * T + transient) / T
    sd_up = math.sqrt(2 * lam * mu / k ** 3 / T)  # asymptotic variance of the time average
    failures = lam * (a * T + transient)  # integral of lam * P(up at t)
    var_failures = T * (m * m + r * r) / (m + r) ** 3  # renewal CLT, cycle = up + down
    return up, sd_up, failures, var_failures


@pytest.mark.parametrize("mtbf_h,mttr_h", [(24, 4), (200, 3)])
def test_pool_availability_and_failure_count_match_the_ctmc(mtbf_h, mttr_h):
    n, days = 200, 120
    result = run_pool(11, days, n, mtbf_h, mttr_h)
    T = days * 24.0
    up, sd_up, failures, var_failures = ctmc_expectations(mtbf_h, mttr_h, T)
    measured = result.availability()["a"]
    # The steady-state figure MTBF / (MTBF + MTTR), plus the small start-up transient.
    assert up == pytest.approx(mtbf_h / (mtbf_h + mttr_h), abs=2e-3)
    assert abs(measured - up) < 4 * sd_up / math.sqrt(n)
    count = result.count_failures("node")
    assert abs(count - n * failures) < 4 * math.sqrt(n * var_failures)


@pytest.mark.parametrize("shape,repair", [(2.0, "lognormal"), (0.7, "constant")])
def test_availability_is_mtbf_over_mtbf_plus_mttr_for_other_distributions(shape, repair):
    """Renewal-reward: the long-run up fraction is MTBF / (MTBF + MTTR) whatever the laws;
    checked on independent replicas with a 99.99 % interval from their spread."""
    rng = np.random.default_rng(2024)
    n, T, m, r = 400, 2000.0, 10.0, 2.0
    fail, back = replica_failures(rng, n, T, m, shape, repair, r, 0.5)
    assert np.all(np.diff(fail) >= 0) and np.all(back > fail)
    # Per-replica up fractions need replica ids: rebuild them replica by replica instead.
    ups = []
    for seed in range(n):
        f, b = replica_failures(np.random.default_rng(seed), 1, T, m, shape, repair, r, 0.5)
        down = np.minimum(b, T) - f
        ups.append(1 - down.sum() / T)
    ups = np.array(ups)
    centre, half = ups.mean(), 3.9 * ups.std(ddof=1) / math.sqrt(n)
    # The start-up transient (all new) is of order (MTTR / (MTBF + MTTR)) * (MTBF / T).
    assert abs(centre - m / (m + r)) < half + m / T


def test_default_rate_is_the_llama3_rate():
    assert LLAMA3_FAILURES_PER_GPU_DAY == pytest.approx(0.000474, rel=1e-3)
    assert default_mtbf_s(8) / 86400 == pytest.approx(263.9, abs=0.1)  # the paper's ~264 days


YOUNG = """\
name: young
seed: 3
duration: 400h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 360, gpus_per_replica: 1}]}
training:
  - name: t
    jobs: {source: poisson, rate_per_h: 3600000, gpus: 1, work: {kind: gpu_hours, mean: 100}}
    max_jobs: 300
    checkpoint: {interval: 1h, write: 6m, restart: 0s}
failures:
  nodes: [{mttf: 10h, repair: {kind: constant, mean: 1m}}]
  detection: 0s
"""


def daly_completion_h(tau: float, d: float = 0.1, mttf: float = 10.0, work: float = 100.0,
                      restart: float = 0.0) -> float:
    """Daly's exact expected completion time (Daly 2006, "A higher order estimate of the
    optimum checkpoint interval for restart dumps", FGCS 22) for exponential failures of
    mean ``mttf``: a segment of ``tau`` compute and a ``d`` write, redone from its start
    after a failure (during the compute or the write) and a ``restart``, takes on average
    ``M e^{R/M} (e^{(tau + d)/M} - 1)``. The job's ``work`` is ``ceil(work / tau)``
    segments, the last one shorter and not followed by a write (as the engine does)."""
    n = math.ceil(work / tau - 1e-12)
    last = work - (n - 1) * tau
    scale = mttf * math.exp(restart / mttf)
    return (n - 1) * scale * (math.exp((tau + d) / mttf) - 1) + scale * (math.exp(last / mttf) - 1)


YOUNG_GRID = (0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.45, 1.75, 2.2)


def young_sweep() -> list[tuple[float, float, float]]:
    """(interval h, mean completion h, its standard error) over the grid around Young's."""
    tau_young = young_interval(0.1, 10.0)
    points = []
    for f in YOUNG_GRID:
        tau = tau_young * f
        scenario = parse_scenario(YOUNG, overrides=[f"training.0.checkpoint.interval={tau * 3600:.3f}"]).scenario
        jobs = traced(scenario).jobs
        assert all(j.status == "completed" for j in jobs)
        hours = np.array([j.end_s - j.arrival_s for j in jobs]) / 3600
        points.append((tau, float(hours.mean()), float(hours.std(ddof=1) / math.sqrt(len(hours)))))
    return points


@pytest.mark.slow
def test_checkpoint_interval_curve_matches_daly_and_its_minimum_young():
    """300 one-GPU jobs of 100 h compute; the GPU a job holds fails at rate 1/M (M = 10 h:
    each of the pool's up GPUs fails at 1/M and a failure strikes one of them uniformly) and
    a checkpoint costs d = 6 min, restarts are immediate. The whole curve of mean completion
    time against the interval lies within 3 standard errors of Daly's exact expectation at
    every point; its minimum lies within 25 % of Young's sqrt(2 d M) = 1.41 h. The failure
    timelines are the same at every interval (their own random streams)."""
    tau_young = young_interval(0.1, 10.0)
    points = young_sweep()
    for tau, mean, se in points:
        assert abs(mean - daly_completion_h(tau)) <= 3 * se, (tau, mean, daly_completion_h(tau), se)
    means = [mean for _, mean, _ in points]
    best = points[int(np.argmin(means))][0]
    assert abs(best / tau_young - 1) <= 0.25, points
    # Flat near the optimum, steep at the ends.
    assert means[0] > min(means) + 1 and means[-1] > min(means) + 1


def test_daly_by_hand():
    # tau = 1 h, d = 0.1 h, M = 10 h, 100 h of work: 99 segments of 10 (e^0.11 - 1) h and a
    # last hour without a write, 10 (e^0.1 - 1) h.
    assert daly_completion_h(1.0) == pytest.approx(99 * 10 * (math.exp(0.11) - 1) + 10 * (math.exp(0.1) - 1))
    # Small failure rates: the first-order waste d / tau + tau / 2M (Young's terms).
    first_order = 100 * (1 + 0.1 / 1.0 + 1.0 / (2 * 1000.0))
    assert daly_completion_h(1.0, mttf=1000.0) == pytest.approx(first_order, rel=2e-3)


def test_llama3_run_matches_the_paper(tmp_path):
    """419 unexpected interruptions in 54 days on 2,048 nodes, effective training time > 90 %."""
    out = tmp_path / "run"
    assert run_cli("run", str(SCENARIOS / "llama3_reliability.yaml"), "--out", str(out)).code == 0
    summary = json.load(open(out / "summary.json"))
    (job,) = list(csv.DictReader(open(out / "jobs.csv")))
    interruptions = int(job["interruptions"])
    # Job nodes x days x the paper's per-node-day rate = 419 expected; Poisson 99 % interval.
    expected = 2048 * 54 * 8 * LLAMA3_FAILURES_PER_GPU_DAY
    assert expected == pytest.approx(419)
    assert abs(interruptions - expected) < 2.58 * math.sqrt(expected)
    end = float(job["end_s"]) if job["end_s"] else summary["sim_time_s"]
    effective = float(job["useful_gpu_h"]) / int(job["gpus"]) / ((end - float(job["start_s"])) / 3600)
    assert 0.9 < effective < 1.0
    assert summary["failures"]["failures_hit"]["training"] == interruptions


def test_llama3_scenario_is_what_the_paper_describes():
    s = load_scenario(SCENARIOS / "llama3_reliability.yaml").scenario
    (pool,) = s.regions[0].pools
    assert pool.gpu == "H100" and pool.gpus_per_replica == 8 and s.duration == 54 * 86400
    assert s.training[0].jobs.gpus == 16384


SPARES = """\
name: n-plus-k
seed: {seed}
duration: {days}d
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - {{name: main, gpu: H100, replicas: 8, gpus_per_replica: 8}}
      - {{name: spare, gpu: H100, replicas: {k}, gpus_per_replica: 8}}
scheduler:
  interval: 1h
  load_model: {{kind: constant, L: 100}}
  allocation: {{weights: {{a/main: 1}}, L_max: 100}}
failures:
  nodes: [{{mttf: 5d, repair: {{mean: 12h}}}}]
  detection: 0s
  warmup: 0s
"""


def unmet_theory(k: int, days: float, n_main: int = 8, gpus: int = 8, m_h: float = 120.0, r_h: float = 12.0) -> float:
    """Expected unmet GPU-hours with k spares: each of the n = 8 + k replicas is up or down
    independently (exponential up and repair times, repairs in parallel), so the replicas
    down at t are Binomial(n, p(t)) with p(t) = q (1 - exp(-(l + m) t)), q = MTTR / (MTBF +
    MTTR); the demand is the 8 main replicas, so `(down - k)+` replicas are missing."""
    from scipy import stats

    n, lam, mu = n_main + k, 1 / m_h, 1 / r_h
    q = lam / (lam + mu)
    ts = np.linspace(0.0, days * 24.0, 4001)
    p = q * (1 - np.exp(-(lam + mu) * ts))
    down = np.arange(n + 1)
    missing = [np.sum(stats.binom.pmf(down, n, pt) * np.maximum(down - k, 0)) for pt in p]
    return float(np.trapezoid(missing, ts) * gpus)


@pytest.mark.slow  # long statistics: the slow tier (CI runs it with -m slow)
@pytest.mark.parametrize("k", [1, 2])
def test_unmet_demand_with_k_spares_matches_the_binomial_repair_model(k):
    """N+k: 8 replicas carry the whole load, k spares stand by; failures are detected at
    once. The allocation's unmet GPU-hours over 600 days, 6 seeds, against the binomial
    model, 99 % Student-t interval."""
    from sim.metrics import CapacityObserver
    from tests.validation.test_mmc import T99

    days, values = 600, []
    for seed in range(1, 7):
        scenario = parse_scenario(SPARES.format(seed=seed, days=days, k=k)).scenario
        observer = CapacityObserver({"a": (8 + k) * 8})
        result = simulate(scenario, build_world(scenario), [observer], Streams(scenario.seed))
        values.append(observer.summary(0.0, result.end_s)["allocation"]["unmet_gpu_hours"])
    values = np.array(values)
    half = T99[len(values) - 1] * values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean() - unmet_theory(k, days)) <= half, (values.mean(), unmet_theory(k, days), half)


def main() -> None:
    """Print the figures VALIDATION.md quotes: python -m tests.validation.test_failures_theory"""
    print("| MTBF (h) | MTTR (h) | A = MTBF/(MTBF+MTTR) | A expected (with start-up) | A measured | 4 sd | "
          "failures expected | failures measured | 4 sd |")
    print("|---|---|---|---|---|---|---|---|---|")
    n, days = 200, 120
    for m, r in [(24, 4), (200, 3)]:
        result = run_pool(11, days, n, m, r)
        up, sd_up, f, var_f = ctmc_expectations(m, r, days * 24.0)
        print(f"| {m} | {r} | {m / (m + r):.5f} | {up:.5f} | {result.availability()['a']:.5f} | "
              f"{4 * sd_up / math.sqrt(n):.5f} | {n * f:.1f} | {result.count_failures('node')} | "
              f"{4 * math.sqrt(n * var_f):.1f} |")
    tau_young = young_interval(0.1, 10.0)
    print(f"\nYoung: sqrt(2 d M) = {tau_young:.3f} h")
    print("| interval (h) | interval / Young | Daly's exact expectation (h) | mean completion time (h) | "
          "standard error (h) |")
    print("|---|---|---|---|---|")
    for f, (tau, mean, se) in zip(YOUNG_GRID, young_sweep(), strict=True):
        print(f"| {tau:.3f} | {f:.2f} | {daly_completion_h(tau):.3f} | {mean:.3f} | {se:.3f} |")
    from sim.metrics import CapacityObserver
    from tests.validation.test_mmc import T99

    print("\n| spares k | unmet GPU-h theory | measured (6 seeds, 99 % CI) |")
    print("|---|---|---|")
    for k in (1, 2):
        values = []
        for seed in range(1, 7):
            scenario = parse_scenario(SPARES.format(seed=seed, days=600, k=k)).scenario
            observer = CapacityObserver({"a": (8 + k) * 8})
            result = simulate(scenario, build_world(scenario), [observer], Streams(scenario.seed))
            values.append(observer.summary(0.0, result.end_s)["allocation"]["unmet_gpu_hours"])
        values = np.array(values)
        half = T99[5] * values.std(ddof=1) / math.sqrt(6)
        print(f"| {k} | {unmet_theory(k, 600):.0f} | {values.mean():.0f} +- {half:.0f} |")


if __name__ == "__main__":
    main()
