"""From a scenario file (plus ``--set`` overrides) to a validated, frozen :class:`Scenario`.

Steps: strict YAML read (duplicate keys, YAML 1.2 values, limits) -> overrides -> pydantic
schema -> semantic checks. Every problem found is reported together, each as
``FILE:LINE: dotted.path: rule (got VALUE)``; a problem inside a value an override wrote
is reported as ``--set path=value: dotted.path: rule (got VALUE)``. The path is the field's
as written (never a union tag pydantic adds) and an unknown key comes with the closest
valid one (``unknown key; did you mean 'rate_per_s'?``).

Public: ``LoadedScenario``, ``load_scenario``, ``parse_scenario``, ``resolved_dict``,
``config_hash``, ``validation_problem``.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.errors import Problem, ScenarioError
from sim.scenario.checks import check_scenario
from sim.scenario.fields import closest_key, unknown_key_rule, walk
from sim.scenario.model import MTBF_DEPRECATED, Scenario
from sim.scenario.overrides import apply_overrides_traced
from sim.scenario.yaml_io import LineMap, format_path, load_yaml_file, load_yaml_text

__all__ = ["LoadedScenario", "load_scenario", "parse_scenario", "resolved_dict", "config_hash", "validation_problem"]


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario together with where it came from."""

    scenario: Scenario
    source: str
    text: str
    overrides: tuple[str, ...] = field(default=())
    data: Any = field(default=None, compare=False, repr=False)
    lines: LineMap | None = field(default=None, compare=False, repr=False)

    def problem(self, path: tuple[Any, ...], rule: str, value: Any = None) -> Problem:
        """A problem located in this scenario's file, for checks made after loading."""
        return _finding_problem(self.source, self.lines or LineMap(), self.data, (path, rule, value))

    @property
    def resolved(self) -> dict[str, Any]:
        return resolved_dict(self.scenario)

    @property
    def config_hash(self) -> str:
        return config_hash(self.scenario)


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> LoadedScenario:
    """Read, override and validate the scenario at ``path``; raise :class:`ScenarioError`."""
    data, lines, text = load_yaml_file(path)
    return _validate(data, lines, text, str(path), overrides)


def parse_scenario(text: str, source: str = "<string>", overrides: Sequence[str] = ()) -> LoadedScenario:
    """Like :func:`load_scenario` for YAML text held in memory."""
    data, lines = load_yaml_text(text, source)
    return _validate(data, lines, text, source, overrides)


def _validate(data: Any, lines: LineMap, text: str, source: str,
              overrides: Sequence[str]) -> LoadedScenario:
    if not isinstance(data, dict):
        raise ScenarioError([Problem(source, lines.line(()), "", "a scenario must be a mapping of keys",
                                     type(data).__name__)])
    data, written = apply_overrides_traced(data, overrides)
    lines = lines.with_origins(written)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(source, lines, data, exc.errors(), Scenario)) from None
    findings = check_scenario(scenario)
    if findings:
        raise ScenarioError([_finding_problem(source, lines, data, f) for f in findings])
    _warn_deprecated(source, lines, data)
    return LoadedScenario(scenario, source, text, tuple(overrides), data, lines)


def _warn_deprecated(source: str, lines: LineMap, data: Any) -> None:
    """A ``FutureWarning`` located like an error (``FILE:LINE: path: ...``) for each
    deprecated key the document uses: ``failures.nodes[].mtbf``."""
    failures = data.get("failures")
    nodes = failures.get("nodes") if isinstance(failures, dict) else None
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(node, dict) and "mtbf" in node:
            problem = _finding_problem(source, lines, data, (("failures", "nodes", i, "mtbf"), MTBF_DEPRECATED,
                                                             node["mtbf"]))
            warnings.warn(problem.format(), FutureWarning, stacklevel=4)


def _data_path(data: Any, loc: Iterable[Any]) -> tuple[Any, ...]:
    """Keep the parts of a pydantic ``loc`` that exist in the document (drops union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and not path[-1:] == [part]:
            path.append(part)  # a missing or unknown key: still name it
            node = None
            continue
        else:
            continue
        path.append(part)
    return tuple(path)


_RULES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "required key is missing",
    "finite_number": "must be a finite number",
    "extra_forbidden": "unknown key",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping of keys",
    "too_short": "must have at least {min_length} item(s)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "string_pattern_mismatch": "must contain only letters, digits, '-' and '_' (pattern {pattern})",
    "union_tag_invalid": "unknown kind; expected one of {expected_tags}",
    "union_tag_not_found": "a {discriminator} key is required",
    "literal_error": "must be one of {expected}",
}


def _rule(err: Mapping[str, Any]) -> str:
    template = _RULES.get(err["type"])
    if template is not None:
        try:
            ctx = {k: _number(v) for k, v in err.get("ctx", {}).items()}
            return template.format(**ctx)
        except (KeyError, IndexError):
            pass
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def _number(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def validation_problem(source: str, lines: LineMap, data: Any, err: Mapping[str, Any],
                       model: type[BaseModel] | None = None) -> Problem:
    """One pydantic validation error (an item of ``ValidationError.errors()``) as a
    :class:`Problem` located in the YAML document ``data`` read from ``source``.

    With the ``model`` validated, the path is the field's as written (union tags dropped,
    :func:`sim.scenario.fields.walk`) and an unknown key gets the closest valid key; without
    it, the path keeps only the keys the document has. The line comes from ``lines`` (or
    the override that wrote the value), the rule is worded as for every scenario error
    (``must be >= 1``, ``unknown key``) and the bad value follows, except for a missing key.
    Other YAML files validated with pydantic (sweep files) use it so that their errors read
    like a scenario's."""
    if model is not None:
        path, holder = walk(model, err["loc"])
    else:
        path, holder = _data_path(data, err["loc"]), None
    rule = unknown_key_rule(path[-1], holder) if err["type"] == "extra_forbidden" and path else _rule(err)
    file, line = lines.where(path, source)
    if err["type"] == "missing":
        return Problem(file, line, format_path(path), rule)
    return Problem(file, line, format_path(path), rule, err.get("input"))


def validation_problems(source: str, lines: LineMap, data: Any, errors: Sequence[Mapping[str, Any]],
                        model: type[BaseModel]) -> list[Problem]:
    """Every error of one validation as problems; a required key reported missing is left
    out when an unknown key beside it is suggested as that key (the misspelling says all)."""
    suggested = set()
    for err in errors:
        path, holder = walk(model, err["loc"])
        if err["type"] == "extra_forbidden" and path:
            close = closest_key(path[-1], holder)
            if close is not None:
                suggested.add(path[:-1] + (close,))
    return [validation_problem(source, lines, data, err, model) for err in errors
            if not (err["type"] == "missing" and walk(model, err["loc"])[0] in suggested)]


def _finding_problem(source: str, lines: LineMap, data: Any, finding: tuple) -> Problem:
    path, rule, value = finding
    path = _data_path(data, path)
    file, line = lines.where(path, source)
    if value is not None and not isinstance(value, (str, int, float, dict)):
        return Problem(file, line, format_path(path), rule)
    return Problem(file, line, format_path(path), rule, value)


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario after defaults and overrides, as plain data (durations in seconds)."""
    return scenario.model_dump(mode="json")


def config_hash(scenario: Scenario) -> str:
    """sha256 of the canonical JSON of the resolved scenario."""
    canonical = json.dumps(resolved_dict(scenario), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
