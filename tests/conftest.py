"""Shared test helpers: paths and an in-process CLI runner."""
from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

import simulate  # noqa: E402  (needs ROOT on sys.path, set just above)

# Fast tiers first, so a broken unit fails in seconds: unit tests, engine traces, experiments
# and reports, the command line, every shipped scenario, then theory (validation/).
TIERS = ("unit", "engine", "regression", "experiment", "report", "", "smoke", "validation")


def _tier(item: pytest.Item) -> int:
    parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
    folder = parts[0] if len(parts) > 1 else ""
    return TIERS.index(folder) if folder in TIERS else TIERS.index("")


# Session fixtures that simulate and draw a whole folder (tests/report/conftest.py): the tests
# using them form one xdist group (pytest.ini: --dist loadgroup), so one worker builds them once.
SHARED_FOLDERS = frozenset({"full_report", "comparison_folder", "sweep_folder"})


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_tier)  # stable: the order within a tier is the files' own
    for item in items:
        if SHARED_FOLDERS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("shared-folders"))


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = simulate.main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


MINIMAL = """\
name: mini
duration: 2h
regions:
  - name: alpha
    lat: 40.0
    lon: -75.0
    pools: [{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8}]
  - name: beta
    lat: 50.0
    lon: 8.0
    pools: [{name: q, gpu: A100, replicas: 2, gpus_per_replica: 8}]
"""
