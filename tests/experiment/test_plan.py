"""Capacity planning: the answer against Erlang C, resume, unmet ranges, input errors, the search."""
import json
import math

import pytest

from sim.experiment import tasks as tasks_module
from sim.experiment.capacity import Target, parse_target, point_meets, search
from tests.experiment import MMC, TINY, cli_sets
from tests.experiment.test_sweep import fingerprint, read_index

VARY = "regions.solo.pools.gpu.replicas"
# M/M/c with a = lambda / mu = 20/s x 0.25 s = 5 Erlangs; 30 minutes is 36,000 requests a
# run, enough that per-seed mean waits stay within about 10 % of theory (measured over 8 seeds).
RATE, MEAN_S = 20.0, 0.25
QUEUE = ["duration=30m", "warmup=2m", f"inference.req.arrival.rate_per_s={RATE}",
         f"inference.req.service.mean_s={MEAN_S}"]


def erlang_b(c, a):
    """Blocking probability of M/M/c/c by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def p_wait(c, a):
    """Erlang C from Erlang B: P(an arrival waits) in M/M/c, for c > a."""
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mean_wait_ms(c, a, mean_s):
    return 1000 * p_wait(c, a) * mean_s / (c - a)


def least_c(ok, a):
    return next(c for c in range(math.floor(a) + 1, 100) if ok(c))


OFFERED = RATE * MEAN_S
CASES = [
    # target, rule, and the condition on c that theory says it means
    ("inference.wait_ms.mean<=24", "all", lambda c: mean_wait_ms(c, OFFERED, MEAN_S) <= 24),
    # The median wait is 0 exactly when fewer than half of the requests wait: P(wait > 0) <= 0.5.
    ("inference.wait_ms.p50<=0", "mean", lambda c: p_wait(c, OFFERED) <= 0.5),
    # The 95th percentile wait is 0 exactly when P(wait > 0) <= 0.05.
    ("inference.wait_ms.p95<=0", "all", lambda c: p_wait(c, OFFERED) <= 0.05),
]


def test_the_theory_cases_are_well_separated():
    # Each threshold sits far from the theoretical values at c - 1 and c relative to the
    # seed-to-seed noise (measured over 8 seeds at 30 minutes: per-seed mean waits within
    # 10 % of theory; p95 wait 0 at c = 10 and over 25 ms at c = 9 for every seed).
    assert least_c(CASES[0][2], OFFERED) == 8
    assert mean_wait_ms(7, OFFERED, MEAN_S) > 1.6 * 24 and mean_wait_ms(8, OFFERED, MEAN_S) < 24 / 1.6
    assert least_c(CASES[1][2], OFFERED) == 7
    assert p_wait(6, OFFERED) > 0.5 + 0.08 and p_wait(7, OFFERED) < 0.5 - 0.15
    assert least_c(CASES[2][2], OFFERED) == 10
    assert p_wait(9, OFFERED) > 0.05 + 0.03 and p_wait(10, OFFERED) < 0.05 - 0.01


@pytest.mark.parametrize("target, rule, ok", CASES, ids=[c[0] for c in CASES])
def test_plan_finds_the_erlang_c_answer(tmp_path, cli, target, rule, ok):
    expected = least_c(ok, OFFERED)
    out = tmp_path / "plan"
    result = cli("plan", MMC, *cli_sets(QUEUE), "--target", target, "--vary", VARY, "--range", "1:16",
                 "--rule", rule, "--seeds", "3", "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == f"{VARY}={expected}"
    assert result.out.splitlines()[-2] == str(out)
    report = json.loads((out / "plan.json").read_text())
    assert (report["answer"], report["status"], report["monotone"]) == (expected, "met", True)
    evaluated = {p["value"]: p["meets"] for p in report["points"]}
    assert evaluated[expected] and not evaluated[expected - 1]  # the boundary itself was run


def test_plan_writes_table_chart_and_cost(tmp_path, cli):
    out = tmp_path / "plan"
    result = cli("plan", MMC, *cli_sets(QUEUE), "--target", "inference.wait_ms.mean <= 24", "--vary", VARY,
                 "--range", "6:10", "--seeds", "2", "--out", str(out))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"plan: inference.wait_ms.mean<=24 over {VARY} in 6:10, rule all over 2 seeds"
    assert lines[1].split() == ["value", "meets", "mean", "95%", "CI", "min", "max", "GPUs", "cost_usd"]
    assert [line.split()[:2] for line in lines[2:5]] == [["7", "no"], ["8", "yes"], ["10", "yes"]]
    assert lines[5].startswith(f"answer: {VARY}=8: inference.wait_ms.mean mean ")
    assert lines[6].startswith("cost at 8: 64 GPUs, 29.87 GPU-hours and ")  # 8 replicas x 8 GPUs x 28 min
    assert (out / "charts" / "plan.png").is_file()
    rows = (out / "plan.csv").read_text().splitlines()
    assert rows[0] == "value,meets,n,mean,ci_low,ci_high,min,max,gpus,gpu_hours,energy_kwh,cost_usd"
    assert [r.split(",")[:3] for r in rows[1:]] == [["7", "0", "2"], ["8", "1", "2"], ["10", "1", "2"]]
    report = json.loads((out / "plan.json").read_text())
    summary = json.loads((out / "v8-s1" / "summary.json").read_text())
    seeds = [json.loads((out / f"v8-s{s}" / "summary.json").read_text())["energy"]["cost_usd"] for s in (1, 2)]
    assert report["cost"]["cost_usd"] == pytest.approx(sum(seeds) / 2)
    assert report["cost"]["window_h"] == pytest.approx((summary["sim_time_s"] - summary["warmup_s"]) / 3600)


def test_running_the_same_plan_again_runs_nothing(tmp_path, cli):
    out = tmp_path / "plan"

    def args(target):
        return ("plan", MMC, *cli_sets(TINY), "--target", target, "--vary", VARY, "--range", "1:12",
                "--seeds", "2", "--out", str(out))

    first = cli(*args("inference.wait_ms.mean<=1000"))
    assert first.code == 0, first.err
    runs = sorted(d.name for d in out.glob("v*-s*"))
    before = {name: fingerprint(out / name) for name in runs}
    assert {r["status"] for r in read_index(out)} == {"ok"} and len(read_index(out)) == len(runs)
    second = cli(*args("inference.wait_ms.mean<=1000"))
    assert second.code == 0, second.err
    assert second.out.splitlines()[-1] == first.out.splitlines()[-1]
    assert sorted(d.name for d in out.glob("v*-s*")) == runs
    assert {name: fingerprint(out / name) for name in runs} == before
    assert second.out.startswith(f"plan: all {len(runs)} runs already done in {out}")  # tests/experiment/test_noop.py
    # Another target on the same quantity reuses the folder and every run it needs that exists.
    third = cli(*args("inference.wait_ms.mean<=200"))
    assert third.code == 0, third.err
    rows = read_index(out)  # the runs this plan used: old ones skipped, new ones ok
    assert {r["status"] for r in rows} == {"ok", "skipped"}
    assert all((r["status"] == "skipped") == (r["run"] in runs) for r in rows)


def test_a_target_not_met_at_the_top_of_the_range_exits_1_after_one_point(tmp_path, cli):
    out = tmp_path / "plan"
    result = cli("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.mean<=10", "--vary", VARY,
                 "--range", "2:5", "--seeds", "2", "--out", str(out))
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[-2:] == [f"not met within range 2:5: inference.wait_ms.mean<=10 fails at {VARY}=5", str(out)]
    assert sorted(d.name for d in out.glob("v*")) == ["v5-s1", "v5-s2"]
    report = json.loads((out / "plan.json").read_text())
    assert (report["status"], report["answer"], report["cost"]) == ("not met", None, None)


@pytest.mark.parametrize("options, message", [
    (["--target", "latency=5"],
     "--target: expects DOTTED.PATH OP NUMBER with OP one of <=, <, >=, > (got 'latency=5')"),
    (["--target", "a..b<=1"], "--target: malformed path 'a..b' (got 'a..b<=1')"),
    (["--target", "inference.wait_ms.mean<=fast"], "--target: the threshold must be a finite number (got 'fast')"),
    (["--target", "x<=1", "--vary", "regions.sun.pools.gpu.replicas"],
     f"--vary: regions.sun: no item named 'sun' (names: solo) (in {MMC})"),
    (["--target", "x<=1", "--vary", "regions.solo.pools.gpu.replics"],
     f"--vary: regions.solo.pools.gpu.replics: no such key (in {MMC})"),
    (["--target", "x<=1", "--vary", "regions.solo.pools.gpu.gpu"],
     "--vary: regions.solo.pools.gpu.gpu: must name an integer scenario value (got 'H100')"),
    (["--target", "x<=1", "--vary", "seed"],
     "--vary: seed is set by --seeds (seeds s, s+1, ... from the scenario's seed)"),
    (["--target", "x<=1", "--range", "9:4"], "--range: expects LO:HI, two integers with LO <= HI (got '9:4')"),
    (["--target", "x<=1", "--range", "0:4"], f"--range: {VARY}=0 is not a valid scenario: "
                                            f"--set {VARY}=0: regions[0].pools[0].replicas: must be >= 1 (got 0)"),
    (["--target", "x<=1", "--seeds", "0"], "--seeds: must be >= 1 (got 0)"),
    (["--target", "x<=1", "--workers", "0"], "--workers: must be >= 1 (got 0)"),
])
def test_bad_input_exits_2_with_the_message_before_anything_runs(tmp_path, cli, options, message):
    args = {"--vary": VARY, **dict(zip(options[::2], options[1::2], strict=True))}
    result = cli("plan", MMC, *cli_sets(TINY), *[x for kv in args.items() for x in kv], "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, message)
    assert "Traceback" not in result.err
    assert not any(tmp_path.rglob("v*-s*"))


def test_a_target_path_missing_from_the_summary_exits_2_with_suggestions(tmp_path, cli):
    result = cli("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.maen<=5", "--vary", VARY,
                 "--range", "1:4", "--seeds", "1", "--out", str(tmp_path / "plan"))
    assert result.code == 2
    assert result.err.strip() == (f"--target: inference.wait_ms.maen is not a number in summary.json of "
                                  f"{tmp_path / 'plan' / 'v4-s1'} (did you mean inference.wait_ms.mean, "
                                  "inference.wait_ms.p99, inference.wait_ms.p95?)")


def test_targets_read_every_operator():
    assert parse_target(" failures.availability >= 0.999 ") == Target("failures.availability", ">=", 0.999)
    assert [parse_target(f"x{op}2").holds(2.0) for op in ("<=", "<", ">=", ">")] == [True, False, True, False]
    assert str(parse_target("inference.latency_ms.p99<=8e2")) == "inference.latency_ms.p99<=800"
    assert not Target("x", "<=", 1.0).holds(None)


def test_rules_all_and_mean():
    target = Target("x", "<=", 10.0)
    assert point_meets(target, "mean", [4.0, 14.0]) and not point_meets(target, "all", [4.0, 14.0])
    assert not point_meets(target, "mean", [1.0, None])  # a seed without the number does not meet


class Oracle:
    """A monotone 'meets' from a known answer, recording every round."""

    def __init__(self, answer):
        self.answer, self.rounds = answer, []

    def __call__(self, values):
        self.rounds.append(list(values))
        return {v: v >= self.answer for v in values}


@pytest.mark.parametrize("per_round", [1, 2, 5])
def test_search_finds_every_boundary_in_few_rounds(per_round):
    for answer in range(1, 101):
        oracle = Oracle(answer)
        assert search(1, 100, oracle, per_round) == answer
        assert all(1 <= len(r) <= per_round for r in oracle.rounds[1:])
        assert len(oracle.rounds) <= 1 + math.ceil(math.log(100, per_round + 1))
    assert search(1, 100, Oracle(101)) is None


def test_search_runs_hi_first_and_stops_when_it_fails():
    oracle = Oracle(50)
    search(10, 40, oracle)
    assert oracle.rounds == [[40]]
    oracle = Oracle(7)
    assert search(7, 7, oracle) == 7 and oracle.rounds == [[7]]
    oracle = Oracle(1)
    assert search(3, 9, oracle) == 3 and oracle.rounds == [[9], [5], [3]]


def test_a_failed_run_stops_the_search_with_exit_1(tmp_path, cli, monkeypatch):
    real = tasks_module.run_scenario

    def flaky(loaded, out, **kwargs):
        if out.name == "v9-s1":
            raise RuntimeError("disk on fire")
        return real(loaded, out=out, **kwargs)

    monkeypatch.setattr(tasks_module, "run_scenario", flaky)
    out = tmp_path / "plan"
    result = cli("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.mean<=1000", "--vary", VARY,
                 "--range", "8:12", "--seeds", "1", "--out", str(out))
    assert result.code == 1
    assert result.err.strip() == "failed: v9-s1: RuntimeError: disk on fire"
    assert result.out.splitlines()[-2:] == ["stopped: failed (run the same command again to resume)", str(out)]
    report = json.loads((out / "plan.json").read_text())
    assert (report["status"], report["answer"]) == ("failed", None)
    monkeypatch.setattr(tasks_module, "run_scenario", real)
    again = cli("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.mean<=1000", "--vary", VARY,
                "--range", "8:12", "--seeds", "1", "--out", str(out))
    assert again.code == 0 and {r["run"]: r["status"] for r in read_index(out)}["v9-s1"] == "ok"


def test_ctrl_c_exits_130_and_the_same_command_finishes(tmp_path, cli, monkeypatch):
    real = tasks_module.run_scenario

    def interrupted(loaded, out, **kwargs):
        if out.name == "v9-s1":
            raise KeyboardInterrupt
        return real(loaded, out=out, **kwargs)

    args = ("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.mean<=1000", "--vary", VARY,
            "--range", "8:12", "--seeds", "1", "--out", str(tmp_path / "plan"))
    monkeypatch.setattr(tasks_module, "run_scenario", interrupted)
    first = cli(*args)
    assert first.code == 130
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["status"] == "interrupted"
    assert [r["status"] for r in read_index(tmp_path / "plan")] == ["pending", "ok"]  # v9, v12
    monkeypatch.setattr(tasks_module, "run_scenario", real)
    second = cli(*args)
    assert second.code == 0 and second.out.splitlines()[-1] == f"{VARY}=9"


SPARES = """\
name: n-plus-k
seed: 1
duration: 20d
regions:
  - name: eastus
    pools:
      - {name: main, gpu: H100, replicas: 8, gpus_per_replica: 8}
      - {name: spare, gpu: H100, replicas: 1, gpus_per_replica: 8}
scheduler:
  interval: 1h
  load_model: {kind: constant, L: 100}
  allocation: {weights: {eastus/main: 1}, L_max: 100}
failures:
  nodes: [{mttf: 5d, repair: {kind: constant, mean: 12h}}]
  detection: 0s
  warmup: 0s
"""


def test_plan_sizes_spares_for_a_failure_target(tmp_path, cli):
    """N+k under the failure model: the answer meets the target and one spare fewer does not."""
    path = tmp_path / "spares.yaml"
    path.write_text(SPARES)
    out = tmp_path / "plan"
    result = cli("plan", str(path), "--target", "allocation.unmet_gpu_hours<=0", "--vary",
                 "regions.eastus.pools.spare.replicas", "--range", "1:8", "--seeds", "2", "--out", str(out))
    assert result.code == 0, result.err
    answer = int(result.out.strip().splitlines()[-1].split("=")[1])
    assert 1 < answer < 8
    rows = {int(r["value"]): r for r in json.load(open(out / "plan.json"))["points"]}
    assert rows[answer]["meets"] and not rows[answer - 1]["meets"]
