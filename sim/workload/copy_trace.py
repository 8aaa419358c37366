"""Copy traces: bulk copies between regions read from a CSV, checked against the scenario.

A copy trace (``transfers.trace``) has the header ``time_s,src,dst,size_gb,priority,dataset``
(columns in any order; ``priority`` and ``dataset`` may be left out); each row starts a copy
of ``size_gb`` GB (10^9 bytes) from ``src`` to ``dst`` (a region or a ``region/host``) at
``time_s``, in priority class ``priority`` (an integer, default 0), of the dataset
``dataset`` (may be empty: plain bytes). A copy of a dataset obeys its residency rule: a row sending it where
a hard rule forbids is an error. The engine (:mod:`sim.engine.copies`) starts the copies;
this module only reads them.

Every bad row is reported with its file and line (``copies.csv:3: dst: unknown region (got
'zz')``), up to 20 at once, through :class:`sim.errors.ScenarioError`.

Public: ``COPY_COLUMNS``, ``CopyRow``, ``read_copy_trace``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from sim.errors import Problem, ScenarioError
from sim.scenario.checks import copy_endpoints, residency_allows
from sim.scenario.model import Scenario
from sim.workload.trace import MAX_TRACE_S, csv_rows

__all__ = ["COPY_COLUMNS", "CopyRow", "read_copy_trace"]

COPY_COLUMNS = ("time_s", "src", "dst", "size_gb", "priority", "dataset")
_REQUIRED = COPY_COLUMNS[:4]
_DEFAULTS = {"priority": "0", "dataset": ""}
_MAX_PROBLEMS = 20


class CopyRow(NamedTuple):
    time_s: float
    src: str
    dst: str
    size_gb: float
    priority: int
    dataset: str | None
    label: str = "copy:trace"  # transfers.csv names a copy of no dataset by this


def read_copy_trace(path: Path, name: str, scenario: Scenario) -> list[CopyRow]:
    """The rows of a copy trace CSV, in file order (``name``: how errors refer to the file)."""
    problems: list[Problem] = []
    lines = csv_rows(path, name, problems)
    header = [h.strip() for h in next(lines, (1, []))[1]]
    if problems:
        raise ScenarioError(problems)
    if (len(set(header)) != len(header) or not set(_REQUIRED) <= set(header)
            or not set(header) <= set(COPY_COLUMNS)):
        raise ScenarioError([Problem(name, 1, "", f"header must be {','.join(COPY_COLUMNS)} (in any order; "
                                     "priority and dataset may be left out)", ",".join(header))])
    rows = []
    for line, row in lines:
        if row and len(problems) < _MAX_PROBLEMS:
            parsed = _parse_row(header, row, name, line, scenario, problems)
            if parsed is not None:
                rows.append(parsed)
    if problems:
        raise ScenarioError(problems)
    return rows


def _parse_row(header: list[str], row: list[str], name: str, line: int, scenario: Scenario,
               problems: list[Problem]) -> CopyRow | None:
    if len(row) != len(header):
        problems.append(Problem(name, line, "", f"has {len(row)} fields, expected {len(header)}"))
        return None
    fields = {**_DEFAULTS, **{column: x.strip() for column, x in zip(header, row, strict=True)}}
    t, src, dst, size, priority, dataset = (fields[c] for c in COPY_COLUMNS)
    try:
        values = (float(t), float(size), int(priority))
    except ValueError:
        problems.append(Problem(name, line, "", "time_s and size_gb must be numbers, priority an integer",
                                ",".join(row)))
        return None
    found = len(problems)
    places = copy_endpoints(scenario)
    for column, place in (("src", src), ("dst", dst)):
        if place not in places:
            problems.append(Problem(name, line, column, f"unknown region or region/host (known: "
                                    f"{', '.join(places)})", place))
    if not (math.isfinite(values[0]) and 0 <= values[0] <= MAX_TRACE_S):
        problems.append(Problem(name, line, "time_s", f"must be between 0 and {MAX_TRACE_S:g} s", t))
    if not (math.isfinite(values[1]) and values[1] > 0):
        problems.append(Problem(name, line, "size_gb", "must be a number > 0", size))
    _check_dataset(dataset, dst, scenario, (name, line), problems)
    if len(problems) > found:
        return None
    return CopyRow(values[0], src, dst, values[1], values[2], dataset or None)


def _check_dataset(dataset: str, dst: str, scenario: Scenario, where: tuple[str, int],
                   problems: list[Problem]) -> None:
    if not dataset:
        return
    known = {d.name: d for d in scenario.datasets}
    if dataset not in known:
        problems.append(Problem(*where, "dataset", f"unknown dataset (known: {', '.join(known) or 'none'})",
                                dataset))
        return
    rule = known[dataset].residency
    region = dst.partition("/")[0]
    if rule is not None and rule.mode == "hard" and not residency_allows(scenario, known[dataset], region):
        problems.append(Problem(*where, "dst", f"dataset {dataset!r} may not be stored there (hard residency "
                                "rule)", dst))
