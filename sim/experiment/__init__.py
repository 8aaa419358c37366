"""Experiments: many runs of a scenario, compared or swept, on one machine or a cluster.

- :mod:`~sim.experiment.compare`: routing policies on the same seeds (common random
  numbers), with paired confidence intervals.
- :mod:`~sim.experiment.sweep`: the cross product of grid values times seeds, resumable,
  with ``index.csv`` kept current.
- :mod:`~sim.experiment.capacity`: the least capacity that meets a target, by bisection
  over runs laid out like a sweep's (``docs/planning.md``).
- :mod:`~sim.experiment.executors`: serial, local process pool, or Dask.
- :mod:`~sim.experiment.tasks`: one run as plain data (what the executors ship).
- :mod:`~sim.experiment.catalogue`: the built-in policies as a table.

See ``docs/experiments.md``.

Public: ``RunTask``, ``run_task``, ``execute_tasks``, ``plan_sweep``, ``run_sweep``,
``plan_comparison``, ``run_comparison``, ``policy_catalogue``, ``DEFAULT_METRICS``,
``plan_capacity``, ``run_capacity_plan``, ``parse_target``, ``format_plan``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_attributes

# Public name -> the module that defines it (loaded on first use: a finished sweep's
# no-op answer, sim.experiment.done, never loads the runner, numpy or SimPy).
_MODULES = {
    "capacity": "CapacityPlan Target format_plan parse_range parse_target plan_capacity run_capacity_plan",
    "catalogue": "format_catalogue policy_catalogue",
    "compare": "PolicyChoice format_table parse_policy_params plan_comparison run_comparison",
    "executors": "BACKENDS execute_tasks",
    "plan": "Axis is_sweep_file parse_grid read_sweep_file",
    "stats": "DEFAULT_METRICS lookup paired_interval t_interval",
    "sweep": "SweepOutcome SweepPlan plan_sweep run_sweep",
    "tasks": "RunTask run_task",
}
_HOMES = {name: f"sim.experiment.{module}" for module, names in _MODULES.items() for name in names.split()}


__all__ = ["RunTask", "run_task", "execute_tasks", "BACKENDS", "Axis", "parse_grid", "read_sweep_file",
           "is_sweep_file", "SweepPlan", "SweepOutcome", "plan_sweep", "run_sweep", "PolicyChoice",
           "parse_policy_params", "plan_comparison", "run_comparison", "format_table",
           "policy_catalogue", "format_catalogue", "DEFAULT_METRICS", "lookup", "t_interval",
           "paired_interval", "CapacityPlan", "Target", "parse_target", "parse_range", "plan_capacity",
           "run_capacity_plan", "format_plan"]

if TYPE_CHECKING:
    from sim.experiment.capacity import (
        CapacityPlan,
        Target,
        format_plan,
        parse_range,
        parse_target,
        plan_capacity,
        run_capacity_plan,
    )
    from sim.experiment.catalogue import format_catalogue, policy_catalogue
    from sim.experiment.compare import PolicyChoice, format_table, parse_policy_params, plan_comparison, run_comparison
    from sim.experiment.executors import BACKENDS, execute_tasks
    from sim.experiment.plan import Axis, is_sweep_file, parse_grid, read_sweep_file
    from sim.experiment.stats import DEFAULT_METRICS, lookup, paired_interval, t_interval
    from sim.experiment.sweep import SweepOutcome, SweepPlan, plan_sweep, run_sweep
    from sim.experiment.tasks import RunTask, run_task


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)
