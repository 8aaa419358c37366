"""Named random streams spawned from one root seed.

Every source of randomness in a run (arrivals, service times, failures, each policy) draws
from its own ``numpy.random.Generator``, derived from the run's root ``SeedSequence`` and
the stream's *name*. The name, not the order of creation, picks the stream, so adding a
stream or switching a policy leaves every other stream's numbers unchanged (common random
numbers across policies). No global RNG, no stdlib ``random``.

Public: ``Streams``.
"""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Streams"]


def _name_key(name: str) -> int:
    # A stable 64-bit key; Python's hash() changes with PYTHONHASHSEED.
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class Streams:
    """Factory of independent generators keyed by name, for one run's root seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._made: dict[str, np.random.Generator] = {}

    def sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(_name_key(name),))

    def get(self, name: str) -> np.random.Generator:
        """The generator for ``name`` (the same object on every call within a run)."""
        if name not in self._made:
            self._made[name] = np.random.Generator(np.random.PCG64(self.sequence(name)))
        return self._made[name]
