"""The record stream: engines publish typed facts, subscribers receive them synchronously.

One :class:`Bus` per run. A subscriber names the record types it wants (or none: every
record, for a tracer) and is called at the moment a record is emitted, in the order of
subscription; the runner subscribes the observers before the engines are built, so the
metrics hear each fact before any engine reacts to it. A subscriber may emit records while
it handles one: those reach every subscriber at once (depth first), as in SimGrid's signals.

Public: ``Bus``, ``Subscriber``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sim.records import Record

__all__ = ["Bus", "Subscriber"]

Subscriber = Callable[[Any], object]  # what a callback returns is ignored


class Bus:
    """Typed publish/subscribe for :mod:`sim.records`."""

    def __init__(self) -> None:
        self._subscriptions: list[tuple[frozenset[type] | None, Subscriber]] = []
        self._routes: dict[type, list[Subscriber]] = {}

    def subscribe(self, callback: Subscriber, types: Iterable[type] | None = None) -> None:
        """Call ``callback(record)`` for every record of one of ``types`` (all if None)."""
        self._subscriptions.append((None if types is None else frozenset(types), callback))
        self._routes.clear()

    def emit(self, record: Record) -> None:
        kind = type(record)
        route = self._routes.get(kind)
        if route is None:
            route = self._routes[kind] = [cb for types, cb in self._subscriptions if types is None or kind in types]
        for callback in route:
            callback(record)

    def wants(self, kind: type) -> bool:
        """Whether anyone listens to ``kind`` (to skip building records nobody reads)."""
        return any(types is None or kind in types for types, _ in self._subscriptions)
