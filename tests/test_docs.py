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
    lines = re.findall(r"^(python -m pip install -r (\S+) && (.+?))\s+#", readme, re.M)
    assert [(requirements, command) for _, requirements, command in lines[:2]] == [
        ("requirements.txt", "python simulate.py"), ("requirements-dev.txt", "python -m pytest -q")]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == lines[1][0]  # CI ends with README's test line, word for word


CHECKERS = ("python -m ruff check sim simulate.py tests bench", "python -m mypy sim")


def test_ci_runs_the_checkers_the_readme_names():
    readme = " ".join((ROOT / "README.md").read_text().split())
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in CHECKERS:
        assert f"`{command}`" in readme
        assert command in ci


def _unpinned(requirements: str) -> list[str]:
    """Requirement lines that are neither an include nor an exact ``name==version`` pin."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.splitlines())
    return [line for line in lines
            if line and not line.startswith("-r ") and not re.fullmatch(r"[\w.\[\]-]+==[\w.]+", line)]


def test_dev_requirements_add_exact_pins_of_the_checkers_to_the_runtime_ones():
    text = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in text.splitlines()
    assert _unpinned(text) == []
    assert {"ruff", "mypy"} <= {line.split("==")[0] for line in text.splitlines() if "==" in line}
    assert _unpinned("-r requirements.txt\nruff>=0.17  # floating\nmypy==2.4.1\n") == ["ruff>=0.17"]
