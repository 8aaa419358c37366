import pytest

from sim.errors import ScenarioError
from sim.scenario.yaml_io import format_path, load_yaml_text


def test_yaml_11_booleans_stay_strings():
    data, _ = load_yaml_text("a: NO\nb: on\nc: yes\nd: Off\ne: true\nf: False\n", "f.yaml")
    assert data == {"a": "NO", "b": "on", "c": "yes", "d": "Off", "e": True, "f": False}


def test_duplicate_key_names_both_lines():
    with pytest.raises(ScenarioError) as info:
        load_yaml_text("a: 1\nb:\n  c: 2\n  c: 3\n", "f.yaml")
    assert str(info.value) == "f.yaml:4: b.c: duplicate key (first defined on line 3)"


def test_every_duplicate_is_reported():
    with pytest.raises(ScenarioError) as info:
        load_yaml_text("a: 1\na: 2\nb: 1\nb: 2\n", "f.yaml")
    assert [p.line for p in info.value.problems] == [2, 4]


def test_syntax_error_has_line():
    with pytest.raises(ScenarioError) as info:
        load_yaml_text("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
    assert str(info.value).startswith("f.yaml:3: <top>: invalid YAML")


def test_line_map_points_at_nested_values():
    _, lines = load_yaml_text("a:\n  - x: 1\n    y: 2\n", "f")
    assert lines.line(("a", 0, "y")) == 3
    assert lines.line(("a", 0, "missing")) == 2


def test_format_path():
    assert format_path(("regions", 2, "pools", 0, "replicas")) == "regions[2].pools[0].replicas"


def test_odd_keys_are_quoted_in_paths():
    assert format_path(("a", "b c", "\x1e", 0)) == "a['b c']['\\x1e'][0]"
