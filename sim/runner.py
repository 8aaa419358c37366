"""The composition root: one scenario in, one self-describing run folder out.

A run folder (``results/<scenario>/<UTC time>-<hash8>-s<seed>/`` unless ``--out`` names
one) holds ``scenario.yaml`` (verbatim), ``resolved.yaml`` (after defaults and overrides,
durations in seconds), ``manifest.json`` (identity, versions, status, wall time),
``summary.json``, ``timeseries.csv``, whatever the finishers add (charts), and
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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from sim.engine import simulate
from sim.fileio import write_csv_atomic, write_json_atomic, write_text_atomic
from sim.metrics import TIMESERIES_COLUMNS, CapacityObserver
from sim.scenario import LoadedScenario
from sim.scenario.yaml_io import dump_yaml
from sim.streams import Streams
from sim.world import build_world

__all__ = ["RunOutcome", "run_scenario", "execute", "default_run_dir", "PACKAGES"]

PACKAGES = ("simpy", "numpy", "networkx", "matplotlib", "pydantic", "PyYAML")
Finisher = Callable[[Path], None]


@dataclass(frozen=True)
class RunOutcome:
    """What a finished simulation produced, before anything is written."""

    summary: dict[str, Any]
    timeseries: list[dict[str, Any]]
    events_processed: int


def execute(loaded: LoadedScenario) -> RunOutcome:
    """Simulate a validated scenario in memory (no files)."""
    scenario = loaded.scenario
    world = build_world(scenario)
    capacity = CapacityObserver({r.name: r.total_gpus for r in world.regions})
    result = simulate(scenario, world, [capacity], Streams(scenario.seed))
    summary = {"scenario": scenario.name, "seed": scenario.seed, "sim_time_s": result.end_s,
               "warmup_s": scenario.warmup}
    summary.update(capacity.summary(scenario.warmup, result.end_s))
    return RunOutcome(summary, capacity.timeseries(result.end_s, scenario.metrics.bucket),
                      result.events_processed)


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
        write_csv_atomic(run_dir / "timeseries.csv", TIMESERIES_COLUMNS, outcome.timeseries)
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
