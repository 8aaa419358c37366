"""The fluid mode (``fidelity: fluid``): inference requests as flows, not one by one.

Per time step (at most 5 minutes, never across a bucket edge) and pool, the arrival rate
comes from the workload's profile integral, routing from the policy's per-origin decision
or a stated fluid approximation of a load-aware one, and waits from steady-state queueing
formulas (Erlang C with the Allen-Cunneen M/G/c correction, :mod:`sim.models.queueing`)
while a pool keeps up, a fluid backlog carried from step to step while it does not. The
scheduler, failures, training and rollouts still run in the engine; only the per-request
fast path is replaced. The run folder, the summary keys and the time-series columns are
the exact run's; the manifest says the run is ``approximate`` and what it leaves out.
docs/fluid.md has the formulas and where the model is wrong.

Modules: :mod:`~sim.fluid.demand` (rates), :mod:`~sim.fluid.service` (service laws),
:mod:`~sim.fluid.routing` (splits), :mod:`~sim.fluid.queues` (the fluid queue),
:mod:`~sim.fluid.distributions` (grid laws), :mod:`~sim.fluid.report` (summary shapes),
:mod:`~sim.fluid.model` (:class:`FluidInference`, tying them together).

Public: ``FluidInference``, ``approximate_note``.
"""
from __future__ import annotations

from typing import Any

from sim.fluid.model import FluidInference
from sim.fluid.report import NOT_COMPUTED

__all__ = ["FluidInference", "approximate_note"]


def approximate_note() -> dict[str, Any]:
    """What the manifest says of a fluid run: the method, what it leaves out, where it is wrong."""
    return {
        "method": "fluid: per step and pool, Erlang C with the Allen-Cunneen M/G/c correction while a pool "
                  "keeps up, a fluid backlog carried between steps when it does not; routing by the policy's "
                  "per-origin decision or its fluid approximation (docs/fluid.md)",
        "counts": "expected values rounded to whole requests",
        "not_computed": dict(NOT_COMPUTED),
        "wrong_for": ["transients shorter than a few service times (steady state is assumed within a step)",
                      "failures: requests lost or retried on failed replicas are not modelled, only the capacity "
                      "change", "non-Poisson arrivals (traces are refused; bursty arrivals wait longer)",
                      "prefix caches and batching replicas (refused)",
                      "load-aware routing decides per request on live queues; the fluid split is an equilibrium"],
    }
