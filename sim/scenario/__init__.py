"""Scenario files: strict YAML -> overrides -> validated, frozen :class:`Scenario`.

Public: ``Scenario``, ``LoadedScenario``, ``load_scenario``, ``parse_scenario``,
``resolved_dict``, ``config_hash``, ``json_schema``, ``apply_overrides``.
"""
from __future__ import annotations

from typing import Any

from sim.scenario.load import LoadedScenario, config_hash, load_scenario, parse_scenario, resolved_dict
from sim.scenario.model import Scenario
from sim.scenario.overrides import apply_overrides

__all__ = ["Scenario", "LoadedScenario", "load_scenario", "parse_scenario", "resolved_dict",
           "config_hash", "json_schema", "apply_overrides"]


def json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editor autocompletion."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Meridian scenario"
    return schema
