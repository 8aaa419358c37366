"""Policy kinds: where each kind of decision is configured in a scenario, and its default.

One table, read by the scenario schema (defaults), the policy registry (which kinds
exist), the runner (which policies a scenario uses), ``compare --kind``, the command line
and the what-if service. Adding a kind means adding a row here and declaring its base
class in :mod:`sim.policies`.

Public: ``PolicyKind``, ``POLICY_KINDS``, ``kind_path``, ``policy_specs``.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["PolicyKind", "POLICY_KINDS", "kind_path", "policy_specs"]


@dataclass(frozen=True)
class PolicyKind:
    """A kind of decision a policy makes."""

    name: str
    path: tuple[str, ...]  # where a scenario names the policy
    default: str  # the policy used when the scenario names none
    description: str


POLICY_KINDS: Mapping[str, PolicyKind] = MappingProxyType({k.name: k for k in (
    PolicyKind("routing", ("scheduler", "routing"), "nearest",
               "which serving pool takes each inference request"),
    PolicyKind("placement", ("scheduler", "placement"), "fifo_first_fit",
               "where and when queued training jobs start"),
    PolicyKind("allocation", ("scheduler", "allocation", "policy"), "proportional",
               "how the allocation model's resources R(t) are split between pools"),
    PolicyKind("autoscaling", ("scheduler", "autoscaling", "policy"), "target_utilization",
               "how many replicas each autoscaled pool keeps provisioned (scale-ups pay a cold start)"),
)})


def kind_path(kind: str) -> str:
    """The dotted scenario path of ``kind``'s policy (``scheduler.routing``)."""
    return ".".join(POLICY_KINDS[kind].path)


def policy_specs(scenario: Any) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """``(kind, path, PolicySpec)`` for every policy a validated scenario uses (a kind whose
    section is absent, such as an allocation without a load model, is skipped)."""
    for kind in POLICY_KINDS.values():
        value = scenario
        for key in kind.path:
            value = getattr(value, key, None)
        if value is not None:
            yield kind.name, kind.path, value
