"""The what-if service, spoken to over HTTP on loopback like any client would."""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import simulate
from sim.errors import UsageError
from sim.scenario import parse_scenario
from sim.serve import (
    Limits,
    Service,
    ServiceError,
    _Handler,
    file_and_module_problems,
    make_server,
    override_problems,
    run_bounded,
)
from tests.conftest import SCENARIOS, run_cli


@contextlib.contextmanager
def serving(limits: Limits = Limits(max_wall_s=30.0)) -> Iterator[str]:
    """Base URL of a live server on an ephemeral loopback port, shut down afterwards."""
    server = make_server(Service(SCENARIOS, limits), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving() as base:
        yield base


def call(url: str, route: str, body: Any = None, method: str = "POST", raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + route, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- /predict ----------------------------------------------------------------------------------
def test_predict_with_the_seed_parameters(url):
    assert call(url, "/predict", {"t": 1}) == (200, {"load": 100.2, "resources": 1.002})


def test_predict_from_a_shipped_scenario_matches_the_cli(url):
    expected = json.loads(run_cli("predict", "--t", "5", "--scenario", str(SCENARIOS / "two_regions.yaml")).out)
    assert call(url, "/predict", {"t": 5, "scenario": "two_regions"}) == (200, expected)


def test_predict_refuses_what_it_cannot_evaluate(url):
    status, answer = call(url, "/predict", {"t": 1, "scenario": "demand_surprise"})
    assert status == 400
    assert answer["error"].startswith("scenarios/demand_surprise.yaml: scheduler.load_model: an observed load")


# -- /run --------------------------------------------------------------------------------------
def test_run_answers_the_summary_the_cli_writes(url, tmp_path):
    sets = ["duration=1h", "warmup=10m"]
    status, summary = call(url, "/run", {"scenario": "validation/mmc", "set": sets})
    assert status == 200 and summary["sim_time_s"] == 3600.0
    out = tmp_path / "cli"
    run_cli("run", str(SCENARIOS / "validation" / "mmc.yaml"), "--out", str(out), *[f"--set={s}" for s in sets])
    assert summary == json.loads((out / "summary.json").read_text())


def test_run_of_a_scenario_without_inference(url):
    status, summary = call(url, "/run", {"scenario": "two_regions", "set": ["duration=2h"]})
    assert status == 200 and summary["scenario"] == "two-regions" and summary["sim_time_s"] == 7200.0


def test_run_reports_validation_errors_with_file_line_and_path(url):
    status, answer = call(url, "/run", {"scenario": "two_regions", "set": ["regions.us-east.pools.h100.replicas=0"]})
    assert status == 400
    assert answer["error"] == ("--set regions.us-east.pools.h100.replicas=0: regions[0].pools[0].replicas: "
                               "must be >= 1 (got 0)")


def test_run_caps_the_simulated_duration(url):
    status, answer = call(url, "/run", {"scenario": "two_regions", "set": ["duration=30d"]})
    assert status == 400
    assert answer["error"] == "--set duration=30d: duration: must be <= 7d in the service (--max-duration) (got '30d')"


def test_run_is_killed_at_the_wall_time_limit():
    # The cost estimate refuses such a run up front; the kill is the backstop for a run the
    # estimate judged too kindly, so it is tested below the service.
    loaded = parse_scenario((SCENARIOS / "validation" / "mmc.yaml").read_text(), "scenarios/validation/mmc.yaml",
                            ["duration=7d"])
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        run_bounded(loaded, 0.5)
    assert caught.value.status == 504 and "wall-time limit of 0.5 s" in caught.value.message
    assert time.monotonic() - started < 10


def test_runs_beyond_max_runs_are_turned_away():
    with serving(Limits(max_wall_s=30.0, max_runs=1)) as base:
        two_days = {"scenario": "validation/mmc", "set": ["duration=48h"]}
        long_run = threading.Thread(target=call, args=(base, "/run", two_days))
        long_run.start()
        time.sleep(0.5)  # the long run (about 4 s) holds the only slot
        status, answer = call(base, "/run", {"scenario": "two_regions", "set": ["duration=2h"]})
        long_run.join()
    assert status == 503 and "--max-runs" in answer["error"]


# -- what the service refuses ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../README", "/etc/passwd", "validation/../default", "..", "C:\\x", "~/x"])
def test_scenario_must_be_a_name_not_a_path(url, name):
    status, answer = call(url, "/run", {"scenario": name})
    assert status == 400 and "must be the name of a shipped scenario, not a path" in answer["error"]


def test_unknown_scenario_lists_the_shipped_names(url):
    status, answer = call(url, "/predict", {"t": 1, "scenario": "nope"})
    assert status == 400 and "unknown scenario 'nope'" in answer["error"] and "validation/mmc" in answer["error"]


def test_module_policy_in_an_override_is_refused(url):
    status, answer = call(url, "/run", {"scenario": "two_regions", "set": ["scheduler.routing=this:Zen"]})
    assert (status, answer["error"]) == (400, "--set: scheduler.routing=this:Zen: the service accepts no file paths "
                                              "or module names (got 'this:Zen')")


def test_file_read_by_the_resolved_scenario_is_refused(url):
    # No separator in the value: the check of the resolved scenario catches it.
    trace = "inference.0.arrival={process: trace, path: trace.csv}"
    status, answer = call(url, "/run", {"scenario": "validation/mmc", "set": [trace]})
    assert status == 400
    assert answer["error"] == ("--set inference.0.arrival={process: trace, path: trace.csv}: "
                               "inference[0].arrival.path: names a file; the service accepts no file paths "
                               "(got 'trace.csv')")


def test_override_values_may_name_pools_but_no_paths():
    allowed = ["duration=2h", "scheduler.routing={name: latency_aware, params: {rtt_weight: 0.5}}",
               "failures.nodes=[{pools: [us-east/h100, eu-west]}]"]
    assert override_problems(allowed) == []
    refused = ["x=/etc/passwd", "x=a/b.csv", "x=..", "x=C:\\t", "x=[{p: pkg.mod:Cls}]", "x=a/b/c"]
    assert [p.path for p in override_problems(refused)] == refused


def test_module_policy_in_a_scenario_is_found():
    text = (SCENARIOS / "two_regions.yaml").read_text().replace("interval: 5m", "interval: 5m\n  routing: this:Zen")
    problems = file_and_module_problems(parse_scenario(text, "x.yaml"))
    assert [(p.path, p.value) for p in problems] == [("scheduler.routing", "this:Zen")]


def test_a_run_sees_no_files_even_past_the_checks():
    # The third layer: the child works in an empty folder, so a shipped file is not found.
    text = (SCENARIOS / "validation" / "mmc.yaml").read_text()
    loaded = parse_scenario(text, "scenarios/validation/mmc.yaml",
                            ["inference.0.arrival={process: trace, path: mmc.yaml}", "duration=1h"])
    with pytest.raises(ServiceError, match=r"arrival\.path: file not found") as caught:
        run_bounded(loaded, 30.0)
    assert caught.value.status == 422


# -- HTTP mistakes -----------------------------------------------------------------------------
@pytest.mark.parametrize("raw, needle", [
    (b"{bad", "bad JSON"),
    (b'{"t": NaN}', "NaN is not valid JSON"),
    (b"[1]", "must be a JSON object"),
    (b'{"t": "one"}', "t: Input should be a valid number"),
    (b'{"t": true}', "t: Input should be a valid number"),
    (b'{"t": 1, "hours": 1}', "hours: unknown field (valid: t, scenario)"),
])
def test_bad_predict_requests_are_400(url, raw, needle):
    status, answer = call(url, "/predict", raw=raw)
    assert status == 400 and needle in answer["error"]


def test_bad_run_requests_are_400(url):
    assert call(url, "/run", {"scenario": "default", "sets": []})[1] == {
        "error": "sets: unknown field (valid: scenario, set)"}
    status, answer = call(url, "/run", {"scenario": "default", "set": "duration=1h"})
    assert status == 400 and answer["error"].startswith("set: Input should be a valid list")


def test_unknown_route_is_404_and_wrong_method_405(url):
    assert call(url, "/nope", {"t": 1})[0] == 404
    assert call(url, "/predict", method="GET") == (405, {"error": "/predict answers POST only, got GET"})


def test_serve_defaults_to_loopback_and_rejects_bad_limits():
    args = simulate._parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    result = run_cli("serve", "--max-duration", "forever")
    assert result.code == 2 and result.err.startswith("--max-duration: must be a duration")
    result = run_cli("serve", "--max-wall", "0")
    assert result.code == 2 and "argument --max-wall: must be > 0 (got '0')" in result.err
    result = run_cli("serve", "--max-wall", "inf")
    assert result.code == 2 and "argument --max-wall: must be a finite number (got 'inf')" in result.err
    with pytest.raises(UsageError, match="serve: max-wall must be > 0 and finite, got inf"):
        Limits(max_wall_s=float("inf"))


# -- limits: the cost estimate, the child's memory, slow bodies, full connection slots -----------
# Each of these answered 500, or ran until the machine ran out of memory, before issue 17.
PROBES = {
    "seed=&x [*x]": "--set seed=&x [*x]: seed[0]: alias *x is recursive: it refers to a value that contains it",
    "seed=\x01": "--set seed=\\x01: seed: character U+0001 is not allowed in YAML",
    "inference.0.arrival.rate_per_s=.inf": "--set inference.0.arrival.rate_per_s=.inf: inference.0.arrival.rate_per_s: "
                                           "must be a finite number (got '.inf')",
    "inference.0.arrival.rate_per_s=1.0e+9": "--set inference.0.arrival.rate_per_s=1.0e+9: "
                                             "inference[0].arrival.rate_per_s: about 14 trillion requests, over the "
                                             "budget of 2 million (the service's --max-requests) (got 1000000000.0)",
    "metrics.bucket=0.000001": "--set metrics.bucket=0.000001: metrics.bucket: about 24 TB of memory for 14 billion "
                               "time-series rows (duration / metrics.bucket), over the budget of 2 GB (the service's "
                               "--max-memory) (got 1e-06)",
    "duration=7d": "--set inference.0.arrival.rate_per_s=20: inference[0].arrival.rate_per_s: about 12 million "
                   "requests, over the budget of 2 million (the service's --max-requests) (got 20.0)",
    # (The wall time depends on the replicas' core: about 40 s compiled, 62 s in Python.)
    "metrics.bucket=0.5s": "--set metrics.bucket=0.5s: metrics.bucket: about ",
}


@pytest.mark.parametrize("override", sorted(PROBES))
def test_hostile_overrides_are_400_before_anything_runs(url, override):
    sets = [override] + (["inference.0.arrival.rate_per_s=20"] if override == "duration=7d" else [])
    scenario = "default" if override == "metrics.bucket=0.5s" else "validation/mmc"
    started = time.monotonic()
    status, answer = call(url, "/run", {"scenario": scenario, "set": sets})
    assert status == 400
    assert answer["error"].splitlines()[0].startswith(PROBES[override])
    if override == "metrics.bucket=0.5s":
        assert answer["error"].splitlines()[0].endswith(
            "s of wall time for 690,000 time-series rows (duration / metrics.bucket, times 4 regions), over the "
            "limit of 30 s (the service's --max-wall) (got 0.5)")
    assert time.monotonic() - started < 5


def test_the_child_process_is_capped_at_the_memory_limit():
    loaded = parse_scenario((SCENARIOS / "validation" / "mmc.yaml").read_text(), "scenarios/validation/mmc.yaml",
                            ["duration=24h"])
    with pytest.raises(ServiceError) as caught:
        run_bounded(loaded, 60.0, 50e6)
    assert (caught.value.status, caught.value.message) == (
        422, "run needed more than the service's memory limit of 50 MB (--max-memory); shorten duration or "
             "lighten the workload")


def raw_exchange(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_body_that_never_arrives_is_408(monkeypatch):
    monkeypatch.setattr(_Handler, "timeout", 1)
    with serving() as base:
        answer = raw_exchange(base, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"t\": 1")
    assert answer.startswith(b"HTTP/1.0 408 Request Timeout")
    assert b'"error": "the request body did not arrive within 1 s"' in answer


def test_full_connection_slots_answer_503_at_once():
    with serving(Limits(max_wall_s=30.0, max_connections=2)) as base:
        host, port = base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(2)]
        time.sleep(0.2)  # both accepted and holding their threads
        try:
            assert call(base, "/predict", {"t": 1}) == (
                503, {"error": "busy: 2 connections open (--max-connections); try again later"})
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        assert call(base, "/predict", {"t": 1})[0] == 200


@pytest.mark.slow
def test_load_bursts_get_answers_never_resets():
    """Bounded and on loopback: bursts of /predict and /run and a crowd of idle connections."""
    limits = Limits(max_wall_s=30.0, max_connections=64)
    with serving(limits) as base:
        host, port = base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(300)]
        threads_with_idle = threading.active_count()
        try:
            refused = call(base, "/predict", {"t": 1})
        finally:
            for sock in idle:
                sock.close()
        assert refused[0] == 503
        assert threads_with_idle <= 64 + 10  # one per served connection, not one per client
        time.sleep(0.5)

        def burst(route: str, body: dict, n: int) -> list[Any]:
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return list(pool.map(lambda _: call(base, route, body)[0], range(n)))

        predicts = burst("/predict", {"t": 3, "scenario": "two_regions"}, 200)
        runs = burst("/run", {"scenario": "validation/mmc", "set": ["duration=1h", "warmup=0"]}, 50)
    assert set(predicts) <= {200, 503} and predicts.count(200) >= 64
    assert set(runs) == {200, 503} and runs.count(200) >= limits.max_runs
