"""Event records: the flat, engine-independent facts that observers consume.

The engine emits these; metrics observers turn them into time series and summaries. A test
can feed hand-made records to an observer without running any engine.

Public: ``LoadSample``, ``PoolState``, ``Record``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["LoadSample", "PoolState", "Record"]


@dataclass(frozen=True)
class LoadSample:
    """The scheduler evaluated the load and allocation models at time ``t_s``."""

    t_s: float
    load: float
    resources: float
    demand_gpus: float
    unmet_gpus: float


@dataclass(frozen=True)
class PoolState:
    """From ``t_s`` on, pool ``region/pool`` has this active capacity and use."""

    t_s: float
    region: str
    pool: str
    share: float
    active_gpus: int
    busy_gpus: float


Record = Union[LoadSample, PoolState]
