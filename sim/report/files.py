"""Result folders as a report sees them: which kind a folder is, and its files as plain data.

A *run* folder holds ``summary.json``, ``manifest.json`` and ``timeseries.csv``; a
*comparison* folder ``comparison.json``; a *sweep* folder ``index.csv``; an *uncertainty*
study ``uncertainty_report.json``. Anything else is a
:class:`~sim.errors.UsageError` (exit code 2) that names the files looked for. Optional
files (``jobs.csv``, ``transfers.csv``, ...) read as empty when absent, so a chart that needs
them is skipped rather than failing.

A result file that cannot be parsed (not UTF-8, a field too long for CSV, a missing column,
JSON nested too deep or holding a 5,000-digit number) is a UsageError naming it
(:func:`reading`), never a traceback.

Public: ``RUN_FILES``, ``folder_kind``, ``read_json``, ``read_rows``, ``has_columns``, ``reading``.
"""
from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.errors import UsageError

__all__ = ["RUN_FILES", "folder_kind", "read_json", "read_rows", "has_columns", "reading"]

RUN_FILES = ("summary.json", "manifest.json", "timeseries.csv")


def folder_kind(folder: Path) -> str:
    """``"run"``, ``"comparison"``, ``"sweep"``, ``"uncertainty"`` or ``"calendar"``, judged by the files
    ``folder`` holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    present = [name for name in RUN_FILES if (folder / name).is_file()]
    if len(present) == len(RUN_FILES):
        return "run"
    if (folder / "comparison.json").is_file():
        return "comparison"
    if (folder / "index.csv").is_file():
        return "sweep"
    if (folder / "uncertainty_report.json").is_file():
        return "uncertainty"
    if (folder / "plan_calendar.json").is_file():
        return "calendar"
    if present:
        missing = ", ".join(n for n in RUN_FILES if n not in present)
        raise UsageError(f"{folder}: incomplete run folder: missing {missing} (did the run finish?)")
    raise UsageError(f"{folder}: not a result folder: expected summary.json, manifest.json and "
                     "timeseries.csv (a run), comparison.json (a comparison), index.csv (a sweep), "
                     "uncertainty_report.json (an uncertainty study) or plan_calendar.json (a build plan)")


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn what a damaged result file raises while it is parsed into a UsageError naming it."""
    try:
        yield
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except KeyError as exc:
        raise UsageError(f"{path}: missing column {exc}") from None
    except (csv.Error, ValueError, RecursionError, IndexError) as exc:
        raise UsageError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None


def read_json(path: Path) -> dict[str, Any]:
    with reading(path):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object (got {type(data).__name__})")
    return data


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of strings; ``[]`` when the file is absent."""
    if not Path(path).is_file():
        return []
    with reading(path), open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def has_columns(rows: list[dict[str, str]], *columns: str) -> bool:
    """True when there is at least one row and every row has each of ``columns``."""
    return bool(rows) and all(c in rows[0] for c in columns)
