"""Charts and reports, drawn from result files only.

Public: ``draw_run_charts``, ``read_timeseries``, ``apply_style``, ``PALETTE``.
"""
from __future__ import annotations

from sim.report.charts import draw_run_charts, read_timeseries
from sim.report.style import PALETTE, apply_style

__all__ = ["draw_run_charts", "read_timeseries", "apply_style", "PALETTE"]
