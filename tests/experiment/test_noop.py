"""Cheap no-ops: a finished sweep or plan, asked again, answers from its folder without
running, validating or even importing the simulator; anything changed falls through."""
import json
import subprocess
import sys

from tests.conftest import ROOT
from tests.experiment import MMC, TINY, cli_sets

VARY = "regions.solo.pools.gpu.replicas"


def sweep_args(scenario, out):
    return ("sweep", str(scenario), *cli_sets(TINY), "--grid", "inference.req.arrival.rate_per_s=6,7",
            "--out", str(out), "--quiet")


def test_a_finished_sweep_answers_from_its_index_and_says_so(tmp_path, cli):
    out = tmp_path / "sw"
    assert cli(*sweep_args(MMC, out)).code == 0
    index = (out / "index.csv").read_bytes()
    again = cli(*sweep_args(MMC, out))
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"sweep: all 2 runs already done in {out} (answered from its index.csv; nothing ran)", str(out)]
    assert (out / "index.csv").read_bytes() == index


def test_the_no_op_loads_neither_the_scenario_model_nor_numpy(tmp_path, cli):
    """What keeps it near a second: checked by what it imports, not by a stopwatch."""
    out = tmp_path / "sw"
    args = sweep_args(MMC, out)
    assert cli(*args).code == 0
    code = ("import sys, simulate; code = simulate.main(sys.argv[1:]); "
            "heavy = ('numpy', 'simpy', 'sim.scenario.model', 'sim.runner'); "
            "print(code, sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


def test_an_edited_scenario_or_a_removed_run_is_not_a_no_op(tmp_path, cli):
    scenario = tmp_path / "mmc.yaml"
    scenario.write_text(open(MMC).read())
    out = tmp_path / "sw"
    assert cli(*sweep_args(scenario, out)).code == 0
    scenario.write_text(open(MMC).read() + "\n# an edit\n")  # a new key: the usual resume answers
    edited = cli(*sweep_args(scenario, out))
    assert edited.code == 0 and "2 runs: 2 skipped" in edited.out
    (out / "p000-s1" / "_SUCCESS").unlink()
    redone = cli(*sweep_args(scenario, out))
    assert redone.code == 0 and "2 runs: 1 ok, 1 skipped" in redone.out


def test_a_finished_plan_prints_its_answer_again_without_running(tmp_path, cli):
    out = tmp_path / "plan"
    args = ("plan", MMC, *cli_sets(TINY), "--target", "inference.wait_ms.mean<=1000", "--vary", VARY,
            "--range", "1:12", "--seeds", "2", "--out", str(out), "--quiet")
    first = cli(*args)
    assert first.code == 0, first.err
    runs = len(list(out.glob("v*-s*")))
    plan_json = (out / "plan.json").read_bytes()
    second = cli(*args)
    assert second.code == 0, second.err
    assert second.out.splitlines() == [
        f"plan: all {runs} runs already done in {out} (answered from its index.csv and plan.json; nothing ran)",
        *first.out.splitlines()]
    assert (out / "plan.json").read_bytes() == plan_json
    other = cli(*args[:-1], "--rule", "mean", "--quiet")  # another question: the usual path, reusing runs
    assert other.code == 0 and "already done" not in other.out
    assert json.loads((out / "plan.json").read_text())["rule"] == "mean"


def test_the_no_op_reads_files_up_to_the_scenario_limit():
    from sim.experiment import done
    from sim.scenario.yaml_io import MAX_BYTES
    assert done._MAX_BYTES == MAX_BYTES  # a copy (the loader is too heavy to import here): kept equal
