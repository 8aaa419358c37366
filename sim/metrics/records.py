"""Event records: the flat, engine-independent facts that observers consume.

The engine emits these; metrics observers turn them into time series and summaries. A test
can feed hand-made records to an observer without running any engine.

Public: ``LoadSample``, ``PoolState``, ``Record``, ``RequestLog`` (per-request outcome
arrays of the inference fast path), ``STATUS``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = ["LoadSample", "PoolState", "Record", "RequestLog", "STATUS"]

# Outcome codes of a request, stored as int8 in RequestLog.status.
STATUS = {"pending": 0, "completed": 1, "rejected": 2, "timed_out": 3, "in_flight": 4}


@dataclass(frozen=True)
class LoadSample:
    """The scheduler evaluated the load and allocation models at time ``t_s``."""

    t_s: float
    load: float
    resources: float
    demand_gpus: float
    unmet_gpus: float
    forecast: float = float("nan")  # with an observed load model: its formula's value
    observed: float = float("nan")  # with an observed load model: the measured estimate


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


@dataclass(frozen=True)
class RequestLog:
    """Per-request outcome arrays (index = request number in time order)."""

    t_s: np.ndarray          # arrival at the origin
    origin: np.ndarray       # region index
    workload: np.ndarray
    pool: np.ndarray         # pool index, -1 if rejected before routing
    rtt_ms: np.ndarray       # path RTT origin <-> pool
    wait_s: np.ndarray       # time queued at the pool (NaN while still queued); for a timed-out request, until it was dropped
    service_s: np.ndarray    # service time at the chosen pool (NaN if never routed)
    status: np.ndarray       # int8, see STATUS

    @property
    def pool_arrival_s(self) -> np.ndarray:
        return self.t_s + self.rtt_ms / 2000.0

    @property
    def latency_ms(self) -> np.ndarray:
        return self.rtt_ms + (self.wait_s + self.service_s) * 1000.0
