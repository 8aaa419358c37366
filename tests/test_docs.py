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
    lines = re.findall(r"^(python -m pip install -r requirements.txt && (.+?))\s+#", readme, re.M)
    assert [command for _, command in lines[:2]] == ["python simulate.py", "python -m pytest -q"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == lines[1][0]  # CI ends with README's test line, word for word
