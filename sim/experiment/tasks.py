"""One run of an experiment as a task any executor can ship: plain data in, plain data out.

A :class:`RunTask` names a scenario file, its overrides and the run folder to write; it
pickles into a spawned process or onto a Dask worker. :func:`run_task` makes the folder
complete or reports why it could not:

- a folder with ``_SUCCESS`` is finished: it is left alone (``skipped``) and its metrics
  are read back, which is what lets an interrupted sweep resume;
- a folder without ``_SUCCESS`` is the debris of an interrupted or failed attempt: it is
  removed and the run starts again;
- any exception becomes ``failed`` with a one-line error, so one bad run never stops the
  others. Ctrl-C (``KeyboardInterrupt``) is not caught.

Public: ``RunTask``, ``run_task``, ``finished_result``, ``is_complete``.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import MeridianError
from sim.experiment.stats import select
from sim.runner import run_scenario
from sim.scenario import load_scenario

__all__ = ["RunTask", "run_task", "finished_result", "is_complete"]


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
    if out.exists():
        shutil.rmtree(out)  # an attempt that never wrote _SUCCESS: start clean
    try:
        loaded = load_scenario(task.scenario, task.overrides)
        run_scenario(loaded, out=out, command=task.command)
    except Exception as exc:  # recorded, never raised: the other runs go on
        return {"status": "failed", "error": describe_error(exc), "metrics": {}, "path": task.out}
    return finished_result(task, "ok")


def finished_result(task: RunTask, status: str) -> dict[str, Any]:
    """The result of a complete run folder, read from its ``summary.json``."""
    summary = json.loads((Path(task.out) / "summary.json").read_text(encoding="utf-8"))
    return {"status": status, "error": "", "metrics": select(summary, task.metrics), "path": task.out}


def describe_error(exc: BaseException) -> str:
    """One line: a Meridian error's own message, otherwise ``Type: message``."""
    text = str(exc) if isinstance(exc, MeridianError) else f"{type(exc).__name__}: {exc}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
