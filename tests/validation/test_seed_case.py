"""The seed's published behaviour, checked against its own formulas by hand."""
import csv

import pytest

from tests.conftest import SCENARIOS, run_cli


def test_seed_case_shares_at_every_hour(tmp_path):
    result = run_cli("run", str(SCENARIOS / "seed_case.yaml"), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    rows = list(csv.DictReader(open(tmp_path / "run" / "timeseries.csv")))
    assert len(rows) == 24 * 4
    expected = {"eastus": 1 / 3, "westeurope": 1 / 3, "japaneast": 1 / 3, "centralus": 0.0}
    for row in rows:
        assert float(row["share"]) == pytest.approx(expected[row["region"]], abs=1e-9)
        if row["region"] == "centralus":
            assert float(row["active_gpus"]) == 0  # the standby stays off
        hour = float(row["t_start_s"]) / 3600
        assert float(row["load"]) == pytest.approx(100 + 0.2 * hour)  # L = L0 + alpha (t - T0)
