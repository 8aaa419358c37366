"""Every trace file a scenario names is read at the boundary: ``validate`` and ``run`` report a
bad file alike (file and line, exit 2, no traceback), and ``run`` writes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario import load_scenario
from sim.workload import check_inputs
from tests.conftest import SHARED_DATA, run_cli

ONE_POOL = """\
name: traces
duration: 1h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8}]}
"""
GAVEL = (ONE_POOL + """\
training:
  - name: g
    jobs: {source: gavel, path: trace.csv, throughputs_path: thr.csv}
""", {"trace.csv": "job_type,total_steps,arrival_time_s,scale_factor_gpus\nLM,500,0,1\n",
      "thr.csv": "gpu_type,job_type,scale_factor_gpus,throughput_steps_per_s\nv100,LM,1,5.0\n"})
# Each kind: its scenario, its good files, and (the file under test, the line of the
# scenario field naming it, that field).
KINDS = {
    "request": (ONE_POOL + """\
inference:
  - name: replay
    origin: {a: 1}
    arrival: {process: trace, path: req.csv}
    service: {dist: tokens}
""", {"req.csv": "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,2\n5,20,3\n"},
        ("req.csv", 8, "inference[0].arrival.path")),
    "gavel": (*GAVEL, ("trace.csv", 7, "training[0].jobs.path")),
    "gavel throughputs": (*GAVEL, ("thr.csv", 7, "training[0].jobs.throughputs_path")),
    "alibaba": (ONE_POOL + """\
training:
  - name: al
    jobs: {source: alibaba, path: pods.csv}
""", {"pods.csv": "num_gpu,gpu_milli,creation_time,deletion_time,scheduled_time\n1,1000,0,60,0\n"},
        ("pods.csv", 7, "training[0].jobs.path")),
    "failure": (ONE_POOL + "failures:\n  trace: fail.csv\n",
                {"fail.csv": "time_s,region,pool,replicas,duration_s\n60,a,p,1,60\n"},
                ("fail.csv", 6, "failures.trace")),
}
# A malformed line 2 for each kind, and the problem it gives.
BAD_ROWS = {
    "request": ("5,x,3", "req.csv:2: ContextTokens: must be a non-negative integer (got 'x')"),
    "gavel": ("LM,-3,0,1", "trace.csv:2: total_steps: must be a positive integer (got '-3')"),
    "gavel throughputs": ("v100,LM,1,fast", "thr.csv:2: throughput_steps_per_s: must be a non-negative number "
                                            "(got 'fast')"),
    "alibaba": ("one,1000,0,60,0", "pods.csv:2: num_gpu: must be a non-negative integer (got 'one')"),
    "failure": ("60,a,zz,1,60", "fail.csv:2: region,pool: no such pool in the scenario (got 'a/zz')"),
}


def write_case(tmp_path: Path, kind: str, line2: str | None = None, raw: bytes | None = None) -> tuple[Path, Path]:
    """The kind's scenario and good files; its trace's line 2 replaced by ``line2`` or the
    whole trace by ``raw``. Returns (scenario, the trace file)."""
    text, files, (name, _, _) = KINDS[kind]
    for file, content in files.items():
        (tmp_path / file).write_text(content)
    trace = tmp_path / name
    if line2 is not None:
        header = trace.read_text().splitlines()[0]
        trace.write_text(f"{header}\n{line2}\n")
    if raw is not None:
        trace.write_bytes(raw)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text)
    return scenario, trace


def assert_refused(tmp_path: Path, scenario: Path, expected: str) -> None:
    """``validate`` and ``run`` both exit 2 with ``expected`` on stderr; ``run`` writes nothing."""
    root = tmp_path / "results"
    for command in (["validate", str(scenario)], ["run", str(scenario), "--root", str(root)]):
        result = run_cli(*command)
        assert result.code == 2, (command, result.err)
        assert "Traceback" not in result.err
        assert expected in result.err.splitlines(), result.err
    assert not root.exists()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_good_files_validate(tmp_path, kind):
    scenario, _ = write_case(tmp_path, kind)
    result = run_cli("validate", str(scenario))
    assert (result.code, result.err) == (0, "")


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_a_malformed_trace_is_refused_by_validate_and_run(tmp_path, kind):
    line2, expected = BAD_ROWS[kind]
    scenario, _ = write_case(tmp_path, kind, line2)
    assert_refused(tmp_path, scenario, expected)


def test_a_gavel_job_type_without_a_throughput_is_refused(tmp_path):
    scenario, _ = write_case(tmp_path, "gavel", "CycleGAN,10,0,1")
    assert_refused(tmp_path, scenario, "trace.csv:2: job_type: no v100 throughput in thr.csv (got 'CycleGAN')")


def test_a_looped_request_trace_with_one_time_is_refused(tmp_path):
    scenario, trace = write_case(tmp_path, "request")
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n5,20,3\n")
    assert_refused(tmp_path, scenario, f"{scenario}:8: inference[0].arrival.loop: a looped trace needs "
                                       "requests at two or more distinct times (got True)")


@pytest.mark.parametrize(("kind", "line2", "expected"), [
    ("failure", "1e20,a,p,1,60", "fail.csv:2: time_s: must be at most 1e+12 s (got '1e20')"),
    ("failure", "60,a,p,1,1e20", "fail.csv:2: duration_s: must be at most 1e+12 s (got '1e20')"),
    ("failure", "60,a,p,1,inf", "fail.csv:2: duration_s: must be at most 1e+12 s (got 'inf')"),
    ("failure", "nan,a,p,1,60", "fail.csv:2: <top>: needs time_s >= 0, replicas >= 1, duration_s > 0 "
                                "(got 'nan,a,p,1,60')"),
    ("failure", "60,a,p,1000001,60", "fail.csv:2: replicas: must be at most 1,000,000 (got '1000001')"),
    ("failure", "60,a,p," + "9" * 400 + ",60",  # failed one by one, it ran for ever
     "fail.csv:2: replicas: must be at most 1,000,000 (got '" + "9" * 76 + "...)"),
    ("request", "1e20,20,3", "req.csv:2: TIMESTAMP: must be within 1e+12 s of zero (got '1e20')"),
    ("request", "-inf,20,3", "req.csv:2: TIMESTAMP: must be a date-time or a number of seconds (got '-inf')"),
    ("gavel", "LM,500,1e20,1", "trace.csv:2: arrival_time_s: must be at most 1e+12 s (got '1e20')"),
    ("alibaba", "1,1000,0,inf,0", "pods.csv:2: deletion_time: must be at most 1e+12 s (got 'inf')"),
])
def test_a_time_too_large_or_not_finite_is_a_problem(tmp_path, kind, line2, expected):
    scenario, _ = write_case(tmp_path, kind, line2)
    assert_refused(tmp_path, scenario, expected)


def test_a_date_time_whose_offset_leaves_the_calendar_is_a_problem(tmp_path):
    scenario, trace = write_case(tmp_path, "request")
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,1\n"
                     "0001-01-01T00:00:00+01:00,1,1\n")
    assert_refused(tmp_path, scenario, "req.csv:3: TIMESTAMP: must be a date-time or a number of seconds "
                                       "(got '0001-01-01T00:00:00+01:00')")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_200_kb_field_is_a_problem(tmp_path, kind):
    name = KINDS[kind][2][0]
    scenario, _ = write_case(tmp_path, kind, "7" * 200_000)
    assert_refused(tmp_path, scenario,
                   f"{name}:2: <top>: cannot be split into CSV fields: field larger than field limit (131072)")


@pytest.mark.parametrize(("kind", "line2", "expected"), [
    ("request", "5,{},3", "req.csv:2: ContextTokens: must be a non-negative integer (got '999"),
    ("alibaba", "{},1000,0,60,0", "pods.csv:2: num_gpu: must be a non-negative integer (got '999"),
    ("failure", "60,a,p,{},60", "fail.csv:2: <top>: time_s and duration_s must be numbers, replicas an integer"),
])
def test_a_5000_digit_integer_is_a_problem(tmp_path, kind, line2, expected):
    # Under the csv field limit, but over int()'s 4,300 digits.
    scenario, _ = write_case(tmp_path, kind, line2.format("9" * 5000))
    result = run_cli("validate", str(scenario))
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.startswith(expected), result.err


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_file_that_is_not_utf8_is_a_problem(tmp_path, kind):
    name = KINDS[kind][2][0]
    scenario, _ = write_case(tmp_path, kind, raw=b"time\xff\xfe,x\n1,2\n")
    assert_refused(tmp_path, scenario, f"{name}: <top>: is not a UTF-8 text file")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_folder_or_a_missing_file_is_reported_at_the_scenario_field(tmp_path, kind):
    name, line, field = KINDS[kind][2]
    scenario, trace = write_case(tmp_path, kind)
    trace.unlink()
    trace.mkdir()
    assert_refused(tmp_path, scenario, f"{scenario}:{line}: {field}: names a folder, not a file (got '{name}')")
    trace.rmdir()
    assert_refused(tmp_path, scenario, f"{scenario}:{line}: {field}: file not found (looked in {tmp_path}) "
                                       f"(got '{name}')")


def test_every_bad_trace_is_reported_at_once_and_a_shared_file_once(tmp_path):
    scenario, _ = write_case(tmp_path, "request", "5,x,3")
    text = scenario.read_text()
    replay = text[text.index("  - name: replay"):]
    scenario.write_text(text + replay.replace("name: replay", "name: again")
                        + "failures:\n  trace: fail.csv\n")
    (tmp_path / "fail.csv").write_text("time_s,region,pool,replicas,duration_s\n1e20,a,p,1,60\n")
    result = run_cli("validate", str(scenario))
    assert result.code == 2
    assert result.err.splitlines() == ["req.csv:2: ContextTokens: must be a non-negative integer (got 'x')",
                                       "fail.csv:2: time_s: must be at most 1e+12 s (got '1e20')"]


@pytest.mark.skipif(not (SHARED_DATA / "AzureLLMInferenceTrace_conv.csv").is_file(),
                    reason=f"shared public data not found at {SHARED_DATA}")
def test_the_shared_traces_check_cleanly(tmp_path):
    (tmp_path / "s.yaml").write_text(ONE_POOL + f"""\
inference:
  - name: conv
    origin: {{a: 1}}
    arrival: {{process: trace, path: {SHARED_DATA / "AzureLLMInferenceTrace_conv.csv"}}}
    service: {{dist: tokens}}
training:
  - name: g
    jobs: {{source: gavel, path: {SHARED_DATA / "gavel_msr_vc_ee9e8c_seed0.csv"},
           throughputs_path: {SHARED_DATA / "gavel_isolated_throughputs_steps_per_s.csv"}}}
  - name: al
    jobs: {{source: alibaba, path: {SHARED_DATA / "alibaba_openb_pod_list_default.csv"}}}
""")
    assert check_inputs(load_scenario(tmp_path / "s.yaml")) == []
