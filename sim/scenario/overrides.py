"""``--set dotted.path=value`` overrides, applied to the raw YAML data before validation.

A path is a dotted list of keys; list items are addressed by index (``regions.0`` or
``regions[0]``) or by their ``name`` (``regions.eu-west.pools.a100.replicas``). The value
is read as YAML with the same strict rules as a scenario file (``48`` is a number, ``2h``
a duration string, ``NO`` a string).

A problem with an override is reported under the override's own text, never a line of the
scenario file: ``--set seed=&x [*x]: seed: alias *x is recursive ...``; so is a validation
problem inside a value an override wrote (:func:`override_label`, :func:`apply_overrides_traced`).

Public: ``parse_assignment``, ``apply_overrides``, ``apply_overrides_traced``, ``override_label``,
``split_path``, ``resolve_path``.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from sim.errors import Problem, ScenarioError
from sim.scenario.yaml_io import load_yaml_text

__all__ = ["parse_assignment", "apply_overrides", "apply_overrides_traced", "override_label", "split_path",
           "resolve_path"]

_INDEX = re.compile(r"\[(\d+)\]")
_LABEL_CHARS = 60
Written = list[tuple[tuple[str | int, ...], str]]  # (key path an override wrote, its label)


def override_label(text: str) -> str:
    """How problems name an override: ``--set path=value``, escaped and shortened."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    if len(shown) > _LABEL_CHARS:
        shown = shown[:_LABEL_CHARS - 3] + "..."
    return f"--set {shown}"


def split_path(path: str) -> list[str]:
    """``regions[0].pools.a100`` -> ``['regions', '0', 'pools', 'a100']``."""
    parts = _INDEX.sub(r".\1", path).split(".")
    if not path or any(p == "" for p in parts):
        raise ValueError(f"malformed path {path!r}")
    return parts


def parse_assignment(text: str) -> tuple[str, Any]:
    """``'seed=3'`` -> ``('seed', 3)``; raise ``ValueError`` if there is no ``=`` and
    :class:`ScenarioError` (problems named by the override) if the value is bad YAML."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError("expects dotted.path=value")
    try:
        value, _ = load_yaml_text(raw, "--set") if raw.strip() else ("", None)
    except ScenarioError as exc:
        raise ScenarioError([_relabel(p, text, path.strip()) for p in exc.problems]) from None
    return path.strip(), value


def _path_problem(text: str, message: str) -> Problem:
    """``'regions.gamma: no item named ...'`` as a problem of the override ``text``."""
    where, sep, rule = message.partition(": ")
    if not sep or " " in where:
        where, rule = text.partition("=")[0].strip() or text, message
    return Problem(override_label(text), None, where, rule)


def _relabel(problem: Problem, text: str, path: str) -> Problem:
    """A problem of an override's value, named by the override and the path it sets."""
    inner = problem.path if problem.path and problem.path != "<top>" else ""
    where = path + (inner if inner.startswith("[") else f".{inner}" if inner else "")
    return Problem(override_label(text), None, where, problem.rule, problem.value)


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


def resolve_path(data: Any, path: str, create: bool = False,
                 created: list[tuple[str | int, ...]] | None = None) -> tuple[Any, str | int, list[str | int]]:
    """Return (parent container, final key, full key path) for ``path`` in ``data``; with
    ``create``, missing mappings on the way are made (their key paths added to ``created``)."""
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
            if created is not None:
                created.append(tuple(keys))
        node = node[key]
    raise AssertionError("unreachable")


def apply_overrides(data: Any, assignments: Iterable[str]) -> Any:
    """Return a copy of ``data`` with every ``path=value`` assignment applied, in order."""
    return apply_overrides_traced(data, assignments)[0]


def apply_overrides_traced(data: Any, assignments: Iterable[str]) -> tuple[Any, Written]:
    """Like :func:`apply_overrides`, also returning, for each override, the highest key path
    it wrote (a key it created on the way, else the key it set) and its label."""
    result = copy.deepcopy(data) if data is not None else {}
    problems: list[Problem] = []
    written: Written = []
    for text in assignments:
        try:
            path, value = parse_assignment(text)
            created: list[tuple[str | int, ...]] = []
            parent, key, keys = resolve_path(result, path, create=True, created=created)
            parent[key] = value
            written.append(((created or [tuple(keys)])[0], override_label(text)))
        except ScenarioError as exc:
            problems += exc.problems
        except ValueError as exc:
            problems.append(_path_problem(text, str(exc)))
    if problems:
        raise ScenarioError(problems)
    return result, written
