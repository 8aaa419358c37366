from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario.yaml_io import MAX_BYTES, format_path, load_yaml_file, load_yaml_text


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


def problems_of(text):
    with pytest.raises(ScenarioError) as info:
        load_yaml_text(text, "f.yaml")
    return [p.format() for p in info.value.problems]


def test_yaml_12_numbers():
    data, _ = load_yaml_text("a: 1e9\nb: 1.0e+9\nc: -2.5E-3\nd: .5\ne: 0o17\nf: 0x1F\ng: 0777\nh: 1_000\n"
                             "i: '1e9'\nj: !!float 3\nk: !!int '7'\nl: ~\nm: 2020-02-30\n", "f.yaml")
    assert data == {"a": 1e9, "b": 1e9, "c": -2.5e-3, "d": 0.5, "e": 15, "f": 31, "g": 777, "h": "1_000",
                    "i": "1e9", "j": 3.0, "k": 7, "l": None, "m": "2020-02-30"}


def test_non_finite_numbers_are_refused():
    assert problems_of("a: .inf\nb: -.Inf\nc: .nan\nd: 1e400\ne: !!float .NAN\n") == [
        "f.yaml:1: a: must be a finite number (got '.inf')",
        "f.yaml:2: b: must be a finite number (got '-.Inf')",
        "f.yaml:3: c: must be a finite number (got '.nan')",
        "f.yaml:4: d: must be a finite number (got '1e400')",
        "f.yaml:5: e: must be a finite number (got '.NAN')",
    ]


def test_integers_must_fit_in_64_bits():
    assert load_yaml_text(f"a: {2**63 - 1}\nb: {-2**63}\n", "f")[0] == {"a": 2**63 - 1, "b": -2**63}
    assert problems_of(f"a: {2**63}\nb: {'9' * 5000}\n") == [
        "f.yaml:1: a: integer out of range (must fit in 64 bits) (got '9223372036854775808')",
        "f.yaml:2: b: integer out of range (must fit in 64 bits) (got '" + "9" * 76 + "...)",
    ]


def test_tags_never_construct_anything():
    assert problems_of("a: !!python/object/apply:os.system ['echo hi']\nb: !foo x\nc: !!binary aGk=\n"
                       "d: !!set {x}\n? !!python/name:os.system\n: 1\n") == [
        "f.yaml:1: a: unsupported YAML tag !!python/object/apply:os.system (plain values, lists and mappings only)",
        "f.yaml:2: b: unsupported YAML tag !foo (plain values, lists and mappings only)",
        "f.yaml:3: c: unsupported YAML tag !!binary (plain values, lists and mappings only)",
        "f.yaml:4: d: unsupported YAML tag !!set (plain values, lists and mappings only)",
        "f.yaml:5: <top>: unsupported YAML tag !!python/name:os.system (plain values, lists and mappings only) "
        "on a key",
    ]


def test_alias_bomb_stops_at_the_expansion_limit():
    text = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{k}: &{k} [{', '.join([f'*{j}'] * 9)}]\n" for j, k in zip("abcdefgh", "bcdefghi", strict=True))
    assert problems_of(text) == ["f.yaml:6: f: more than 100,000 values once aliases are expanded"]


def test_aliases_within_the_limit_are_plain_copies():
    data, _ = load_yaml_text("a: &p {x: 1}\nb: *p\nc: &s 5\nd: [*s, *s]\n", "f")
    assert data == {"a": {"x": 1}, "b": {"x": 1}, "c": 5, "d": [5, 5]}


def test_recursive_and_undefined_aliases():
    assert problems_of("a: &x [1, *x]\n") == [
        "f.yaml:1: a[1]: alias *x is recursive: it refers to a value that contains it"]
    assert problems_of("a: &x {b: *x}\n") == [
        "f.yaml:1: a.b: alias *x is recursive: it refers to a value that contains it"]
    assert problems_of("a: *nope\n") == ["f.yaml:1: a: alias *nope names no anchor (&nope) defined before it"]


def test_deep_nesting_stops_at_the_depth_limit():
    assert problems_of("a: " + "[" * 5000 + "]" * 5000 + "\n") == ["f.yaml:1: a: nested more than 32 levels deep"]
    # Aliases cannot stack levels past the limit either.
    text = "a: &a " + "[" * 20 + "]" * 20 + "\nb: &b " + "[" * 15 + "*a" + "]" * 15 + "\n"
    assert problems_of(text) == ["f.yaml:2: b: nested more than 32 levels deep"]


def test_control_characters_surrogates_and_documents():
    assert problems_of("a: 1\nb: x\x00y\n") == [
        "f.yaml:2: <top>: character U+0000 is not allowed in YAML (a control character or surrogate: write it "
        "as an escape inside double quotes)"]
    assert problems_of("a: \ud800\n")[0].startswith("f.yaml:1: <top>: character U+D800 is not allowed")
    assert load_yaml_text('a: "x\\x01y"\n', "f")[0] == {"a": "x\x01y"}  # an escape is fine
    assert problems_of("a: 1\n---\nb: 2\n") == [
        "f.yaml:2: <top>: a scenario file holds one YAML document; a second starts here"]


def test_complex_keys_and_merge_keys():
    assert problems_of("? [a, b]\n: 1\n") == ["f.yaml:1: <top>: a key must be a plain value, not a list or mapping"]
    assert problems_of("a: &x {b: 1}\nc:\n  <<: *x\n") == ["f.yaml:3: c: YAML merge keys (<<) are not supported"]


def test_files_too_large_not_utf8_or_not_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * MAX_BYTES)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    for path, rule in ((big, f"file is larger than {MAX_BYTES:,} bytes (the limit for a scenario)"),
                       (bad, "not UTF-8 text (byte 0xff)"), (tmp_path, "is a folder, not a file"),
                       (tmp_path / "none.yaml", "cannot read file: No such file or directory"),
                       (Path("/dev/zero"), f"file is larger than {MAX_BYTES:,} bytes (the limit for a scenario)")):
        with pytest.raises(ScenarioError) as info:
            load_yaml_file(path)
        line = ":2" if path == bad else ""
        assert str(info.value) == f"{path}{line}: <top>: {rule}"
