"""The composition root: one scenario in, one self-describing run folder out.

A run folder (``results/<scenario>/<UTC time>-<hash8>-s<seed>/`` unless ``--out`` names
one) holds ``scenario.yaml`` (verbatim), ``resolved.yaml`` (after defaults and overrides,
durations in seconds), ``manifest.json`` (identity, versions, status, wall time),
``summary.json``, ``timeseries.csv``, with inference ``latency_cdf.csv`` (latency quantiles
per origin) and, if ``metrics.requests`` is set, ``requests.npz`` (every request), whatever the finishers add (charts), and
``_SUCCESS``, written last. An existing folder is never reused: a clash gets a ``-2``,
``-3``... suffix. Every file is written atomically.

Public: ``RunOutcome``, ``run_scenario``, ``execute``, ``default_run_dir``.
"""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sim.engine import simulate
from sim.errors import PolicyError, ScenarioError
from sim.policies import create
from sim.scenario.model import PolicySpec
from sim.fileio import write_csv_atomic, write_json_atomic, write_requests, write_text_atomic
from sim.metrics import TIMESERIES_COLUMNS, CapacityObserver, bucket_edges
from sim.metrics.consistency import consistency_summary
from sim.metrics.failures import cut_off_requests, failures_summary
from sim.metrics.records import (CROSSING_COLUMNS, FAILURE_COLUMNS, JOB_COLUMNS, ROLLOUT_COLUMNS, STATUS,
                                 TRANSFER_COLUMNS)
from sim.metrics.energy import energy_summary
from sim.metrics.training import network_summary, training_summary
from sim.metrics.inference import (INFERENCE_COLUMNS, LATENCY_CDF_COLUMNS, InferenceLayout, busy_gpu_means,
                                   inference_summary, inference_timeseries, latency_cdf_rows)
from sim.scenario import LoadedScenario
from sim.scenario.yaml_io import dump_yaml
from sim.streams import Streams
from sim.workload.inputs import check_inputs
from sim.world import build_world

__all__ = ["RunOutcome", "run_scenario", "execute", "preflight", "default_run_dir", "PACKAGES"]

PACKAGES = ("simpy", "numpy", "networkx", "matplotlib", "pydantic", "PyYAML")
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


def _layout(scenario, world) -> InferenceLayout:
    pools = world.pools
    names = world.topology.names
    return InferenceLayout(
        regions=tuple(names),
        pool_region=np.array([names.index(p.region) for p in pools], dtype=np.int64),
        pool_slots=np.array([p.replicas * p.slots_per_replica for p in pools], dtype=np.int64),
        pool_gpus_per_slot=np.array([p.gpus_per_replica / p.slots_per_replica for p in pools]),
        workloads=tuple(w.name for w in scenario.inference),
        slo_ms=tuple(w.slo_ms for w in scenario.inference))


def _merge_inference(rows: list[dict[str, Any]], series: dict[str, dict[str, np.ndarray]],
                     n_buckets: int) -> list[dict[str, Any]]:
    """Add the request-level columns to the capacity rows (same bucket x region order)."""
    for k, row in enumerate(rows):
        cols = series[row["region"]]
        bucket = k // (len(rows) // n_buckets)
        for name in INFERENCE_COLUMNS:
            row[name] = cols[name][bucket]
        row["busy_gpus"] = cols["busy_gpus"][bucket]
        used = row["busy_gpus"] + row["training_gpus"]
        row["utilization"] = used / row["total_gpus"] if row["total_gpus"] else 0.0
    return rows


def _add_inference_busy(utilization: dict[str, Any], busy: dict[str, float], world) -> dict[str, Any]:
    """Fold request-level busy GPUs into the capacity observer's utilisation (training only)."""
    gpus = {r.name: r.total_gpus for r in world.regions if r.total_gpus}
    total = sum(gpus.values())
    by_region = {r: utilization["by_region"][r] + busy[r] / n for r, n in gpus.items()}
    inference = sum(busy[r] for r in gpus) / total if total else 0.0
    return {**utilization, "mean": utilization["mean"] + inference, "by_region": by_region, "inference": inference}


def execute(loaded: LoadedScenario) -> RunOutcome:
    """Simulate a validated scenario in memory (no files)."""
    scenario = loaded.scenario
    world = build_world(scenario)
    # Regions without GPUs only originate traffic: they have no capacity rows.
    capacity = CapacityObserver({r.name: r.total_gpus for r in world.regions if r.total_gpus})
    base_dir = Path(loaded.source).parent
    result = simulate(scenario, world, [capacity], Streams(scenario.seed), base_dir, loaded.source)
    summary = {"scenario": scenario.name, "seed": scenario.seed, "sim_time_s": result.end_s,
               "warmup_s": scenario.warmup}
    summary.update(capacity.summary(scenario.warmup, result.end_s))
    rows = capacity.timeseries(result.end_s, scenario.metrics.bucket)
    extra: dict[str, Any] = {}
    if result.requests is not None:
        layout = _layout(scenario, world)
        series = inference_timeseries(result.requests, layout, result.end_s, scenario.metrics.bucket)
        n_buckets = len(bucket_edges(0.0, result.end_s, scenario.metrics.bucket)) - 1
        rows = _merge_inference(rows, series, n_buckets)
        busy = busy_gpu_means(result.requests, layout, scenario.warmup, result.end_s)
        summary["utilization"] = _add_inference_busy(summary["utilization"], busy, world)
        summary["inference"] = inference_summary(result.requests, layout, scenario.warmup, result.end_s)
        extra["latency_cdf"] = latency_cdf_rows(result.requests, layout, scenario.warmup)
        extra["requests"] = result.requests
    if result.training is not None:
        engine = result.training
        jobs = engine.records(result.end_s)
        summary["training"] = training_summary(jobs, scenario.warmup)
        summary["network"] = network_summary(engine.transfer_rows, engine.crossings, engine.residency_violations)
        extra["tables"] = {"jobs.csv": (JOB_COLUMNS, jobs), "transfers.csv": (TRANSFER_COLUMNS, engine.transfer_rows),
                           "border_crossings.csv": (CROSSING_COLUMNS, engine.crossings)}
    if result.failures is not None:
        fe = result.failures
        lost_h = sum(j.lost_gpu_h for j in extra["tables"]["jobs.csv"][1]) if result.training is not None else 0.0
        inference, log = result.inference, result.requests
        cut_off = 0
        if log is not None:
            dropped = (log.status == STATUS["rejected"]) | (log.status == STATUS["failed"])
            cut_off = cut_off_requests(log.t_s, log.origin, dropped, world.topology.names, fe.cut_off)
        summary["failures"] = failures_summary(
            fe.records, fe.availability(result.end_s), {r.name: r.total_gpus for r in world.regions},
            fe.gpu_hours_down(result.end_s), inference.retries if inference else 0,
            inference.failed if inference else 0, cut_off, lost_h, result.end_s)
        extra.setdefault("tables", {})["failures.csv"] = (FAILURE_COLUMNS, fe.records)
    if result.consistency is not None:
        ce = result.consistency
        rollouts = ce.records()
        layout = _layout(scenario, world) if result.requests is not None else None
        summary["consistency"] = consistency_summary(
            rollouts, ce.versions, result.end_s, result.requests, world.topology.names,
            layout.pool_region if layout else None, scenario.warmup)
        extra.setdefault("tables", {})["rollouts.csv"] = (ROLLOUT_COLUMNS, rollouts)
    summary["energy"] = energy_summary(rows, world.regions, _bucket_start(scenario))
    return RunOutcome(summary, rows, result.events_processed, extra)


def _bucket_start(scenario) -> float:
    """First bucket edge at or after the warm-up (energy is summed over whole buckets)."""
    bucket = scenario.metrics.bucket
    return float(np.ceil(scenario.warmup / bucket - 1e-9) * bucket)


def preflight(loaded: LoadedScenario) -> None:
    """Checks that need more than the schema: policies resolve, trace files read cleanly.

    Raises :class:`ScenarioError` located in the scenario file (or a trace file's line), so
    that ``validate`` finds these problems too, and ``run`` before it creates a run folder."""
    scenario = loaded.scenario
    problems = []
    if scenario.scheduler is not None:
        sched = scenario.scheduler
        choices = [("routing", ("scheduler", "routing"), sched.routing),
                   ("placement", ("scheduler", "placement"), sched.placement)]
        if sched.allocation is not None:
            choices.append(("allocation", ("scheduler", "allocation", "policy"), sched.allocation.policy))
        for kind, path, value in choices:
            spec = PolicySpec(name=value) if isinstance(value, str) else value
            try:
                create(kind, spec, np.random.default_rng(0))
            except PolicyError as exc:
                where = path + (("name",) if isinstance(value, PolicySpec) else ())
                problems.append(loaded.problem(where, str(exc).split(": ", 1)[1], spec.name))
    problems += check_inputs(loaded)
    if problems:
        raise ScenarioError(problems)


def default_run_dir(loaded: LoadedScenario, root: Path, now: dt.datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    s = loaded.scenario
    return root / s.name / f"{stamp}-{loaded.config_hash[:8]}-s{s.seed}"


def _reserve(path: Path) -> Path:
    """Create ``path`` (or the first free ``path-N``) exclusively and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")


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


def run_scenario(loaded: LoadedScenario, out: Path | None = None, root: Path = Path("results"),
                 command: Sequence[str] = (), finishers: Sequence[Finisher] = ()) -> Path:
    """Simulate ``loaded`` and write its run folder; return the folder's path."""
    preflight(loaded)
    started = dt.datetime.now(dt.timezone.utc)
    run_dir = _reserve(out if out is not None else default_run_dir(loaded, root, started))
    manifest = {
        "run_id": run_dir.name, "scenario": loaded.scenario.name, "source": loaded.source,
        "config_sha256": loaded.config_hash, "seed": loaded.scenario.seed,
        "overrides": list(loaded.overrides), "versions": _versions(), "git_commit": _git_commit(),
        "command": list(command) or sys.argv, "started_utc": started.isoformat(timespec="seconds"),
        "status": "running",
    }
    write_text_atomic(run_dir / "scenario.yaml", loaded.text)
    write_text_atomic(run_dir / "resolved.yaml", dump_yaml(loaded.resolved))
    write_json_atomic(run_dir / "manifest.json", manifest)
    clock = time.perf_counter()
    try:
        outcome = execute(loaded)
        write_json_atomic(run_dir / "summary.json", outcome.summary)
        write_csv_atomic(run_dir / "timeseries.csv", outcome.columns, outcome.timeseries)
        if "latency_cdf" in outcome.extra:
            write_csv_atomic(run_dir / "latency_cdf.csv", LATENCY_CDF_COLUMNS, outcome.extra["latency_cdf"])
        for name, (columns, records) in outcome.extra.get("tables", {}).items():
            write_csv_atomic(run_dir / name, columns, (vars(r) for r in records))
        if loaded.scenario.metrics.requests and "requests" in outcome.extra:
            write_requests(run_dir / "requests.npz", outcome.extra["requests"])
        for finish in finishers:
            finish(run_dir)
    except BaseException as exc:
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                        wall_seconds=time.perf_counter() - clock)
        write_json_atomic(run_dir / "manifest.json", manifest)
        raise
    manifest.update(status="ok", wall_seconds=time.perf_counter() - clock,
                    events_processed=outcome.events_processed)
    write_json_atomic(run_dir / "manifest.json", manifest)
    write_text_atomic(run_dir / "_SUCCESS", "")
    return run_dir
