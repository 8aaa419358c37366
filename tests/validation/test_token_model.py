"""The shipped token-model constants against the measured Splitwise latencies.

Recomputes the fit from ``shared/data/splitwise_perf_model.csv`` (Llama2-70B, tensor
parallel 8, batch 1) and checks that the constants in ``sim.workload.token_model`` are the
fit, and that the model predicts measured end-to-end latencies within 10 %. Only runs where
``token_size`` <= 256 are compared: at larger sizes the measured e2e_time stops growing
with token_size (generation ended early), so token_size is not the number of tokens made.
"""
from pathlib import Path

import numpy as np
import pytest

from sim.workload.token_model import MEASURED, fit_splitwise, read_splitwise, token_service_s

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
E2E_TOLERANCE = 0.10
pytestmark = pytest.mark.skipif(not (DATA / "splitwise_perf_model.csv").is_file(),
                                reason="shared/data/splitwise_perf_model.csv is not present")


def test_shipped_constants_are_the_fit():
    fits = fit_splitwise(DATA)
    assert set(fits) == set(MEASURED)
    for name, fit in fits.items():
        shipped = MEASURED[name]
        assert shipped.prefill_ms_per_token == pytest.approx(fit["prefill_ms_per_token"], rel=1e-3)
        assert shipped.decode_ms_per_token == pytest.approx(fit["decode_ms_per_token"], rel=1e-3)
        assert shipped.base_ms == pytest.approx(fit["base_ms"], rel=1e-3, abs=0.01)
        assert fit["prefill_rmse_ms"] < 40.0 and fit["decode_std_ms"] < 1.5


@pytest.mark.parametrize("hardware,name", [("a100-80gb", "A100"), ("h100-80gb", "H100")])
def test_predicted_e2e_matches_measured(hardware, name):
    rows = [r for r in read_splitwise(DATA) if r["hardware"] == hardware and int(r["token_size"]) <= 256]
    points = sorted({(int(r["prompt_size"]), int(r["token_size"])) for r in rows})
    assert len(points) == 8
    for prompt, tokens in points:
        measured = np.median([float(r["e2e_time"]) for r in rows
                              if (int(r["prompt_size"]), int(r["token_size"])) == (prompt, tokens)])
        predicted = 1000 * token_service_s(MEASURED[name], np.array([prompt]), np.array([tokens]))[0]
        assert predicted == pytest.approx(measured, rel=E2E_TOLERANCE), (prompt, tokens)
