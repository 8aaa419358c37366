"""A training job's live state: the engine's own record of one job, never a policy's.

Public: ``Job``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

__all__ = ["Job"]


@dataclass
class Job:
    """A training job's live state (the engine's, never a policy's)."""

    id: int
    index: int  # row in the JobBatch
    workload: int
    gpus: int
    arrival_s: float
    priority: int
    deadline_s: float | None
    remaining: float  # work units still to do
    saved: float  # work units still to do as of the last checkpoint
    status: str = "pending"
    parts: tuple[tuple[int, int], ...] = ()
    process: simpy.Process | None = None
    segment: tuple[float, float] | None = None  # (start, rate) of the compute segment running
    queued_since: float = 0.0
    first_start_s: float = math.nan
    end_s: float = math.nan
    wait_s: float = 0.0
    transfer_s: float = 0.0
    lost_gpu_s: float = 0.0
    compute_gpu_s: float = 0.0
    held_gpu_s: float = 0.0
    held_since: float = 0.0
    preemptions: int = 0
    interruptions: int = 0
    ran_before: bool = False
    stopping: bool = False  # interrupted, not yet stopped (same instant)
    waiting: bool = False  # queued, held back until its newest checkpoint's region returns
    rate: float = 0.0  # work units per second on the pools it holds (its slowest part)
    copies: dict[str, float] = field(default_factory=dict)  # region -> remaining work of its checkpoint copy
    home: str = ""  # region of the first part of its placement
    regions: list[str] = field(default_factory=list)
