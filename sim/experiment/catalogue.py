"""The built-in policies as a table: kind, name, one-line description, parameters.

Kinds are whatever the policy registry has declared (routing now; placement and
allocation as they arrive), read from the registry without changing it.

Public: ``ParamInfo``, ``PolicyInfo``, ``policy_catalogue``, ``format_catalogue``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sim.policies import describe, registry

__all__ = ["ParamInfo", "PolicyInfo", "policy_catalogue", "format_catalogue"]


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    default: Any
    rule: str
    description: str


@dataclass(frozen=True)
class PolicyInfo:
    kind: str
    name: str
    description: str
    params: tuple[ParamInfo, ...]


def policy_kinds() -> list[str]:
    return sorted(registry.kinds())


def policy_catalogue() -> list[PolicyInfo]:
    """Every registered policy, kinds and names in sorted order."""
    return [PolicyInfo(kind, name, text, _params(schema))
            for kind in policy_kinds() for name, text, schema in describe(kind)]


def _params(schema: dict[str, Any]) -> tuple[ParamInfo, ...]:
    required = set(schema.get("required", []))
    return tuple(ParamInfo(name, _type(prop), prop.get("default", "required" if name in required else None),
                           _rule(prop), prop.get("description", ""))
                 for name, prop in schema.get("properties", {}).items())


def _type(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return {"number": "float", "integer": "int", "string": "str", "boolean": "bool",
                "array": "list", "object": "mapping"}.get(prop["type"], prop["type"])
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    options = prop.get("anyOf", [])
    return " | ".join(_type(o) for o in options) or "any"


def _rule(prop: dict[str, Any]) -> str:
    bounds = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
    return ", ".join(f"{op} {prop[key]}" for key, op in bounds if key in prop)


def format_catalogue(policies: list[PolicyInfo]) -> str:
    """Text listing, one block per kind."""
    lines: list[str] = []
    width = max((len(p.name) for p in policies), default=0)
    for kind in dict.fromkeys(p.kind for p in policies):
        lines.append(f"{kind}:")
        for policy in (p for p in policies if p.kind == kind):
            lines.append(f"  {policy.name.ljust(width)}  {policy.description}")
            for param in policy.params:
                rule = f", {param.rule}" if param.rule else ""
                lines.append(f"  {''.ljust(width)}    {param.name} ({param.type}{rule}, default "
                             f"{json.dumps(param.default)}): {param.description}")
        lines.append("")
    lines.append("External policies load as package.module:ClassName (see docs/policies.md).")
    return "\n".join(lines)
