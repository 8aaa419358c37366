"""Error types shared by every layer.

A user's mistake is never a traceback. Input problems become :class:`Problem` records
(file, line, dotted path, rule, offending value) collected into one
:class:`ScenarioError`, which the CLI prints one per line before exiting with code 2.
A policy that returns an impossible decision raises :class:`PolicyError` naming itself. A
result that cannot be written (a read-only folder, a full disk, a path under a file) is an
:class:`OutputError` naming the path.

Public: ``MeridianError``, ``Problem``, ``ScenarioError``, ``PolicyError``, ``UsageError``,
``OutputError``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MeridianError", "Problem", "ScenarioError", "PolicyError", "UsageError", "OutputError"]

_MISSING = object()


class MeridianError(Exception):
    """Base class for every error Meridian reports to a user (exit code 2)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, which rule it breaks, what was found."""

    file: str
    line: int | None
    path: str
    rule: str
    value: Any = _MISSING

    def format(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        path = _shorten(self.path or "<top>", 160)
        got = "" if self.value is _MISSING else f" (got {_show(self.value)})"
        return f"{where}: {path}: {self.rule}{got}"


def _show(value: Any) -> str:
    return _shorten(repr(value) if isinstance(value, str) else str(value), 80)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


class ScenarioError(MeridianError):
    """One or more problems found in a scenario; ``str()`` lists them one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


class PolicyError(MeridianError):
    """A policy returned a decision the engine cannot apply."""

    def __init__(self, policy: str, message: str):
        self.policy, self.message = policy, message
        # Both in args: SimPy re-creates an exception raised in a process from its args.
        super().__init__(policy, message)

    def __str__(self) -> str:
        return f"policy {self.policy!r}: {self.message}"


class UsageError(MeridianError):
    """A command-line argument is wrong (unknown file, malformed --set, ...)."""



class OutputError(MeridianError):
    """A result folder or file cannot be created or written (read-only, full disk, a path
    under a file); the message names the path."""
