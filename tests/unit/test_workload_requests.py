"""The merged request batch: order, dtypes, determinism, stream independence, token model."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.scenario.model import Scenario, TokenCoefficients, TokenService
from sim.streams import Streams
from sim.workload import RequestBatch, generate_requests, token_coefficients, token_service_s
from sim.world.build import build_world
from sim.world.catalogue import gpu_spec

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("t_s", "origin", "workload", "input_tokens", "output_tokens", "service_s")


def poisson(name: str, rate: float, service: dict, origin: dict | None = None) -> dict:
    return {"name": name, "origin": origin or {"a": 1.0, "b": 1.0},
            "arrival": {"process": "poisson", "rate_per_s": rate}, "service": service}


def scenario(*workloads: dict, duration: float = 600.0, seed: int = 3) -> Scenario:
    return Scenario.model_validate({
        "name": "w", "seed": seed, "duration": duration,
        "regions": [{"name": "a", "utc_offset_h": 0.0}, {"name": "b", "utc_offset_h": 9.0}],
        "inference": list(workloads)})


def generate(s: Scenario, base_dir: Path = ROOT) -> RequestBatch:
    return generate_requests(s, build_world(s), Streams(s.seed), base_dir)


TWO = (poisson("chat", 5.0, {"dist": "tokens", "input_tokens": {"mean": 800.0, "cv": 1.0}}),
       poisson("batch", 2.0, {"dist": "lognormal", "mean_s": 4.0, "cv": 0.8}, {"b": 1.0}))


def test_batch_is_sorted_typed_and_labelled():
    batch = generate(scenario(*TWO))
    assert np.all(np.diff(batch.t_s) >= 0) and batch.t_s.max() < 600.0
    assert [getattr(batch, f).dtype for f in FIELDS] == [
        np.float64, np.int16, np.int16, np.int32, np.int32, np.float64]
    chat, other = batch.workload == 0, batch.workload == 1
    assert np.isnan(batch.service_s[chat]).all() and (batch.input_tokens[chat] >= 1).all()
    assert (batch.service_s[other] > 0).all() and (batch.input_tokens[other] == 0).all()
    assert set(batch.origin[other].tolist()) == {1}
    assert len(batch) == len(batch.t_s)


def test_no_workloads_gives_an_empty_batch():
    batch = generate(scenario())
    assert len(batch) == 0
    assert [getattr(batch, f).dtype for f in FIELDS] == [
        np.float64, np.int16, np.int16, np.int32, np.int32, np.float64]


def test_same_seed_same_arrays_other_seed_other_arrays():
    first, second = generate(scenario(*TWO)), generate(scenario(*TWO))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(first, f), getattr(second, f))
    assert not np.array_equal(generate(scenario(*TWO, seed=4)).t_s[:10], first.t_s[:10])


def digest(batch: RequestBatch) -> str:
    h = hashlib.sha256()
    for f in FIELDS:
        h.update(np.ascontiguousarray(getattr(batch, f)).tobytes())
    return h.hexdigest()


def test_arrays_do_not_depend_on_the_hash_seed():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from tests.unit.test_workload_requests import TWO, scenario, generate, digest; "
            "print(digest(generate(scenario(*TWO))))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == digest(generate(scenario(*TWO)))


def test_changing_one_workload_leaves_the_other_alone():
    base = generate(scenario(*TWO))
    faster_b = generate(scenario(TWO[0], {**TWO[1], "arrival": {"process": "poisson", "rate_per_s": 7.0}}))
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(base, f)[base.workload == 0],
                                      getattr(faster_b, f)[faster_b.workload == 0])
    assert np.sum(faster_b.workload == 1) > np.sum(base.workload == 1)


def test_ties_keep_workload_then_file_order(tmp_path):
    (tmp_path / "same.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n0,1,1\n0,2,2\n0,3,3\n10,4,4\n")
    replay = {"origin": {"a": 1.0}, "service": {"dist": "tokens"},
              "arrival": {"process": "trace", "path": "same.csv", "loop": False}}
    batch = generate(scenario({"name": "x", **replay}, {"name": "y", **replay}), tmp_path)
    assert batch.workload.tolist() == [0, 0, 0, 1, 1, 1, 0, 1]
    assert batch.input_tokens.tolist() == [1, 2, 3, 1, 2, 3, 4, 4]


def test_unknown_gpu_in_coefficients_is_reported():
    bad = poisson("chat", 1.0, {"dist": "tokens", "coefficients": {
        "TPUv9": {"prefill_ms_per_token": 0.1, "decode_ms_per_token": 20.0}}})
    with pytest.raises(ScenarioError, match=r"^<scenario>: inference\[0\]\.service\.coefficients\.TPUv9: "
                                            r"unknown GPU type \(valid: A100, "):
        generate(scenario(bad))


def test_token_coefficients_override_by_name_or_alias():
    mine = TokenCoefficients(prefill_ms_per_token=0.5, decode_ms_per_token=10.0, base_ms=3.0)
    assert token_coefficients(TokenService(dist="tokens", coefficients={"H100": mine}), gpu_spec("H100")) == mine
    assert token_coefficients(TokenService(dist="tokens", coefficients={"H100-SXM5": mine}), gpu_spec("H100")) == mine
    assert token_coefficients(TokenService(dist="tokens", coefficients={"H100": mine}), gpu_spec("A100")) != mine


def test_default_coefficients_extrapolate_from_the_h100():
    service = TokenService(dist="tokens")
    h100, h200 = token_coefficients(service, gpu_spec("H100")), token_coefficients(service, gpu_spec("H200"))
    # H200: the same compute, 4.8 / 3.35 times the memory bandwidth.
    assert h200.decode_ms_per_token == pytest.approx(h100.decode_ms_per_token * 3.35 / 4.8)
    assert h200.prefill_ms_per_token == pytest.approx(h100.prefill_ms_per_token * 989.4 / 989)
    b200 = token_coefficients(service, gpu_spec("B200"))
    assert b200.prefill_ms_per_token == pytest.approx(h100.prefill_ms_per_token * 989.4 / 2250)
    assert token_coefficients(service, gpu_spec("A100")).decode_ms_per_token > h100.decode_ms_per_token


def test_token_service_time_by_hand():
    coeff = TokenCoefficients(prefill_ms_per_token=0.1, decode_ms_per_token=30.0, base_ms=20.0)
    # (20 + 0.1 * 1000 + 30 * 100) / 1000 = 3.12 s
    got = token_service_s(coeff, np.array([1000, 0], dtype=np.int32), np.array([100, 1], dtype=np.int32))
    assert got.tolist() == pytest.approx([3.12, 0.05])
