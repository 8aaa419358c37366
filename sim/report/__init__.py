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
``parse_formats``, ``Report``. They load lazily (PEP 562): matplotlib is imported when
a chart is drawn, not when this package is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_attributes

# Public name -> the module that defines it.
_HOMES = {
    "draw_run_charts": "sim.report.charts", "read_timeseries": "sim.report.charts",
    "apply_style": "sim.report.style", "PALETTE": "sim.report.style",
    "build_report": "sim.report.build", "parse_formats": "sim.report.build", "Report": "sim.report.build",
}

__all__ = ["draw_run_charts", "read_timeseries", "apply_style", "PALETTE", "build_report", "parse_formats",
           "Report"]

if TYPE_CHECKING:
    from sim.report.build import Report, build_report, parse_formats
    from sim.report.charts import draw_run_charts, read_timeseries
    from sim.report.style import PALETTE, apply_style


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)
