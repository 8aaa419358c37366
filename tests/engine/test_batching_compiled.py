"""The compiled batching replicas give the Python replicas' outputs bit for bit.

Each case runs the same scenario twice, with ``MERIDIAN_SERVING_CORE=python`` and
``compiled``, and compares every per-request figure (status, wait, service, first token,
time per output token, pool, time at the pool), every segment of the batch log and the
event count. The cases cover what the compiled core models: dispatch, chunked and whole
prompts, the token budget, ``max_batch: 1``, preemption on memory-bound replicas,
timeouts, overload, capacity changes by the allocation model, replica failures and a
region outage (requests retried or dropped), requests travelling between regions, requests
routed in bulk (``nearest``) and one by one by policies that read the replicas' load and
prefill backlog, live and through a stale control plane.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import sim.engine.inference as inference
from sim.engine.batching_compiled import CompiledServers
from sim.records import BatchLog, CapacityChanged, ReplicaFailed, RequestsDisplaced, RequestStatus
from tests.conftest import SCENARIOS
from tests.traced import traced_text

TWO_REGIONS = """\
name: compiled-twin
seed: {seed}
duration: 2h
warmup: 10m
regions:
  - name: a
    lat: 0
    lon: 0
    pools: [{{name: p, gpu: H100, replicas: 3, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}}]
  - name: b
    lat: 0
    lon: 20
    pools: [{{name: q, gpu: H100, replicas: 2, gpus_per_replica: 2,
             serving: {{model: Llama-2-70B, gpu_memory_utilization: 0.86, chunked_prefill: false}}}},
            {{name: r, gpu: A100, replicas: 2, gpus_per_replica: 4,
             serving: {{model: Llama-3.1-8B, tensor_parallel: 4, max_batch: {max_batch}, max_batched_tokens: 512}}}}]
links:
  - {{a: a, b: b, rtt_ms: 60, bandwidth_gbps: 100}}
inference:
  - name: chat
    origin: {{a: 0.6, b: 0.4}}
    arrival: {{process: poisson, rate_per_s: {rate},
               profile: {{kind: diurnal, mean: 1.0, amplitude: 0.6, peak_hour: 1}}}}
    service: {{dist: tokens, input_tokens: {{mean: 800, cv: 1.0}}, output_tokens: {{mean: 200, cv: 1.0}}}}
    timeout_ms: 20000
scheduler:
  interval: 10m
  routing: {routing}
  sync_delay: {sync}
  load_model: {{kind: linear, L0: 10, alpha: -4}}  # capacity shrinks: queues move off replicas made idle
  allocation: {{weights: {{a: 0.5, b: 0.5}}, L_max: 10}}
"""

ONE_POOL = """\
name: compiled-one-pool
seed: {seed}
duration: 40m
regions:
  - name: a
    lat: 0
    lon: 0
    pools: [{{name: p, gpu: H100, replicas: 4, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}}]
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: 1000, cv: 1}}, output_tokens: {{mean: 250, cv: 1}}}}
    timeout_ms: 30000
"""

CASES = {
    "latency-aware, capacity changes": TWO_REGIONS.format(seed=3, rate=3, routing="latency_aware", sync="0s",
                                                          max_batch=256),
    "ttft-aware reads the backlog, max_batch 1": TWO_REGIONS.format(seed=5, rate=4, routing="ttft_aware",
                                                                    sync="0s", max_batch=1),
    "stale control plane": TWO_REGIONS.format(seed=7, rate=3, routing="least_loaded", sync="5s", max_batch=64),
    "nearest, routed in bulk": TWO_REGIONS.format(seed=9, rate=6, routing="nearest", sync="0s", max_batch=256),
    "latency-aware, nearest pools fill": TWO_REGIONS.format(
        seed=4, rate=5, routing="latency_aware", sync="0s", max_batch=8).replace(
        "serving: {model: Llama-2-70B}}", "serving: {model: Llama-2-70B, max_batch: 6}}"),
    "one pool at 70 %": ONE_POOL.format(seed=1, rate=15),
    "one pool overloaded, timeouts": ONE_POOL.format(seed=2, rate=40),
}

FAILURES = """\
failures:
  nodes: [{{mttf: 2h, repair: {{mean: 20m}}}}]
  outages: [{{region: b, at: 90m, duration: 20m}}]
  inference: {mode}
  max_retries: 2
  detection: 30s
  warmup: 2m
"""
CASES.update({
    f"failures and an outage, {mode}, {routing}": TWO_REGIONS.format(
        seed=8, rate=3, routing=routing, sync="0s", max_batch=64) + FAILURES.format(mode=mode)
    for mode, routing in (("retry", "latency_aware"), ("drop", "ttft_aware"), ("retry", "nearest"))})

COLUMNS = ("status", "wait_s", "service_s", "first_token_s", "tpot_s", "pool", "rtt_ms", "retry_s")


def _run(text: str, core: str, monkeypatch, overrides: tuple[str, ...] = ()) -> tuple:
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", core)
    built: list[object] = []
    original = inference.InferenceEngine._batching_servers

    def spy(engine):
        servers = original(engine)
        built.append(servers)
        return servers

    monkeypatch.setattr(inference.InferenceEngine, "_batching_servers", spy)
    run = traced_text(text, overrides)
    monkeypatch.undo()
    (servers,) = built
    return run, servers


def _assert_same(python, compiled) -> None:
    """Every per-request figure, every segment of the batch log and the event count equal."""
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(python.log, column), getattr(compiled.log, column), err_msg=column)
    (batch_a,), (batch_b,) = python.of(BatchLog), compiled.of(BatchLog)
    for column in batch_a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(batch_a, column), getattr(batch_b, column), err_msg=column)
    assert python.result.events_processed == compiled.result.events_processed


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_replicas_give_the_python_replicas_outputs_bit_for_bit(case, monkeypatch):
    python, py_servers = _run(CASES[case], "python", monkeypatch)
    compiled, c_servers = _run(CASES[case], "compiled", monkeypatch)
    assert not isinstance(py_servers, CompiledServers) and isinstance(c_servers, CompiledServers)
    a, b = python.log, compiled.log
    assert len(a.status) == len(b.status) > 1000
    _assert_same(python, compiled)
    statuses = set(np.unique(a.status).tolist())
    assert RequestStatus.COMPLETED in statuses
    if "overloaded" in case:
        assert RequestStatus.TIMED_OUT in statuses


SHIPPED = {"autoscale.yaml": ["duration=80m"], "serving.yaml": ["duration=20m"], "planning.yaml": [],
           "default.yaml": ["duration=90m", "warmup=10m"]}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_serving_scenarios_are_the_same_on_both_cores(name, monkeypatch):
    """The shipped scenarios with batching pools that the compiled core serves (autoscaling
    with cold starts reads the replicas' signals; the default routes by their load)."""
    text = (SCENARIOS / name).read_text()
    runs = {}
    for core in ("python", "compiled"):
        runs[core], servers = _run(text, core, monkeypatch, tuple(SHIPPED[name]))
        assert isinstance(servers, CompiledServers) == (core == "compiled")
    _assert_same(runs["python"], runs["compiled"])


@pytest.mark.parametrize("case", ["latency-aware, nearest pools fill", "one pool overloaded, timeouts"])
def test_arrays_grow_as_the_run_needs(case, monkeypatch):
    """Started with almost no room for queues, segments and superseded boundaries, the
    compiled replicas grow each array as they go and still give the Python outputs (the
    first case grows the segment log and the superseded boundaries, the second the queues
    and the segment log)."""
    from sim.engine import batching_compiled, batching_core as core

    python, _ = _run(CASES[case], "python", monkeypatch)
    monkeypatch.setattr(batching_compiled, "ROOM", [0, 0, 0, 4])
    grown: list[float] = []
    original = batching_compiled.CompiledServers._grow

    def counting(self, what):
        grown.append(what)
        return original(self, what)

    monkeypatch.setattr(batching_compiled.CompiledServers, "_grow", counting)
    compiled, _ = _run(CASES[case], "compiled", monkeypatch)
    expected = {core.GROW_SEG, core.GROW_STALE} if "fill" in case else {core.GROW_SEG, core.GROW_QUEUE}
    assert expected <= set(grown)
    _assert_same(python, compiled)


def test_the_cases_reach_what_they_are_meant_to(monkeypatch):
    """The comparisons above are not vacuous: preemptions, whole-prompt prefills, timeouts
    and capacity changes all happen in them."""
    run, _ = _run(CASES["nearest, routed in bulk"], "compiled", monkeypatch)
    (batch,) = run.of(BatchLog)
    assert int(batch.preemptions[1]) > 1000  # the memory-bound TP2 pool, which prefills whole prompts
    assert (run.log.status == RequestStatus.TIMED_OUT).any()
    run, _ = _run(CASES["latency-aware, capacity changes"], "compiled", monkeypatch)
    changes = [r for r in run.of(CapacityChanged) if r.t_s > 0]
    assert len({(r.region, r.pool, r.active_gpus) for r in changes}) > 3
    run, _ = _run(CASES["failures and an outage, retry, latency_aware"], "compiled", monkeypatch)
    assert sum(r.hit == "inference" for r in run.of(ReplicaFailed)) >= 3
    assert sum(r.retried for r in run.of(RequestsDisplaced)) > 20
    assert (run.log.status == RequestStatus.FAILED).any() or (run.log.retry_s > 0).sum() > 20


def test_plain_pools_only(monkeypatch):
    """Shared prompts with a prefix cache, conversations and disaggregation keep the Python
    replicas, whatever the environment asks."""
    from sim.engine import batching_compiled
    from sim.engine.batching import serving_spec
    from sim.engine.batching_compiled import choose, eligible
    from sim.scenario import parse_scenario
    from sim.world import build_world

    scenario = parse_scenario(ONE_POOL.format(seed=1, rate=1)).scenario
    world = build_world(scenario)
    spec = {0: serving_spec(world.pools[0])}
    assert eligible(spec, False, False, False)
    assert not eligible(spec, True, False, False)  # the default prefix cache then matters
    assert not eligible(spec, False, True, False)
    assert not eligible(spec, False, False, True)
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", "compiled")
    assert choose(spec, 10, False, False, False)
    assert not choose(spec, 10, False, True, False)
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", "python")
    assert not choose(spec, 10**9, False, False, False)
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", "auto")
    monkeypatch.setattr(batching_compiled, "_loaded", lambda: False)
    assert not choose(spec, 10, False, False, False)  # too small to repay loading the compiled code
    assert choose(spec, 10**6, False, False, False)
    monkeypatch.setattr(batching_compiled, "_loaded", lambda: True)
    assert choose(spec, 10, False, False, False)  # this process has it loaded: it costs nothing more
    monkeypatch.setenv("MERIDIAN_SERVING_CORE", "fast")
    with pytest.raises(ValueError, match="auto, python or compiled"):
        choose(spec, 10, False, False, False)


def test_latency_aware_asks_the_policy_only_when_the_nearest_pool_may_be_full(monkeypatch):
    """On compiled pools the loop answers ``latency_aware`` itself while the nearest pool
    has a free slot for sure (a bound on its requests: those at the last catch-up plus the
    arrivals since), and asks the policy otherwise; the comparison above with the Python
    replicas, which ask the policy for every request, holds the answers equal."""
    from sim.policies.routing import LatencyAware

    asked = []
    original = LatencyAware.choose

    def counting(self, view):
        asked.append(view.t_s)
        return original(self, view)

    monkeypatch.setattr(LatencyAware, "choose", counting)
    run, _ = _run(CASES["latency-aware, nearest pools fill"], "compiled", monkeypatch)
    assert 1000 < len(asked) < len(run.log.status) - 1000  # both ways, many times


def test_warm_up_compiles_what_a_run_calls(monkeypatch):
    """``simulate.py run`` compiles the core before its progress starts (``warm_up``): for
    the very argument types a run passes, so the run loads no second version."""
    from sim.engine import batching_core as core
    from sim.engine.batching_compiled import warm_up

    warm_up()
    _run(CASES["ttft-aware reads the backlog, max_batch 1"], "compiled", monkeypatch)
    assert [len(f.signatures) for f in (core.advance, core.set_active, core.backlogs)] == [1, 1, 1]


def _random_case(seed: int) -> str:
    """A random world within what the compiled core serves: one to three regions, pools of
    two models with random limits and memory, random load, timeouts, routing, capacity
    model and (sometimes) failures."""
    rng = np.random.default_rng(seed)
    models = [("Llama-2-70B", "H100", 8), ("Llama-2-70B", "H100", 2), ("Llama-3.1-8B", "A100", 1),
              ("Llama-3.1-70B", "H200", 4)]
    regions = []
    for r in range(int(rng.integers(1, 4))):
        pools = []
        for k in range(int(rng.integers(1, 3))):
            model, gpu, tp = models[int(rng.integers(len(models)))]
            serving = (f"{{model: {model}, tensor_parallel: {tp}, max_batch: {int(rng.choice([1, 4, 32, 256]))}, "
                       f"max_batched_tokens: {int(rng.choice([256, 2048, 8192]))}, "
                       f"chunked_prefill: {'true' if rng.random() < 0.7 else 'false'}, "
                       f"gpu_memory_utilization: {rng.uniform(0.82, 0.95):.2f}}}")
            pools.append(f"{{name: p{k}, gpu: {gpu}, replicas: {int(rng.integers(1, 4))}, gpus_per_replica: {tp}, "
                         f"serving: {serving}}}")
        regions.append(f"  - name: r{r}\n    lat: 0\n    lon: {20 * r}\n    pools: [{', '.join(pools)}]")
    names = [f"r{r}" for r in range(len(regions))]
    links = "".join(f"  - {{a: {a}, b: {b}, rtt_ms: {int(rng.integers(5, 150))}, bandwidth_gbps: 100}}\n"
                    for i, a in enumerate(names) for b in names[i + 1:])
    origin = ", ".join(f"{n}: {rng.uniform(0.2, 1):.2f}" for n in names)
    routing = rng.choice(["nearest", "latency_aware", "least_loaded", "ttft_aware", "power_of_two"])
    text = (f"name: random-{seed}\nseed: {seed}\nduration: 1h\nregions:\n" + "\n".join(regions) + "\n"
            + (f"links:\n{links}" if links else "")
            + f"inference:\n  - name: chat\n    origin: {{{origin}}}\n"
            f"    arrival: {{process: poisson, rate_per_s: {rng.uniform(1, 12):.2f}}}\n"
            f"    service: {{dist: tokens, input_tokens: {{mean: {int(rng.integers(100, 3000))}, cv: 1.0}}, "
            f"output_tokens: {{mean: {int(rng.integers(20, 600))}, cv: 1.0}}}}\n"
            f"    timeout_ms: {int(rng.choice([5000, 30000, 600000]))}\n"
            f"scheduler:\n  interval: 5m\n  routing: {routing}\n  sync_delay: {rng.choice(['0s', '2s'])}\n"
            f"  load_model: {{kind: linear, L0: {rng.uniform(2, 10):.1f}, alpha: {rng.uniform(-6, 6):.1f}}}\n"
            f"  allocation: {{weights: {{{', '.join(f'{n}: 1' for n in names)}}}, L_max: 10}}\n")
    if rng.random() < 0.5:
        text += ("failures:\n  nodes: [{mttf: 40m, repair: {mean: 10m}}]\n"
                 f"  inference: {rng.choice(['retry', 'drop'])}\n  max_retries: 1\n  detection: 20s\n")
    return text


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_worlds_are_the_same_on_both_cores(seed, monkeypatch):
    """Random worlds (see ``_random_case``), per-request figures, batch log and event count."""
    text = _random_case(seed)
    python, _ = _run(text, "python", monkeypatch)
    compiled, servers = _run(text, "compiled", monkeypatch)
    assert isinstance(servers, CompiledServers)
    _assert_same(python, compiled)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20, 44))
def test_more_random_worlds_are_the_same_on_both_cores(seed, monkeypatch):
    test_random_worlds_are_the_same_on_both_cores(seed, monkeypatch)
