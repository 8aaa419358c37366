"""Every shipped scenario validates, runs, and keeps its books: requests are conserved."""
import json

import pytest

from sim.scenario import load_scenario
from tests.conftest import SCENARIOS, run_cli

FILES = sorted(SCENARIOS.rglob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SCENARIOS)) for p in FILES])
def test_shipped_scenario_runs(path, tmp_path):
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    run_dir = tmp_path / "run"
    assert (run_dir / "_SUCCESS").exists() and (run_dir / "charts" / "overview.png").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["utilization"]["mean"] <= 1.0
    inference = summary.get("inference")
    if inference is not None:
        assert inference["arrived"] == inference["completed"] + inference["dropped"] + inference["in_flight"]
        assert inference["dropped"] == inference["rejected"] + inference["timed_out"]
        for part in ("by_origin", "by_workload"):
            assert sum(v["arrived"] for v in inference[part].values()) == inference["arrived"]
        assert (run_dir / "charts" / "latency_cdf.png").exists()
    # The resolved scenario is itself a valid scenario that means the same thing.
    again = load_scenario(run_dir / "resolved.yaml")
    assert again.resolved == load_scenario(path).resolved
