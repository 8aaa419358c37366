"""Review tests for the experiment, plan, serve and report tools.

Tests marked ``# Was a bug:`` failed on the reviewed commit (the comment says what the docs,
or plain correctness, expected and what happened then); they now guard the fixes. The
others pin tricky behaviour that was already correct. Everything uses the 10-minute M/M/8
queue (``tests.experiment.TINY``) or hand-made result folders, so the file runs in a few seconds.
"""
from __future__ import annotations

import json
import socket
import traceback

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sim.experiment import paired_interval, parse_target, t_interval
from sim.experiment.capacity import _probes, search
from sim.report import build_report
from sim.report.compare import plot_sweep_metric
from sim.scenario import parse_scenario
from sim.serve import Limits, Service, file_and_module_problems
from tests.conftest import SCENARIOS, run_cli
from tests.experiment import MMC, TINY, cli_sets

REPLICAS = "regions.solo.pools.gpu.replicas"
RATE = "inference.req.arrival.rate_per_s"


def cli_safe(*args: str):
    """``run_cli`` that turns an escaped exception into ``(None, traceback)`` instead of erroring."""
    try:
        result = run_cli(*args)
    except Exception:  # a traceback where the docs promise exit 2 and a message
        return None, traceback.format_exc()
    return result.code, result.err


# -- statistics: hand-computed intervals and the search ---------------------------------------
def test_paired_interval_by_hand():
    # d = (1, 2, 1): mean 4/3, sd = sqrt(1/3), t(0.975, 2) = 4.302652729749464
    got = paired_interval({1: 10.0, 2: 12.0, 3: 11.0}, {1: 9.0, 2: 10.0, 3: 10.0})
    half = 4.302652729749464 * (1 / 3) ** 0.5 / 3 ** 0.5
    assert got.n == 3 and got.mean == pytest.approx(4 / 3)
    assert (got.low, got.high) == (pytest.approx(4 / 3 - half), pytest.approx(4 / 3 + half))
    # Two seeds: t(0.975, 1) = 12.7062047; values 1400.78 and 1151.82 as in a plan table.
    two = t_interval([1400.783912, 1151.819346])
    half2 = 12.706204736174698 * abs(1400.783912 - 1151.819346) / 2 ** 0.5 / 2 ** 0.5
    assert (two.low, two.high) == (pytest.approx(two.mean - half2), pytest.approx(two.mean + half2))


def test_search_probes_and_rounds_by_hand():
    asked = []

    def meets(values):
        asked.append(list(values))
        return {v: v >= 11 for v in values}

    assert search(6, 12, meets) == 11
    assert asked == [[12], [8], [10], [11]]  # bad=5, good=12 -> 8 -> 10 -> 11
    asked.clear()
    assert search(1, 16, meets, per_round=2) == 11
    # (0, 16): 5 and 10 fail -> (10, 16): 12 meets, 14 meets -> (10, 12): 11 meets
    assert asked == [[16], [5, 10], [12, 14], [11]]
    assert _probes(0, 3, 5) == [1, 2]  # never more probes than integers inside


def test_plan_header_keeps_the_threshold_the_user_gave():
    # Was a bug: Target.__str__ formats the threshold with :g (6 significant digits), so plan.json's
    # "target" and the printed header show a different target than the one planned against:
    # expected 'failures.availability.mean>=0.9999995', got 'failures.availability.mean>=1'.
    assert str(parse_target("failures.availability.mean>=0.9999995")) == "failures.availability.mean>=0.9999995"
    assert str(parse_target("energy.kwh<=1234567")) == "energy.kwh<=1234567"


# -- plan and sweep: resume and input checks ----------------------------------------------------
def test_plan_resume_reuses_runs_for_another_target_and_refuses_a_changed_scenario(tmp_path):
    out = tmp_path / "plan"
    common = (MMC, *cli_sets(TINY), "--vary", REPLICAS, "--range", "8:10", "--seeds", "1", "--out", str(out))
    first = run_cli("plan", *common, "--target", "utilization.mean<=0.85")
    assert first.code == 0, first.err
    assert first.out.splitlines()[-1] == f"{REPLICAS}=9"
    # Another target and rule: the same folder, every run read back, nothing re-run.
    again = run_cli("plan", *common, "--target", "inference.wait_ms.mean<=1e9", "--rule", "mean")
    assert again.code == 0 and again.out.splitlines()[-1] == f"{REPLICAS}=8"
    rows = (out / "index.csv").read_text().splitlines()[1:]
    assert rows and all(",skipped," in row for row in rows)
    # A changed scenario in the same folder is refused, not mixed.
    changed = run_cli("plan", *common, "--target", "utilization.mean<=0.85", "--set", f"{RATE}=3")
    assert changed.code == 2 and "holds a different sweep" in changed.err


def test_sweep_seeds_zero_is_bad_input(tmp_path):
    # Was a bug: simulate.py _sweep_inputs uses `args.seeds or 1` (or the sweep file's seeds), so
    # --seeds 0 silently runs one seed and exits 0; expected exit 2 "--seeds: must be >= 1
    # (got 0)" like compare, plan and `sweep --seeds -1`.
    result = run_cli("sweep", MMC, *cli_sets(TINY), "--grid", f"{RATE}=6", "--seeds", "0",
                     "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, "--seeds: must be >= 1 (got 0)")
    assert not any(tmp_path.iterdir())


def test_bad_workers_writes_nothing(tmp_path):
    # Was a bug: --workers 0 is checked only when the runs start, after sweep.json/index.csv (sweep)
    # or an empty folder (compare) were written; docs: "2 bad input (nothing runs)", and the
    # other bad inputs leave --root empty (tests/experiment/test_compare.py).
    sweep = run_cli("sweep", MMC, "--grid", f"{RATE}=6", "--workers", "0", "--root", str(tmp_path / "s"))
    compare = run_cli("compare", MMC, "--policy", "nearest", "--workers", "0", "--root", str(tmp_path / "c"))
    assert (sweep.code, compare.code) == (2, 2)
    assert not (tmp_path / "s").exists() and not (tmp_path / "c").exists()


# -- compare -------------------------------------------------------------------------------------
def test_compare_out_refuses_a_changed_scenario_instead_of_mixing(tmp_path):
    # Was a bug: docs/experiments.md: "compare --out DIR resumes the same way" as a sweep, whose
    # folder "holding a different sweep ... is refused rather than mixed". run_comparison
    # keeps no identity (no sweep.json check), so after --set changes the arrival rate the old
    # runs are 'skipped' and reported as results of the new scenario (exit 0, rate 7.2).
    out = tmp_path / "cmp"
    args = ("compare", MMC, *cli_sets(TINY), "--policy", "nearest", "--seeds", "1", "--out", str(out),
            "--metric", "utilization.mean")
    assert run_cli(*args).code == 0
    changed = run_cli(*args, "--set", f"{RATE}=3")
    resolved = (out / "nearest-s1" / "resolved.yaml").read_text()
    assert changed.code == 2 or "rate_per_s: 3" in resolved, "old runs of another scenario were reused"


def test_compare_policy_that_cannot_enter_the_scenario_is_bad_input(tmp_path):
    # Was a bug: plan_comparison validates the base scenario only, not the scenario with each
    # policy in it; with --kind allocation on a scenario without scheduler.allocation every
    # run fails (exit 1, one error per seed) instead of exit 2 before anything runs.
    result = run_cli("compare", MMC, *cli_sets(TINY), "--kind", "allocation", "--policy", "proportional",
                     "--seeds", "2", "--root", str(tmp_path))
    assert result.code == 2, (result.code, result.err)
    assert "scheduler.allocation" in result.err


def test_compare_keeps_a_requested_metric_that_is_missing(tmp_path):
    # Was a bug: docs/experiments.md (Metrics): "Give --metric PATH (repeatable) for your own list;
    # paths that are missing stay empty" (as they do in a sweep's index.csv); summarise drops
    # every metric no run has, so training.goodput vanishes from comparison.json/.csv.
    out = tmp_path / "cmp"
    result = run_cli("compare", MMC, *cli_sets(TINY), "--policy", "nearest", "--seeds", "1", "--out", str(out),
                     "--metric", "utilization.mean", "--metric", "training.goodput")
    assert result.code == 0, result.err
    report = json.loads((out / "comparison.json").read_text())
    assert report["metrics"] == ["utilization.mean", "training.goodput"]


def test_comparison_files_are_byte_identical_serial_and_process_pool(tmp_path):
    def compare(name, workers):
        out = tmp_path / name
        result = run_cli("compare", MMC, *cli_sets(TINY), "--policy", "nearest", "--policy", "round_robin",
                         "--seeds", "2", "--out", str(out), "--workers", workers,
                         "--metric", "utilization.mean", "--metric", "inference.wait_ms.mean")
        assert result.code == 0, result.err
        return [(out / f).read_bytes() for f in ("comparison.json", "comparison.csv", "nearest-s2/summary.json")]

    assert compare("serial", "1") == compare("pool", "2")


# -- serve -----------------------------------------------------------------------------------------
def test_module_allocation_policy_is_found_like_routing_and_placement():
    # Was a bug: file_and_module_problems checks strings under scheduler.routing and
    # scheduler.placement only; scheduler.allocation.policy also loads `package.module:Class`
    # (and preflight imports it in the server process), so the second layer misses it.
    text = (SCENARIOS / "two_regions.yaml").read_text().replace(
        "L_max: 200}", "L_max: 200, policy: 'this:Zen'}")
    loaded = parse_scenario(text, "x.yaml")
    assert loaded.scenario.scheduler.allocation.policy.name == "this:Zen"
    assert [p.value for p in file_and_module_problems(loaded)] == ["this:Zen"]


def test_predict_with_non_finite_t_is_400_and_nothing_escapes():
    service = Service(SCENARIOS, Limits(max_wall_s=5.0))
    # json.loads reads 1e400 as inf without parse_constant: the model must still refuse it.
    assert service.handle("POST", "/predict", lambda: {"t": float("inf")})[0] == 400
    assert service.handle("POST", "/run", lambda: {"scenario": "validation/mmc", "set": ["=x"]})[0] == 400
    assert service.handle("GET", "/run", lambda: 1 / 0)[0] == 405  # body never read


@pytest.mark.parametrize("option", ["port", "host", "busy"])
def test_serve_cannot_bind_is_a_clear_exit_2(option):
    # Was a bug: make_server binds in _cmd_serve with no error handling: --port 99999 raises
    # OverflowError, a busy port OSError (EADDRINUSE), an unknown --host socket.gaierror, each
    # a traceback; expected exit 2 with a message naming --port/--host.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        args = {"port": ["--port", "99999"], "host": ["--host", "no.such.host.invalid", "--port", "0"],
                "busy": ["--port", str(busy.getsockname()[1])]}[option]
        code, err = cli_safe("serve", *args)
    assert code == 2, err
    assert "Traceback" not in err


# -- report ------------------------------------------------------------------------------------------
INDEX = "run,point,seed,x,status,error,m,path\n"


@pytest.mark.parametrize("files", [
    {"index.csv": "a,b\n1,2\n"},                                  # an index.csv that is not a sweep's
    {"comparison.json": "{}\n"},                                  # valid JSON, not a comparison
    {"index.csv": INDEX + "p000-s1,0,1,1,ok,,n/a,p\n"},           # a metric cell that is no number
    {"summary.json": b"\xff\xfe{}", "manifest.json": "{}", "timeseries.csv": ""},  # not UTF-8
])
def test_report_on_malformed_files_exits_2_without_traceback(tmp_path, files):
    # Was a bug: build_report indexes rows and JSON without checking them: KeyError 'status'
    # (sweep_tables), KeyError 'runs' (_comparison_content), ValueError float('n/a')
    # (sweep_tables) and UnicodeDecodeError (read_json catches JSONDecodeError only). Expected
    # exit 2 with a message naming the file (docs/reports.md: input errors exit 2, no traceback).
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    code, err = cli_safe("report", str(tmp_path))
    assert code == 2, err
    assert "Traceback" not in err


def test_report_escapes_html_in_html_and_markdown(tmp_path):
    evil = "<script>alert(1)</script>"
    (tmp_path / "index.csv").write_text(INDEX + f"p000-s1,0,1,{evil},failed,bad value {evil},,p\n")
    report = build_report(tmp_path)
    page = report.html.read_text()
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # correct today
    # Was a bug: to_markdown escapes only | and \ in cells, so report.md carries the raw tag, which
    # most Markdown renderers pass through as HTML; expected it escaped (&lt; or \<) like the page.
    assert evil not in report.markdown.read_text()


def test_report_is_byte_identical_when_drawn_twice(tmp_path):
    (tmp_path / "index.csv").write_text(INDEX + "p000-s1,0,1,1,ok,,2.5,p\np000-s2,0,2,1,ok,,3.5,p\n"
                                        "p001-s1,1,1,2,ok,,4.0,p\np001-s2,1,2,2,ok,,4.5,p\n")
    first = build_report(tmp_path)
    before = {p.name: p.read_bytes() for p in [first.html, first.markdown, *(tmp_path / "charts").iterdir()]}
    second = build_report(tmp_path)
    after = {p.name: p.read_bytes() for p in [second.html, second.markdown, *(tmp_path / "charts").iterdir()]}
    assert before == after and "sweep.png" in after


def test_sweep_chart_does_not_average_different_grid_points():
    # Was a bug: plot_sweep_metric groups rows by the x parameter and the second parameter only; with
    # a third grid parameter the points (x=1, c=1) and (x=1, c=2) are averaged into one "mean
    # over seeds" with one t interval (here 15, CI [-112, 142]) although they are different
    # scenarios; expected a line per (second, third) value or a refusal, never a mixed mean.
    rows = [{"x": "1", "b": "0", "c": c, "status": "ok", "m": m} for c, m in (("1", "10"), ("2", "20"))]
    rows += [{"x": "2", "b": "0", "c": c, "status": "ok", "m": m} for c, m in (("1", "11"), ("2", "21"))]
    fig, ax = plt.subplots()
    plot_sweep_metric(ax, rows, "x", "m", ["b", "c"])  # the chart passes every other grid parameter
    means = {float(y) for line in ax.lines for y in line.get_ydata()}
    plt.close(fig)
    assert 15.0 not in means and 16.0 not in means
