"""A command imports only what it uses: ``predict`` and ``validate`` load neither SimPy nor
matplotlib, ``run --no-charts`` no matplotlib (issue 14). Each command runs in a fresh
interpreter that reports which of the heavy packages it ended up with; the same probe is
shown to see them when a command does use them."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SCENARIOS

HEAVY = ("simpy", "matplotlib")
PROBE = ("import sys, simulate\n"
         "code = simulate.main(sys.argv[1:])\n"
         f"print('loaded:', *sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
         "sys.exit(code)\n")


def loaded_after(*argv: str) -> set[str]:
    """The heavy packages in ``sys.modules`` after ``simulate.py ARGV`` in a new process."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.splitlines()[-1].split()[1:])


@pytest.mark.parametrize("argv", [
    ("predict", "--t", "1"),
    ("predict", "--t", "1", "--scenario", str(SCENARIOS / "default.yaml")),
    ("validate", str(SCENARIOS / "default.yaml"), str(SCENARIOS / "residency.yaml"),
     str(SCENARIOS / "llama3_reliability.yaml")),
], ids=["predict", "predict-scenario", "validate"])
def test_light_commands_import_neither_simpy_nor_matplotlib(argv):
    assert loaded_after(*argv) == set()


def test_run_without_charts_imports_simpy_only(tmp_path):
    mmc = SCENARIOS / "validation" / "mmc.yaml"
    assert loaded_after("run", str(mmc), "--set", "duration=30m", "--no-charts", "--out", str(tmp_path / "a")) == {
        "simpy"}
    assert not (tmp_path / "a" / "charts").exists()
    # The probe sees matplotlib when the command does draw.
    assert loaded_after("run", str(mmc), "--set", "duration=30m", "--out", str(tmp_path / "b")) == set(HEAVY)
    assert (tmp_path / "b" / "charts" / "overview.png").is_file()
