"""The command line as a user meets it: exit codes, messages, run folders, determinism."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MINIMAL, ROOT, SCENARIOS


def run_process(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "simulate.py"), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=600)


BAD_FILES = {
    "unknown_key.yaml": (MINIMAL + "colour: blue\n", "unknown_key.yaml:12: colour: unknown key; expected one of: "
                         "name, description, seed, duration, warmup, fidelity, regions, links, network, inference, "
                         "datasets, training, scheduler, metrics, transfers, failures, consistency, plan (got 'blue')"),
    "misspelt.yaml": (MINIMAL + "sede: 3\n", "misspelt.yaml:12: sede: unknown key; did you mean 'seed'? (got 3)"),
    "duplicate.yaml": (MINIMAL + "duration: 3h\n",
                       "duplicate.yaml:12: duration: duplicate key (first defined on line 2)"),
    "replicas.yaml": (MINIMAL.replace("replicas: 4", "replicas: 0"),
                      "replicas.yaml:7: regions[0].pools[0].replicas: must be >= 1 (got 0)"),
    "link.yaml": (MINIMAL + "links:\n  - {a: alpha, b: mars}\n",
                  "link.yaml:13: links[0].b: unknown region (known: alpha, beta) (got 'mars')"),
    "duration.yaml": (MINIMAL.replace("2h", "2 weeks"),
                      "duration.yaml:2: duration: must be a duration such as 500ms, 90s, 15m, 24h, 7d "
                      "or a number of seconds (got '2 weeks')"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_exits_2_with_located_message_and_no_traceback(tmp_path, name):
    text, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    for command in (["validate", str(path)], ["run", str(path), "--root", str(tmp_path / "r")]):
        result = run_process(*command)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert expected.split(":", 1)[1] in result.stderr
        assert result.stderr.startswith(str(path))
    assert not (tmp_path / "r").exists()


def test_several_errors_reported_together(tmp_path, cli):
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL.replace("replicas: 4", "replicas: 0").replace("lat: 50.0", "lat: 95"))
    result = cli("validate", str(path))
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}:7: regions[0].pools[0].replicas: must be >= 1 (got 0)",
        f"{path}:9: regions[1].lat: must be <= 90 (got 95)",
    ]


def test_validate_every_shipped_scenario(cli):
    files = sorted(str(p) for p in SCENARIOS.rglob("*.yaml"))
    result = cli("validate", *files)
    assert result.code == 0, result.err
    assert result.out.count(": ok") == len(files)


def test_schema_is_json_schema_with_descriptions(cli):
    result = cli("schema")
    schema = json.loads(result.out)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["additionalProperties"] is False
    assert "regions" in schema["required"]
    assert schema["$defs"]["Pool"]["properties"]["replicas"]["minimum"] == 1


def test_predict_seed_parameters_by_hand(cli):
    # L(1) = 100 + 0.2 * (1 - 0) = 100.2; R = 4 * 0.25 * 100.2 / 100 = 1.002
    assert json.loads(cli("predict", "--t", "1").out) == {"load": 100.2, "resources": 1.002}
    assert json.loads(cli("predict", "--t", "10").out) == {"load": 102.0, "resources": 1.02}


def test_predict_from_a_scenario(cli):
    out = json.loads(cli("predict", "--t", "5", "--scenario", str(SCENARIOS / "two_regions.yaml")).out)
    # two-regions: L0 100, alpha 0.2 -> 101; weights 0.5 + 0.5, L_max 200 -> 0.505
    assert out == {"load": 101.0, "resources": 0.505}


def test_run_folder_contents(tmp_path, cli):
    result = cli("run", str(SCENARIOS / "two_regions.yaml"), "--root", str(tmp_path))
    assert result.code == 0, result.err
    run_dir = tmp_path / "two-regions" / result.out.splitlines()[-1].rsplit("/", 1)[-1]
    assert str(run_dir) == result.out.splitlines()[-1]
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["_SUCCESS", "charts", "manifest.json", "resolved.yaml", "scenario.yaml",
                     "summary.json", "timeseries.csv"]
    assert (run_dir / "scenario.yaml").read_text() == (SCENARIOS / "two_regions.yaml").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["seed"] == 7 and manifest["events_processed"] > 0
    assert run_dir.name.endswith(f"-{manifest['config_sha256'][:8]}-s7")
    assert {"python", "simpy", "numpy", "pydantic"} <= set(manifest["versions"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= {"scenario", "seed", "sim_time_s", "load", "allocation", "utilization"}
    assert summary["allocation"]["by_region"] == {"us-east": 0.5, "eu-west": 0.5}
    png = (run_dir / "charts" / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_a_second_run_into_the_same_out_leaves_the_first_untouched(tmp_path, cli):
    out = tmp_path / "run"
    first = cli("run", str(SCENARIOS / "two_regions.yaml"), "--out", str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    second = cli("run", str(SCENARIOS / "two_regions.yaml"), "--out", str(out), "--seed", "8")
    assert first.out.splitlines()[-1] == str(out)
    assert second.out.splitlines()[-1] == str(out) + "-2"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert json.loads((tmp_path / "run-2" / "summary.json").read_text())["seed"] == 8


def test_set_override_lands_in_resolved_yaml(tmp_path, cli):
    result = cli("run", str(SCENARIOS / "two_regions.yaml"), "--out", str(tmp_path / "o"),
                 "--set", "regions.eu-west.pools.a100.replicas=48", "--set", "duration=2h")
    assert result.code == 0, result.err
    resolved = (tmp_path / "o" / "resolved.yaml").read_text()
    assert "replicas: 48" in resolved and "duration: 7200.0" in resolved
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["overrides"] == ["regions.eu-west.pools.a100.replicas=48", "duration=2h"]


def test_same_seed_is_byte_identical_across_processes_and_hash_seeds(tmp_path):
    outputs = []
    for i, hash_seed in enumerate(("0", "12345")):
        out = tmp_path / f"r{i}"
        # Two hours of the default scenario (past its one-hour warm-up): batching replicas, the
        # scheduler's ticks, every region; what could differ between processes runs in any hour.
        result = run_process("run", str(SCENARIOS / "default.yaml"), "--out", str(out), "--set", "duration=2h",
                             env={"PYTHONHASHSEED": hash_seed})
        assert result.returncode == 0, result.stderr
        outputs.append({n: (out / n).read_bytes() for n in ("summary.json", "timeseries.csv", "resolved.yaml")})
    assert outputs[0] == outputs[1]


def test_no_arguments_runs_the_default_scenario(tmp_path):
    result = run_process(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("results/default/") and (tmp_path / lines[-1] / "_SUCCESS").exists()
    # The closing summary: latency, TTFT and TPOT (batching replicas), SLO attainment, drops, GPU-hours, cost.
    assert lines[1].startswith("default: seed 42, 24 h simulated (23 h measured after the warm-up)")
    assert lines[2].startswith("  requests: ") and " dropped (" in lines[2]
    assert lines[3].startswith("  latency p50 ") and "; TTFT p50 " in lines[3] and "; TPOT p50 " in lines[3]
    assert lines[4].startswith("  SLO attainment ") and lines[5].startswith("  GPU-hours: ")
    assert "null" not in result.stdout and "None" not in result.stdout


def test_predict_refuses_what_it_cannot_evaluate(cli):
    result = cli("predict", "--t", "1", "--scenario", str(SCENARIOS / "demand_surprise.yaml"))
    assert result.code == 2 and "observed load depends on simulated arrivals" in result.err
    result = cli("predict", "--t", "1", "--scenario", str(SCENARIOS / "follow_the_sun.yaml"))
    assert result.code == 2 and "predict needs a load model" in result.err


def test_run_prints_its_estimate_and_refuses_a_run_over_budget(tmp_path, cli):
    mmc = str(SCENARIOS / "validation" / "mmc.yaml")
    result = cli("run", mmc, "--set", "inference.0.arrival.rate_per_s=1.0e+6", "--set", "duration=10m",
                 "--set", "warmup=0", "--root", str(tmp_path))
    assert result.code == 2
    assert result.out == "estimate: about 600 million requests, 1.2 billion events, 210 GB of memory, 30 min\n"
    assert result.err.splitlines()[0] == (
        "--set inference.0.arrival.rate_per_s=1.0e+6: inference[0].arrival.rate_per_s: about 600 million requests, "
        "over the budget of 20 million (--max-requests, or --force) (got 1000000.0)")
    assert list(tmp_path.iterdir()) == []  # refused before any folder exists
    small = cli("run", mmc, "--set", "duration=30m", "--set", "warmup=0", "--root", str(tmp_path),
                "--max-memory", "50MB")
    assert small.code == 2 and "over the budget of 50 MB (--max-memory, or --force)" in small.err
    forced = cli("run", mmc, "--set", "duration=30m", "--set", "warmup=0", "--root", str(tmp_path),
                 "--max-memory", "50MB", "--force")
    assert forced.code == 0, forced.err
    assert forced.out.splitlines()[0] == "estimate: about 13,000 requests, 26,000 events, 120 MB of memory, 1 s"


def test_validate_prints_the_estimate_and_warns_above_the_budget(cli):
    result = cli("validate", str(SCENARIOS / "two_regions.yaml"), "--set", "metrics.bucket=0.001")
    assert result.code == 0
    assert result.out == (f"{SCENARIOS / 'two_regions.yaml'}: ok (no requests, 290 events, 290 GB of memory, "
                          "2.4 h)\n")
    assert result.err.startswith("warning: --set metrics.bucket=0.001: metrics.bucket: about 290 GB of memory for "
                                 "170 million time-series rows (duration / metrics.bucket, times 2 regions)")
    assert result.err.endswith("; run refuses it\n")


@pytest.mark.parametrize("args, message", [
    (["predict", "--t", "nan"], "argument --t: must be a finite number (got 'nan')"),
    (["predict", "--t", "inf"], "argument --t: must be a finite number (got 'inf')"),
    (["predict", "--t", "1e308", "--scenario", str(SCENARIOS / "two_regions.yaml")],
     "t: the load is not a finite number at t = 1e+308 h (got inf)"),
    (["serve", "--max-wall", "inf"], "argument --max-wall: must be a finite number (got 'inf')"),
    (["serve", "--max-wall", "0"], "argument --max-wall: must be > 0 (got '0')"),
    (["run", "--max-memory", "lots"], "argument --max-memory: must be a size such as 512MB, 8GB, 1.5GiB or a number "
                                      "of bytes (got 'lots')"),
    (["run", "--max-requests", "-1"], "argument --max-requests: must be > 0 (got '-1')"),
])
def test_numbers_on_the_command_line_must_be_finite(cli, args, message):
    result = cli(*args)
    assert result.code == 2
    assert result.err.strip().splitlines()[-1].endswith(message)


def test_predict_overflow_is_one_line_without_a_numpy_warning():
    # In a process of its own: pytest records warnings, a user's terminal printed numpy's
    # "RuntimeWarning: overflow encountered" before the message.
    done = subprocess.run([sys.executable, str(ROOT / "simulate.py"), "predict", "--t", "1e300", "--scenario",
                           str(SCENARIOS / "two_regions.yaml"), "--set", "scheduler.load_model.alpha=1.0e+10"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, "t: the load is not a finite number at t = 1e+300 h (got inf)\n")
