"""Parameter sweeps: the cross product of grid values times seeds, one run folder each.

A sweep folder (``results/<scenario>/sweep-<hash8>/`` by default, the hash taken over the
resolved base scenario, the grid and the seeds, so the same command finds the same
folder) holds ``sweep.json`` (what is swept), one run folder per point and seed named
``p<point>-s<seed>`` (``p003-s2``), and ``index.csv``: one row per run with its grid
values, seed, status (``ok``, ``failed``, ``skipped`` = complete from an earlier
invocation, ``pending`` = not finished yet), error, metrics and path. ``index.csv`` is
rewritten atomically each time a run finishes, and once more after an interruption from
what the run folders hold (a run that finished while the pool shut down is ``ok``), so
it is exact even after Ctrl-C.

Running the same sweep again skips every run whose folder has ``_SUCCESS`` and runs the
rest; a folder that holds a different sweep is refused, and so is an existing folder that
holds no sweep at all (a sweep never adopts, or deletes anything in, a user's folder).

Public: ``SweepPlan``, ``SweepOutcome``, ``plan_sweep``, ``run_sweep``, ``INDEX_FIXED``.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import OutputError, UsageError
from sim.experiment.executors import check_executor, execute_tasks
from sim.experiment.plan import Axis, render_value
from sim.experiment.stats import DEFAULT_METRICS
from sim.experiment.tasks import RunTask, check_run_count, finished_result, is_complete
from sim.fileio import write_csv_atomic, write_json_atomic
from sim.progress import Progress
from sim.runner import why_not_a_folder
from sim.scenario import load_scenario

__all__ = ["SweepPlan", "SweepOutcome", "plan_sweep", "run_sweep", "INDEX_FIXED"]

INDEX_FIXED = ("run", "point", "seed")


@dataclass(frozen=True)
class SweepPlan:
    """A sweep made concrete: its folder, its axes and one task per run."""

    out: Path
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    tasks: tuple[RunTask, ...]
    points: tuple[tuple[Any, ...], ...]  # grid values of each task, in axis order
    task_seeds: tuple[int, ...]
    metrics: tuple[str, ...] | None
    identity: dict[str, Any] = field(compare=False)


@dataclass
class SweepOutcome:
    """Results of a sweep, in task order; ``interrupted`` after Ctrl-C."""

    plan: SweepPlan
    results: list[dict[str, Any] | None]
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if (r or {}).get("status", "pending") == status)


def plan_sweep(scenario: str | Path, axes: Sequence[Axis], seeds: int = 1, sets: Sequence[str] = (),
               metrics: Sequence[str] | None = None, out: Path | None = None, root: Path = Path("results"),
               command: Sequence[str] = ()) -> SweepPlan:
    """Validate the base scenario and lay out every run (nothing runs yet)."""
    _check_axes(axes, seeds)
    base = load_scenario(scenario, list(sets))  # a broken base fails here, before any run
    first = base.scenario.seed
    seed_list = tuple(first + k for k in range(seeds))
    identity = {"scenario": str(Path(scenario).resolve()), "config_sha256": base.config_hash,
                "grid": {a.path: [render_value(v) for v in a.values] for a in axes}, "seeds": list(seed_list)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    out = out if out is not None else root / base.scenario.name / f"sweep-{digest}"
    points = list(itertools.product(*(a.values for a in axes)))
    width = max(3, len(str(len(points) - 1)))
    tasks, task_points, task_seeds = [], [], []
    for p, point in enumerate(points):
        grid_sets = [f"{a.path}={render_value(v)}" for a, v in zip(axes, point, strict=True)]
        for seed in seed_list:
            run = Path(out).resolve() / f"p{p:0{width}d}-s{seed}"
            overrides = (*sets, *grid_sets, f"seed={seed}")
            tasks.append(RunTask(str(Path(scenario).resolve()), overrides, str(run),
                                 tuple(metrics or DEFAULT_METRICS), tuple(command)))
            task_points.append(point)
            task_seeds.append(seed)
    return SweepPlan(Path(out), tuple(axes), seed_list, tuple(tasks), tuple(task_points), tuple(task_seeds),
                     tuple(metrics) if metrics else None, identity)


def _check_axes(axes: Sequence[Axis], seeds: int) -> None:
    if not axes:
        raise UsageError("sweep: needs at least one --grid dotted.path=v1,v2,...")
    if seeds < 1:
        raise UsageError(f"--seeds: must be >= 1 (got {seeds})")
    paths = [a.path for a in axes]
    for path in paths:
        if paths.count(path) > 1:
            raise UsageError(f"--grid: {path} is given twice")
        if path == "seed":
            raise UsageError("--grid: seed is set by --seeds (seeds s, s+1, ... from the scenario's seed)")
    check_run_count(math.prod(len(a.values) for a in axes) * seeds, "--grid x --seeds")


def run_sweep(plan: SweepPlan, backend: str = "process", workers: int = 1, scheduler: str | None = None,
              progress: bool = True, label: str = "sweep") -> SweepOutcome:
    """Run every task of ``plan`` not already complete, keeping ``index.csv`` current;
    ``progress``: show the runs done on stderr (:mod:`sim.progress`), as ``label``."""
    check_executor(backend, workers, scheduler)
    _claim_folder(plan)
    outcome = SweepOutcome(plan, [None] * len(plan.tasks))
    todo = []
    for i, task in enumerate(plan.tasks):
        if is_complete(task.out):
            outcome.results[i] = finished_result(task, "skipped")
        else:
            todo.append(i)
    bar = Progress(f"{label} {plan.out.name}", len(plan.tasks), "runs", quiet=not progress)
    bar.update(len(plan.tasks) - len(todo))
    write_index(outcome)
    results = execute_tasks([plan.tasks[i] for i in todo], backend, workers, scheduler)
    try:
        with contextlib.closing(results):
            for k, result in results:
                outcome.results[todo[k]] = result
                write_index(outcome)
                bar.advance()
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        bar.close()
        _reconcile(outcome)
        write_index(outcome)
    return outcome


def _reconcile(outcome: SweepOutcome) -> None:
    """Record runs that finished without being heard of (in flight when interrupted)."""
    for i, task in enumerate(outcome.plan.tasks):
        if outcome.results[i] is None and is_complete(task.out):
            outcome.results[i] = finished_result(task, "ok")


def _claim_folder(plan: SweepPlan) -> None:
    claim_folder(plan.out, "sweep.json", plan.identity, "sweep")


def claim_folder(out: Path, marker_name: str, identity: dict[str, Any], what: str) -> None:
    """Write the folder's identity file, or check that the folder holds this very
    experiment (so a resumed run never mixes runs of another scenario or grid)."""
    marker = out / marker_name
    if marker.is_file():
        try:
            found = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise UsageError(f"{marker}: cannot be read ({exc}); choose another --out or remove the folder") from None
        if found != identity:
            raise UsageError(f"{out}: holds a different {what} (see its {marker_name}); "
                             "choose another --out or remove the folder")
        return
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out}: exists and holds no {what} (no {marker_name}); a {what} only resumes in its "
                         "own folder: choose another --out or empty it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(marker, identity)
    except OSError as exc:
        raise OutputError(f"cannot create the {what} folder {out}: {why_not_a_folder(out, exc)}") from None


def index_rows(outcome: SweepOutcome) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of ``index.csv`` for the results so far."""
    plan = outcome.plan
    metrics = list(plan.metrics) if plan.metrics else [
        m for m in DEFAULT_METRICS if any(m in (r or {}).get("metrics", {}) for r in outcome.results)]
    columns = [*INDEX_FIXED, *(a.path for a in plan.axes), "status", "error", *metrics, "path"]
    rows = []
    for i, task in enumerate(plan.tasks):
        result = outcome.results[i] or {"status": "pending", "error": "", "metrics": {}}
        row = {"run": Path(task.out).name, "point": i // len(plan.seeds),
               "seed": plan.task_seeds[i], "status": result["status"], "error": result["error"],
               "path": str(plan.out / Path(task.out).name)}
        row.update({a.path: _cell(v) for a, v in zip(plan.axes, plan.points[i], strict=True)})
        row.update({m: result["metrics"].get(m, "") for m in metrics})
        rows.append(row)
    return columns, rows


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def write_index(outcome: SweepOutcome) -> Path:
    columns, rows = index_rows(outcome)
    path = outcome.plan.out / "index.csv"
    try:
        write_csv_atomic(path, columns, rows)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
