"""Docs that are generated or promised stay true."""
import re

from sim.scenario.docs import END, START, reference_markdown
from tests.conftest import ROOT, SCENARIOS


def test_scenario_key_reference_is_current():
    text = (SCENARIOS / "README.md").read_text()
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == reference_markdown().strip(), "run: python -m sim.scenario.docs"


def test_every_shipped_scenario_is_listed():
    text = (SCENARIOS / "README.md").read_text()
    for path in SCENARIOS.rglob("*.yaml"):
        assert f"`{path.relative_to(SCENARIOS)}`" in text


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python -m pip install -r requirements.txt && (.+?)\s+#", readme, re.M)
    assert commands[:2] == ["python simulate.py", "python -m pytest -q"]
    assert "python -m pytest -q\n" in (ROOT / ".ci" / "run").read_text()
