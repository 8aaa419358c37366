"""The capacity observer: load, allocation, active capacity and utilisation over time.

It subscribes to :class:`~sim.records.LoadSample`, :class:`~sim.records.CapacityChanged`
and :class:`~sim.records.TrainingUsage` records and keeps each quantity as an exact step
signal. From those it derives the per-region time series columns (bucket means) and the
``load``, ``resources``, ``allocation`` and ``utilization`` sections of ``summary.json``.
Statistics in the summary cover ``[warmup, end)``; the time series covers the whole run.

Demand is the load model's, in GPUs (``LoadSample.demand_gpus``). What the engine did with
it is read from the pools' active capacity: at every instant the demand served is
``min(demand - unplaceable, active GPUs of all pools)``, where ``unplaceable`` is what the
allocation found no capacity for (``LoadSample.unmet_gpus``); the rest is unmet. So
capacity that failed, is still warming up, or was never there all count as unmet demand,
in both capacity modes, and ``demand = served + unmet`` by construction of the signals.

Utilisation of a region = (inference-busy + training) GPU-time / installed GPU-time.
Without request-level workloads, inference-busy is the load-model demand the scheduler
placed on the region; with them, the GPUs serving requests (:func:`with_request_busy`,
:func:`timeseries_rows`); training GPUs are those held by training jobs.

Public: ``CapacityObserver``, ``TIMESERIES_COLUMNS``, ``timeseries_rows``, ``with_request_busy``.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.metrics.signals import StepSignal
from sim.records import CapacityChanged, LoadSample, Record, TrainingUsage

__all__ = ["CapacityObserver", "TIMESERIES_COLUMNS", "timeseries_rows", "with_request_busy"]

_SIGNALS = ("share", "active_gpus", "busy_gpus", "training_gpus")

TIMESERIES_COLUMNS = ("t_start_s", "t_end_s", "region", "load", "forecast_load", "observed_load",
                      "resources", "share",
                      "total_gpus", "up_gpus", "active_gpus", "busy_gpus", "training_gpus", "utilization")


class CapacityObserver:
    """Collects capacity records for regions with ``total_gpus`` installed GPUs each."""

    subscribes = (LoadSample, CapacityChanged, TrainingUsage)

    def __init__(self, total_gpus: Mapping[str, int]):
        self.total_gpus = dict(total_gpus)
        self.load = StepSignal()
        self.resources = StepSignal()
        self.unmet_gpus = StepSignal()
        self.forecast = StepSignal()
        self.observed = StepSignal()
        self.demand_gpus = StepSignal()
        self.unplaced_gpus = StepSignal()  # demand no active capacity carried
        self.has_load = False
        self.has_forecast = self.has_observed = False
        self._pools: dict[str, dict[str, StepSignal]] = defaultdict(lambda: defaultdict(StepSignal))
        self._reports_up: set[str] = set()
        self._active: dict[str, int] = {}
        self._active_total = 0
        self._demand = self._unplaceable = 0.0

    def __call__(self, record: Record) -> None:
        if isinstance(record, LoadSample):
            self.has_load = True
            self.load.set(record.t_s, record.load)
            self.resources.set(record.t_s, record.resources)
            self.unmet_gpus.set(record.t_s, record.unmet_gpus)
            self._demand, self._unplaceable = record.demand_gpus, record.unmet_gpus
            self.demand_gpus.set(record.t_s, record.demand_gpus)
            self._unplaced(record.t_s)
            if record.forecast == record.forecast:  # not NaN
                self.has_forecast = True
                self.forecast.set(record.t_s, record.forecast)
            if record.observed == record.observed:
                self.has_observed = True
                self.observed.set(record.t_s, record.observed)
        elif isinstance(record, TrainingUsage):
            self._pools[f"{record.region}/{record.pool}"]["training_gpus"].set(record.t_s, record.gpus)
        elif isinstance(record, CapacityChanged):
            signals = self._pools[f"{record.region}/{record.pool}"]
            signals["share"].set(record.t_s, record.share)
            signals["active_gpus"].set(record.t_s, record.active_gpus)
            signals["busy_gpus"].set(record.t_s, record.busy_gpus)
            if record.up_gpus is not None:
                self._reports_up.add(record.region)
                signals["up_gpus"].set(record.t_s, record.up_gpus)
            key = f"{record.region}/{record.pool}"
            self._active_total += record.active_gpus - self._active.get(key, 0)
            self._active[key] = record.active_gpus
            if self.has_load:
                self._unplaced(record.t_s)

    def _unplaced(self, t_s: float) -> None:
        """Demand not served from ``t_s`` on: what the allocation could not place, plus
        what the active capacity of the moment cannot carry of the rest."""
        placed = self._demand - self._unplaceable
        self.unplaced_gpus.set(t_s, self._unplaceable + max(placed - self._active_total, 0.0))

    def _region_means(self, region: str, name: str, edges: np.ndarray) -> np.ndarray:
        """Sum over the region's pools of the bucket means (integrals are linear)."""
        total = np.zeros(len(edges) - 1)
        for key, signals in self._pools.items():
            if key.partition("/")[0] == region:
                total += signals[name].means(edges)
        return total

    def columns(self, edges: np.ndarray) -> dict[str, dict[str, Any]]:
        """Per region, the bucket means of :data:`TIMESERIES_COLUMNS` over ``edges``
        (``utilization`` from the busy GPUs the scheduler reported)."""
        blank = np.full(len(edges) - 1, np.nan)
        shared = {"load": self.load.means(edges) if self.has_load else blank,
                  "forecast_load": self.forecast.means(edges) if self.has_forecast else blank,
                  "observed_load": self.observed.means(edges) if self.has_observed else blank,
                  "resources": self.resources.means(edges) if self.has_load else blank}
        result = {}
        for region, total in self.total_gpus.items():
            cols = {**shared, "total_gpus": total}
            for name in _SIGNALS:
                cols[name] = self._region_means(region, name, edges)
            cols["up_gpus"] = (self._region_means(region, "up_gpus", edges) if region in self._reports_up
                               else np.full(len(edges) - 1, float(total)))
            result[region] = cols
        return result

    def summary(self, start_s: float, end_s: float) -> dict[str, Any]:
        """The ``load``, ``resources``, ``allocation`` and ``utilization`` summary sections."""
        edges = np.array([start_s, end_s])

        def mean(s: StepSignal) -> float:
            return float(s.mean_over(start_s, end_s))
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
                "demand_gpu_hours": mean(self.demand_gpus) * hours if self.has_load else None,
                "served_gpu_hours": ((mean(self.demand_gpus) - mean(self.unplaced_gpus)) * hours
                                     if self.has_load else None),
                "unmet_gpu_hours": mean(self.unplaced_gpus) * hours if self.has_load else 0.0,
            },
            "utilization": {
                "mean": busy / total if total else 0.0,
                "by_region": {r: ((v["busy_gpus"] + v["training_gpus"]) / self.total_gpus[r]
                                  if self.total_gpus[r] else 0.0) for r, v in by_region.items()},
                "training": sum(v["training_gpus"] for v in by_region.values()) / total if total else 0.0,
                "inference": sum(v["busy_gpus"] for v in by_region.values()) / total if total else 0.0,
            },
        }


def timeseries_rows(edges: np.ndarray, capacity: Mapping[str, Mapping[str, Any]],
                    requests: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> list[dict[str, Any]]:
    """One row per bucket and region (bucket-major, regions in ``capacity``'s order).

    ``requests`` (per region, the request-level columns, including the GPUs serving
    requests as ``busy_gpus``) joins by region and replaces the scheduler's busy GPUs."""
    rows = []
    for k in range(len(edges) - 1):
        for region, cols in capacity.items():
            row = {"t_start_s": edges[k], "t_end_s": edges[k + 1], "region": region,
                   **{name: (value if name == "total_gpus" else value[k]) for name, value in cols.items()}}
            if requests is not None:
                row.update({name: values[k] for name, values in requests[region].items()})
            used = row["busy_gpus"] + row["training_gpus"]
            row["utilization"] = used / row["total_gpus"] if row["total_gpus"] else 0.0
            rows.append(row)
    return rows


def with_request_busy(utilization: dict[str, Any], busy: Mapping[str, float],
                      total_gpus: Mapping[str, int]) -> dict[str, Any]:
    """The ``utilization`` section with the GPUs serving requests (time-average ``busy``
    per region) added to the training use the capacity records gave."""
    gpus = {r: n for r, n in total_gpus.items() if n}
    total = sum(gpus.values())
    by_region = {r: utilization["by_region"][r] + busy[r] / n for r, n in gpus.items()}
    inference = sum(busy[r] for r in gpus) / total if total else 0.0
    return {**utilization, "mean": utilization["mean"] + inference, "by_region": by_region, "inference": inference}
