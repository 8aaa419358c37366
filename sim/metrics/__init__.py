"""Metrics: observers of engine event records -> time series and summary (no SimPy).

Public: ``LoadSample``, ``PoolState``, ``Record``, ``StepSignal``, ``CapacityObserver``,
``TIMESERIES_COLUMNS``.
"""
from __future__ import annotations

from sim.metrics.capacity import TIMESERIES_COLUMNS, CapacityObserver
from sim.metrics.records import LoadSample, PoolState, Record
from sim.metrics.signals import StepSignal, bucket_edges

__all__ = ["LoadSample", "PoolState", "Record", "StepSignal", "bucket_edges",
           "CapacityObserver", "TIMESERIES_COLUMNS"]
