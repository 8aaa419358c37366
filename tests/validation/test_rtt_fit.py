"""Validation of the distance -> RTT fit and the shipped world tables against the shared data.

The shipped constants in :mod:`sim.world.geo` and the CSVs in ``sim/world/data`` must be
what ``python -m sim.world.derive`` makes from the public data today; the fit must also be
physically plausible (fibre cannot beat 0.01 ms of RTT per km).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.world import geo
from sim.world.catalogue import DATA_DIR
from sim.world.derive import fit_pairs

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(
    not (SHARED / "aws_interregion_rtt_p50_1y_cloudping.json").is_file(),
    reason=f"shared public data not found at {SHARED}; these tests refit from it")


@pytest.fixture(scope="module")
def refit() -> geo.RttFit:
    km, rtt = fit_pairs(SHARED)
    return geo.fit_rtt_model(km, rtt)


def test_shipped_coefficients_match_the_refit(refit):
    assert refit.intercept_ms == pytest.approx(geo.RTT_FIT_INTERCEPT_MS, rel=1e-5)
    assert refit.ms_per_km == pytest.approx(geo.RTT_FIT_MS_PER_KM, rel=1e-5)
    assert refit.n_pairs == geo.RTT_FIT_N_PAIRS == 22 * 21 // 2 + 32 * 31 // 2


def test_shipped_error_figures_match_the_refit(refit):
    assert refit.mae_ms == pytest.approx(geo.RTT_FIT_MAE_MS, abs=0.005)
    assert refit.rmse_ms == pytest.approx(geo.RTT_FIT_RMSE_MS, abs=0.005)
    assert refit.r2 == pytest.approx(geo.RTT_FIT_R2, abs=5e-5)
    assert refit.p90_abs_error_ms == pytest.approx(geo.RTT_FIT_P90_ABS_ERROR_MS, abs=0.005)


def test_fit_is_physically_plausible(refit):
    assert 0.01 <= refit.ms_per_km <= 0.03  # at least light in fibre, at most 3x detour
    assert 0.0 <= refit.intercept_ms <= 50.0
    assert refit.r2 > 0.5


def test_fit_is_unbiased_on_the_data():
    km, rtt = fit_pairs(SHARED)
    residuals = rtt - (geo.RTT_FIT_INTERCEPT_MS + geo.RTT_FIT_MS_PER_KM * km)
    assert abs(residuals.mean()) < 0.01  # least squares with an intercept: residuals sum to 0


def test_derive_regenerates_the_shipped_tables(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sim.world.derive", str(SHARED), "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "n_pairs=727" in result.stdout
    for name in ("gpus.csv", "regions.csv", "rtt_ms.csv"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
