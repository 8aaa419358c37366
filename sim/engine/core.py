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
