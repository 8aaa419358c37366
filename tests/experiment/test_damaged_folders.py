"""A sweep resumed over folders whose JSON was damaged (nested past Python's recursion limit)
reports the run or the folder, not a RecursionError traceback."""
from __future__ import annotations

from sim.experiment.tasks import RunTask, finished_result, made_by_a_run

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deeply_nested_summary_is_a_failed_run(tmp_path):
    (tmp_path / "summary.json").write_text(DEEP)
    result = finished_result(RunTask("s.yaml", (), str(tmp_path), ("utilization.mean",)), "skipped")
    assert result["status"] == "failed"
    assert result["error"].startswith(f"{tmp_path / 'summary.json'}: cannot be read (RecursionError: ")


def test_a_deeply_nested_manifest_is_not_taken_for_a_run_of_ours(tmp_path):
    (tmp_path / "manifest.json").write_text(DEEP)
    assert made_by_a_run(tmp_path) is False  # left alone, never deleted


def test_a_sweep_resumed_over_a_damaged_folder_exits_with_a_message(tmp_path, cli):
    from tests.conftest import SCENARIOS
    args = ("sweep", str(SCENARIOS / "validation" / "mmc.yaml"), "--set", "duration=10m", "--set", "warmup=0",
            "--grid", "inference[0].arrival.rate_per_s=1,2", "--out", str(tmp_path / "sw"), "--quiet")
    assert cli(*args).code == 0
    (tmp_path / "sw" / "done.json").write_text(DEEP)
    (tmp_path / "sw" / "p000-s1" / "summary.json").write_text(DEEP)
    result = cli(*args)
    assert result.code == 1 and "Traceback" not in result.err
    (tmp_path / "sw" / "sweep.json").write_text(DEEP)
    result = cli(*args)
    assert result.code == 2
    assert result.err.startswith(f"{tmp_path / 'sw' / 'sweep.json'}: cannot be read (maximum recursion depth")
