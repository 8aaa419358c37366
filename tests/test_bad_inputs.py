"""The probes of issue 17, each pinned: a hostile or careless input gives exit 2 and one
located message from ``validate`` and ``run`` alike, quickly, and ``run`` creates nothing."""
from __future__ import annotations

import time

import pytest

from tests.conftest import MINIMAL, SCENARIOS, run_cli

INFERENCE = MINIMAL + """\
inference:
  - name: chat
    origin: {alpha: 1}
    arrival: {process: poisson, rate_per_s: 2}
    service: {dist: exponential, mean_s: 1}
scheduler:
  load_model: {kind: linear, L0: 100, alpha: 0.2, T0: 0}
  allocation: {weights: {alpha: 1}, L_max: 200}
"""
BOMB = "".join(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]\n" for k in range(1, 9))
# name -> (file text, --set overrides, the one message expected; {f} is the file's path)
PROBES = {
    "alias bomb": (MINIMAL + "x: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9]\n" + BOMB, [],
                   "{f}:17: l5: more than 100,000 values once aliases are expanded"),
    "recursive alias": (MINIMAL + "x: &a [1, *a]\n", [],
                        "{f}:12: x[1]: alias *a is recursive: it refers to a value that contains it"),
    "deep nesting": (MINIMAL + "x: " + "[" * 5000 + "]" * 5000 + "\n", [],
                     "{f}:12: x: nested more than 32 levels deep"),
    "python tag on a key": (MINIMAL + "? !!python/name:os.system\n: 1\n", [],
                            "{f}:12: <top>: unsupported YAML tag !!python/name:os.system (plain values, lists and "
                            "mappings only) on a key"),
    "impossible date": (MINIMAL.replace("name: mini", "name: mini\nseed: 2020-02-30"), [],
                        "{f}:2: seed: must be an integer (got '2020-02-30')"),
    "5000-digit integer": (MINIMAL.replace("replicas: 4", "replicas: " + "9" * 5000), [],
                           "{f}:7: regions[0].pools[0].replicas: integer out of range (must fit in 64 bits) (got '"
                           + "9" * 76 + "...)"),
    "NUL byte": (MINIMAL.replace("beta", "be\x00ta"), [],
                 "{f}:8: <top>: character U+0000 is not allowed in YAML (a control character or surrogate: write "
                 "it as an escape inside double quotes)"),
    "infinite rate": (INFERENCE.replace("rate_per_s: 2", "rate_per_s: .inf"), [],
                      "{f}:15: inference[0].arrival.rate_per_s: must be a finite number (got '.inf')"),
    "NaN L0": (INFERENCE.replace("L0: 100", "L0: .nan"), [],
               "{f}:18: scheduler.load_model.L0: must be a finite number (got '.nan')"),
    "infinite alpha": (INFERENCE.replace("alpha: 0.2", "alpha: .inf"), [],
                       "{f}:18: scheduler.load_model.alpha: must be a finite number (got '.inf')"),
    "minus infinite T0": (INFERENCE.replace("T0: 0", "T0: -.inf"), [],
                          "{f}:18: scheduler.load_model.T0: must be a finite number (got '-.inf')"),
    "misspelt key": (INFERENCE.replace("rate_per_s", "rate_per_sec"), [],
                     "{f}:15: inference[0].arrival.rate_per_sec: unknown key; did you mean 'rate_per_s'? (got 2)"),
    "two documents": (MINIMAL + "---\nname: other\n", [],
                      "{f}:12: <top>: a scenario file holds one YAML document; a second starts here"),
    "recursive alias in --set": (MINIMAL, ["seed=&x [*x]"],
                                 "--set seed=&x [*x]: seed[0]: alias *x is recursive: it refers to a value that "
                                 "contains it"),
    "control character in --set": (MINIMAL, ["seed=\x01"],
                                   "--set seed=\\x01: seed: character U+0001 is not allowed in YAML (a control "
                                   "character or surrogate: write it as an escape inside double quotes)"),
    "NaN through --set": (INFERENCE, ["inference.0.arrival.rate_per_s=.nan"],
                          "--set inference.0.arrival.rate_per_s=.nan: inference.0.arrival.rate_per_s: must be a "
                          "finite number (got '.nan')"),
    "misspelt key through --set": (INFERENCE, ["inference.chat.arrival.rate_per_sec=3"],
                                   "--set inference.chat.arrival.rate_per_sec=3: inference[0].arrival.rate_per_sec: "
                                   "unknown key; did you mean 'rate_per_s'? (got 3)"),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_exits_2_with_one_located_message(tmp_path, name):
    text, sets, expected = PROBES[name]
    path = tmp_path / "probe.yaml"
    path.write_text(text)
    args = [a for s in sets for a in ("--set", s)]
    for command in (["validate", str(path)], ["run", str(path), "--root", str(tmp_path / "r")]):
        started = time.monotonic()
        result = run_cli(*command, *args)
        assert time.monotonic() - started < 10
        assert result.code == 2, result.out
        assert result.err.strip().splitlines() == [expected.format(f=path)]
    assert not (tmp_path / "r").exists()


def test_1e9_is_a_number_and_a_rate_of_1e9_is_refused_by_the_estimate(tmp_path, write_yaml, cli):
    assert cli("validate", str(write_yaml(MINIMAL.replace("duration: 2h", "duration: 7.2e3")))).code == 0
    path = write_yaml(INFERENCE.replace("rate_per_s: 2", "rate_per_s: 1e9"))
    rule = ("inference[0].arrival.rate_per_s: about 7.2 trillion requests, over the budget of 20 million "
            "(--max-requests, or --force) (got 1000000000.0)")
    checked = cli("validate", str(path))
    assert checked.code == 0 and checked.err.startswith(f"warning: {path}:15: {rule}; run refuses it")
    refused = cli("run", str(path), "--root", str(tmp_path / "r"))
    assert refused.code == 2 and refused.err.splitlines()[0] == f"{path}:15: {rule}"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("target, rule", [
    ("/dev/zero", "file is larger than 1,000,000 bytes (the limit for a scenario)"),
    (str(SCENARIOS), "is a folder, not a file"),
])
def test_files_that_are_not_scenarios(cli, target, rule):
    result = cli("validate", target)
    assert (result.code, result.err) == (2, f"{target}: <top>: {rule}\n")


ZERO = "/dev/zero: <top>: file is larger than 1,000,000 bytes (the limit for a scenario)\n"


@pytest.mark.parametrize("command", [
    ["sweep", "/dev/zero", "--grid", "a=1"], ["plan-calendar", "/dev/zero"],
    ["plan", "/dev/zero", "--target", "x<=1", "--vary", "a"], ["uncertainty", "/dev/zero"],
    ["compare", "/dev/zero", "--policy", "nearest"], ["run", "/dev/zero"],
])
def test_experiment_commands_read_an_endless_file_only_up_to_the_limit(tmp_path, cli, command):
    # sweep (its sweep-file sniffing and no-op key) and plan-calendar read the whole file first.
    start = time.monotonic()
    result = cli(*command, "--root", str(tmp_path / "r"))
    assert (result.code, result.err) == (2, ZERO)
    assert time.monotonic() - start < 20
    assert not (tmp_path / "r").exists()


def test_a_sweep_file_nested_5000_deep_is_a_located_error(tmp_path, cli):
    # Its no-op key read it with yaml.safe_load first: a RecursionError traceback.
    path = tmp_path / "sweep.yaml"
    path.write_text(f"scenario: {SCENARIOS / 'validation' / 'mmc.yaml'}\ngrid: {{a: [1]}}\n"
                    "x: " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("sweep", str(path), "--root", str(tmp_path / "r"))
    assert (result.code, result.err) == (2, f"{path}:3: x: nested more than 32 levels deep\n")
