"""The policy registry: registration rules, look-up errors, params validation, external loading."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ConfigDict, Field

from sim.errors import PolicyError
from sim.policies import PolicyParams, RoutingPolicy, RoutingView, available, create, describe, register, registry
from sim.scenario.model import PolicySpec, Scheduler

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = ["cache_aware", "latency_aware", "least_loaded", "nearest", "power_of_two", "round_robin", "ttft_aware",
            "weighted"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})


@pytest.fixture
def my_pkg(tmp_path, monkeypatch):
    """Write ``my_pkg/my_mod.py`` from the example in docs/policies.md and make it importable."""
    docs = (ROOT / "docs" / "policies.md").read_text()
    source = re.search(r"```python\n(# my_pkg/my_mod\.py\n.*?)```", docs, re.DOTALL).group(1)
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_mod.py").write_text(source + _EXTRA)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        del sys.modules[name]


_EXTRA = '''

class Helper:
    """Not a policy: no choose."""


class Forgot(RoutingPolicy):
    """Subclasses the base but never defines choose."""


class Loose(RoutingPolicy):
    """Params that silently drop unknown keys."""

    class Params(PolicyParams):
        model_config = PolicyParams.model_config | {"extra": "ignore"}

    def choose(self, view):
        return None


def not_a_class():
    return None
'''


def make(name: str, **params):
    return create("routing", PolicySpec(name=name, params=params), np.random.default_rng(0))


def error_of(name: str, **params) -> str:
    with pytest.raises(PolicyError) as info:
        make(name, **params)
    assert info.value.policy == name
    return str(info.value)


# -- registration ----------------------------------------------------------------------------
def test_builtins_are_registered_sorted_and_described():
    assert list(available("routing")) == BUILT_IN
    described = {name: (line, schema) for name, line, schema in describe("routing")}
    assert list(described) == BUILT_IN
    assert described["nearest"][0] == "Lowest-RTT available pool (ties: lowest index); ignores load."
    assert described["latency_aware"][1]["properties"]["rtt_weight"]["default"] == 1.0
    assert described["power_of_two"][1]["properties"]["d"]["minimum"] == 1
    assert described["power_of_two"][1]["additionalProperties"] is False


def test_duplicate_registration_raises(scratch_registry):
    with pytest.raises(ValueError, match="routing policy 'nearest' is already registered"):
        @register("routing", "nearest")
        class Again(RoutingPolicy):
            """Another nearest."""

            def choose(self, view):
                return 0


def test_registration_checks_the_class(scratch_registry):
    with pytest.raises(TypeError, match="'no_choose' .*: missing method choose"):
        @register("routing", "no_choose")
        class NoChoose:
            """No choose method."""

    with pytest.raises(TypeError, match="needs a docstring"):
        @register("routing", "undocumented")
        class Undocumented(RoutingPolicy):
            def choose(self, view):
                return 0

    with pytest.raises(TypeError, match="Params must reject unknown keys"):
        @register("routing", "loose")
        class Loose(RoutingPolicy):
            """Loose params."""

            class Params(PolicyParams):
                model_config = ConfigDict(extra="ignore")

            def choose(self, view):
                return 0

    with pytest.raises(TypeError, match="'forgot' .*: missing method choose"):
        @register("routing", "forgot")
        class Forgot(RoutingPolicy):
            """Inherits the abstract choose only."""

    assert "no_choose" not in available("routing") and "loose" not in available("routing")


def test_registered_policy_is_created_by_name(scratch_registry):
    @register("routing", "always_last")
    class AlwaysLast(RoutingPolicy):
        """Always the last pool."""

        class Params(PolicyParams):
            offset: int = Field(0, ge=0, description="Pools to skip from the end.")

        def choose(self, view):
            return view.n_pools - 1 - self.params.offset

    policy = make("always_last", offset=1)
    assert isinstance(policy, AlwaysLast) and policy.params.offset == 1
    assert policy.choose(RoutingView.build(pool_region=[0, 0, 0], rtt_ms=[[1, 1, 1]], total_slots=[1, 1, 1])) == 1


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match=r"unknown policy kind 'routnig' \(valid: .*routing"):
        create("routnig", PolicySpec(name="nearest"), np.random.default_rng(0))


# -- look-up and params errors ---------------------------------------------------------------
def test_unknown_name_lists_the_valid_ones():
    assert error_of("neerest") == (
        "policy 'neerest': unknown routing policy 'neerest' "
        "(valid: cache_aware, latency_aware, least_loaded, nearest, power_of_two, round_robin, ttft_aware, weighted)")


def test_bad_params_name_each_field_rule_and_value():
    assert error_of("power_of_two", d=0, k=1) == (
        "policy 'power_of_two': invalid params: "
        "params.d: input should be greater than or equal to 1 (got 0); "
        "params.k: extra inputs are not permitted (got 1)")
    assert error_of("latency_aware", rtt_weight="high") == (
        "policy 'latency_aware': invalid params: params.rtt_weight: input should be a valid number (got 'high')")
    assert error_of("nearest", weight=2) == (
        "policy 'nearest': invalid params: params.weight: extra inputs are not permitted (got 2)")


def test_params_defaults_and_scheduler_string_form():
    spec = Scheduler(routing="latency_aware").routing
    policy = create("routing", spec, np.random.default_rng(0))
    assert policy.params.rtt_weight == 1.0
    assert make("latency_aware", rtt_weight=2).params.rtt_weight == 2.0
    assert make("power_of_two").params.d == 2


# -- external policies -----------------------------------------------------------------------
def test_external_policy_from_the_docs_example(my_pkg):
    policy = make("my_pkg.my_mod:LocalFirst", max_rtt_ms=80)
    assert type(policy).__name__ == "LocalFirst" and policy.params.max_rtt_ms == 80.0
    view = RoutingView.build(pool_region=[0, 1, 2], rtt_ms=[[2.0, 40.0, 120.0]],
                             total_slots=[4, 4, 4], busy_slots=[4, 1, 0])
    assert policy.choose(view) == 1
    wide = make("my_pkg.my_mod:LocalFirst", max_rtt_ms=200)
    full = RoutingView.build(pool_region=[0, 1, 2], rtt_ms=[[2.0, 40.0, 120.0]],
                             total_slots=[4, 4, 4], busy_slots=[4, 4, 0])
    assert wide.choose(full) == 2
    assert make("my_pkg.my_mod:LocalFirst", max_rtt_ms=1).choose(full) is None


def test_external_policy_params_are_validated(my_pkg):
    assert error_of("my_pkg.my_mod:LocalFirst", max_rtt_ms=0) == (
        "policy 'my_pkg.my_mod:LocalFirst': invalid params: "
        "params.max_rtt_ms: input should be greater than 0 (got 0)")


def test_external_import_failures_name_what_failed(my_pkg):
    assert error_of("my_pkg.nope:LocalFirst") == (
        "policy 'my_pkg.nope:LocalFirst': cannot import module 'my_pkg.nope' "
        "(ModuleNotFoundError: No module named 'my_pkg.nope')")
    assert error_of("my_pkg.my_mod:LocalFirts") == (
        "policy 'my_pkg.my_mod:LocalFirts': module 'my_pkg.my_mod' has no attribute 'LocalFirts'")
    assert error_of("my_pkg.my_mod:") == (
        "policy 'my_pkg.my_mod:': an external policy is written 'package.module:ClassName'")
    (my_pkg / "broken.py").write_text("raise RuntimeError('boom')\n")
    assert error_of("my_pkg.broken:X") == (
        "policy 'my_pkg.broken:X': cannot import module 'my_pkg.broken' (RuntimeError: boom)")


def test_external_class_without_choose_is_rejected(my_pkg):
    assert error_of("my_pkg.my_mod:Helper") == (
        "policy 'my_pkg.my_mod:Helper': Helper is not a routing policy: missing method choose")
    assert error_of("my_pkg.my_mod:not_a_class") == (
        "policy 'my_pkg.my_mod:not_a_class': not_a_class is not a routing policy: must be a class, got function")
    assert error_of("my_pkg.my_mod:Forgot") == (
        "policy 'my_pkg.my_mod:Forgot': Forgot is not a routing policy: missing method choose")
    assert "Params must reject unknown keys" in error_of("my_pkg.my_mod:Loose")


def test_external_policy_is_not_registered(my_pkg):
    make("my_pkg.my_mod:LocalFirst")
    assert list(available("routing")) == BUILT_IN


def test_validate_finds_a_module_policy_without_running_its_code(my_pkg, tmp_path):
    """``validate`` checks only that the module exists: a scenario from elsewhere naming
    ``pkg.mod:X`` must not execute ``pkg`` or ``mod`` (their import side effects) until a run."""
    from tests.conftest import SCENARIOS, run_cli
    marker = tmp_path / "imported"
    (my_pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('pkg ')\n")
    (my_pkg / "loud.py").write_text(f"open({str(marker)!r}, 'a').write('mod ')\nclass X:\n    pass\n")
    mmc = str(SCENARIOS / "validation" / "mmc.yaml")
    result = run_cli("validate", mmc, "--set", "scheduler.routing=my_pkg.loud:X")
    assert (result.code, result.err) == (0, "")
    assert not marker.exists()
    missing = run_cli("validate", mmc, "--set", "scheduler.routing=my_pkg.absent:X")
    assert missing.code == 2 and not marker.exists()
    assert missing.err == ("--set scheduler.routing=my_pkg.absent:X: scheduler.routing: cannot import module "
                           "'my_pkg.absent' (ModuleNotFoundError: No module named 'my_pkg.absent') "
                           "(got 'my_pkg.absent:X')\n")
    nowhere = run_cli("validate", mmc, "--set", "scheduler.routing=no_such_pkg.mod:X")
    assert "(ModuleNotFoundError: No module named 'no_such_pkg')" in nowhere.err
    ran = run_cli("run", mmc, "--set", "scheduler.routing=my_pkg.loud:X", "--root", str(tmp_path / "r"))
    assert ran.code == 2 and "X is not a routing policy: missing method choose" in ran.err
    assert marker.read_text() == "pkg mod "  # the run imports it, and reports the class
