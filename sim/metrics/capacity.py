"""The capacity observer: load, allocation, active capacity and utilisation over time.

It subscribes to :class:`~sim.metrics.records.LoadSample` and
:class:`~sim.metrics.records.PoolState` records and keeps each quantity as an exact step
signal. From those it derives the per-region time series (bucket means) and the
``load``, ``allocation`` and ``utilization`` sections of ``summary.json``. Statistics in
the summary cover ``[warmup, end)``; the time series covers the whole run.

Utilisation of a region = (inference-busy + training) GPU-time / installed GPU-time.
Without request-level workloads, inference-busy is the load-model demand the scheduler
placed on the region; training GPUs are those held by training jobs.

Public: ``CapacityObserver``, ``TIMESERIES_COLUMNS``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

import numpy as np

from sim.metrics.records import LoadSample, PoolState, Record, TrainingUsage
from sim.metrics.signals import StepSignal, bucket_edges

__all__ = ["CapacityObserver", "TIMESERIES_COLUMNS"]

_SIGNALS = ("share", "active_gpus", "busy_gpus", "training_gpus")

TIMESERIES_COLUMNS = ("t_start_s", "t_end_s", "region", "load", "forecast_load", "observed_load",
                      "resources", "share",
                      "total_gpus", "up_gpus", "active_gpus", "busy_gpus", "training_gpus", "utilization")


class CapacityObserver:
    """Collects capacity records for regions with ``total_gpus`` installed GPUs each."""

    def __init__(self, total_gpus: Mapping[str, int]):
        self.total_gpus = dict(total_gpus)
        self.load = StepSignal()
        self.resources = StepSignal()
        self.unmet_gpus = StepSignal()
        self.forecast = StepSignal()
        self.observed = StepSignal()
        self.has_load = False
        self.has_forecast = self.has_observed = False
        self._pools: dict[str, dict[str, StepSignal]] = defaultdict(lambda: defaultdict(StepSignal))
        self._reports_up: set[str] = set()

    def __call__(self, record: Record) -> None:
        if isinstance(record, LoadSample):
            self.has_load = True
            self.load.set(record.t_s, record.load)
            self.resources.set(record.t_s, record.resources)
            self.unmet_gpus.set(record.t_s, record.unmet_gpus)
            if record.forecast == record.forecast:  # not NaN
                self.has_forecast = True
                self.forecast.set(record.t_s, record.forecast)
            if record.observed == record.observed:
                self.has_observed = True
                self.observed.set(record.t_s, record.observed)
        elif isinstance(record, TrainingUsage):
            self._pools[f"{record.region}/{record.pool}"]["training_gpus"].set(record.t_s, record.gpus)
        elif isinstance(record, PoolState):
            signals = self._pools[f"{record.region}/{record.pool}"]
            signals["share"].set(record.t_s, record.share)
            signals["active_gpus"].set(record.t_s, record.active_gpus)
            signals["busy_gpus"].set(record.t_s, record.busy_gpus)
            if record.up_gpus is not None:
                self._reports_up.add(record.region)
                signals["up_gpus"].set(record.t_s, record.up_gpus)

    def _region_means(self, region: str, name: str, edges: np.ndarray) -> np.ndarray:
        """Sum over the region's pools of the bucket means (integrals are linear)."""
        total = np.zeros(len(edges) - 1)
        for key, signals in self._pools.items():
            if key.partition("/")[0] == region:
                total += signals[name].means(edges)
        return total

    def timeseries(self, end_s: float, bucket_s: float) -> list[dict[str, Any]]:
        """One row per bucket and region, columns :data:`TIMESERIES_COLUMNS`."""
        edges = bucket_edges(0.0, end_s, bucket_s)
        load = self.load.means(edges) if self.has_load else np.full(len(edges) - 1, np.nan)
        res = self.resources.means(edges) if self.has_load else np.full(len(edges) - 1, np.nan)
        blank = np.full(len(edges) - 1, np.nan)
        forecast = self.forecast.means(edges) if self.has_forecast else blank
        observed = self.observed.means(edges) if self.has_observed else blank
        per_region = {r: {n: self._region_means(r, n, edges) for n in _SIGNALS} for r in self.total_gpus}
        for region, total in self.total_gpus.items():
            reported = region in self._reports_up
            per_region[region]["up_gpus"] = (self._region_means(region, "up_gpus", edges) if reported
                                             else np.full(len(edges) - 1, float(total)))
        rows = []
        for k in range(len(edges) - 1):
            for region, total in self.total_gpus.items():
                m = per_region[region]
                rows.append({
                    "t_start_s": edges[k], "t_end_s": edges[k + 1], "region": region,
                    "load": load[k], "forecast_load": forecast[k], "observed_load": observed[k],
                    "resources": res[k], "share": m["share"][k],
                    "total_gpus": total, "active_gpus": m["active_gpus"][k],
                    "up_gpus": m["up_gpus"][k], "busy_gpus": m["busy_gpus"][k],
                    "training_gpus": m["training_gpus"][k],
                    "utilization": (m["busy_gpus"][k] + m["training_gpus"][k]) / total if total else 0.0,
                })
        return rows

    def summary(self, start_s: float, end_s: float) -> dict[str, Any]:
        """The ``load``, ``resources``, ``allocation`` and ``utilization`` summary sections."""
        edges = np.array([start_s, end_s])
        mean = lambda s: float(s.mean_over(start_s, end_s))  # noqa: E731
        by_region = {r: {n: float(self._region_means(r, n, edges)[0]) for n in _SIGNALS} for r in self.total_gpus}
        total = sum(self.total_gpus.values())
        busy = sum(v["busy_gpus"] + v["training_gpus"] for v in by_region.values())
        hours = (end_s - start_s) / 3600.0
        return {
            "load": {"mean": mean(self.load) if self.has_load else None,
                     "max": float(self.load.values_between(start_s, end_s).max()) if self.has_load else None},
            "resources": {"mean": mean(self.resources) if self.has_load else None,
                          "max": float(self.resources.values_between(start_s, end_s).max()) if self.has_load else None},
            "allocation": {
                "by_region": {r: v["share"] for r, v in by_region.items()},
                "active_gpus": {r: v["active_gpus"] for r, v in by_region.items()},
                "unmet_gpu_hours": mean(self.unmet_gpus) * hours if self.has_load else 0.0,
            },
            "utilization": {
                "mean": busy / total if total else 0.0,
                "by_region": {r: ((v["busy_gpus"] + v["training_gpus"]) / self.total_gpus[r]
                                  if self.total_gpus[r] else 0.0) for r, v in by_region.items()},
                "training": sum(v["training_gpus"] for v in by_region.values()) / total if total else 0.0,
                "inference": sum(v["busy_gpus"] for v in by_region.values()) / total if total else 0.0,
            },
        }
