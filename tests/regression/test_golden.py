"""Golden summaries: regression guards, not validation. A change in these numbers must be
explained (a model change, a fixed bug) and the files regenerated with
``MERIDIAN_UPDATE_GOLDEN=1 python -m pytest tests/regression``."""
import json
import os

import pytest

from tests.conftest import ROOT, SCENARIOS, run_cli

GOLDEN = ROOT / "tests" / "regression" / "golden"
CASES = {"two_regions": ("two_regions.yaml", []),
         "mmc_1h": ("validation/mmc.yaml", ["--set", "duration=1h"]),
         "demand_surprise_2h": ("demand_surprise.yaml", ["--set", "duration=2h"])}


@pytest.mark.parametrize("name", sorted(CASES))
def test_summary_matches_golden(name, tmp_path):
    scenario, extra = CASES[name]
    result = run_cli("run", str(SCENARIOS / scenario), "--out", str(tmp_path / "r"), *extra)
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("MERIDIAN_UPDATE_GOLDEN"):
        path.write_text(json.dumps(summary, indent=2) + "\n")
    assert summary == json.loads(path.read_text())
