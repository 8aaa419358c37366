"""Lazy package attributes (PEP 562): a public name imports its module on first use.

A package lists ``name -> module`` and takes ``__getattr__`` and ``__dir__`` from
:func:`lazy_attributes`, so importing the package costs nothing and each command loads only
the modules it uses (``predict`` never loads SimPy, ``run --no-charts`` never matplotlib).

Public: ``lazy_attributes``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, homes: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public names live in ``homes``."""
    namespace = import_module(package).__dict__

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:  # also an unloaded submodule: the import system then loads it
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(homes))
    return getattr_, dir_
