"""Validation messages are part of the interface: each is pinned here."""
import pytest

from sim.errors import ScenarioError
from sim.scenario import load_scenario, parse_scenario
from tests.conftest import MINIMAL, SCENARIOS


def problems(text, overrides=()):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml", overrides)
    return [p.format() for p in info.value.problems]


def test_two_regions_example_is_valid():
    loaded = load_scenario(SCENARIOS / "two_regions.yaml")
    s = loaded.scenario
    assert (s.name, s.seed, s.duration, s.warmup) == ("two-regions", 7, 86400.0, 3600.0)
    assert s.scheduler.interval == 300.0 and s.scheduler.allocation.L_max == 200


def test_unknown_key():
    text = MINIMAL.replace("    lat: 50.0\n", "    lat: 50.0\n    colour: blue\n")
    assert problems(text) == ["s.yaml:10: regions[1].colour: unknown key; expected one of: name, lat, lon, "
                              "utc_offset_h, jurisdiction, intra_rtt_ms, price_usd_per_kwh, carbon_g_per_kwh, pue, "
                              "pools, hosts, gpu_groups (got 'blue')"]


def test_replicas_zero():
    text = MINIMAL.replace("replicas: 4", "replicas: 0")
    assert problems(text) == ["s.yaml:7: regions[0].pools[0].replicas: must be >= 1 (got 0)"]


def test_bad_duration():
    assert problems(MINIMAL.replace("2h", "2 hours")) == [
        "s.yaml:2: duration: must be a duration such as 500ms, 90s, 15m, 24h, 7d "
        "or a number of seconds (got '2 hours')"]


def test_wrong_type_and_missing_key_reported_together():
    text = MINIMAL.replace("lat: 40.0", "lat: north").replace("name: mini\n", "")
    assert problems(text) == [
        "s.yaml:1: name: required key is missing",
        "s.yaml:4: regions[0].lat: must be a number (got 'north')",
    ]


def test_link_to_unknown_region():
    text = MINIMAL + "links:\n  - {a: alpha, b: gamma, rtt_ms: 80}\n"
    assert problems(text) == ["s.yaml:13: links[0].b: unknown region (known: alpha, beta) (got 'gamma')"]


def test_unreachable_region_in_explicit_graph():
    text = MINIMAL + ("  - name: gamma\n    lat: 0\n    lon: 0\n"
                      "links:\n  - {a: alpha, b: beta, rtt_ms: 80}\n")
    assert problems(text) == [
        "s.yaml:12: regions[2].name: region is unreachable from 'alpha' in the link graph (got 'gamma')"]


def test_weights_sum_to_zero_and_lmax():
    text = MINIMAL + ("scheduler:\n  load_model: {kind: constant, L: 5}\n"
                      "  allocation: {weights: {alpha: 0, beta: 0}, L_max: 0}\n")
    assert problems(text) == ["s.yaml:14: scheduler.allocation.L_max: must be > 0 (got 0)"]
    fixed = text.replace("L_max: 0", "L_max: 10")
    assert problems(fixed) == [
        "s.yaml:14: scheduler.allocation.weights: weights must not sum to zero (got {'alpha': 0.0, 'beta': 0.0})"]


def test_weight_for_unknown_region_and_pool():
    text = MINIMAL + ("scheduler:\n  load_model: {kind: constant, L: 5}\n"
                      "  allocation: {weights: {alpha/zz: 1, delta: 1}, L_max: 10}\n")
    assert problems(text) == [
        "s.yaml:14: scheduler.allocation.weights.alpha/zz: unknown pool (pools of alpha: p) (got 'alpha/zz')",
        "s.yaml:14: scheduler.allocation.weights.delta: unknown region (known: alpha, beta) (got 'delta')",
    ]


def test_unknown_gpu_lists_the_catalogue():
    (message,) = problems(MINIMAL.replace("gpu: A100", "gpu: TPU"))
    assert message.startswith("s.yaml:11: regions[1].pools[0].gpu: unknown GPU type (valid: ")
    assert "H100" in message and message.endswith("(got 'TPU')")


def test_region_outside_catalogue_needs_coordinates():
    text = MINIMAL.replace("    lat: 40.0\n    lon: -75.0\n", "")
    assert problems(text) == [
        "s.yaml:4: regions[0]: lat is required for a region not in the catalogue (got 'alpha')",
        "s.yaml:4: regions[0]: lon is required for a region not in the catalogue (got 'alpha')",
    ]


def test_warmup_must_be_shorter_than_duration():
    assert problems(MINIMAL.replace("duration: 2h\n", "duration: 2h\nwarmup: 3h\n")) == [
        "s.yaml:3: warmup: must be shorter than duration (7200 s) (got 10800.0)"]


def test_unknown_load_model_kind():
    text = MINIMAL + ("scheduler:\n  load_model: {kind: cubic}\n"
                      "  allocation: {weights: {alpha: 1}, L_max: 10}\n")
    (message,) = problems(text)
    assert message.startswith("s.yaml:13: scheduler.load_model: unknown kind; expected one of ")


def test_string_stays_string_where_string_expected():
    text = MINIMAL.replace("    lat: 50.0\n", "    lat: 50.0\n    jurisdiction: NO\n")
    assert parse_scenario(text).scenario.regions[1].jurisdiction == "NO"


def test_set_overrides_by_name_and_index():
    loaded = parse_scenario(MINIMAL, overrides=["regions.beta.pools.q.replicas=7", "regions[0].pools[0].gpu=H200",
                                                "duration=3h", "seed=11"])
    s = loaded.scenario
    assert (s.regions[1].pools[0].replicas, s.regions[0].pools[0].gpu, s.duration, s.seed) == (7, "H200", 10800.0, 11)


def test_set_errors_name_the_assignment():
    assert problems(MINIMAL, ["regions.gamma.lat=1"]) == [
        "--set regions.gamma.lat=1: regions.gamma: no item named 'gamma' (names: alpha, beta)"]
    # A bad value an override wrote is blamed on the override, not on the file's line 7.
    assert problems(MINIMAL, ["regions[0].pools[0].replicas=-1"]) == [
        "--set regions[0].pools[0].replicas=-1: regions[0].pools[0].replicas: must be >= 1 (got -1)"]
    assert problems(MINIMAL, ["nonsense"]) == ["--set nonsense: nonsense: expects dotted.path=value"]


def test_unknown_routing_policy_is_located_and_lists_the_valid_ones(write_yaml, cli):
    path = write_yaml(MINIMAL + "scheduler:\n  routing: neerest\n")
    result = cli("validate", str(path))
    assert result.code == 2
    assert result.err.strip() == (
        f"{path}:13: scheduler.routing: unknown routing policy 'neerest' (valid: cache_aware, latency_aware, "
        "least_loaded, nearest, power_of_two, round_robin, ttft_aware, weighted) (got 'neerest')")


def test_missing_trace_file_is_found_by_validate(write_yaml, cli):
    path = write_yaml(MINIMAL + ("inference:\n  - name: t\n    origin: {alpha: 1}\n"
                                 "    arrival: {process: trace, path: nowhere.csv}\n"
                                 "    service: {dist: constant, value_s: 1}\n"))
    result = cli("validate", str(path))
    assert result.code == 2
    assert result.err.startswith(f"{path}:15: inference[0].arrival.path: file not found (looked in ")


def test_counts_that_would_overflow_the_engine_are_bounded():
    # replicas x slots must fit the engine's 64-bit arrays: each is at most a million.
    text = MINIMAL.replace("replicas: 4", "replicas: 2000000, slots_per_replica: 4611686018427387904")
    assert problems(text) == [
        "s.yaml:7: regions[0].pools[0].replicas: must be <= 1000000 (got 2000000)",
        "s.yaml:7: regions[0].pools[0].slots_per_replica: must be <= 1000000 (got 4611686018427387904)",
    ]


TWO_TEXT = (SCENARIOS / "two_regions.yaml").read_text()


@pytest.mark.parametrize(("override", "message"), [
    # Finite but huge: the run's mean load overflowed to null and the run "succeeded".
    ("scheduler.load_model.L0=1.0e+308", "scheduler.load_model.L0: the load reaches 1e+308 over the run; "
                                         "it must stay within 1e+12 (got 1e+308)"),
    ("scheduler.load_model.alpha=1.0e+300", "scheduler.load_model.alpha: the load reaches 2.4e+301 over the run; "
                                            "it must stay within 1e+12 (got 1e+300)"),
    ("scheduler.load_model.T0=-1.0e+300", "scheduler.load_model.T0: the load reaches 2e+299 over the run; "
                                          "it must stay within 1e+12 (got -1e+300)"),
    ("scheduler.load_model={kind: piecewise, points: [{at: 0, L: 1}, {at: 1h, L: 1.0e+13}]}",
     "scheduler.load_model.points[1].L: the load reaches 1e+13 over the run; it must stay within 1e+12 "
     "(got 10000000000000.0)"),
])
def test_a_load_formula_too_large_over_the_run_is_refused_naming_the_override(override, message):
    (found,) = problems(TWO_TEXT, [override])
    assert found.startswith(f"--set {override[:40]}")
    assert found.endswith(f": {message}")


def test_a_tiny_l_max_is_refused():
    # L / L_max = 1e302: the resources overflowed to null with a RuntimeWarning.
    (found,) = problems(TWO_TEXT, ["scheduler.allocation.L_max=1.0e-300"])
    assert found == ("--set scheduler.allocation.L_max=1.0e-300: scheduler.allocation.L_max: the load reaches 105 "
                     "over the run, 1.05e+302 times L_max; L / L_max must stay within 1e+12 (got 1e-300)")


def test_a_load_formula_at_the_bound_is_accepted():
    # L(t) = 1e12 - 1e10 (t - 0) reaches 1e12 at the start and falls: within the bound.
    load_scenario(SCENARIOS / "two_regions.yaml", ["scheduler.load_model.L0=1.0e+12",
                                                   "scheduler.load_model.alpha=-1.0e+10"])


def test_a_coefficient_of_variation_is_bounded():
    # cv 1e300 squared overflows: the lognormal drew NaN token counts and the run crashed.
    default = (SCENARIOS / "default.yaml").read_text()
    (found,) = problems(default, ["inference[0].service.input_tokens.cv=1.0e+300"])
    assert found == ("--set inference[0].service.input_tokens.cv=1.0e+300: inference[0].service.input_tokens.cv: "
                     "must be <= 100 (got 1e+300)")
    load_scenario(SCENARIOS / "default.yaml", ["inference[0].service.input_tokens.cv=100"])
