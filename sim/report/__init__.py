"""Charts and reports, drawn from result files only (never from a live engine).

- :mod:`~sim.report.charts`: a run's time-series charts (``draw_run_charts`` runs after every run);
- :mod:`~sim.report.worldmap`, :mod:`~sim.report.training`, :mod:`~sim.report.network`,
  :mod:`~sim.report.energy`: the map, training, data-movement and energy charts;
- :mod:`~sim.report.compare`: comparison and sweep charts;
- :mod:`~sim.report.build`: ``simulate.py report``, which redraws a folder's charts and writes
  ``report.html`` and ``report.md`` (tables from :mod:`~sim.report.kpis`, page from
  :mod:`~sim.report.document`).

See ``docs/reports.md``.

Public: ``draw_run_charts``, ``read_timeseries``, ``apply_style``, ``PALETTE``, ``build_report``,
``parse_formats``, ``Report``.
"""
from __future__ import annotations

from sim.report.build import Report, build_report, parse_formats
from sim.report.charts import draw_run_charts, read_timeseries
from sim.report.style import PALETTE, apply_style

__all__ = ["draw_run_charts", "read_timeseries", "apply_style", "PALETTE", "build_report", "parse_formats",
           "Report"]
