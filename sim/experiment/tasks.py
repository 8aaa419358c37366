"""One run of an experiment as a task any executor can ship: plain data in, plain data out.

A :class:`RunTask` names a scenario file, its overrides and the run folder to write; it
pickles into a spawned process or onto a Dask worker. :func:`run_task` makes the folder
complete or reports why it could not:

- a folder with ``_SUCCESS`` is finished: it is left alone (``skipped``) and its metrics
  are read back, which is what lets an interrupted sweep resume;
- a folder without ``_SUCCESS`` is the debris of an interrupted or failed attempt: it is
  removed and the run starts again, but only if a run made it (its ``manifest.json`` names
  it, or it holds nothing else than what a run writes before its manifest); any other
  folder is left alone and the run fails, saying so;
- a finished folder whose ``summary.json`` cannot be read is ``failed``, not a crash;
- a run whose cost estimate is over the default budget of ``run`` (:mod:`sim.workload.cost`)
  is ``failed`` with the estimate's message, before its folder exists;
- any exception becomes ``failed`` with a one-line error, so one bad run never stops the
  others. Ctrl-C (``KeyboardInterrupt``) is not caught.

An experiment lays out at most ``MAX_RUNS`` runs (:func:`check_run_count`): ``--seeds
1000000000`` is refused at once rather than laid out for ever.

Public: ``RunTask``, ``run_task``, ``finished_result``, ``is_complete``, ``made_by_a_run``,
``MAX_RUNS``, ``check_run_count``.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import MeridianError, ScenarioError, UsageError
from sim.experiment.stats import select
from sim.runner import preflight, run_scenario
from sim.scenario import load_scenario
from sim.workload.cost import Budget, budget_problems, estimate_cost

__all__ = ["RunTask", "run_task", "finished_result", "is_complete", "made_by_a_run", "MAX_RUNS",
           "check_run_count"]

MAX_RUNS = 100_000  # runs one experiment may lay out (each is a folder of files)

_BEFORE_MANIFEST = frozenset({"scenario.yaml", "resolved.yaml"})  # what run_scenario writes first
_HINTS = ("the budget of each run of an experiment",) * 3


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run; paths are absolute strings."""

    scenario: str
    overrides: tuple[str, ...]
    out: str
    metrics: tuple[str, ...]
    command: tuple[str, ...] = ()


def is_complete(run_dir: str | Path) -> bool:
    return (Path(run_dir) / "_SUCCESS").is_file()


def run_task(task: RunTask) -> dict[str, Any]:
    """Run ``task`` unless its folder is complete; return ``{status, error, metrics, path}``."""
    out = Path(task.out)
    if is_complete(out):
        return finished_result(task, "skipped")
    if out.exists() or out.is_symlink():
        if not made_by_a_run(out):
            return _failed(task, f"{out}: exists and was not made by a run; it is left untouched (remove it "
                                 "or choose another --out)")
        shutil.rmtree(out)  # an attempt that never wrote _SUCCESS: start clean
    try:
        loaded = load_scenario(task.scenario, task.overrides)
        preflight(loaded)
        over = budget_problems(loaded, estimate_cost(loaded), Budget(hints=_HINTS))
        if over:  # a grid value no machine of this class holds: refused, like `run` does
            raise ScenarioError(over)
        run_scenario(loaded, out=out, command=task.command)
    except Exception as exc:  # recorded, never raised: the other runs go on
        return {"status": "failed", "error": describe_error(exc), "metrics": {}, "path": task.out}
    return finished_result(task, "ok")


def made_by_a_run(folder: Path) -> bool:
    """True for a real folder that a run created: its manifest names it, or it holds only
    what a run writes before the manifest (empty, the two scenario files, temporary files)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return isinstance(manifest, dict) and manifest.get("run_id") == folder.name
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        pass
    return all(p.name in _BEFORE_MANIFEST or (p.name.startswith(".") and ".tmp" in p.name) for p in folder.iterdir())


def finished_result(task: RunTask, status: str) -> dict[str, Any]:
    """The result of a complete run folder, read from its ``summary.json``."""
    path = Path(task.out) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        metrics = select(summary, task.metrics)
    except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        return _failed(task, f"{path}: cannot be read ({type(exc).__name__}: {exc}); remove the run folder "
                             "to run it again")
    return {"status": status, "error": "", "metrics": metrics, "path": task.out}


def _failed(task: RunTask, error: str) -> dict[str, Any]:
    return {"status": "failed", "error": error, "metrics": {}, "path": task.out}


def describe_error(exc: BaseException) -> str:
    """One line: a Meridian error's own message, otherwise ``Type: message``."""
    text = str(exc) if isinstance(exc, MeridianError) else f"{type(exc).__name__}: {exc}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def check_run_count(runs: int, options: str) -> None:
    """Refuse an experiment of more than ``MAX_RUNS`` runs (``options``: what asked for them),
    before any list of that length is made."""
    if runs > MAX_RUNS:
        raise UsageError(f"{options}: {runs:,} runs, over the limit of {MAX_RUNS:,} for one experiment "
                         "(split it, or use fewer values or seeds)")
