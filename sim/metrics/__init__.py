"""Metrics: observers of the engine's record stream -> summary sections, time series and
tables (no SimPy, no engine objects).

One observer per summary section: :class:`CapacityObserver` (``load``, ``resources``,
``allocation``, ``utilization`` and the capacity columns of the time series),
:class:`InferenceObserver` (``inference``, the request columns, ``latency_cdf.csv``),
:class:`TrainingObserver` (``training``, ``jobs.csv``), :class:`NetworkObserver`
(``network``, ``transfers.csv``, ``border_crossings.csv``), :class:`FailuresObserver`
(``failures``, ``failures.csv``), :class:`ConsistencyObserver` (``consistency``,
``rollouts.csv``); ``energy`` is computed from the time series (:func:`energy_summary`).
Each can be fed hand-made records in a test. :mod:`sim.metrics.stats` holds the confidence
intervals over seeds that the experiment and report layers both compute.

Public: the observers above, ``InferenceLayout``, ``StepSignal``, ``bucket_edges``,
``timeseries_rows``, ``with_request_busy``, ``energy_summary``, ``TIMESERIES_COLUMNS``,
``INFERENCE_COLUMNS``, ``LATENCY_CDF_COLUMNS``.
"""
from __future__ import annotations

from sim.metrics.capacity import TIMESERIES_COLUMNS, CapacityObserver, timeseries_rows, with_request_busy
from sim.metrics.consistency import ConsistencyObserver
from sim.metrics.energy import energy_summary
from sim.metrics.failures import FailuresObserver
from sim.metrics.inference import INFERENCE_COLUMNS, LATENCY_CDF_COLUMNS, InferenceLayout, InferenceObserver
from sim.metrics.signals import StepSignal, bucket_edges
from sim.metrics.training import NetworkObserver, TrainingObserver

__all__ = ["CapacityObserver", "InferenceObserver", "TrainingObserver", "NetworkObserver", "FailuresObserver",
           "ConsistencyObserver", "InferenceLayout", "StepSignal", "bucket_edges", "timeseries_rows",
           "with_request_busy", "energy_summary", "TIMESERIES_COLUMNS", "INFERENCE_COLUMNS",
           "LATENCY_CDF_COLUMNS"]
