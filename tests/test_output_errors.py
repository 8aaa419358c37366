"""Result folders that cannot be written: a path under a file, a read-only folder, a full disk.
Each ends in exit 2 with a message naming the path, no temporary file left behind, and a
manifest marked ``failed`` when a run folder was started. Read-only and full file systems
are real tmpfs mounts where the machine allows them (root), else the tests are skipped."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sim import fileio
from tests.conftest import SCENARIOS, run_cli

TWO = str(SCENARIOS / "two_regions.yaml")
MMC_SHORT = (str(SCENARIOS / "validation" / "mmc.yaml"), "--set", "duration=2h", "--set", "warmup=0", "--quiet")


@pytest.fixture
def mount(tmp_path):
    """``mount(options)`` -> a fresh tmpfs folder mounted with ``options`` (unmounted after)."""
    mounted = []

    def make(options: str) -> Path:
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_root_naming_a_file_and_out_under_a_file(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    for option, target in (("--root", blocker), ("--out", blocker / "run")):
        result = run_cli("run", TWO, option, str(target))
        assert result.code == 2
        assert result.err.startswith("cannot create the run folder ")
        assert result.err.endswith(f": {blocker} is a file, not a folder\n")
    assert blocker.read_text() == "mine"


def test_out_naming_a_file_is_refused_not_suffixed(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    result = run_cli("run", *MMC_SHORT, "--out", str(blocker))
    assert (result.code, result.err) == (2, f"cannot create the run folder {blocker}: {blocker} is a file, "
                                            "not a folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # it wrote afile-2 before
    assert blocker.read_text() == "mine"


def test_a_read_only_folder(mount):
    folder = mount("size=1m,ro")
    result = run_cli("run", TWO, "--root", str(folder))
    assert result.code == 2
    assert result.err.startswith(f"cannot create the run folder {folder}/two-regions/")
    assert result.err.endswith(f": Read-only file system ({folder}/two-regions)\n")


def test_a_full_disk_marks_the_manifest_failed_and_leaves_no_temp_files(mount):
    folder = mount("size=120k")
    result = run_cli("run", TWO, "--root", str(folder))
    assert result.code == 2
    assert result.err.startswith(f"cannot write the run folder {folder}/two-regions/")
    assert result.err.endswith(": No space left on device\n")
    (run_dir,) = (folder / "two-regions").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "No space left on device" in manifest["error"]
    assert not (run_dir / "_SUCCESS").exists()
    assert leftovers(folder) == []


def test_a_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(OSError):
        fileio.write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_rewrite_json_falls_back_to_rewriting_in_place(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    path.write_text('{"status": "running"}\n')

    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "write_json_atomic", full)
    assert fileio.rewrite_json(path, {"status": "failed"})
    assert json.loads(path.read_text()) == {"status": "failed"}


def test_report_in_a_read_only_folder(tmp_path, mount):
    folder = mount("size=4m")
    run = folder / "run"
    assert run_cli("run", TWO, "--out", str(run)).code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    result = run_cli("report", str(run))
    assert result.code == 2
    assert result.err.startswith(f"cannot write the report in {run}: Read-only file system (")
    assert leftovers(run) == []


@pytest.mark.parametrize("free", [60_000, 20_000, 8_000, 2_000, 0])
def test_a_disk_full_at_any_point_leaves_a_failed_manifest_or_no_folder(mount, free):
    """Whatever write the disk fills on (a chart, the summary, the manifest itself), the run
    exits 2 and its folder either holds a readable manifest marked failed or is gone; an empty
    manifest.json (the in-place rewrite creating the file it could not fill) made a sweep
    refuse the folder as not its own for ever."""
    folder = mount("size=200k")
    filler = folder / "filler"
    filler.write_bytes(b"x" * (200 * 1024 - free))
    result = run_cli("run", *MMC_SHORT, "--root", str(folder / "results"))
    assert result.code == 2 and "Traceback" not in result.err, result.err
    assert "No space left on device" in result.err
    for run_dir in (folder / "results").glob("*/*"):
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed"
        assert not (run_dir / "_SUCCESS").exists()
    assert leftovers(folder) == []


def test_a_sweep_whose_charts_fill_the_disk_exits_2(mount):
    folder = mount("size=200k")
    result = run_cli("sweep", *MMC_SHORT, "--grid", "inference[0].arrival.rate_per_s=1,2", "--root", str(folder))
    assert result.code == 2, result.err
    assert result.err.startswith(f"cannot write the charts in {folder}/mmc/sweep-")
    assert result.err.endswith(": No space left on device\n")
    assert leftovers(folder) == []


def test_rewrite_json_in_place_creates_no_file_and_fits_the_old_bytes(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "write_json_atomic", full)
    assert not fileio.rewrite_json(tmp_path / "absent.json", {"status": "failed"})
    assert not (tmp_path / "absent.json").exists()
    path = tmp_path / "manifest.json"
    old = json.dumps({"status": "running", "versions": {"a": "1", "b": "2"}}, indent=2) + "\n"
    path.write_text(old)
    new = {"status": "failed", "versions": {"a": "1", "b": "2"}, "error": "OSError"}
    assert len(json.dumps(new, indent=2)) > len(old)  # indented, it would not fit
    assert fileio.rewrite_json(path, new)
    assert json.loads(path.read_text()) == new
    assert len(path.read_text()) <= len(old)
