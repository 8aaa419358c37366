"""``--set dotted.path=value`` overrides, applied to the raw YAML data before validation.

A path is a dotted list of keys; list items are addressed by index (``regions.0`` or
``regions[0]``) or by their ``name`` (``regions.eu-west.pools.a100.replicas``). The value
is read as YAML with the same strict rules as a scenario file (``48`` is a number, ``2h``
a duration string, ``NO`` a string).

Public: ``parse_assignment``, ``apply_overrides``, ``split_path``, ``resolve_path``.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from sim.errors import Problem, ScenarioError
from sim.scenario.yaml_io import load_yaml_text

__all__ = ["parse_assignment", "apply_overrides", "split_path", "resolve_path"]

_INDEX = re.compile(r"\[(\d+)\]")


def split_path(path: str) -> list[str]:
    """``regions[0].pools.a100`` -> ``['regions', '0', 'pools', 'a100']``."""
    parts = _INDEX.sub(r".\1", path).split(".")
    if not path or any(p == "" for p in parts):
        raise ValueError(f"malformed path {path!r}")
    return parts


def parse_assignment(text: str) -> tuple[str, Any]:
    """``'seed=3'`` -> ``('seed', 3)``; raise ``ValueError`` if there is no ``=``."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"--set expects dotted.path=value, got {text!r}")
    value, _ = load_yaml_text(raw, "--set") if raw.strip() else ("", None)
    return path.strip(), value


def _child_key(container: Any, part: str, where: str) -> str | int:
    """Key or index in ``container`` addressed by ``part``, or raise ``ValueError``."""
    if isinstance(container, dict):
        return part
    if isinstance(container, list):
        if part.isdigit():
            index = int(part)
            if index >= len(container):
                raise ValueError(f"{where}: index {index} out of range (list has {len(container)} items)")
            return index
        names = [item.get("name") for item in container if isinstance(item, dict)]
        if part in names:
            return names.index(part)
        raise ValueError(f"{where}: no item named {part!r} (names: {', '.join(map(str, names)) or 'none'})")
    raise ValueError(f"{where}: cannot descend into a {type(container).__name__}")


def resolve_path(data: Any, path: str, create: bool = False) -> tuple[Any, str | int, list[str | int]]:
    """Return (parent container, final key, full key path) for ``path`` in ``data``."""
    parts = split_path(path)
    node, keys = data, []
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        key = _child_key(node, part, where)
        keys.append(key)
        if i == len(parts) - 1:
            return node, key, keys
        if isinstance(node, dict) and (key not in node or node[key] is None):
            if not create:
                raise ValueError(f"{where}: no such key")
            node[key] = {}
        node = node[key]
    raise AssertionError("unreachable")


def apply_overrides(data: Any, assignments: Iterable[str]) -> Any:
    """Return a copy of ``data`` with every ``path=value`` assignment applied, in order."""
    result = copy.deepcopy(data) if data is not None else {}
    problems: list[Problem] = []
    for text in assignments:
        try:
            path, value = parse_assignment(text)
            parent, key, _ = resolve_path(result, path, create=True)
            parent[key] = value
        except (ValueError, ScenarioError) as exc:
            problems.append(Problem("--set", None, text, str(exc)))
    if problems:
        raise ScenarioError(problems)
    return result
