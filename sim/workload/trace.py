"""Trace replay: requests read from a CSV in the Azure LLM inference trace format.

A trace file has a header row naming (at least) ``TIMESTAMP``, ``ContextTokens`` and
``GeneratedTokens``. A timestamp is a date-time (``2023-11-16 18:15:46.6805900``; ISO 8601,
extra fractional digits beyond microseconds are dropped) or a plain number of seconds, the
same kind on every row. Times are taken relative to the earliest request (rows need not be
sorted; they are sorted stably), divided by the workload's ``time_scale`` and, with
``loop``, repeated back to back until the run ends. The repeat period is the trace's span
plus its mean inter-arrival gap, so the seam between two copies looks like any other gap.

Every bad row is reported with its file and line (``trace.csv:17: ContextTokens: must be a
non-negative integer (got 'x')``) through :class:`sim.errors.ScenarioError`.

Public: ``Trace``, ``read_trace``, ``replay_trace``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from sim.errors import Problem, ScenarioError

__all__ = ["Trace", "read_trace", "replay_trace", "COLUMNS"]

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_MAX_PROBLEMS = 20
_EPOCH = datetime(1970, 1, 1)
_INT32_MAX = int(np.iinfo(np.int32).max)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Trace:
    """Requests of one trace file, sorted by time; times in seconds since the earliest."""

    t_s: np.ndarray            # float64
    input_tokens: np.ndarray   # int32
    output_tokens: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def span_s(self) -> float:
        return float(self.t_s[-1]) if len(self) else 0.0

    @property
    def period_s(self) -> float:
        """Span plus the mean inter-arrival gap: the length of one copy when looping."""
        n = len(self)
        return self.span_s * n / (n - 1) if n > 1 else 0.0


def read_trace(path: Path, name: str) -> Trace:
    """Read and check a trace file; ``name`` is how errors refer to it (the path as written)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            rows = list(_parse_rows(csv.reader(f), name))
    except UnicodeDecodeError:
        raise ScenarioError([Problem(name, None, "", "is not a UTF-8 text file")]) from None
    if not rows:
        raise ScenarioError([Problem(name, None, "", "trace has no requests")])
    stamps = np.array([r[0] for r in rows], dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    t_us = stamps[order] - stamps[order[0]]
    tokens = np.array([r[1:] for r in rows], dtype=np.int32)[order]
    return Trace(t_us / 1e6, tokens[:, 0].copy(), tokens[:, 1].copy())


def _parse_rows(reader, name: str):
    """Yield (timestamp_us, input, output) per data row; raise every problem found at once."""
    columns = _header(next(reader, []), name)
    problems: list[Problem] = []
    first_kind: list[str] = []
    for row in reader:
        if not row or len(problems) >= _MAX_PROBLEMS:
            continue
        parsed = _parse_row(row, columns, name, reader.line_num, first_kind, problems)
        if parsed is not None:
            yield parsed
    if problems:
        raise ScenarioError(problems)


def _header(header: list[str], name: str) -> list[int]:
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ScenarioError([Problem(name, 1, c, f"missing column (header: {','.join(names)})")
                             for c in missing])
    return [names.index(c) for c in COLUMNS]


def _parse_row(row: list[str], columns: list[int], name: str, line: int,
               first_kind: list[str], problems: list[Problem]) -> tuple[int, int, int] | None:
    if len(row) <= max(columns):
        problems.append(Problem(name, line, "", f"has {len(row)} fields, expected {max(columns) + 1}"))
        return None
    found = len(problems)
    stamp = _timestamp(row[columns[0]].strip(), name, line, first_kind, problems)
    counts = [_count(row[c].strip(), COLUMNS[i + 1], name, line, problems)
              for i, c in enumerate(columns[1:])]
    return None if len(problems) > found else (stamp, *counts)


def _timestamp(text: str, name: str, line: int, first_kind: list[str],
               problems: list[Problem]) -> int:
    """Microseconds since the epoch (a date-time) or since zero (a number of seconds)."""
    kind, value = _parse_time(text)
    if kind is None:
        problems.append(Problem(name, line, "TIMESTAMP", "must be a date-time or a number of seconds", text))
    elif first_kind and kind != first_kind[0]:
        problems.append(Problem(name, line, "TIMESTAMP", f"must be a {first_kind[0]} like the first row", text))
    elif not first_kind:
        first_kind.append(kind)
    return value


def _parse_time(text: str) -> tuple[str | None, int]:
    try:
        seconds = float(text)
        return ("number of seconds", round(seconds * 1e6)) if np.isfinite(seconds) else (None, 0)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None, 0
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return "date-time", (stamp - _EPOCH) // _US


def _count(text: str, column: str, name: str, line: int, problems: list[Problem]) -> int:
    if text.isdigit() and text.isascii() and int(text) <= _INT32_MAX:
        return int(text)
    problems.append(Problem(name, line, column, "must be a non-negative integer", text))
    return 0


def replay_trace(trace: Trace, time_scale: float, loop: bool,
                 duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times on ``[0, duration_s)`` and the trace row each one replays.

    ``loop`` needs a positive period (two or more distinct times); the caller checks it.
    """
    t = trace.t_s / time_scale
    rows = np.arange(len(trace))
    if loop:
        period = trace.period_s / time_scale
        copies = max(1, int(np.ceil(duration_s / period)))
        t = (t[None, :] + period * np.arange(copies)[:, None]).ravel()
        rows = np.tile(rows, copies)
    keep = t < duration_s
    return t[keep], rows[keep]
