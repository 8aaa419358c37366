"""Property: any mutation of a valid scenario is either a valid run or exit 2 with a
located message, never a traceback."""
import copy

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import SCENARIOS, run_cli

BASE_TEXT = (SCENARIOS / "two_regions.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)


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


@st.composite
def mutated(draw):
    data = copy.deepcopy(BASE)
    # Keep runs short so a mutation that stays valid is simulated in milliseconds.
    data["duration"] = "2h"
    data["warmup"] = "10m"
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


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutations_never_crash(tmp_path, text):
    path = tmp_path / "mutant.yaml"
    path.write_text(text)
    result = run_cli("run", str(path), "--root", str(tmp_path / "results"))
    assert result.code in (0, 2)
    if result.code == 2:
        assert result.err.strip(), "exit 2 needs a message"
        for line in result.err.strip().split("\n"):
            assert line.startswith((str(path), "--set")), line
    else:
        assert result.out.splitlines()[-1].startswith(str(tmp_path / "results"))
