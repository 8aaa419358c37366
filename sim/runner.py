"""The composition root: one scenario in, one self-describing run folder out.

A run folder (``results/<scenario>/<UTC time>-<hash8>-s<seed>/`` unless ``--out`` names
one) holds ``scenario.yaml`` (verbatim), ``resolved.yaml`` (after defaults and overrides,
durations in seconds), ``manifest.json`` (identity, versions, status, wall time),
``summary.json``, ``timeseries.csv``, with inference ``latency_cdf.csv`` (latency quantiles
per origin) and, if ``metrics.requests`` is set, ``requests.npz`` (every request), whatever the
finishers add (charts), and ``_SUCCESS``, written last. An existing folder is never reused: a clash gets a ``-2``,
``-3``... suffix. Every file is written atomically.

A folder that cannot be created or written (read-only, a full disk, a path under a file) is
an :class:`~sim.errors.OutputError` (exit 2): the manifest, written first, is marked ``failed``
(in place if the disk is full), or the folder removed if not even the manifest could be
written; no temporary file is left behind.

Public: ``RunOutcome``, ``RunObservers``, ``run_scenario``, ``execute``, ``preflight``,
``default_run_dir``, ``why_not_a_folder``.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import OutputError, PolicyError, Problem, ScenarioError
from sim.fileio import rewrite_json, write_csv_atomic, write_json_atomic, write_requests, write_text_atomic
from sim.metrics import (
    INFERENCE_COLUMNS,
    LATENCY_CDF_COLUMNS,
    TIMESERIES_COLUMNS,
    CapacityObserver,
    ConsistencyObserver,
    FailuresObserver,
    InferenceLayout,
    InferenceObserver,
    NetworkObserver,
    TrainingObserver,
    bucket_edges,
    energy_summary,
    timeseries_rows,
    with_request_busy,
)
from sim.metrics.autoscaling import AutoscalingObserver
from sim.policies import create, locate
from sim.scenario import LoadedScenario
from sim.scenario.kinds import policy_specs
from sim.scenario.model import Scenario
from sim.scenario.yaml_io import dump_yaml
from sim.streams import Streams
from sim.workload.inputs import check_inputs
from sim.world import World, build_world

if TYPE_CHECKING:
    from sim.engine import SimulationResult
    from sim.engine.simulation import ProgressHook

__all__ = ["RunOutcome", "RunObservers", "run_scenario", "execute", "preflight", "default_run_dir", "PACKAGES",
           "why_not_a_folder"]

PACKAGES = ("simpy", "numpy", "networkx", "matplotlib", "pydantic", "PyYAML")
# Significant digits of the event tables (transfers.csv, jobs.csv, failures.csv, ...): a
# copy's end to 1e-13 s at 100 s, so a table compares with a reference to the nanosecond.
EVENT_DIGITS = 15
Finisher = Callable[[Path], None]


@dataclass(frozen=True)
class RunOutcome:
    """What a finished simulation produced, before anything is written."""

    summary: dict[str, Any]
    timeseries: list[dict[str, Any]]
    events_processed: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        if "latency_cdf" in self.extra:
            return TIMESERIES_COLUMNS + INFERENCE_COLUMNS
        return TIMESERIES_COLUMNS


@dataclass(frozen=True)
class RunObservers:
    """The observers a scenario needs, one per summary section."""

    capacity: CapacityObserver
    inference: InferenceObserver | None
    training: TrainingObserver | None
    network: NetworkObserver | None
    failures: FailuresObserver | None
    consistency: ConsistencyObserver | None
    autoscaling: AutoscalingObserver | None = None

    @classmethod
    def of(cls, scenario: Scenario, world: World) -> RunObservers:
        from sim.engine.consistency import rollout_regions  # the engine loads only for a run

        names = world.topology.names
        warmup = scenario.warmup
        layout = InferenceLayout.of(scenario, world) if scenario.inference else None
        pools = [(p.region, p.name, p.total_gpus) for p in world.pools]
        # Regions without GPUs only originate traffic: they have no capacity rows.
        return cls(
            capacity=CapacityObserver({r.name: r.total_gpus for r in world.regions if r.total_gpus}),
            inference=InferenceObserver(layout, warmup) if layout is not None else None,
            training=TrainingObserver(warmup) if scenario.training else None,
            network=NetworkObserver() if scenario.training or scenario.transfers or _disaggregated(scenario) else None,
            failures=FailuresObserver(pools, names, bool(scenario.training)) if scenario.failures else None,
            consistency=(ConsistencyObserver(rollout_regions(world), names,
                                             layout.pool_region if layout else None, warmup)
                         if scenario.consistency else None),
            autoscaling=(AutoscalingObserver([(p.key, p.gpus_per_replica) for p in world.pools if p.autoscale],
                                             layout, warmup)
                         if scenario.scheduler.autoscaling is not None and layout is not None else None))

    def all(self) -> list[Any]:
        return [o for o in vars(self).values() if o is not None]


def _disaggregated(scenario: Scenario) -> bool:
    """Prefill pools send KV caches over the network."""
    return any(p.serving is not None and p.serving.role == "prefill" for r in scenario.regions for p in r.pools)


def execute(loaded: LoadedScenario, progress: ProgressHook | None = None) -> RunOutcome:
    """Simulate a validated scenario in memory (no files); ``progress(t, events)`` hears
    how far the simulation is (from outside its event queue: it changes no result)."""
    from sim.engine import simulate  # here, not above: validate imports this module, not SimPy

    scenario = loaded.scenario
    world = build_world(scenario)
    observers = RunObservers.of(scenario, world)
    if scenario.fidelity == "fluid" and scenario.inference:
        return _execute_fluid(loaded, world, observers)
    result = simulate(scenario, world, observers.all(), Streams(scenario.seed), Path(loaded.source).parent,
                      loaded.source, progress=progress)
    return _outcome(scenario, world, observers, result)


def _execute_fluid(loaded: LoadedScenario, world: World, observers: RunObservers) -> RunOutcome:
    """The fluid mode: the engine without its request fast path, the fluid model in the
    inference observer's place (sim/fluid)."""
    from sim.engine import simulate
    from sim.fluid import FluidInference

    scenario = loaded.scenario
    fluid = FluidInference(scenario, world)
    observers = replace(observers, inference=fluid)  # type: ignore[arg-type]  # the same questions
    result = simulate(scenario, world, observers.all(), Streams(scenario.seed), Path(loaded.source).parent,
                      loaded.source, fluid_arrivals=fluid.arrivals)
    outcome = _outcome(scenario, world, observers, result)
    for section, keys in (("failures", ("requests_retried", "requests_lost", "requests_cut_off")),
                          ("consistency", ("stale_fraction",))):
        for key in keys if section in outcome.summary else ():
            outcome.summary[section][key] = None  # per-request figures the fluid model has not
    return outcome


def _outcome(scenario: Scenario, world: World, o: RunObservers, result: SimulationResult) -> RunOutcome:
    """Summary sections in their fixed order, the time series, the tables."""
    end, warmup = result.end_s, scenario.warmup
    summary: dict[str, Any] = {"scenario": scenario.name, "seed": scenario.seed, "sim_time_s": end,
                               "warmup_s": warmup, **o.capacity.summary(warmup, end)}
    edges = bucket_edges(0.0, end, scenario.metrics.bucket)
    requests = o.inference.columns(end, scenario.metrics.bucket) if o.inference else None
    rows = timeseries_rows(edges, o.capacity.columns(edges), requests)
    extra: dict[str, Any] = {}
    if o.inference is not None:
        summary["utilization"] = with_request_busy(summary["utilization"], o.inference.busy_gpus(end),
                                                   o.capacity.total_gpus)
        summary["inference"] = o.inference.summary(end)
        extra.update(latency_cdf=o.inference.latency_cdf())
        if o.inference.log is not None:  # the fluid mode has no request log
            extra["requests"] = o.inference.log
    if o.training is not None:
        summary["training"] = o.training.summary()
    if o.network is not None:
        summary["network"] = o.network.summary()
    if o.failures is not None:
        summary["failures"] = o.failures.summary(end, {r.name: r.total_gpus for r in world.regions})
    if o.consistency is not None:
        summary["consistency"] = o.consistency.summary(end)
    if o.autoscaling is not None:
        summary["autoscaling"] = o.autoscaling.summary(end)
    summary["energy"] = energy_summary(rows, world.regions, _bucket_start(scenario))
    tables = [obs.tables() for obs in (o.training, o.network, o.failures, o.consistency, o.autoscaling)
              if obs is not None]
    if tables:
        extra["tables"] = {name: table for t in tables for name, table in t.items()}
    return RunOutcome(summary, rows, result.events_processed, extra)


def _bucket_start(scenario) -> float:
    """First bucket edge at or after the warm-up (energy is summed over whole buckets)."""
    bucket = scenario.metrics.bucket
    return float(np.ceil(scenario.warmup / bucket - 1e-9) * bucket)


def preflight(loaded: LoadedScenario, import_modules: bool = True) -> None:
    """Checks that need more than the schema: policies resolve, trace files read cleanly.

    Raises :class:`ScenarioError` located in the scenario file (or a trace file's line), so
    that ``validate`` finds these problems too, and ``run`` before it creates a run folder.
    ``import_modules=False`` (``validate``): a ``module:Class`` policy's module is only
    looked up, not imported, so none of its code runs."""
    problems = _policy_problems(loaded, import_modules) + check_inputs(loaded) + _fluid_problems(loaded)
    if problems:
        raise ScenarioError(problems)


def _policy_problems(loaded: LoadedScenario, import_modules: bool = True) -> list[Problem]:
    """Every policy the scenario uses must resolve (a module policy is imported here, or with
    ``import_modules=False`` only found)."""
    problems = []
    for kind, path, spec in policy_specs(loaded.scenario):
        try:
            if import_modules:
                create(kind, spec, np.random.default_rng(0))
            else:
                locate(kind, spec)
        except PolicyError as exc:
            written = _raw(loaded.data, path)
            where = path + (("name",) if isinstance(written, dict) else ())
            problems.append(loaded.problem(where, str(exc).split(": ", 1)[1], spec.name))
    return problems


def _fluid_problems(loaded: LoadedScenario) -> list[Problem]:
    """What the fluid mode cannot model, when the scenario asks for it."""
    if loaded.scenario.fidelity != "fluid":
        return []
    from sim.fluid import fluid_problems
    return [loaded.problem(path, rule, value) for path, rule, value in fluid_problems(loaded.scenario)]


def _raw(data: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` as written in the scenario file (None if absent)."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def default_run_dir(loaded: LoadedScenario, root: Path, now: dt.datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    s = loaded.scenario
    return root / s.name / f"{stamp}-{loaded.config_hash[:8]}-s{s.seed}"


def _reserve(path: Path) -> Path:
    """Create ``path`` (or the first free ``path-N``) exclusively and return it; a folder that
    cannot be made (read-only, under a file) is an :class:`OutputError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate, n = path, 1
        while True:
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                if candidate == path and not path.is_dir():  # --out naming a file: not "file-2"
                    raise OutputError(f"cannot create the run folder {path}: {path} is a file, not a folder") from None
                n += 1
                candidate = path.with_name(f"{path.name}-{n}")
    except OSError as exc:
        raise OutputError(f"cannot create the run folder {path}: {why_not_a_folder(path, exc)}") from None


def why_not_a_folder(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be made: a file in its way, else the system's reason."""
    for parent in reversed((path, *path.parents)):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _manifest(loaded: LoadedScenario, run_dir: Path, command: Sequence[str], started: dt.datetime) -> dict[str, Any]:
    """The run's ``manifest.json`` while it runs: what ran, from which inputs and code, and
    (in fluid mode) the note that its figures are approximate."""
    manifest = {
        "run_id": run_dir.name, "scenario": loaded.scenario.name, "source": loaded.source,
        "config_sha256": loaded.config_hash, "seed": loaded.scenario.seed,
        "overrides": list(loaded.overrides), "versions": _versions(), "git_commit": _git_commit(),
        "command": list(command) or sys.argv, "started_utc": started.isoformat(timespec="seconds"),
        "status": "running",
    }
    if loaded.scenario.fidelity == "fluid" and loaded.scenario.inference:
        from sim.fluid import approximate_note
        manifest.update(fidelity="fluid", approximate=approximate_note())
    return manifest


def _write_results(run_dir: Path, loaded: LoadedScenario, outcome: RunOutcome) -> None:
    """The result files of a finished simulation: summary, time series, and the latency
    CDF, tables and per-request arrays when the run has them."""
    write_json_atomic(run_dir / "summary.json", outcome.summary)
    write_csv_atomic(run_dir / "timeseries.csv", outcome.columns, outcome.timeseries)
    if "latency_cdf" in outcome.extra:
        write_csv_atomic(run_dir / "latency_cdf.csv", LATENCY_CDF_COLUMNS, outcome.extra["latency_cdf"])
    for name, (columns, records) in outcome.extra.get("tables", {}).items():  # event logs: exact times
        write_csv_atomic(run_dir / name, columns, (vars(r) for r in records), digits=EVENT_DIGITS)
    if loaded.scenario.metrics.requests and "requests" in outcome.extra:
        write_requests(run_dir / "requests.npz", outcome.extra["requests"])


def run_scenario(loaded: LoadedScenario, out: Path | None = None, root: Path = Path("results"),
                 command: Sequence[str] = (), finishers: Sequence[Finisher] = (),
                 progress: ProgressHook | None = None) -> Path:
    """Simulate ``loaded`` and write its run folder; return the folder's path.
    ``progress`` is passed to :func:`execute`."""
    preflight(loaded)
    started = dt.datetime.now(dt.UTC)
    run_dir = _reserve(out if out is not None else default_run_dir(loaded, root, started))
    manifest = _manifest(loaded, run_dir, command, started)
    clock = time.perf_counter()
    try:
        write_json_atomic(run_dir / "manifest.json", manifest)  # first: its blocks let a failure be marked
        write_text_atomic(run_dir / "scenario.yaml", loaded.text)
        write_text_atomic(run_dir / "resolved.yaml", dump_yaml(loaded.resolved))
        outcome = execute(loaded, progress)
        _write_results(run_dir, loaded, outcome)
        for finish in finishers:
            finish(run_dir)
        manifest.update(status="ok", wall_seconds=time.perf_counter() - clock,
                        events_processed=outcome.events_processed)
        write_json_atomic(run_dir / "manifest.json", manifest)
        write_text_atomic(run_dir / "_SUCCESS", "")
    except BaseException as exc:
        manifest.pop("events_processed", None)
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                        wall_seconds=time.perf_counter() - clock)
        if (run_dir / "manifest.json").exists():
            rewrite_json(run_dir / "manifest.json", manifest)  # even on a full disk
        else:  # not even the manifest could be written: leave no empty folder behind
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        if isinstance(exc, OSError):  # a full disk, a folder made read-only: the user's to fix
            raise OutputError(f"cannot write the run folder {run_dir}: {exc.strerror or exc}"
                              + (f" ({exc.filename})" if exc.filename else "")) from None
        raise
    return run_dir
