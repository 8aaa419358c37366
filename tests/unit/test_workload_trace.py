"""Trace replay: parsing, scaling, looping, token preservation and pinned error messages."""
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.workload import generate_requests, read_trace, replay_trace
from sim.world.build import build_world

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SMALL = """\
TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:00:10.0000000,100,10
2023-11-16 18:00:00.0000000,200,20
2023-11-16 18:00:30.5000000,300,30
"""


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def trace_scenario(path: str, duration: float, time_scale: float = 1.0, loop: bool = True,
                   service: dict | None = None) -> Scenario:
    return Scenario.model_validate({
        "name": "t", "duration": duration,
        "regions": [{"name": "a", "utc_offset_h": 0.0}, {"name": "b", "utc_offset_h": 1.0}],
        "inference": [{"name": "replay", "origin": {"a": 3.0, "b": 1.0},
                       "arrival": {"process": "trace", "path": path, "time_scale": time_scale, "loop": loop},
                       "service": service or {"dist": "tokens"}}]})


def generate(scenario: Scenario, base_dir: Path, seed: int = 0):
    return generate_requests(scenario, build_world(scenario), Streams(seed), base_dir, "scen.yaml")


def test_read_sorts_stably_and_starts_at_zero(tmp_path):
    trace = read_trace(write(tmp_path, SMALL), "trace.csv")
    assert trace.t_s.tolist() == [0.0, 10.0, 30.5]
    assert trace.input_tokens.tolist() == [200, 100, 300]
    assert trace.output_tokens.tolist() == [20, 10, 30]
    assert trace.period_s == pytest.approx(30.5 * 3 / 2)   # span + mean gap


def test_number_of_seconds_timestamps(tmp_path):
    trace = read_trace(write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n5.5,1,2\n2,3,4\n"), "x.csv")
    assert trace.t_s.tolist() == [0.0, 3.5]


def test_replay_scales_and_loops(tmp_path):
    trace = read_trace(write(tmp_path, SMALL), "trace.csv")
    t, rows = replay_trace(trace, time_scale=2.0, loop=True, duration_s=51.0)
    period = 45.75 / 2
    expected = [0.0, 5.0, 15.25, period, period + 5.0, period + 15.25, 2 * period, 2 * period + 5.0]
    assert t.tolist() == pytest.approx(expected)
    assert rows.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


def test_replay_without_loop_stops_at_the_end_of_the_trace(tmp_path):
    trace = read_trace(write(tmp_path, SMALL), "trace.csv")
    t, rows = replay_trace(trace, time_scale=1.0, loop=False, duration_s=1000.0)
    assert t.tolist() == [0.0, 10.0, 30.5]
    t, _ = replay_trace(trace, time_scale=1.0, loop=False, duration_s=20.0)
    assert t.tolist() == [0.0, 10.0]


def test_generated_requests_keep_the_trace_tokens(tmp_path):
    write(tmp_path, SMALL)
    batch = generate(trace_scenario("trace.csv", duration=100.0), tmp_path)
    assert len(batch) == 7   # period 45.75 s: copies at 0, 45.75, 91.5
    assert batch.input_tokens.tolist() == [200, 100, 300] * 2 + [200]
    assert batch.output_tokens.tolist() == [20, 10, 30] * 2 + [20]
    assert np.isnan(batch.service_s).all()


def test_trace_with_a_time_distribution_keeps_tokens_and_draws_times(tmp_path):
    write(tmp_path, SMALL)
    batch = generate(trace_scenario("trace.csv", 40.0, service={"dist": "constant", "value_s": 2.0}), tmp_path)
    assert batch.service_s.tolist() == [2.0, 2.0, 2.0]
    assert batch.input_tokens.tolist() == [200, 100, 300]


def test_origins_follow_the_weights(tmp_path):
    write(tmp_path, SMALL)
    batch = generate(trace_scenario("trace.csv", duration=40_000.0, time_scale=1.0), tmp_path)
    share_a = np.mean(batch.origin == 0)
    assert share_a == pytest.approx(0.75, abs=0.03)   # n ~ 2600 requests, sd ~ 0.009


def test_bad_token_count_is_pinned_to_its_line(tmp_path):
    write(tmp_path, SMALL.replace("300,30", "x,30").replace("200,20", "200,-1"))
    with pytest.raises(ScenarioError) as err:
        generate(trace_scenario("trace.csv", 100.0), tmp_path)
    assert str(err.value).splitlines() == [
        "trace.csv:3: GeneratedTokens: must be a non-negative integer (got '-1')",
        "trace.csv:4: ContextTokens: must be a non-negative integer (got 'x')",
    ]


def test_bad_timestamp_and_missing_column(tmp_path):
    write(tmp_path, SMALL.replace("2023-11-16 18:00:10.0000000", "yesterday"))
    with pytest.raises(ScenarioError, match=r"^trace.csv:2: TIMESTAMP: must be a date-time or a "
                                            r"number of seconds \(got 'yesterday'\)$"):
        generate(trace_scenario("trace.csv", 100.0), tmp_path)
    write(tmp_path, "TIMESTAMP,ContextTokens\n1,2\n", "short.csv")
    with pytest.raises(ScenarioError) as err:
        generate(trace_scenario("short.csv", 100.0), tmp_path)
    assert str(err.value) == "short.csv:1: GeneratedTokens: missing column (header: TIMESTAMP,ContextTokens)"


def test_mixed_timestamp_kinds_and_short_rows(tmp_path):
    write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2\n12.5,1,2\n3,4\n")
    with pytest.raises(ScenarioError) as err:
        generate(trace_scenario("trace.csv", 100.0), tmp_path)
    assert str(err.value).splitlines() == [
        "trace.csv:3: TIMESTAMP: must be a date-time like the first row (got '12.5')",
        "trace.csv:4: <top>: has 2 fields, expected 3",
    ]


def test_missing_file_names_the_scenario_field(tmp_path):
    with pytest.raises(ScenarioError) as err:
        generate(trace_scenario("nope.csv", 100.0), tmp_path)
    assert str(err.value) == "scen.yaml: inference[0].arrival.path: file not found (got 'nope.csv')"


def test_empty_and_unloopable_traces(tmp_path):
    write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(ScenarioError, match="^trace.csv: <top>: trace has no requests$"):
        generate(trace_scenario("trace.csv", 100.0), tmp_path)
    write(tmp_path, "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2\n")
    with pytest.raises(ScenarioError) as err:
        generate(trace_scenario("trace.csv", 100.0), tmp_path)
    assert str(err.value) == ("scen.yaml: inference[0].arrival.loop: a looped trace needs requests "
                              "at two or more distinct times (got True)")
    assert len(generate(trace_scenario("trace.csv", 100.0, loop=False), tmp_path)) == 1


@pytest.mark.skipif(not (SHARED_DATA / "AzureLLMInferenceTrace_conv.csv").is_file(),
                    reason="shared/data with the Azure LLM inference trace is not present")
def test_real_azure_conversation_trace():
    scenario = trace_scenario("AzureLLMInferenceTrace_conv.csv", duration=3 * 3600.0, loop=False)
    batch = generate(scenario, SHARED_DATA)
    span_min = batch.t_s[-1] / 60
    assert len(batch) == 19_366
    assert span_min == pytest.approx(58.4, abs=0.2)
    assert len(batch) / batch.t_s[-1] == pytest.approx(5.53, abs=0.01)
    assert batch.input_tokens[0] == 374 and batch.output_tokens[0] == 44   # the file's first row
    looped = generate(trace_scenario("AzureLLMInferenceTrace_conv.csv", 2 * 3600.0, time_scale=2.0), SHARED_DATA)
    assert len(looped) / 7200.0 == pytest.approx(2 * 5.53, rel=0.01)
