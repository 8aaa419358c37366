"""Seeded request generators: what users ask of the clusters, drawn before the run starts.

The engine calls :func:`generate_requests` once per run and walks the resulting
:class:`RequestBatch` in time order. Arrivals are Poisson with a rate profile
(:mod:`~sim.workload.arrivals`) or a replayed trace (:mod:`~sim.workload.trace`); service
times are drawn from a distribution (:mod:`~sim.workload.service`) or, for token-based
workloads, computed per serving GPU by :func:`token_service_s` with
:func:`token_coefficients` (:mod:`~sim.workload.token_model`). Pure numpy, no SimPy.

Public: ``RequestBatch``, ``generate_requests``, ``token_coefficients``,
``token_service_s``, ``default_coefficients``, ``poisson_arrivals``, ``thinned_poisson``,
``multiplier_bound``, ``Trace``, ``read_trace``, ``replay_trace``, ``draw_service_s``,
``draw_token_counts``; for training ``JobBatch``, ``generate_jobs``,
``draw_philly_runtime_s`` (:mod:`~sim.workload.training`, :mod:`~sim.workload.philly_fit`);
the failure trace reader ``read_failure_trace`` (:mod:`~sim.workload.failure_trace`); and
``check_inputs`` (:mod:`~sim.workload.inputs`), which reads every trace file a scenario
names before a run, so that ``validate`` and ``run`` report bad files alike.
"""
from __future__ import annotations

from sim.workload.arrivals import multiplier_bound, poisson_arrivals, thinned_poisson
from sim.workload.failure_trace import read_failure_trace
from sim.workload.inputs import check_inputs
from sim.workload.philly_fit import draw_philly_runtime_s
from sim.workload.requests import RequestBatch, generate_requests
from sim.workload.service import draw_service_s, draw_token_counts
from sim.workload.token_model import default_coefficients, token_coefficients, token_service_s
from sim.workload.trace import Trace, read_trace, replay_trace
from sim.workload.training import JobBatch, generate_jobs

__all__ = [
    "RequestBatch", "generate_requests", "token_coefficients", "token_service_s",
    "default_coefficients", "poisson_arrivals", "thinned_poisson", "multiplier_bound",
    "Trace", "read_trace", "replay_trace", "draw_service_s", "draw_token_counts",
    "JobBatch", "generate_jobs", "draw_philly_runtime_s", "read_failure_trace", "check_inputs",
]
