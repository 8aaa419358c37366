"""One registry for every kind of policy (routing now; placement and allocation later).

A policy is a class registered under a *kind* and a *name* with :func:`register`. It has

- a docstring whose first line is its one-line description (shown by ``describe``),
- an optional nested pydantic model ``Params`` (subclass :class:`PolicyParams`: frozen,
  unknown keys rejected) whose fields carry defaults and descriptions,
- ``__init__(self, params, rng)``, with ``params`` a validated ``Params`` instance and
  ``rng`` the policy's own ``numpy.random.Generator``,
- the methods of its kind (declared once with :func:`declare_kind` beside the kind's base
  class, e.g. ``choose`` for routing).

:func:`create` turns a scenario's ``PolicySpec(name, params)`` into a policy object: a
registered name, or ``package.module:ClassName`` for a policy that lives outside Meridian.
Every mistake becomes a :class:`~sim.errors.PolicyError` naming the policy.

Public: ``register``, ``create``, ``available``, ``describe``, ``declare_kind``, ``kinds``,
``PolicyParams``.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from sim.errors import PolicyError
from sim.scenario.kinds import POLICY_KINDS, PolicyKind
from sim.scenario.model import PolicySpec

__all__ = ["register", "create", "locate", "available", "describe", "declare_kind", "kinds", "PolicyParams"]

T = TypeVar("T", bound=type)

_METHODS: dict[str, tuple[str, ...]] = {}
_REGISTRY: dict[str, dict[str, type]] = {}


class PolicyParams(BaseModel):
    """Base of every policy's ``Params``: frozen, strict, unknown keys rejected. No fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def declare_kind(kind: str, methods: tuple[str, ...]) -> None:
    """Make ``kind`` (a row of :data:`~sim.scenario.kinds.POLICY_KINDS`) registrable; its
    policies must define every one of ``methods``."""
    if kind not in POLICY_KINDS:
        raise ValueError(f"policy kind {kind!r} is not in sim.scenario.kinds.POLICY_KINDS")
    if kind in _METHODS and _METHODS[kind] != tuple(methods):
        raise ValueError(f"policy kind {kind!r} already declared with methods {_METHODS[kind]}")
    _METHODS[kind] = tuple(methods)
    _REGISTRY.setdefault(kind, {})


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: register the policy class under ``(kind, name)``."""
    def decorate(cls: T) -> T:
        policies = _policies(kind)
        if name in policies:
            raise ValueError(f"{kind} policy {name!r} is already registered ({_qualname(policies[name])})")
        problem = _shape_problem(kind, cls) or (
            None if _summary(cls) else "needs a docstring (its first line describes it)")
        if problem:
            raise TypeError(f"{kind} policy {name!r} ({_qualname(cls)}): {problem}")
        policies[name] = cls
        return cls
    return decorate


def kinds() -> dict[str, PolicyKind]:
    """The declared policy kinds (where a scenario names each, its default), by name."""
    return {name: POLICY_KINDS[name] for name in _METHODS}


def available(kind: str) -> dict[str, type]:
    """Registered policies of ``kind`` by name, sorted by name."""
    policies = _policies(kind)
    return {name: policies[name] for name in sorted(policies)}


def describe(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, one-line description, JSON Schema of Params)`` for each policy of ``kind``."""
    return [(name, _summary(cls), _params_model(cls).model_json_schema())
            for name, cls in available(kind).items()]


def create(kind: str, spec: PolicySpec, rng: np.random.Generator) -> Any:
    """A new policy object for ``spec``: looked up by name, or imported from ``module:Class``."""
    name = spec.name
    cls = _import(kind, name) if ":" in name else _lookup(kind, name)
    params = _validate(name, _params_model(cls), spec.params)
    try:
        return cls(params, rng)
    except (TypeError, ValueError) as exc:
        raise PolicyError(name, f"could not be created: {exc}") from exc


# -- helpers ---------------------------------------------------------------------------------
def _policies(kind: str) -> dict[str, type]:
    if kind not in _METHODS:
        raise ValueError(f"unknown policy kind {kind!r} (valid: {', '.join(sorted(_METHODS))})")
    return _REGISTRY[kind]


def _lookup(kind: str, name: str) -> type:
    policies = _policies(kind)
    if name not in policies:
        valid = ", ".join(sorted(policies))
        raise PolicyError(name, f"unknown {kind} policy {name!r} (valid: {valid})")
    return policies[name]


def locate(kind: str, spec: PolicySpec) -> None:
    """Check ``spec`` without running any user code: a registered name is created as by
    :func:`create`; for ``module:Class`` only that the module exists is checked (found on
    the import path, neither it nor its packages executed; ``validate`` uses this, so a
    scenario's module is imported only by the run that uses it)."""
    if ":" not in spec.name:
        create(kind, spec, np.random.default_rng(0))
        return
    _policies(kind)
    module_name, _, attr_path = spec.name.partition(":")
    if not module_name or not attr_path:
        raise PolicyError(spec.name, "an external policy is written 'package.module:ClassName'")
    missing = _unfound(module_name)
    if missing:
        raise PolicyError(spec.name, f"cannot import module {module_name!r} (ModuleNotFoundError: No module named "
                                     f"{missing!r})")


def _unfound(module_name: str) -> str | None:
    """The first package or module of ``module_name`` not on the import path (None: all found),
    looked up by the import system's finders only: no module is executed."""
    parts = module_name.split(".")
    try:
        found = importlib.util.find_spec(parts[0])  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        found = None
    for i in range(1, len(parts)):
        if found is None:
            return ".".join(parts[:i])
        places = found.submodule_search_locations
        if places is None:  # a module, not a package: it has no submodules
            return ".".join(parts[:i + 1])
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[:i + 1]), list(places))
    return None if found is not None else module_name


def _import(kind: str, name: str) -> type:
    _policies(kind)
    module_name, _, attr_path = name.partition(":")
    if not module_name or not attr_path:
        raise PolicyError(name, "an external policy is written 'package.module:ClassName'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # any failure inside the user's module is reported, not raised
        raise PolicyError(name, f"cannot import module {module_name!r} ({type(exc).__name__}: {exc})") from exc
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise PolicyError(name, f"module {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, attr)
    problem = _shape_problem(kind, target)
    if problem:
        raise PolicyError(name, f"{attr_path} is not a {kind} policy: {problem}")
    return target


def _shape_problem(kind: str, cls: Any) -> str | None:
    """What keeps ``cls`` from being a policy of ``kind``, or None."""
    if not isinstance(cls, type):
        return f"must be a class, got {type(cls).__name__}"
    missing = [m for m in _METHODS[kind] if not callable(getattr(cls, m, None))
               or getattr(getattr(cls, m), "__isabstractmethod__", False)]
    if missing:
        return f"missing method {', '.join(missing)}"
    params = getattr(cls, "Params", PolicyParams)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        return "Params must be a pydantic model (subclass sim.policies.PolicyParams)"
    if params.model_config.get("extra") != "forbid":
        return "Params must reject unknown keys (model_config extra='forbid'; subclass PolicyParams)"
    return None


def _params_model(cls: type) -> type[BaseModel]:
    return getattr(cls, "Params", PolicyParams)


def _validate(name: str, model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(_format_error(e) for e in exc.errors())
        raise PolicyError(name, f"invalid params: {problems}") from None


def _format_error(error: Mapping[str, Any]) -> str:
    path = ".".join(["params", *(str(p) for p in error["loc"])])
    rule = error["msg"][:1].lower() + error["msg"][1:]
    if error["type"] == "missing":
        return f"{path}: {rule}"
    value = error.get("input")
    shown = repr(value) if isinstance(value, str) else str(value)
    return f"{path}: {rule} (got {shown if len(shown) <= 80 else shown[:77] + '...'})"


def _summary(cls: type) -> str:
    doc = cls.__dict__.get("__doc__") or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


def _qualname(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"
