"""What a run will cost before it starts: requests, events, memory and wall time.

A scenario can be valid and still ask for more than the machine holds (a million requests
a second, a microsecond time-series bucket, a scheduler tick every millisecond for a
week). :func:`estimate_cost` adds up what drives a run's cost, each term tied to the
scenario field that sets it:

- inference requests (in fluid mode none: cells of a step, origin and pool instead): the
  integral of each workload's rate over the run (Poisson profiles
  evaluated on a grid, each origin in its own time zone), or a trace's rows times the copies
  that fill the run;
- time-series rows: buckets times regions with GPUs; scheduler ticks; batching replicas;
  replica failures at the configured (or Llama 3) MTTF; training jobs.

The coefficients were measured on the project's 2-core machine with ``bench/cost.py``
(peak RSS and wall time of in-memory runs; see BENCHMARKS.md): a request served by slot
pools keeps about 350 bytes and takes about 3 us, one on batching replicas about 800
bytes and 40 us (650 bytes and 6 us on their compiled core, 14 us when a routing policy
reads their load before each request, and 80 MB and 0.4 s once to load it); a time-series
row about 1.7 kB and 50 us. An estimate is meant to be right within a factor of two,
enough to tell a run of minutes from one the machine cannot hold.

:class:`Budget` holds the limits; :func:`budget_problems` turns an estimate above them
into problems located at the field that contributes most (``inference[0].arrival.rate_per_s:
the run would simulate about 6.0e+08 requests ...``).

Public: ``Term``, ``Estimate``, ``Budget``, ``estimate_cost``, ``budget_problems``,
``machine_memory_bytes``, ``DEFAULT_MAX_REQUESTS``, ``format_bytes``, ``compiled_batching``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError
from sim.models.reliability import default_mtbf_s
from sim.scenario import LoadedScenario
from sim.scenario.model import PoissonArrival, PoissonJobs, Scenario, TraceArrival
from sim.workload.arrivals import multiplier, origin_profile
from sim.workload.trace import read_trace
from sim.world import build_world
from sim.world.llm_catalogue import llm_spec

__all__ = ["Term", "Estimate", "Budget", "estimate_cost", "budget_problems", "machine_memory_bytes",
           "DEFAULT_MAX_REQUESTS", "format_bytes", "compiled_batching"]

DEFAULT_MAX_REQUESTS = 20_000_000
BASE_BYTES = 120e6          # interpreter, libraries, world, charts: a two-region run peaks at 112 MB
BASE_SECONDS = 1.0
# (bytes, events, seconds) per unit of each term, measured by bench/cost.py.
SLOT_REQUEST = (350.0, 2.0, 3e-6)
BATCHING_REQUEST = (800.0, 6.0, 40e-6)
# The batching replicas' compiled core (plain pools): routed by nearest (in bulk: bench/serving.py
# 3.6 us) or latency_aware (while the nearest pool has room: the default scenario 6.9 us), or one
# by one by another policy that reads the replicas' load (the core runs before every request).
COMPILED_BATCHING_REQUEST = (650.0, 6.0, 6e-6)
COMPILED_BATCHING_ROUTED_REQUEST = (650.0, 6.0, 14e-6)
COMPILED_CODE = (80e6, 0.0, 0.4)  # numba, its typing registries and SciPy's linalg, loaded once a run
COMPILED_MIN_REQUESTS = 30_000  # smaller runs keep the Python replicas (batching_compiled.WARM_MIN_REQUESTS)
ROW = (1_700.0, 0.0, 50e-6)
TICK = (600.0, 1.0, 60e-6)
AUTOSCALER_TICK = (600.0, 1.0, 600e-6)  # signals from the request arrays and a fresh view, 2 pools
BATCHING_REPLICA = (1_200.0, 0.0, 20e-6)
FAILURE = (500.0, 2.0, 20e-6)
JOB = (3_000.0, 10.0, 1e-3)
FLUID_CELL = (2_000.0, 0.0, 20e-6)  # bench/fluid.py: 28,800 cells in about 0.6 s
_GRID_POINTS = 20_000  # profile samples for a rate's integral


@dataclass(frozen=True)
class Term:
    """One driver of a run's cost and the scenario field that sets it."""

    path: tuple[Any, ...]
    what: str
    count: float
    bytes: float
    events: float
    seconds: float
    why: str = ""  # how the count arises, when more than the field at ``path`` sets it

    @classmethod
    def of(cls, path: tuple[Any, ...], what: str, count: float, unit: tuple[float, float, float],
           why: str = "") -> Term:
        # ``count`` may be inf (a duration over a tiny interval): 0 per unit stays 0.
        per_byte, per_event, per_second = (count * u if u else 0.0 for u in unit)
        return cls(path, what, count, per_byte, per_event, per_second, why)

    def named(self) -> str:
        """``14 million time-series rows (duration / metrics.bucket, times 2 regions)``."""
        return f"{_count(self.count)} {self.what}" + (f" ({self.why})" if self.why else "")


@dataclass(frozen=True)
class Estimate:
    """The terms of a run's cost and their totals (memory includes the interpreter's)."""

    terms: tuple[Term, ...]

    @property
    def requests(self) -> float:
        return sum(t.count for t in self.terms if t.what == "requests")

    @property
    def events(self) -> float:
        return sum(t.events for t in self.terms)

    @property
    def bytes(self) -> float:
        return BASE_BYTES + sum(t.bytes for t in self.terms)

    @property
    def seconds(self) -> float:
        return BASE_SECONDS + sum(t.seconds for t in self.terms)

    def describe(self) -> str:
        """``about 690,000 requests, 3.9 million events, 600 MB of memory, 30 s``."""
        requests = f"about {_count(self.requests)} requests" if self.requests else "no requests"
        return (f"{requests}, {_count(self.events)} events, {format_bytes(self.bytes)} of memory, "
                f"{_seconds(self.seconds)}")

    def largest(self, key: str, what: str | None = None) -> Term | None:
        terms = [t for t in self.terms if what is None or t.what == what]
        return max(terms, key=lambda t: getattr(t, key)) if terms else None


@dataclass(frozen=True)
class Budget:
    """Limits a run must stay under, and how a user lifts them (named in messages)."""

    max_requests: float = DEFAULT_MAX_REQUESTS
    max_bytes: float | None = None  # None: half of this machine's memory
    max_seconds: float | None = None
    hints: tuple[str, str, str] = ("--max-requests, or --force", "--max-memory, or --force", "--force")

    @property
    def memory(self) -> float:
        return self.max_bytes if self.max_bytes is not None else machine_memory_bytes() / 2


def machine_memory_bytes() -> float:
    """Physical memory, or the cgroup's limit when that is lower."""
    total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, float(text))
    return total


def estimate_cost(loaded: LoadedScenario) -> Estimate:
    """Every cost term of ``loaded`` (a trace that cannot be read counts as empty)."""
    scenario = loaded.scenario
    base = Path(loaded.source).parent
    terms = (*_request_terms(scenario, base), *_other_terms(scenario), *_job_terms(scenario, base))
    return Estimate(tuple(t for t in terms if t.count > 0))


def compiled_batching(scenario: Scenario) -> bool:
    """Whether a large run's batching replicas would run compiled (``sim.engine.batching_compiled``:
    numba installed, no shared prompts, conversations, disaggregation or mixture of experts)."""
    import importlib.util

    servings = [p.serving for r in scenario.regions for p in r.pools if p.serving is not None]
    if os.environ.get("MERIDIAN_SERVING_CORE", "auto").strip().lower() == "python":
        return False
    return (importlib.util.find_spec("numba") is not None
            and not any(wl.sessions or wl.shared_prefix for wl in scenario.inference)
            and all(s.role == "both" and not llm_spec(s.model).is_moe for s in servings))


def _request_terms(scenario: Scenario, base: Path) -> Iterator[Term]:
    if scenario.fidelity == "fluid" and scenario.inference:
        yield _fluid_term(scenario)
        return
    offsets = {r.name: r.utc_offset_h for r in build_world(scenario).regions}
    counts: list[tuple[tuple[Any, ...], float]] = []
    for i, wl in enumerate(scenario.inference):
        where: tuple[Any, ...] = ("inference", i, "arrival")
        # Sessions: each arrival starts a conversation of this many turns on average (at
        # most; later turns due after the end are not sent).
        turns = _mean_turns(wl.sessions.turns, wl.sessions.max_turns) if wl.sessions else 1.0
        if isinstance(wl.arrival, PoissonArrival):
            counts.append((where + ("rate_per_s",), _poisson_requests(wl.arrival, wl.origin, offsets,
                                                                       scenario.duration) * turns))
        elif isinstance(wl.arrival, TraceArrival):
            counts.append((where + ("path",), _trace_requests(wl.arrival, base, scenario.duration) * turns))
    unit = _request_unit(scenario, sum(count for _, count in counts))
    for path, count in counts:
        yield Term.of(path, "requests", count, unit)
    if unit in (COMPILED_BATCHING_REQUEST, COMPILED_BATCHING_ROUTED_REQUEST):
        serving = next((i, k) for i, r in enumerate(scenario.regions) for k, p in enumerate(r.pools) if p.serving)
        yield Term.of(("regions", serving[0], "pools", serving[1], "serving"), "compiled replicas' code", 1,
                      COMPILED_CODE)


def _request_unit(scenario: Scenario, requests: float) -> tuple[float, float, float]:
    """What one request costs: on slot pools, or on batching replicas (compiled or not)."""
    if not any(p.serving is not None for r in scenario.regions for p in r.pools):
        return SLOT_REQUEST
    if requests < COMPILED_MIN_REQUESTS or not compiled_batching(scenario):
        return BATCHING_REQUEST
    shortcut = scenario.scheduler.routing.name in ("nearest", "latency_aware")
    return COMPILED_BATCHING_REQUEST if shortcut else COMPILED_BATCHING_ROUTED_REQUEST


def _mean_turns(mean: float, cap: int) -> float:
    """Mean of min(G, cap) for G geometric on 1, 2, ... with mean ``mean``."""
    q = 1.0 / mean
    return float((1.0 - (1.0 - q) ** cap) / q)


def _fluid_term(scenario: Scenario) -> Term:
    """The fluid mode simulates no request: it works per step, origin and pool
    (sim/fluid; steps of at most 5 minutes, more where buckets are shorter)."""
    steps = scenario.duration / min(300.0, scenario.metrics.bucket) + 1
    regions = len(scenario.regions)
    pools = sum(len(r.pools) for r in scenario.regions)
    return Term.of(("fidelity",), "fluid cells", steps * regions * pools * len(scenario.inference), FLUID_CELL,
                   "steps x origins x pools x workloads")


def _poisson_requests(arrival: PoissonArrival, origin: dict[str, float], offsets: dict[str, float],
                      duration_s: float) -> float:
    """Expected arrivals: the rate's integral over the run, each origin on its own clock."""
    total = sum(origin.values())
    if total <= 0:
        return 0.0
    t = np.linspace(0.0, duration_s, _GRID_POINTS)
    mean = 0.0
    for name, weight in origin.items():
        profile = origin_profile(arrival.profile, offsets.get(name, 0.0))
        mean += weight / total * float(np.mean(multiplier(profile, t)))
    return arrival.rate_per_s * mean * duration_s


def _trace_requests(arrival: TraceArrival, base: Path, duration_s: float) -> float:
    try:
        trace = read_trace(base / arrival.path, arrival.path)
    except ScenarioError:
        return 0.0  # preflight reports the file
    times = trace.t_s / arrival.time_scale
    if arrival.loop and trace.period_s > 0:
        return len(trace) * duration_s / (trace.period_s / arrival.time_scale)
    return float(np.count_nonzero(times < duration_s))


def _other_terms(scenario: Scenario) -> Iterator[Term]:
    duration = scenario.duration
    gpu_regions = sum(1 for r in scenario.regions if r.pools) or 1
    regions = f", times {gpu_regions} regions" if gpu_regions > 1 else ""
    rows = float(np.ceil(duration / scenario.metrics.bucket)) * gpu_regions  # inf for absurd inputs: refused
    yield Term.of(("metrics", "bucket"), "time-series rows", rows, ROW, f"duration / metrics.bucket{regions}")
    sched = scenario.scheduler
    if sched.load_model is not None or sched.allocation is not None:
        yield Term.of(("scheduler", "interval"), "scheduler ticks", duration / sched.interval, TICK,
                      "duration / scheduler.interval")
    if sched.autoscaling is not None:
        ticks = duration / sched.autoscaling.interval
        yield Term.of(("scheduler", "autoscaling", "interval"), "autoscaler ticks", ticks, AUTOSCALER_TICK,
                      "duration / scheduler.autoscaling.interval")
    if sched.placement_interval is not None and scenario.training:
        yield Term.of(("scheduler", "placement_interval"), "placement ticks", duration / sched.placement_interval,
                      TICK, "duration / scheduler.placement_interval")
    for i, region in enumerate(scenario.regions):
        for k, pool in enumerate(region.pools):
            if pool.serving is not None:
                yield Term.of(("regions", i, "pools", k, "replicas"), "batching replicas", pool.replicas,
                              BATCHING_REPLICA)
    yield from _failure_terms(scenario)


def _failure_terms(scenario: Scenario) -> Iterator[Term]:
    if scenario.failures is None:
        return
    for i, spec in enumerate(scenario.failures.nodes):
        count = 0.0
        for region in scenario.regions:
            for pool in region.pools:
                if not spec.pools or region.name in spec.pools or f"{region.name}/{pool.name}" in spec.pools:
                    mttf = spec.mttf if spec.mttf is not None else default_mtbf_s(pool.gpus_per_replica)
                    count += pool.replicas * scenario.duration / mttf
        yield Term.of(("failures", "nodes", i, "mttf"), "replica failures", count, FAILURE,
                      "replicas x duration / mttf")


def _job_terms(scenario: Scenario, base: Path) -> Iterator[Term]:
    for i, wl in enumerate(scenario.training):
        jobs = wl.jobs
        where: tuple[Any, ...] = ("training", i, "jobs")
        if isinstance(jobs, PoissonJobs):
            count, where = jobs.rate_per_h * scenario.duration / 3600.0, where + ("rate_per_h",)
        else:  # a trace: one job per data row at most
            count, where = _data_rows(base / jobs.path), where + ("path",)
        if wl.max_jobs is not None:
            count = min(count, wl.max_jobs)
        yield Term.of(where, "training jobs", count, JOB)


def _data_rows(path: Path) -> float:
    """Lines after the header of a CSV file (0 if it cannot be read: preflight says why)."""
    lines = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
    except OSError:
        return 0.0
    return float(max(lines - 1, 0))


def budget_problems(loaded: LoadedScenario, estimate: Estimate, budget: Budget) -> list[Problem]:
    """The limits ``estimate`` exceeds, each located at the field that contributes most."""
    problems = []
    top = estimate.largest("count", "requests")
    if top is not None and estimate.requests > budget.max_requests:
        problems.append(_over(loaded, top, f"about {_count(estimate.requests)} requests, over the budget of "
                              f"{_count(budget.max_requests)}", budget.hints[0]))
    top = estimate.largest("bytes")
    if top is not None and estimate.bytes > budget.memory:
        problems.append(_over(loaded, top, f"about {format_bytes(estimate.bytes)} of memory for "
                              f"{top.named()}, over the budget of {format_bytes(budget.memory)}",
                              budget.hints[1]))
    top = estimate.largest("seconds")
    if top is not None and budget.max_seconds is not None and estimate.seconds > budget.max_seconds:
        problems.append(_over(loaded, top, f"about {_seconds(estimate.seconds)} of wall time for "
                              f"{top.named()}, over the limit of {_seconds(budget.max_seconds)}",
                              budget.hints[2]))
    return problems


def _over(loaded: LoadedScenario, term: Term, rule: str, hint: str) -> Problem:
    return loaded.problem(term.path, f"{rule} ({hint})", _value(loaded, term.path))


def _value(loaded: LoadedScenario, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` as the scenario holds it (None if absent: no ``got``)."""
    node: Any = loaded.resolved
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return None
    return node if isinstance(node, (int, float, str)) else None


def _count(n: float) -> str:
    """Two significant digits, as an estimate deserves: ``690,000``, ``3.9 million``."""
    n = float(f"{n:.2g}")
    if n == float("inf"):
        return "infinitely many"
    for word, size in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if n >= size:
            return f"{n / size:g} {word}" if n < 1e15 else f"{n:.2g}"
    return f"{round(n):,}"


def format_bytes(n: float) -> str:
    """``1.5 GB``, ``600 MB``, ``3.1 TB`` (two significant digits, powers of 1000)."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9)):
        if n >= size:
            return f"{float(f'{n / size:.2g}'):g} {unit}" if n < 1e19 else f"{n:.2g} bytes"  # inf: 'inf bytes'
    return f"{float(f'{n / 1e6:.2g}'):g} MB"


def _seconds(s: float) -> str:
    """``30 s``, ``5 min``, ``10 h``, ``3 days``: a unit is used from two of it on."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= 2 * size:
            return f"{_two(s / size)} {unit}"
    return f"{_two(s)} s"


def _two(x: float) -> str:
    return f"{float(f'{x:.2g}'):g}"
