"""Property: any mutation of a valid scenario, however hostile, is either a valid run or exit 2
with a located message, within seconds, never a traceback, a hang or a run the machine
cannot hold.

Two generators: ``mutated`` changes, deletes or adds one value of a shipped scenario, or
cuts junk into its text; ``hostile`` puts at one value, in the file or through ``--set``, the
inputs a careless or malicious user writes: alias bombs, recursive aliases, deep nesting,
tags, control characters, non-finite and huge numbers."""
import copy
import json
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import SCENARIOS, run_cli

BASE_TEXT = (SCENARIOS / "two_regions.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)
# Keep valid runs small, so that a mutation that stays valid is simulated in milliseconds;
# bigger ones must be refused by the cost estimate, not run.
BUDGET = ("--max-memory", "400MB", "--max-requests", "300000")
HOLE = "@@HOLE@@"


def leaf_paths(node, prefix=()):
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += leaf_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += leaf_paths(value, prefix + (i,))
    return paths


PATHS = leaf_paths(BASE)
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["NO", "on", "1h", "0s", "-5m", "7d", "", "H100", "us-east"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def parent_and_key(data, path):
    node = data
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


def short_run_data():
    data = copy.deepcopy(BASE)
    data["duration"] = "2h"
    data["warmup"] = "10m"
    return data


@st.composite
def mutated(draw):
    data = short_run_data()
    kind = draw(st.sampled_from(["set", "delete", "extra", "text"]))
    path = draw(st.sampled_from(PATHS))
    parent, key = parent_and_key(data, path)
    if kind == "set":
        parent[key] = draw(VALUES)
    elif kind == "delete":
        del parent[key]
    elif kind == "extra":
        target = parent if isinstance(parent, dict) else data
        target[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    text = yaml.safe_dump(data, sort_keys=False)
    if kind == "text":
        cut = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["", ":", "- ", "\t", "[", "{a: 1", "\n  x: y\n", "&a *b"]))
        text = text[:cut] + junk + text[cut:]
    return text


@st.composite
def alias_bomb(draw):
    fan, levels = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    items = ["&a0 [" + ", ".join(["1"] * fan) + "]"]
    items += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * fan) + "]" for k in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@st.composite
def deep_nesting(draw):
    depth = draw(st.integers(20, 3000))
    if draw(st.booleans()):
        return "[" * depth + "]" * depth
    return "{a: " * depth + "1" + "}" * depth


TAGS = ["!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!foo x", "!!binary aGk=",
        "!!set {a}", "!!omap [a: 1]", "!!timestamp 2020-02-30", "!!int x", "!!float nope", "!!str 5", "!!int '7'",
        "!!bool yes", "!!null ''", "! 12"]
NUMBERS = [".inf", "-.inf", ".nan", ".NaN", "1e400", "-1e999", "1e9", "1.0e+9", "0x7fffffffffffffff", "0o777",
           "9223372036854775808", "-9223372036854775809", "1e-320", "2020-02-30", "1_000", "0777",
           "1.0e+308", "-1.0e+300", "1e300", "1.0e-300"]  # finite but huge or tiny: nothing may overflow
CONTROL = [chr(c) for c in (*range(9), 11, 12, *range(14, 32), 127, 0x85, 0xFEFF, 0xFFFE, 0xD800, 0xDFFF)]


@st.composite
def hostile_fragment(draw):
    kind = draw(st.sampled_from(["bomb", "deep", "recursive", "tag", "number", "huge", "control", "anchor"]))
    if kind == "bomb":
        return draw(alias_bomb())
    if kind == "deep":
        return draw(deep_nesting())
    if kind == "recursive":
        return draw(st.sampled_from(["&r [*r]", "&r {k: *r}", "&r [1, [2, *r]]", "*undefined"]))
    if kind == "tag":
        return draw(st.sampled_from(TAGS))
    if kind == "number":
        return draw(st.sampled_from(NUMBERS))
    if kind == "huge":
        return draw(st.sampled_from(["", "-"])) + "9" * draw(st.integers(19, 6000))
    if kind == "anchor":
        return "&ok 5"
    text = draw(st.text(max_size=6))
    cut = draw(st.integers(0, len(text)))
    return repr(text[:cut] + draw(st.sampled_from(CONTROL)) + text[cut:])[1:-1] if draw(st.booleans()) \
        else text[:cut] + draw(st.sampled_from(CONTROL)) + text[cut:]


@st.composite
def hostile(draw):
    """(file text, --set arguments): a hostile value in the file, or through --set."""
    data = short_run_data()
    path = draw(st.sampled_from(PATHS))
    fragment = draw(hostile_fragment())
    if draw(st.booleans()):
        parent, key = parent_and_key(data, path)
        parent[key] = HOLE
        return yaml.safe_dump(data, sort_keys=False).replace(HOLE, fragment.replace("\n", " ")), []
    dotted = ".".join(str(p) for p in path)
    return yaml.safe_dump(data, sort_keys=False), [f"{dotted}={fragment}"]


def check(tmp_path, text, sets=()):
    path = tmp_path / "mutant.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate becomes bad UTF-8
    args = [a for s in sets for a in ("--set", s)]
    started = time.monotonic()
    result = run_cli("run", str(path), "--root", str(tmp_path / "results"), *BUDGET, *args)
    assert time.monotonic() - started < 30
    assert result.code in (0, 2), result.err
    if result.code == 2:
        assert result.err.strip(), "exit 2 needs a message"
        for line in result.err.strip().split("\n"):
            assert line.startswith((str(path), "--set")), line
    else:
        folder = result.out.splitlines()[-1]
        assert folder.startswith(str(tmp_path / "results"))
        summary = json.loads((Path(folder) / "summary.json").read_text())
        resolved = yaml.safe_load((Path(folder) / "resolved.yaml").read_text())
        if (resolved.get("scheduler") or {}).get("load_model"):
            # An accepted run computes its numbers: L0: 1.0e+308 overflowed the mean load to null.
            assert None not in (summary["load"]["mean"], summary["resources"]["mean"]), summary


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutations_never_crash(tmp_path, text):
    check(tmp_path, text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile())
def test_hostile_values_never_crash(tmp_path, case):
    check(tmp_path, *case)
