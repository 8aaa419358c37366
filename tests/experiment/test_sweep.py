"""Sweeps: layout, index.csv, failures recorded, resume after interruption, sweep files."""
import csv
import json
from pathlib import Path

import pytest

from sim.experiment import parse_grid, plan_sweep, run_sweep, tasks as tasks_module
from sim.experiment.plan import Axis
from tests.experiment import MMC, TINY, cli_sets

RATES = "inference.req.arrival.rate_per_s=6,7"


def read_index(folder):
    with open(Path(folder) / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def fingerprint(run_dir):
    """What proves a run was not redone: its manifest (run id, start time) and file mtimes."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return (manifest["started_utc"], (run_dir / "summary.json").stat().st_mtime_ns,
            (run_dir / "_SUCCESS").stat().st_mtime_ns)


def test_sweep_writes_one_folder_per_point_and_seed_and_an_index(tmp_path, cli):
    out = tmp_path / "sw"
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--seeds", "2", "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(out)
    rows = read_index(out)
    assert [(r["run"], r["point"], r["seed"], r["inference.req.arrival.rate_per_s"], r["status"]) for r in rows] == [
        ("p000-s1", "0", "1", "6", "ok"), ("p000-s2", "0", "2", "6", "ok"),
        ("p001-s1", "1", "1", "7", "ok"), ("p001-s2", "1", "2", "7", "ok")]
    assert all((out / r["run"] / "_SUCCESS").is_file() for r in rows)
    resolved = (out / "p001-s2" / "resolved.yaml").read_text()
    assert "rate_per_s: 7" in resolved and "seed: 2" in resolved
    # A higher arrival rate at the same seed gives a higher utilisation.
    assert float(rows[2]["utilization.mean"]) > float(rows[0]["utilization.mean"])
    assert list(rows[0])[:6] == ["run", "point", "seed", "inference.req.arrival.rate_per_s", "status", "error"]
    assert "training.goodput" not in rows[0]  # absent from every summary: no column


def test_resume_redoes_only_incomplete_runs(tmp_path, cli):
    out = tmp_path / "sw"
    args = ("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--seeds", "2", "--out", str(out))
    assert cli(*args).code == 0
    before = {d.name: fingerprint(d) for d in sorted(out.glob("p*"))}
    partial_summary = (out / "p000-s1" / "summary.json").read_bytes()
    (out / "p000-s1" / "_SUCCESS").unlink()            # interrupted before the end
    for f in (out / "p001-s2").iterdir():               # never started
        f.unlink() if f.is_file() else None
    (out / "p001-s2").rename(tmp_path / "gone")
    result = cli(*args)
    assert result.code == 0, result.err
    assert "4 runs: 2 ok, 2 skipped" in result.out
    status = {r["run"]: r["status"] for r in read_index(out)}
    assert status == {"p000-s1": "ok", "p000-s2": "skipped", "p001-s1": "skipped", "p001-s2": "ok"}
    after = {d.name: fingerprint(d) for d in sorted(out.glob("p*"))}
    assert after["p000-s2"] == before["p000-s2"] and after["p001-s1"] == before["p001-s1"]
    assert after["p000-s1"] != before["p000-s1"]
    assert (out / "p000-s1" / "summary.json").read_bytes() == partial_summary  # redone, same result
    assert not list(out.glob("p*-2"))  # incomplete folders were replaced, not suffixed


def test_failed_runs_are_recorded_and_do_not_stop_the_others(tmp_path, cli):
    out = tmp_path / "sw"
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", "regions.solo.pools.gpu.replicas=8,0,9", "--out", str(out))
    assert result.code == 1
    rows = read_index(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    # The bad value came from the grid, so the message names the override, not a line of the file.
    assert rows[1]["error"] == ("--set regions.solo.pools.gpu.replicas=0: regions[0].pools[0].replicas: "
                                "must be >= 1 (got 0)")
    assert rows[1]["utilization.mean"] == ""
    assert "3 runs: 2 ok, 1 failed" in result.out


def test_any_exception_is_recorded_and_retried_next_time(tmp_path, monkeypatch):
    real = tasks_module.run_scenario

    def flaky(loaded, out, **kwargs):
        if out.name == "p000-s1":
            raise RuntimeError("disk on fire")
        return real(loaded, out=out, **kwargs)

    plan = plan_sweep(MMC, [parse_grid(RATES)], sets=TINY, out=tmp_path / "sw")
    monkeypatch.setattr(tasks_module, "run_scenario", flaky)
    outcome = run_sweep(plan, progress=False)
    assert [r["status"] for r in outcome.results] == ["failed", "ok"]
    assert outcome.results[0]["error"] == "RuntimeError: disk on fire"
    monkeypatch.setattr(tasks_module, "run_scenario", real)
    outcome = run_sweep(plan, progress=False)
    assert [r["status"] for r in outcome.results] == ["ok", "skipped"]


def test_ctrl_c_keeps_finished_runs_and_a_consistent_index(tmp_path, monkeypatch):
    real = tasks_module.run_scenario

    def interrupted(loaded, out, **kwargs):
        if out.name == "p001-s1":
            out.mkdir()
            # A half-written folder, as run_scenario leaves it (a folder no run made is left alone).
            (out / "manifest.json").write_text(json.dumps({"run_id": out.name, "status": "running"}))
            raise KeyboardInterrupt
        return real(loaded, out=out, **kwargs)

    plan = plan_sweep(MMC, [parse_grid("inference.req.arrival.rate_per_s=6,7,5")], sets=TINY, out=tmp_path / "sw")
    monkeypatch.setattr(tasks_module, "run_scenario", interrupted)
    outcome = run_sweep(plan, progress=False)
    assert outcome.interrupted
    assert [r["status"] for r in read_index(plan.out)] == ["ok", "pending", "pending"]
    first = fingerprint(plan.out / "p000-s1")
    monkeypatch.setattr(tasks_module, "run_scenario", real)
    outcome = run_sweep(plan, progress=False)
    assert [r["status"] for r in read_index(plan.out)] == ["skipped", "ok", "ok"]
    assert fingerprint(plan.out / "p000-s1") == first


def test_same_command_finds_the_same_default_folder(tmp_path, cli):
    args = ("sweep", MMC, *cli_sets(TINY), "--grid", "inference.req.arrival.rate_per_s=6", "--root", str(tmp_path))
    first, second = cli(*args), cli(*args)
    assert first.code == second.code == 0
    assert first.out.splitlines()[-1] == second.out.splitlines()[-1]
    assert Path(first.out.splitlines()[-1]).parent == tmp_path / "mmc"
    assert "all 1 run already done" in second.out


def test_a_folder_holding_another_sweep_is_refused(tmp_path, cli):
    out = tmp_path / "sw"
    first = cli("sweep", MMC, *cli_sets(TINY), "--grid", "inference.req.arrival.rate_per_s=6", "--out", str(out))
    assert first.code == 0
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", "inference.req.arrival.rate_per_s=7", "--out", str(out))
    assert result.code == 2
    assert result.err.strip() == (f"{out}: holds a different sweep (see its sweep.json); "
                                  "choose another --out or remove the folder")


def test_grid_values_are_read_like_set_values():
    assert parse_grid("a.b=1, 2.5 ,2h,[1, 2],{x: 1},'a,b',NO") == Axis(
        "a.b", (1, 2.5, "2h", [1, 2], {"x": 1}, "a,b", "NO"))
    assert parse_grid("regions[0].pools.gpu.replicas=4") == Axis("regions[0].pools.gpu.replicas", (4,))


@pytest.mark.parametrize("grid, message", [
    ("replicas", "--grid: expects dotted.path=v1,v2,... (got 'replicas')"),
    ("replicas=", "--grid: expects dotted.path=v1,v2,... (got 'replicas=')"),
    ("=1,2", "--grid: expects dotted.path=v1,v2,... (got '=1,2')"),
    ("a..b=1", "--grid: malformed path 'a..b' (got 'a..b=1')"),
    ("a=1,,2", "--grid: empty value in 'a=1,,2'"),
    ("seed=1,2", "--grid: seed is set by --seeds (seeds s, s+1, ... from the scenario's seed)"),
])
def test_bad_grid_exits_2_with_the_message(tmp_path, cli, grid, message):
    result = cli("sweep", MMC, "--grid", grid, "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, message)
    assert "Traceback" not in result.err
    assert not (tmp_path / "mmc").exists()


def test_other_usage_errors_exit_2(tmp_path, cli):
    no_grid = cli("sweep", MMC, "--root", str(tmp_path))
    assert no_grid.err.strip() == "sweep: needs at least one --grid dotted.path=v1,v2,..."
    result = cli("sweep", MMC, "--grid", "seed=1", "--grid", "a=1", "--grid", "a=2")
    assert result.code == 2
    result = cli("sweep", MMC, "--grid", "a=1", "--scheduler", "tcp://x:1", "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, "--scheduler: needs --backend dask")
    result = cli("sweep", MMC, "--grid", "a=1", "--workers", "0", "--root", str(tmp_path))
    assert (result.code, result.err.strip()) == (2, "--workers: must be >= 1 (got 0)")
    result = cli("sweep", MMC, "--set", "duration=-1", "--grid", "a=1", "--root", str(tmp_path))
    assert result.code == 2 and "duration" in result.err and "Traceback" not in result.err


SWEEP_FILE = """\
scenario: {scenario}
grid:
  inference.req.arrival.rate_per_s: [6, 7]
seeds: 1
set: [duration=10m, warmup=1m]
metrics: [utilization.mean, inference.latency_ms.p99, training.goodput]
out: results/here
"""


def test_sweep_file_runs_with_paths_relative_to_it(tmp_path, cli):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP_FILE.format(scenario=MMC))
    result = cli("sweep", str(path))
    assert result.code == 0, result.err
    out = tmp_path / "results" / "here"
    assert result.out.splitlines()[-1] == str(out)
    rows = read_index(out)
    assert list(rows[0])[-4:] == ["utilization.mean", "inference.latency_ms.p99", "training.goodput", "path"]
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["training.goodput"] == ""
    assert (out / "charts" / "sweep.png").is_file()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("seeds: 1", "seeds: 0"), "sweep.yaml:4: seeds: must be >= 1 (got 0)"),
    (lambda t: t + "colour: blue\n", "sweep.yaml:8: colour: unknown key; expected one of: scenario, grid, seeds, set, "
                                     "metrics, out (got 'blue')"),
    (lambda t: t + "seedz: 2\n", "sweep.yaml:8: seedz: unknown key; did you mean 'seeds'? (got 2)"),
    (lambda t: t.replace("[6, 7]", "[]"),
     "sweep.yaml:3: grid.inference.req.arrival.rate_per_s: must have at least 1 item(s) (got [])"),
    (lambda t: t.replace("seeds: 1", "seeds: two"), "sweep.yaml:4: seeds: must be an integer (got 'two')"),
    (lambda t: t.replace("[duration=10m, warmup=1m]", "[duration]"),
     "sweep.yaml:5: set[0]: must be dotted.path=value (got 'duration')"),
    (lambda t: t.replace("scenario: ", "scenery: "), "sweep.yaml:1: scenario: required key is missing"),
    (lambda t: t.replace("inference.req", "inference..req"),
     "sweep.yaml:3: grid: malformed path 'inference..req.arrival.rate_per_s'"),
    (lambda t: t + "seeds: 3\n", "sweep.yaml:8: seeds: duplicate key (first defined on line 4)"),
])
def test_bad_sweep_file_exits_2_with_located_message(tmp_path, cli, edit, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(edit(SWEEP_FILE.format(scenario=MMC)))
    result = cli("sweep", str(path))
    assert result.code == 2
    assert "Traceback" not in result.err
    assert message in result.err.splitlines()[0], result.err
    assert result.err.startswith(str(path))
    assert not (tmp_path / "results").exists()


def test_a_run_over_the_budget_fails_before_its_folder_exists(tmp_path, cli):
    out = tmp_path / "sw"
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", "metrics.bucket=60,1e-9", "--out", str(out))
    assert result.code == 1
    rows = read_index(out)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[1]["error"] == ("--set metrics.bucket=1.0e-09: metrics.bucket: about 1 PB of memory for 600 billion "
                                "time-series rows (duration / metrics.bucket), over the budget of "
                                f"{rows[1]['error'].split('over the budget of ')[1].split(' (')[0]} (the budget of "
                                "each run of an experiment) (got 1e-09)")
    assert not (out / "p001-s1").exists()
