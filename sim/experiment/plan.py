"""Grids and sweep files: what a sweep varies, read from the command line or a YAML file.

``--grid dotted.path=v1,v2,...`` names one scenario value and the values it takes; values
are read as YAML exactly like ``--set`` values (``48`` a number, ``2h`` a duration,
``[1, 2]`` a list: commas inside brackets, braces or quotes do not split). Several grids
make a cross product, first grid varying slowest.

A sweep file holds the same in YAML, validated strictly (unknown keys refused), its
errors reported as ``FILE:LINE: path: rule (got VALUE)``:

```yaml
scenario: ../scenarios/validation/mmc.yaml   # relative to this file
grid:
  inference.req.arrival.rate_per_s: [6.0, 7.2]
  regions.solo.pools.gpu.replicas: [8, 9]
seeds: 3                                     # seeds s, s+1, s+2 from the scenario's seed
set: [duration=2h]                           # fixed overrides, like --set
metrics: [inference.latency_ms.p99]          # optional; default: the key metrics
out: ../results/mmc-capacity                 # optional; relative to this file
```

Public: ``Axis``, ``SweepFile``, ``parse_grid``, ``read_sweep_file``, ``is_sweep_file``,
``render_value``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.errors import ScenarioError, UsageError
from sim.scenario.load import validation_problem  # the scenario's own error wording, reused
from sim.scenario.overrides import split_path
from sim.scenario.yaml_io import load_yaml_file, load_yaml_text, read_text_file

__all__ = ["Axis", "SweepFile", "parse_grid", "read_sweep_file", "is_sweep_file", "render_value"]


@dataclass(frozen=True)
class Axis:
    """One grid dimension: a dotted scenario path and the values it takes."""

    path: str
    values: tuple[Any, ...]


def _assignment(text: str) -> str:
    if "=" not in text or not text.partition("=")[0].strip():
        raise ValueError("must be dotted.path=value")
    return text


class SweepFile(BaseModel):
    """A sweep described in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str = Field(min_length=1, description="Scenario file, relative to the sweep file.")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        min_length=1, description="Dotted scenario path -> values.")
    seeds: int = Field(1, ge=1, strict=True, description="Seeds per point: s, s+1, ... from the scenario's seed.")
    set: list[Annotated[str, AfterValidator(_assignment)]] = Field(
        default_factory=list, description="Fixed overrides, like --set.")
    metrics: list[str] | None = Field(None, min_length=1, description="Dotted summary paths for index.csv.")
    out: str | None = Field(None, min_length=1, description="Sweep folder, relative to the sweep file.")

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path in grid:
            split_path(path)  # ValueError: malformed path
        return grid

    def axes(self) -> list[Axis]:
        return [Axis(path, tuple(values)) for path, values in self.grid.items()]


def is_sweep_file(path: str | Path) -> bool:
    """True when ``path`` is YAML with a top-level ``grid`` key (a scenario has none)."""
    try:
        data, _, _ = load_yaml_file(path)
    except ScenarioError:  # broken YAML: still a sweep file if it says so, to report its errors
        try:
            text = read_text_file(path)  # bounded: /dev/zero is not read to the end here
        except ScenarioError:
            return False
        return bool(re.search(r"^grid\s*:", text, re.M))
    return isinstance(data, dict) and "grid" in data


def read_sweep_file(path: str | Path) -> tuple[SweepFile, Path]:
    """Validate the sweep file at ``path``; return it and the folder its paths are relative to."""
    data, lines, _ = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ScenarioError([validation_problem(str(path), lines, data, {"type": "model_type", "loc": (), "msg": "",
                                                                         "input": type(data).__name__})])
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as exc:
        problems = [validation_problem(str(path), lines, data, err, SweepFile) for err in exc.errors()]
        raise ScenarioError(problems) from None
    return spec, Path(path).resolve().parent


def parse_grid(text: str) -> Axis:
    """``'path=v1,v2'`` -> ``Axis('path', (v1, v2))``; raise :class:`UsageError`."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or not raw.strip():
        raise UsageError(f"--grid: expects dotted.path=v1,v2,... (got {text!r})")
    try:
        split_path(path)
    except ValueError as exc:
        raise UsageError(f"--grid: {exc} (got {text!r})") from None
    values = []
    for item in _split_top_level(raw):
        if not item.strip():
            raise UsageError(f"--grid: empty value in {text!r}")
        try:
            value, _ = load_yaml_text(item, "--grid")
        except ScenarioError as exc:
            raise UsageError(f"--grid: cannot read value {item!r} in {text!r} ({exc})") from None
        values.append(value)
    return Axis(path, tuple(values))


def _split_top_level(raw: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(raw):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(raw[start:i])
            start = i + 1
    items.append(raw[start:])
    return items


def render_value(value: Any) -> str:
    """A value as ``--set`` text that reads back as the same value (YAML flow style)."""
    if isinstance(value, str):
        # A plain string that YAML would read back as itself stays bare (2h, nearest).
        bare, _ = load_yaml_text(value, "value") if value.strip() else (None, None)
        if bare == value:
            return value
        return json.dumps(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
    return text.removesuffix("\n").removesuffix("\n...").strip()
