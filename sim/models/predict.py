"""``predict``: the load and allocation formulas evaluated at one time, without simulating.

With no scenario it uses the seed's parameters (L0 = 100, alpha = 0.2, T0 = 0, four nodes
with r_i = 0.25, L_max = 100); with one, its scheduler's load model and allocation. Used by
``simulate.py predict`` and the what-if service's ``POST /predict``.

Public: ``predict``, ``SEED_PARAMS``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from sim.errors import UsageError
from sim.fileio import clean_numbers
from sim.models.allocation import resources
from sim.models.load import linear_load, load_at
from sim.scenario.model import Scheduler

__all__ = ["predict", "SEED_PARAMS"]

SEED_PARAMS: Mapping[str, Any] = MappingProxyType(
    {"L0": 100.0, "alpha": 0.2, "T0": 0.0, "weights": (0.25,) * 4, "L_max": 100.0})


def predict(t_h: float, scheduler: Scheduler | None = None, source: str = "",
            seed_params: Mapping[str, Any] = SEED_PARAMS) -> dict[str, Any]:
    """``{"load", "resources"}`` at ``t_h`` hours: the seed's formulas, or ``scheduler``'s
    (from the scenario file ``source``, named in errors)."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is the error below, not a warning
        return _predict(t_h, scheduler, source, seed_params)


def _predict(t_h: float, scheduler: Scheduler | None, source: str, seed_params: Mapping[str, Any]) -> dict[str, Any]:
    if scheduler is None:
        p = seed_params
        load = float(linear_load(t_h, p["L0"], p["alpha"], p["T0"]))
        weights, l_max = list(p["weights"]), p["L_max"]
    else:
        model, allocation = scheduler.load_model, scheduler.allocation
        if model is None or allocation is None:
            raise UsageError(f"{source}: scheduler.load_model: predict needs a load model and an allocation")
        if model.kind == "observed":
            raise UsageError(f"{source}: scheduler.load_model: an observed load depends on simulated "
                             "arrivals; predict evaluates formulas only")
        load = float(load_at(model, t_h * 3600.0))
        weights, l_max = list(allocation.weights.values()), allocation.L_max
    answer = {"load": load, "resources": resources(weights, load, l_max)}
    if not all(math.isfinite(v) for v in answer.values()):  # t so far out that the formula overflows
        raise UsageError(f"t: the load is not a finite number at t = {t_h:g} h (got {answer['load']})")
    return clean_numbers(answer)
