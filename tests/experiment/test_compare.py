"""Comparisons: common random numbers across policies, paired intervals, outputs, errors."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from sim.experiment import paired_interval, t_interval
from sim.runner import execute
from sim.scenario import load_scenario
from tests.experiment import DEFAULT, DEFAULT_TINY, cli_sets


def requests_of(policy, seed):
    loaded = load_scenario(DEFAULT, [*DEFAULT_TINY, f"scheduler.routing={policy}", f"seed={seed}"])
    return execute(loaded).extra["requests"]


def test_policies_at_one_seed_see_identical_arrivals():
    nearest, random_two, least = (requests_of(p, 42) for p in ("nearest", "power_of_two", "least_loaded"))
    for other in (random_two, least):
        assert np.array_equal(other.t_s, nearest.t_s)
        assert np.array_equal(other.origin, nearest.origin)
        assert np.array_equal(other.workload, nearest.workload)
        assert not np.array_equal(other.pool, nearest.pool)  # the policies did decide differently
    assert len(nearest.t_s) > 1000
    other_seed = requests_of("nearest", 43)
    assert not np.array_equal(other_seed.t_s[:100], nearest.t_s[:100])


def test_t_interval_matches_the_textbook_formula():
    values = [3.0, 5.0, 4.0, 8.0]
    got = t_interval(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert (got.n, got.mean) == (4, 5.0)
    assert got.low == pytest.approx(5.0 - half) and got.high == pytest.approx(5.0 + half)
    assert t_interval([2.0]).low is None and t_interval([]).mean is None
    diff = paired_interval({1: 10.0, 2: 12.0, 3: 11.0}, {1: 9.0, 2: 10.0, 3: 10.0, 4: 99.0})
    assert (diff.n, diff.mean) == (3, pytest.approx(4 / 3))  # seed 4 has no partner


def test_compare_writes_runs_tables_and_charts(tmp_path, cli):
    out = tmp_path / "cmp"
    result = cli("compare", DEFAULT, *cli_sets(DEFAULT_TINY), "--policy", "nearest", "--policy", "least_loaded",
                 "--seeds", "3", "--out", str(out), "--workers", "2")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(out)
    assert result.out.splitlines()[0].split() == ["metric", "policy", "mean", "diff", "vs", "nearest", "95%", "CI",
                                                  "of", "diff", "n"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "charts", "least_loaded-s42", "least_loaded-s43", "least_loaded-s44",
        "nearest-s42", "nearest-s43", "nearest-s44"]
    assert sorted(p.name for p in (out / "charts").iterdir()) == ["latency_cdf.png", "metrics.png", "utilization.png"]
    report = json.loads((out / "comparison.json").read_text())
    assert report["baseline"] == "nearest" and report["seeds"] == [42, 43, 44]
    p99 = report["results"]["inference.latency_ms.p99"]
    base, other = p99["nearest"]["values"], p99["least_loaded"]["values"]
    diffs = [other[s] - base[s] for s in ("42", "43", "44")]
    half = stats.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / math.sqrt(3)
    assert p99["least_loaded"]["diff"]["mean"] == pytest.approx(np.mean(diffs))
    assert p99["least_loaded"]["diff"]["ci"] == pytest.approx([np.mean(diffs) - half, np.mean(diffs) + half])
    assert "diff" not in p99["nearest"]
    lines = (out / "comparison.csv").read_text().splitlines()
    assert lines[0] == "metric,policy,n,mean,ci_low,ci_high,diff_mean,diff_ci_low,diff_ci_high"
    assert any(line.startswith("inference.latency_ms.p99,least_loaded,3,") for line in lines)
    assert "training.goodput" not in report["metrics"]  # absent metrics are skipped


def test_policy_params_reach_the_runs(tmp_path, cli):
    out = tmp_path / "cmp"
    result = cli("compare", DEFAULT, *cli_sets(DEFAULT_TINY), "--policy", "nearest", "--policy", "power_of_two",
                 "--policy-param", "power_of_two.d=3", "--seeds", "1", "--out", str(out),
                 "--metric", "inference.latency_ms.mean")
    assert result.code == 0, result.err
    resolved = (out / "power_of_two-s42" / "resolved.yaml").read_text()
    assert "name: power_of_two" in resolved and "d: 3" in resolved
    report = json.loads((out / "comparison.json").read_text())
    assert report["metrics"] == ["inference.latency_ms.mean"]
    assert report["results"]["inference.latency_ms.mean"]["power_of_two"]["diff"]["ci"] == [None, None]


@pytest.mark.parametrize("args, message", [
    (["--policy", "nearest", "--policy", "nope"],
     "--policy: policy 'nope': unknown routing policy 'nope' (valid: cache_aware, latency_aware, least_loaded, "
     "nearest, power_of_two, round_robin, ttft_aware, weighted)"),
    (["--policy", "no_such_pkg.mod:X"],
     "--policy: policy 'no_such_pkg.mod:X': cannot import module 'no_such_pkg.mod' "
     "(ModuleNotFoundError: No module named 'no_such_pkg')"),
    (["--policy", "power_of_two", "--policy-param", "power_of_two.d=0"],
     "--policy: policy 'power_of_two': invalid params: params.d: input should be greater than or equal to 1 (got 0)"),
    (["--policy", "nearest", "--policy-param", "weighted.d=2"],
     "--policy-param: 'weighted.d=2' names no --policy (policies: nearest)"),
    (["--policy", "nearest", "--policy-param", "nearest.x=&a [*a]"],
     "--policy-param: 'nearest.x=&a [*a]': alias *a is recursive: it refers to a value that contains it"),
    (["--policy", "nearest", "--policy", "nearest"], "--policy: nearest is given twice"),
    (["--policy", "nearest", "--seeds", "0"], "--seeds: must be >= 1 (got 0)"),
])
def test_bad_compare_input_exits_2(tmp_path, cli, args, message):
    result = cli("compare", DEFAULT, *args, "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, message)
    assert not any(tmp_path.iterdir())
