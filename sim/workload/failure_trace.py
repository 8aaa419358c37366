"""Failure traces: replica failures read from a CSV, checked against the scenario's pools.

A failure trace (``failures.trace``) has the header ``time_s,region,pool,replicas,duration_s``;
each row takes ``replicas`` replicas of the pool ``region/pool`` down at ``time_s`` for
``duration_s`` seconds. The engine (:mod:`sim.engine.failures`) applies the rows; this
module only reads them. Times and durations are finite and at most ``MAX_TRACE_S``
(:mod:`sim.workload.trace`); a row's replicas at most ``MAX_REPLICAS`` (a pool's most).

Every bad row is reported with its file and line (``fail.csv:2: region,pool: no such pool in
the scenario (got 'a/zz')``), up to 20 at once, through :class:`sim.errors.ScenarioError`;
so is a file that cannot be read (missing, a folder, not UTF-8, a field too long to split).

Public: ``TRACE_COLUMNS``, ``read_failure_trace``.
"""
from __future__ import annotations

import math
from collections.abc import Container
from pathlib import Path

from sim.errors import Problem, ScenarioError
from sim.workload.trace import MAX_TRACE_S, csv_rows

__all__ = ["TRACE_COLUMNS", "read_failure_trace"]

TRACE_COLUMNS = ("time_s", "region", "pool", "replicas", "duration_s")
_MAX_PROBLEMS = 20
MAX_REPLICAS = 1_000_000  # the most replicas a pool can have (the scenario schema's bound)

Row = tuple[float, str, int, float]


def read_failure_trace(path: Path, name: str, source: str, pools: Container[str]) -> list[Row]:
    """Rows ``(time_s, region/pool, replicas, duration_s)`` of a failure trace CSV.

    ``name`` is how errors refer to the file (the path as written); ``pools`` holds the
    scenario's ``region/pool`` keys. ``source`` (the scenario file) is unused: a missing
    file is reported at the scenario field by :func:`sim.workload.inputs.check_inputs`."""
    problems: list[Problem] = []
    lines = csv_rows(path, name, problems)
    header = next(lines, (1, []))[1]
    if problems:
        raise ScenarioError(problems)
    if tuple(h.strip() for h in header) != TRACE_COLUMNS:
        raise ScenarioError([Problem(name, 1, "", f"header must be {','.join(TRACE_COLUMNS)}", ",".join(header))])
    rows = []
    for line, row in lines:
        if row and len(problems) < _MAX_PROBLEMS:
            parsed = _parse_row(row, name, line, pools, problems)
            if parsed is not None:
                rows.append(parsed)
    if problems:
        raise ScenarioError(problems)
    return rows


def _parse_row(row: list[str], name: str, line: int, pools: Container[str],
               problems: list[Problem]) -> Row | None:
    if len(row) != len(TRACE_COLUMNS):
        problems.append(Problem(name, line, "", f"has {len(row)} fields, expected {len(TRACE_COLUMNS)}"))
        return None
    t, region, pool, replicas, duration = (x.strip() for x in row)
    key = f"{region}/{pool}"
    try:
        values = (float(t), int(replicas), float(duration))
    except ValueError:  # also a digit string too long for int()
        problems.append(Problem(name, line, "", "time_s and duration_s must be numbers, replicas an integer",
                                ",".join(row)))
        return None
    found = len(problems)
    if key not in pools:
        problems.append(Problem(name, line, "region,pool", "no such pool in the scenario", key))
    elif not (math.isfinite(values[0]) and values[0] >= 0 and values[1] >= 1 and values[2] > 0):
        problems.append(Problem(name, line, "", "needs time_s >= 0, replicas >= 1, duration_s > 0", ",".join(row)))
    elif values[1] > MAX_REPLICAS:  # each is failed one by one: a 400-digit count never ends
        problems.append(Problem(name, line, "replicas", f"must be at most {MAX_REPLICAS:,}", replicas))
    else:
        for column, value, text in (("time_s", values[0], t), ("duration_s", values[2], duration)):
            if not value <= MAX_TRACE_S:  # also inf
                problems.append(Problem(name, line, column, f"must be at most {MAX_TRACE_S:g} s", text))
    return (values[0], key, values[1], values[2]) if len(problems) == found else None
