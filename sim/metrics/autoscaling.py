"""The autoscaling observer: what the replicas cost and what the surges cost the users.

It subscribes to :class:`~sim.records.ProvisionChanged` (each autoscaled pool's ready and
starting replicas as exact step signals), :class:`~sim.records.ColdStart`,
:class:`~sim.records.ReplicasReady` and the :class:`~sim.records.RequestLog`, and gives
the ``autoscaling`` section of ``summary.json`` (definitions in docs/metrics.md):

- replica-hours = integral of (ready + starting) replicas over ``[warmup, end)``: every
  replica the autoscaler holds is paid for, warm or still starting; split into
  ``warm_replica_hours`` and ``cold_start_replica_hours``; GPU-hours = replica-hours x
  GPUs per replica;
- cold starts: replicas whose cold start began (``cold_starts``), finished (``completed``)
  or was abandoned by a scale-down (``abandoned``), and the measured duration of the
  finished ones (ready time minus start time);
- the requests that arrived while some pool had a scale-up in progress (starting > 0)
  against all the others: the ``inference`` section's statistics over each group.

Its tables are ``provisioning.csv`` (the ``ProvisionChanged`` records) and
``cold_starts.csv`` (the ``ColdStart`` records).

Public: ``AutoscalingObserver``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.metrics.arrays import consume_stats
from sim.metrics.inference import InferenceLayout, subset_stats
from sim.metrics.signals import StepSignal
from sim.records import COLD_START_COLUMNS, PROVISION_COLUMNS, ColdStart, ProvisionChanged, ReplicasReady, RequestLog

__all__ = ["AutoscalingObserver"]


class AutoscalingObserver:
    """Collects the autoscaler's records for ``pools`` (``(region/pool, GPUs per replica)``)."""

    subscribes = (ProvisionChanged, ColdStart, ReplicasReady, RequestLog)

    def __init__(self, pools: Sequence[tuple[str, int]], layout: InferenceLayout, warmup_s: float):
        self.gpus_per_replica = dict(pools)
        self.layout, self.warmup_s = layout, warmup_s
        self.ready = {key: StepSignal() for key in self.gpus_per_replica}
        self.starting = {key: StepSignal() for key in self.gpus_per_replica}
        self._starting_now = dict.fromkeys(self.gpus_per_replica, 0)
        self.scaling = StepSignal()  # 1 while some pool has a scale-up in progress, else 0
        self._changes: tuple[list[float], list[float]] = ([], [])  # the same, as (times, values)
        self.begun = dict.fromkeys(self.gpus_per_replica, 0)
        self.scale_ups = dict.fromkeys(self.gpus_per_replica, 0)
        self.scale_downs = dict.fromkeys(self.gpus_per_replica, 0)
        self.durations: dict[str, list[float]] = {key: [] for key in self.gpus_per_replica}  # one per replica
        self.log: RequestLog | None = None
        self.changes: list[ProvisionChanged] = []
        self.cold_starts: list[ColdStart] = []

    def __call__(self, record: ProvisionChanged | ColdStart | ReplicasReady | RequestLog) -> None:
        if isinstance(record, RequestLog):
            self.log = record
            return
        key = f"{record.region}/{record.pool}"
        if isinstance(record, ProvisionChanged):
            self.changes.append(record)
            self.ready[key].set(record.t_s, record.ready)
            self.starting[key].set(record.t_s, record.starting)
            self._starting_now[key] = record.starting
            self._set_scaling(record.t_s, 1.0 if any(n > 0 for n in self._starting_now.values()) else 0.0)
            self.scale_downs[key] += record.cause in ("scale_down", "cancelled")
        elif isinstance(record, ColdStart):
            self.cold_starts.append(record)
            self.begun[key] += record.replicas
            self.scale_ups[key] += 1
        else:
            self.durations[key] += [record.t_s - record.started_s] * record.replicas

    def tables(self) -> dict[str, tuple[tuple[str, ...], list[Any]]]:
        """``provisioning.csv`` (every change of a pool's ready and starting replicas) and
        ``cold_starts.csv`` (every scale-up's cold start and its parts)."""
        return {"provisioning.csv": (PROVISION_COLUMNS, self.changes),
                "cold_starts.csv": (COLD_START_COLUMNS, self.cold_starts)}

    def _set_scaling(self, t_s: float, flag: float) -> None:
        self.scaling.set(t_s, flag)
        times, values = self._changes
        if times and times[-1] == t_s:
            values[-1] = flag
        else:
            times.append(t_s)
            values.append(flag)

    def scaling_at(self, t_s: np.ndarray) -> np.ndarray:
        """Whether a scale-up was in progress at each time (right-continuous, 0 before any record)."""
        times, values = self._changes
        index = np.searchsorted(np.asarray(times), t_s, side="right") - 1
        return np.where(index >= 0, np.asarray(values + [0.0])[index], 0.0) > 0

    def summary(self, end_s: float) -> dict[str, Any]:
        """The ``autoscaling`` section."""
        start = self.warmup_s
        by_pool = {key: self._pool(key, start, end_s) for key in self.gpus_per_replica}
        totals = {name: float(sum(p[name] for p in by_pool.values()))
                  for name in ("replica_hours", "warm_replica_hours", "cold_start_replica_hours", "gpu_hours")}
        counts = {name: int(sum(p[name] for p in by_pool.values()))
                  for name in ("cold_starts", "completed", "abandoned", "scale_ups", "scale_downs")}
        durations = np.array([d for key in by_pool for d in self.durations[key]])
        return {**totals, **counts, "cold_start_s": consume_stats(durations),
                "scale_up_time_s": self._scaling_time(start, end_s), **self._requests(), "by_pool": by_pool}

    def _pool(self, key: str, start: float, end_s: float) -> dict[str, Any]:
        hours = (end_s - start) / 3600.0
        mean_ready, mean_starting = self.ready[key].mean_over(start, end_s), self.starting[key].mean_over(start, end_s)
        warm, cold = mean_ready * hours, mean_starting * hours
        done = len(self.durations[key])
        starting_at_end = self._starting_now[key]
        return {"replica_hours": float(warm + cold), "warm_replica_hours": float(warm),
                "cold_start_replica_hours": float(cold),
                "gpu_hours": float((warm + cold) * self.gpus_per_replica[key]),
                "mean_replicas": float(mean_ready + mean_starting),
                "cold_starts": self.begun[key], "completed": done,
                "abandoned": self.begun[key] - done - starting_at_end,
                "scale_ups": self.scale_ups[key], "scale_downs": self.scale_downs[key],
                "mean_cold_start_s": float(np.mean(self.durations[key])) if done else None}

    def _scaling_time(self, start: float, end_s: float) -> float:
        """Seconds of ``[warmup, end)`` with a scale-up in progress somewhere."""
        return float(self.scaling.mean_over(start, end_s) * (end_s - start))

    def _requests(self) -> dict[str, Any]:
        """The requests that arrived during a scale-up against the others."""
        if self.log is None:
            return {"during_scale_up": None, "outside_scale_up": None}
        during = self.scaling_at(self.log.t_s)
        return {"during_scale_up": subset_stats(self.log, self.layout, self.warmup_s, during),
                "outside_scale_up": subset_stats(self.log, self.layout, self.warmup_s, ~during)}
