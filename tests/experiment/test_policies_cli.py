"""`simulate.py policies`, and an external policy from docs/policies.md run end to end."""
import json
import re
import sys

import numpy as np
import pytest

from sim.policies import available, describe, registry
from tests.conftest import ROOT
from tests.experiment import DEFAULT, DEFAULT_TINY, cli_sets


def test_policies_lists_every_kind_policy_and_parameter(cli):
    result = cli("policies")
    assert result.code == 0
    for kind in sorted(registry._METHODS):
        assert f"{kind}:" in result.out.splitlines()
        for name, line, schema in describe(kind):
            assert re.search(rf"^  {name} +{re.escape(line)}$", result.out, re.M)
            for param, prop in schema.get("properties", {}).items():
                assert f"{param} (" in result.out and f"default {json.dumps(prop['default'])}" in result.out
    assert "    rtt_weight (float, >= 0, default 1.0): Multiplier of the RTT term" in result.out
    assert "    d (int, >= 1, default 2): Pools sampled per request" in result.out


def test_policies_json(cli):
    listed = json.loads(cli("policies", "--json").out)
    assert {(p["kind"], p["name"]) for p in listed} >= {("routing", n) for n in available("routing")}
    power = next(p for p in listed if p["name"] == "power_of_two")
    assert power["params"] == [{"name": "d", "type": "int", "default": 2, "rule": ">= 1",
                                "description": "Pools sampled per request (>= 1; 1 is uniform random)."}]


@pytest.fixture
def my_pkg(tmp_path, monkeypatch):
    """``my_pkg/my_mod.py`` from the worked example of docs/policies.md, importable."""
    docs = (ROOT / "docs" / "policies.md").read_text()
    source = re.search(r"```python\n(# my_pkg/my_mod\.py\n.*?)```", docs, re.DOTALL).group(1)
    package = tmp_path / "ext" / "my_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "my_mod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path / "ext"))
    yield package
    for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        del sys.modules[name]


def run(cli, tmp_path, name, routing):
    out = tmp_path / name
    result = cli("run", DEFAULT, *cli_sets([*DEFAULT_TINY, "metrics.requests=true", f"scheduler.routing={routing}"]),
                 "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(out)
    return out


def test_external_policy_with_params_and_own_stream_runs_through_the_cli(my_pkg, tmp_path, cli):
    spec = '{name: "my_pkg.my_mod:NearbyRandom", params: {k: 3}}'
    first, again = run(cli, tmp_path, "a", spec), run(cli, tmp_path, "b", spec)
    nearest = run(cli, tmp_path, "n", "nearest")
    assert (first / "summary.json").read_bytes() == (again / "summary.json").read_bytes()  # seeded, not global
    mine, base = np.load(first / "requests.npz"), np.load(nearest / "requests.npz")
    assert np.array_equal(mine["t_s"], base["t_s"]) and np.array_equal(mine["origin"], base["origin"])
    # It spreads requests at random over the 3 nearest pools: no pool takes most of them.
    assert np.bincount(mine["pool"]).max() < 0.6 * len(mine["pool"]) < np.bincount(base["pool"]).max()
    assert "name: my_pkg.my_mod:NearbyRandom" in (first / "resolved.yaml").read_text()


def test_external_policy_in_a_comparison(my_pkg, tmp_path, cli):
    out = tmp_path / "cmp"
    result = cli("compare", DEFAULT, *cli_sets(DEFAULT_TINY), "--policy", "nearest",
                 "--policy", "my_pkg.my_mod:LocalFirst", "--policy-param", "my_pkg.my_mod:LocalFirst.max_rtt_ms=80",
                 "--seeds", "2", "--out", str(out), "--metric", "inference.latency_ms.p99")
    assert result.code == 0, result.err
    assert (out / "my_pkg.my_mod-LocalFirst-s43" / "_SUCCESS").is_file()
    assert "max_rtt_ms: 80" in (out / "my_pkg.my_mod-LocalFirst-s42" / "resolved.yaml").read_text()


def test_bad_external_policy_params_exit_2(my_pkg, tmp_path, cli):
    routing = 'scheduler.routing={name: "my_pkg.my_mod:NearbyRandom", params: {k: 0}}'
    result = cli("run", DEFAULT, *cli_sets([*DEFAULT_TINY, routing]), "--root", str(tmp_path))
    assert result.code == 2
    assert result.err.strip() == ('--set scheduler.routing={name: "my_pkg.my_mod:NearbyRandom", pa...: '
                                  "scheduler.routing.name: invalid params: params.k: input "
                                  "should be greater than or equal to 1 (got 0) (got 'my_pkg.my_mod:NearbyRandom')")
