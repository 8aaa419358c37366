"""The SimPy environment Meridian runs on, counting the events it processes.

Public: ``Environment``.
"""
from __future__ import annotations

import simpy

__all__ = ["Environment"]


class Environment(simpy.Environment):
    """A ``simpy.Environment`` that counts processed events (reported in the manifest)."""

    def __init__(self, initial_time: float = 0.0):
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        super().step()
        self.events_processed += 1
