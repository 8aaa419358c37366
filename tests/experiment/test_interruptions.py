"""Interruptions and folders a sweep does not own: nothing a user made is adopted or deleted,
``index.csv`` is exact after an interruption, workers die with their parent. The real kills
(``kill -9`` of the parent, Ctrl-C to the process group) are in the slow tier."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.experiment import parse_grid, plan_sweep, run_sweep, sweep as sweep_module
from sim.experiment.tasks import run_task
from tests.conftest import ROOT
from tests.experiment import MMC, TINY, cli_sets

RATES = "inference.req.arrival.rate_per_s=6,7"


def read_index(folder):
    with open(Path(folder) / "index.csv", newline="") as handle:
        return {r["run"]: r for r in csv.DictReader(handle)}


def test_a_folder_that_is_not_a_sweep_is_refused_and_untouched(tmp_path, cli):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--out", str(out))
    assert result.code == 2
    assert result.err == (f"{out}: exists and holds no sweep (no sweep.json); a sweep only resumes in its own "
                          "folder: choose another --out or empty it\n")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_an_empty_folder_is_adopted(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    assert cli("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--out", str(tmp_path / "empty")).code == 0


def test_a_folder_no_run_made_is_left_alone_and_the_run_fails_saying_so(tmp_path):
    plan = plan_sweep(MMC, [parse_grid(RATES)], sets=TINY, out=tmp_path / "sw")
    run_sweep(plan, progress=False)
    mine = Path(plan.tasks[0].out)
    for f in mine.iterdir():  # the user empties a finished run folder and keeps a file in it
        f.unlink() if f.is_file() else None
    (mine / "notes.txt").write_text("precious")
    outcome = run_sweep(plan, progress=False)
    assert outcome.results[0]["status"] == "failed"
    assert outcome.results[0]["error"] == (f"{mine}: exists and was not made by a run; it is left untouched "
                                           "(remove it or choose another --out)")
    assert (mine / "notes.txt").read_text() == "precious"
    assert outcome.results[1]["status"] == "skipped"


def test_debris_of_an_interrupted_run_is_replaced(tmp_path):
    plan = plan_sweep(MMC, [parse_grid(RATES)], sets=TINY, out=tmp_path / "sw")
    run_sweep(plan, progress=False)
    run = Path(plan.tasks[0].out)
    (run / "_SUCCESS").unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    (run / ".summary.json.tmp").write_text("half")
    assert run_task(plan.tasks[0])["status"] == "ok"
    assert not (run / ".summary.json.tmp").exists()


def test_a_corrupt_summary_in_a_finished_sweep_is_a_failed_run_not_a_crash(tmp_path, cli):
    out = tmp_path / "sw"
    args = ("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--out", str(out))
    assert cli(*args).code == 0
    (out / "p000-s1" / "summary.json").write_bytes(b"\xff\xfe not json")
    result = cli(*args)
    assert result.code == 1 and "Traceback" not in result.err
    row = read_index(out)["p000-s1"]
    assert row["status"] == "failed"
    assert row["error"].startswith(f"{out / 'p000-s1' / 'summary.json'}: cannot be read (UnicodeDecodeError")


def test_runs_finished_while_interrupted_are_in_the_index(tmp_path, monkeypatch):
    """Ctrl-C while a run is in flight: the pool lets it finish, and the index says so."""
    plan = plan_sweep(MMC, [parse_grid(RATES)], sets=TINY, out=tmp_path / "sw")

    def interrupted(tasks, *args):
        yield 0, run_task(tasks[0])
        run_task(tasks[1])  # finishes while the parent is shutting down
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "execute_tasks", interrupted)
    outcome = run_sweep(plan, progress=False)
    assert outcome.interrupted
    assert {r: row["status"] for r, row in read_index(plan.out).items()} == {"p000-s1": "ok", "p001-s1": "ok"}


def test_sweep_out_under_a_file(tmp_path, cli):
    (tmp_path / "afile").write_text("")
    result = cli("sweep", MMC, *cli_sets(TINY), "--grid", RATES, "--out", str(tmp_path / "afile" / "sw"))
    assert result.code == 2
    blocker = tmp_path / "afile"
    assert result.err == f"cannot create the sweep folder {blocker}/sw: {blocker} is a file, not a folder\n"


# -- real kills (slow tier) ------------------------------------------------------------------------
LONG = ["duration=48h", "warmup=1h"]  # about 3 s a run
SIX = "inference.req.arrival.rate_per_s=6,6.2,6.4,6.6,6.8,7"


def start_sweep(out: Path) -> subprocess.Popen:
    """A two-worker sweep in its own process group, with Ctrl-C (SIGINT) handled as in a terminal."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "simulate.py"), "sweep", MMC, *cli_sets(LONG), "--grid", SIX, "--workers", "2",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:\t", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie no one reaps has finished


def wait_for_a_run_in_flight(out: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((out / p / "manifest.json").is_file() for p in ("p000-s1", "p001-s1")):
            return
        time.sleep(0.1)
    raise AssertionError("no run started")


def check_resume_is_exact(out: Path) -> None:
    again = subprocess.run([sys.executable, str(ROOT / "simulate.py"), "sweep", MMC, *cli_sets(LONG), "--grid", SIX,
                            "--workers", "2", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = read_index(out)
    assert all(row["status"] in ("ok", "skipped") for row in rows.values())
    assert all((out / run / "_SUCCESS").is_file() for run in rows)


@pytest.mark.slow
def test_kill_9_of_the_parent_takes_its_workers_down(tmp_path):
    out = tmp_path / "sw"
    parent = start_sweep(out)
    wait_for_a_run_in_flight(out)
    workers = children(parent.pid)
    assert workers
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
    for run in out.glob("p*"):  # a run cut short says so
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["status"] in ("ok", "failed"), manifest
    check_resume_is_exact(out)


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_an_exact_index(tmp_path):
    out = tmp_path / "sw"
    parent = start_sweep(out)
    wait_for_a_run_in_flight(out)
    time.sleep(4)
    os.killpg(parent.pid, signal.SIGINT)  # what a terminal sends the whole foreground group
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130, err
    assert "Traceback" not in err
    rows = read_index(out)
    for run, row in rows.items():
        finished = (out / run / "_SUCCESS").is_file()
        assert (row["status"] == "ok") == finished, (run, row["status"])
        assert row["status"] in ("ok", "pending", "failed")
    check_resume_is_exact(out)
