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

__all__ = ["LoadSample", "PoolState", "TrainingUsage", "Record", "RequestLog", "STATUS", "JobRecord",
           "TransferRecord", "BorderCrossing", "JOB_COLUMNS", "TRANSFER_COLUMNS", "CROSSING_COLUMNS", "FailureRecord", "FAILURE_COLUMNS",
           "RolloutRecord", "ROLLOUT_COLUMNS"]

# Outcome codes of a request, stored as int8 in RequestLog.status.
STATUS = {"pending": 0, "completed": 1, "rejected": 2, "timed_out": 3, "in_flight": 4, "failed": 5}


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
    up_gpus: int | None = None  # GPUs on replicas not failed (None: not reported, all up)


@dataclass(frozen=True)
class TrainingUsage:
    """From ``t_s`` on, training jobs hold ``gpus`` GPUs of pool ``region/pool``."""

    t_s: float
    region: str
    pool: str
    gpus: int


Record = Union[LoadSample, PoolState, TrainingUsage]


@dataclass(frozen=True)
class JobRecord:
    """One training job at the end of the run (a row of jobs.csv)."""

    job: int
    workload: str
    arrival_s: float
    start_s: float        # first start (NaN if it never started)
    end_s: float          # completion (NaN if not completed)
    regions: str          # regions of its last placement, ';'-separated
    pools: str            # region/pool:gpus of its last placement
    gpus: int
    wait_s: float         # total time queued (all attempts)
    transfer_s: float     # total time waiting for its dataset to arrive
    lost_gpu_h: float     # GPU-hours of work lost to interruptions (since the last checkpoint)
    held_gpu_h: float     # GPU-hours its GPUs were held (transfers, restarts, checkpoints, compute)
    useful_gpu_h: float   # GPU-hours of computation not lost to interruptions
    preemptions: int
    interruptions: int
    status: str           # completed, running, queued
    work: float           # work units of the job
    remaining: float      # work units left


@dataclass(frozen=True)
class TransferRecord:
    """One dataset copy over the WAN (a row of transfers.csv)."""

    transfer: int
    dataset: str
    job: int
    src: str
    dst: str
    route: str
    bytes: float
    start_s: float
    end_s: float
    cost_usd: float


@dataclass(frozen=True)
class BorderCrossing:
    """Bytes that crossed a jurisdiction border on one hop (a row of border_crossings.csv)."""

    t_s: float
    dataset: str
    src: str
    dst: str
    bytes: float
    src_jurisdiction: str
    dst_jurisdiction: str


@dataclass(frozen=True)
class FailureRecord:
    """One failure: a replica (``node``) or a whole region, and what it struck."""

    kind: str  # "node" or "region"
    region: str
    pool: str  # "*" for a region
    replicas: int
    start_s: float
    end_s: float  # repair or end of the outage (may lie after the run)
    hit: str  # node: inference, training, idle, dark (region already out), down; region: region


@dataclass(frozen=True)
class RolloutRecord:
    """One model version in one serving region."""

    version: int
    source: str
    region: str
    start_s: float  # release
    landed_s: float  # its copy arrived (inf: not yet)
    switched_s: float  # the region serves it from then on (inf: not yet)


JOB_COLUMNS = tuple(JobRecord.__dataclass_fields__)
ROLLOUT_COLUMNS = tuple(RolloutRecord.__dataclass_fields__)
FAILURE_COLUMNS = tuple(FailureRecord.__dataclass_fields__)
TRANSFER_COLUMNS = tuple(TransferRecord.__dataclass_fields__)
CROSSING_COLUMNS = tuple(BorderCrossing.__dataclass_fields__)


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
    retry_s: np.ndarray      # time from arrival to the last routing (a retry after a failure), else 0

    @property
    def pool_arrival_s(self) -> np.ndarray:
        return self.t_s + self.retry_s + self.rtt_ms / 2000.0

    @property
    def latency_ms(self) -> np.ndarray:
        return self.rtt_ms + (self.retry_s + self.wait_s + self.service_s) * 1000.0
