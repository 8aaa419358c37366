"""The SimPy environment Meridian runs on, and the one event type it adds.

Public: ``Environment``, ``UrgentTimeout``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.core import URGENT

__all__ = ["Environment", "UrgentTimeout"]


class Environment(simpy.Environment):
    """A ``simpy.Environment`` that counts processed events (reported in the manifest)."""

    def __init__(self, initial_time: float = 0.0):
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        super().step()
        self.events_processed += 1

    def watch(self, report: Callable[[float, int], None], every_s: float) -> None:
        """Call ``report(now, events processed)`` after the first event at or past each
        multiple of ``every_s`` of simulated time (progress on stderr).

        It wraps ``step`` and schedules nothing: the event queue, its order and every
        result are the same with or without a watcher."""
        step, due = self.step, every_s

        def watched() -> None:
            nonlocal due
            step()
            if self._now >= due:
                due = (self._now // every_s + 1) * every_s
                report(self._now, self.events_processed)
        self.step = watched  # type: ignore[method-assign]


class UrgentTimeout(simpy.Event):
    """A timeout processed before every normal event due at the same instant (a repair
    due when a failure strikes is applied first, so the failure finds the replica up).

    SimPy offers urgent scheduling only for its own internal events; like its ``Timeout``,
    this event is born triggered and scheduled once, here at URGENT priority."""

    def __init__(self, env: simpy.Environment, delay: float, callback: Callable[[Any], None]):
        super().__init__(env)
        self._ok, self._value = True, None
        self.callbacks.append(callback)
        env.schedule(self, URGENT, delay)
