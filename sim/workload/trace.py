"""Trace replay: requests read from a CSV in the Azure LLM inference trace format.

A trace file has a header row naming (at least) ``TIMESTAMP``, ``ContextTokens`` and
``GeneratedTokens``. A timestamp is a date-time (``2023-11-16 18:15:46.6805900``; ISO 8601,
extra fractional digits beyond microseconds are dropped) or a plain number of seconds, the
same kind on every row. Times are taken relative to the earliest request (rows need not be
sorted; they are sorted stably), divided by the workload's ``time_scale`` and, with
``loop``, repeated back to back until the run ends. The repeat period is the trace's span
plus its mean inter-arrival gap, so the seam between two copies looks like any other gap.

Every bad row is reported with its file and line (``trace.csv:17: ContextTokens: must be a
non-negative integer (got 'x')``) through :class:`sim.errors.ScenarioError`, and so is a file
that cannot be read: missing, a folder, not UTF-8, or with a field longer than the csv
module's limit (131,072 characters). A number of seconds must lie within ``MAX_TRACE_S``
of zero, so that microsecond timestamps fit in int64 and a typo like ``1e20`` is caught.

Public: ``Trace``, ``read_trace``, ``replay_trace``, ``LOOP_RULE``; shared by every trace
reader: ``csv_rows`` (a CSV file's rows, read errors as problems) and ``MAX_TRACE_S``.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from sim.errors import Problem, ScenarioError

__all__ = ["Trace", "read_trace", "replay_trace", "COLUMNS", "LOOP_RULE", "MAX_TRACE_S", "csv_rows"]

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
LOOP_RULE = "a looped trace needs requests at two or more distinct times"
# The largest time or duration a trace may hold, in seconds (about 31,700 years): far above
# any real trace, and twice it in microseconds still fits in int64 (9.2e18).
MAX_TRACE_S = 1e12
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


def csv_rows(path: Path, name: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of every row of a CSV file (UTF-8, an optional BOM), header included.

    A file that cannot be opened or decoded, or a row the csv module cannot split, ends the
    rows with a problem appended to ``problems``, so a reader reports it like a bad row."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                for row in reader:
                    yield reader.line_num, row
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
                problems.append(Problem(name, reader.line_num, "", f"cannot be split into CSV fields: {exc}"))
    except UnicodeDecodeError:
        problems.append(Problem(name, None, "", "is not a UTF-8 text file"))
    except OSError as exc:
        problems.append(Problem(name, None, "", f"cannot be read ({exc.strerror or exc})"))


def read_trace(path: Path, name: str) -> Trace:
    """Read and check a trace file; ``name`` is how errors refer to it (the path as written)."""
    rows = _parse_rows(path, name)
    if not rows:
        raise ScenarioError([Problem(name, None, "", "trace has no requests")])
    stamps = np.array([r[0] for r in rows], dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    t_us = stamps[order] - stamps[order[0]]
    tokens = np.array([r[1:] for r in rows], dtype=np.int32)[order]
    return Trace(t_us / 1e6, tokens[:, 0].copy(), tokens[:, 1].copy())


def _parse_rows(path: Path, name: str) -> list[tuple[int, int, int]]:
    """(timestamp_us, input, output) per data row; raise every problem found at once."""
    problems: list[Problem] = []
    lines = csv_rows(path, name, problems)
    header = next(lines, (1, []))[1]
    if problems:
        raise ScenarioError(problems)
    columns = _header(header, name)
    first_kind: list[str] = []
    rows = []
    for line, row in lines:
        if not row or len(problems) >= _MAX_PROBLEMS:
            continue
        parsed = _parse_row(row, columns, name, line, first_kind, problems)
        if parsed is not None:
            rows.append(parsed)
    if problems:
        raise ScenarioError(problems)
    return rows


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
    context, generated = (_count(row[c].strip(), COLUMNS[i + 1], name, line, problems)
                          for i, c in enumerate(columns[1:]))
    return None if len(problems) > found else (stamp, context, generated)


def _timestamp(text: str, name: str, line: int, first_kind: list[str],
               problems: list[Problem]) -> int:
    """Microseconds since the epoch (a date-time) or since zero (a number of seconds)."""
    kind, value = _parse_time(text)
    if kind is None:
        problems.append(Problem(name, line, "TIMESTAMP", "must be a date-time or a number of seconds", text))
    elif first_kind and kind != first_kind[0]:
        problems.append(Problem(name, line, "TIMESTAMP", f"must be a {first_kind[0]} like the first row", text))
    elif value is None:
        problems.append(Problem(name, line, "TIMESTAMP", f"must be within {MAX_TRACE_S:g} s of zero", text))
    elif not first_kind:
        first_kind.append(kind)
    return value or 0


def _parse_time(text: str) -> tuple[str | None, int | None]:
    """(kind, microseconds); kind None if unreadable, value None if out of range."""
    try:
        seconds = float(text)
    except ValueError:
        return _parse_date_time(text)
    if not math.isfinite(seconds):
        return None, 0
    return "number of seconds", round(seconds * 1e6) if abs(seconds) <= MAX_TRACE_S else None


def _parse_date_time(text: str) -> tuple[str | None, int]:
    try:
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: an offset moves it past year 1 or 9999
        return None, 0
    return "date-time", (stamp - _EPOCH) // _US


def _count(text: str, column: str, name: str, line: int, problems: list[Problem]) -> int:
    # Ten significant digits at most: int() of a huge digit string is slow, then refused.
    if text.isdigit() and text.isascii() and len(text.lstrip("0")) <= 10 and int(text) <= _INT32_MAX:
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
