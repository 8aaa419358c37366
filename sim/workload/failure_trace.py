"""Failure traces: replica failures read from a CSV file instead of drawn.

A trace has the header ``time_s,region,pool,replicas,duration_s``; each row takes
``replicas`` replicas of ``region/pool`` down at ``time_s`` for ``duration_s`` seconds.

Public: ``read_failure_trace``, ``TRACE_COLUMNS``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Collection

import numpy as np

from sim.errors import Problem, ScenarioError

__all__ = ["read_failure_trace", "TRACE_COLUMNS"]

TRACE_COLUMNS = ("time_s", "region", "pool", "replicas", "duration_s")


def read_failure_trace(path: Path, name: str, source: str, pools: Collection[str]) -> list[tuple[float, str, int, float]]:
    """Rows ``(time_s, region/pool, replicas, duration_s)`` of a failure trace CSV."""
    problems: list[Problem] = []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != TRACE_COLUMNS:
            raise ScenarioError([Problem(name, 1, "", f"header must be {','.join(TRACE_COLUMNS)}",
                                         ",".join(header or []))])
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(TRACE_COLUMNS):
                problems.append(Problem(name, line, "", f"has {len(row)} fields, expected {len(TRACE_COLUMNS)}"))
                continue
            t, region, pool, replicas, duration = (x.strip() for x in row)
            key = f"{region}/{pool}"
            try:
                values = (float(t), int(replicas), float(duration))
            except ValueError:
                problems.append(Problem(name, line, "", "time_s and duration_s must be numbers, replicas an integer",
                                        ",".join(row)))
                continue
            if key not in pools:
                problems.append(Problem(name, line, "region,pool", "no such pool in the scenario", key))
            elif not (np.isfinite(values[0]) and values[0] >= 0 and values[1] >= 1 and values[2] > 0):
                problems.append(Problem(name, line, "", "needs time_s >= 0, replicas >= 1, duration_s > 0",
                                        ",".join(row)))
            else:
                rows.append((values[0], key, values[1], values[2]))
    if problems:
        raise ScenarioError(problems)
    return rows
