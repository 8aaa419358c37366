"""Reading scenario YAML strictly, remembering where every value came from.

PyYAML's default (YAML 1.1) turns ``NO``, ``on`` and ``yes`` into booleans and lets a
duplicate key silently overwrite the first one. Scenario files are read instead with a
loader that only knows ``true``/``false`` as booleans (as YAML 1.2 does) and reports
duplicate keys. Every value's line is kept in a :class:`LineMap` so that validation errors
can point at ``FILE:LINE``.

Public: ``LineMap``, ``load_yaml_text``, ``load_yaml_file``, ``dump_yaml``, ``format_path``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from sim.errors import Problem, ScenarioError

__all__ = ["LineMap", "load_yaml_text", "load_yaml_file", "dump_yaml", "format_path"]

PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_./-]+$")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose booleans are only ``true``/``false`` (any case)."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def format_path(path: Iterable[str | int]) -> str:
    """``("regions", 0, "pools")`` -> ``regions[0].pools``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(str(part)):
            text += f"[{str(part)!r}]"  # odd keys (spaces, control characters) stay on one line
        else:
            text += f".{part}" if text else str(part)
    return text


class LineMap:
    """Maps a value's path inside the document to its 1-based line number."""

    def __init__(self, lines: dict[PathKey, int] | None = None):
        self._lines = dict(lines or {})

    def set(self, path: PathKey, line: int) -> None:
        self._lines[path] = line

    def line(self, path: Iterable[str | int]) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), None)


def load_yaml_text(text: str, filename: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; raise :class:`ScenarioError` on syntax or duplicate keys."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        rule = f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        raise ScenarioError([Problem(filename, line, "", rule)]) from None
    finally:
        loader.dispose()
    lines = LineMap()
    problems: list[Problem] = []
    if node is None:
        return None, lines
    value = _build(node, (), loader, lines, problems, filename)
    if problems:
        raise ScenarioError(problems)
    return value, lines


def load_yaml_file(path: str | Path) -> tuple[Any, LineMap, str]:
    """Read ``path`` and return (data, line map, verbatim text)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read file: {exc}")]) from None
    data, lines = load_yaml_text(text, str(path))
    return data, lines, text


def _build(node: yaml.Node, path: PathKey, loader: _StrictLoader, lines: LineMap,
           problems: list[Problem], filename: str) -> Any:
    lines.set(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(node, path, loader, lines, problems, filename)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), loader, lines, problems, filename)
                for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problems.append(Problem(filename, node.start_mark.line + 1, format_path(path),
                                f"invalid value: {exc}"))
        return None


def _build_mapping(node: yaml.MappingNode, path: PathKey, loader: _StrictLoader, lines: LineMap,
                   problems: list[Problem], filename: str) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            problems.append(Problem(filename, key_node.start_mark.line + 1, format_path(path),
                                    "YAML merge keys (<<) are not supported"))
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            first = lines.line(path + (key,))
            problems.append(Problem(filename, key_node.start_mark.line + 1,
                                    format_path(path + (key,)),
                                    f"duplicate key (first defined on line {first})"))
            continue
        result[key] = _build(value_node, path + (key,), loader, lines, problems, filename)
    return result


def dump_yaml(data: Any) -> str:
    """Serialise plain data to YAML with keys in insertion order (deterministic)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
