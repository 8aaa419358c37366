"""The scenario key reference, generated from the schema so it cannot drift.

``python -m sim.scenario.docs`` rewrites the part of ``scenarios/README.md`` between the
``<!-- keys:start -->`` and ``<!-- keys:end -->`` markers; a test fails when the file is
stale. Each row gives the dotted key, its type, unit, default and meaning (the field's
description in :mod:`sim.scenario.model`).

Public: ``reference_rows``, ``reference_markdown``, ``update_readme``.
"""
from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sim.scenario.model import Scenario
from sim.units import format_duration

__all__ = ["reference_rows", "reference_markdown", "update_readme"]

START, END = "<!-- keys:start -->", "<!-- keys:end -->"
# Longest suffix first: "rate_per_s" is 1/s, not s.
_UNITS = (("_ms_per_token", "ms/token"), ("_usd_per_kwh", "USD/kWh"), ("_g_per_kwh", "gCO2e/kWh"),
          ("_per_s", "1/s"), ("_gbps", "Gbit/s"), ("_ms", "ms"), ("_s", "s"), ("_h", "h"),
          ("lat", "degrees"), ("lon", "degrees"))
_TAGS = ("kind", "process", "dist")


def _models(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models reachable inside an annotation (through unions, lists, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return list(dict.fromkeys(found))  # a model reachable twice (a law, or a map of laws) is one


def _tag(model: type[BaseModel]) -> str | None:
    for name in _TAGS:
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return str(typing.get_args(field.annotation)[0])
    return None


def _is_duration(metadata: Iterable[Any]) -> bool:
    """Whether a field's metadata holds the ``parse_duration`` validator."""
    return any(getattr(getattr(m, "func", None), "__name__", "") == "parse_duration" for m in metadata)


def _field_type(field: FieldInfo) -> str:
    if _is_duration(field.metadata):
        return "duration"
    return _type_name(field.annotation)


def _type_name(annotation: Any) -> str:
    models = _models(annotation)
    tags = [tag for tag in map(_tag, models) if tag]
    if len(models) > 1 and len(tags) == len(models):
        return "one of: " + ", ".join(tags)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        if _is_duration(typing.get_args(annotation)[1:]):
            return "duration"
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is typing.Literal:
        return " / ".join(repr(a).replace("'", "") for a in typing.get_args(annotation))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        return f"map of {_type_name(typing.get_args(annotation)[1])}"
    if isinstance(annotation, type):
        return annotation.__name__ if not issubclass(annotation, BaseModel) else "mapping"
    return str(annotation)


def _unit(name: str, type_name: str) -> str:
    if "duration" in type_name:
        return "duration"
    for suffix, unit in _UNITS:
        if name.endswith(suffix) or name == suffix:
            return unit
    return ""


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(defaults)"
    if value is None:
        return "none"
    if _field_type(field) == "duration":
        return f"`{format_duration(value)}`"
    return "`" + repr(value).replace("|", "\\|") + "`"


def reference_rows(model: type[BaseModel] = Scenario, prefix: str = "") -> Iterator[tuple[str, ...]]:
    """(key, type, unit, default, meaning) for every field, depth first."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        type_name = _field_type(field)
        meaning = field.description or (f"Selects this variant ({type_name})." if name in _TAGS else "")
        yield key, type_name, _unit(name, type_name), _default(field), meaning.replace("|", "\\|")
        for sub in _models(field.annotation):
            tag = f"({_tag(sub)})" if _tag(sub) and len(_models(field.annotation)) > 1 else ""
            sep = "[]." if typing.get_origin(field.annotation) is list else "."
            if typing.get_origin(field.annotation) is dict:
                sep = ".NAME."
            yield from reference_rows(sub, f"{key}{tag}{sep}")


def reference_markdown() -> str:
    lines = ["| key | type | unit | default | meaning |", "|---|---|---|---|---|"]
    seen = set()
    for row in reference_rows():
        if row[0] in seen:
            continue
        seen.add(row[0])
        lines.append("| `" + row[0] + "` | " + " | ".join(row[1:]) + " |")
    return "\n".join(lines) + "\n"


def update_readme(path: Path) -> bool:
    """Rewrite the generated block of ``path``; return True if it changed."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{reference_markdown()}{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "scenarios/README.md")
    print(f"{readme}: {'updated' if update_readme(readme) else 'up to date'}")
