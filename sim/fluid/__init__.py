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

Public: ``FluidInference``, ``approximate_note``, ``fluid_problems``.
"""
from __future__ import annotations

from typing import Any

from sim.fluid.model import FluidInference
from sim.fluid.report import NOT_COMPUTED
from sim.fluid.routing import FLUID_ROUTING
from sim.scenario.model import PoissonArrival, Scenario, TokenService

__all__ = ["FluidInference", "approximate_note", "fluid_problems"]


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
                      "prefix caches (every prompt is prefilled in full)",
                      "batching replicas bound by their KV cache (preemption by recompute is not modelled)",
                      "stale routing views (scheduler.sync_delay): load-aware routing herds, the fluid split "
                      "is an equilibrium without herding"],
    }


def fluid_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str, Any]]:
    """What a fluid run of ``scenario`` cannot model, as ``(path, rule, value)`` (none for
    an exact run): trace arrivals, routing policies without a fluid form, batching pools
    serving requests without token counts, conversations, fleets of several models and
    prefill/decode disaggregation."""
    if scenario.fidelity != "fluid" or not scenario.inference:
        return []
    found: list[tuple[tuple[Any, ...], str, Any]] = []
    for i, wl in enumerate(scenario.inference):
        if not isinstance(wl.arrival, PoissonArrival):
            found.append((("inference", i, "arrival", "process"), "fidelity fluid needs Poisson arrivals "
                          "(run a trace replay with fidelity exact)", wl.arrival.process))
    routing = scenario.scheduler.routing.name
    if routing not in FLUID_ROUTING:
        found.append((("scheduler", "routing"), f"fidelity fluid has no fluid form of this policy "
                      f"(known: {', '.join(FLUID_ROUTING)})", routing))
    batching = any(p.serving is not None for r in scenario.regions for p in r.pools)
    for i, wl in enumerate(scenario.inference):
        if batching and not isinstance(wl.service, TokenService):
            found.append((("inference", i, "service", "dist"), "fidelity fluid models batching replicas for "
                          "token workloads only", wl.service.dist))
        if wl.sessions is not None:
            found.append((("inference", i, "sessions"), "fidelity fluid has no conversations (each turn waits "
                          "for the previous answer): run them with fidelity exact", "sessions"))
        if wl.model is not None:
            found.append((("inference", i, "model"), "fidelity fluid routes every workload to every pool: run "
                          "a fleet of several models with fidelity exact", wl.model))
    if scenario.scheduler.autoscaling is not None:
        found.append((("scheduler", "autoscaling"), "fidelity fluid has no autoscaler (it reads the queues and "
                      "TTFT of simulated requests): run it with fidelity exact",
                      scenario.scheduler.autoscaling.policy.name))
    for i, region in enumerate(scenario.regions):
        for k, pool in enumerate(region.pools):
            if pool.serving is not None and pool.serving.role != "both":
                found.append((("regions", i, "pools", k, "serving", "role"), "fidelity fluid has no prefill/decode "
                              "disaggregation: run it with fidelity exact", pool.serving.role))
    return found
