"""Atomic file writing and deterministic serialisation of results.

A file appears whole or not at all: it is written to a temporary name in the same folder
and renamed; if writing fails (a full disk, a read-only folder) the temporary file is
removed and the error raised. :func:`rewrite_json` is for a file that must change even on a
full disk (a manifest marked failed): it falls back to rewriting the file in place, which
reuses the blocks the file already holds (a file that does not exist is not created). JSON
is written with a fixed key order and floats rounded to 12 significant digits (so results
do not carry last-bit noise into diffs); CSV floats to 10 by default, or to as many as the
caller asks (a run's event tables, 15: times to the nanosecond over days).

Public: ``write_text_atomic``, ``write_json_atomic``, ``write_csv_atomic``, ``rewrite_json``,
``write_requests``, ``discard``, ``clean_numbers``, ``format_number``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_requests", "write_text_atomic", "write_json_atomic", "write_csv_atomic", "rewrite_json",
           "discard", "clean_numbers", "format_number"]


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers never see a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def discard(path: Path) -> None:
    """Remove a temporary file if it exists and can be removed (cleanup never hides an error)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def rewrite_json(path: str | Path, data: Any) -> bool:
    """Replace ``path`` with ``data`` atomically, else in place; False if neither worked."""
    try:
        write_json_atomic(path, data)
        return True
    except OSError:
        pass
    text = json.dumps(clean_numbers(data), indent=2, allow_nan=False) + "\n"
    try:
        # Over the old bytes, then cut: no new blocks if it fits in the file's own (the compact
        # form is tried when the indented one is longer). A missing file is not created.
        with open(path, "r+", encoding="utf-8") as handle:
            if len(text.encode()) > os.fstat(handle.fileno()).st_size:
                text = json.dumps(clean_numbers(data), separators=(",", ":"), allow_nan=False) + "\n"
            handle.write(text)
            handle.truncate()
        return True
    except OSError:
        return False


def clean_numbers(value: Any) -> Any:
    """Round floats to 12 significant digits and map NaN/inf to None, recursively."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.12g}")
    if isinstance(value, Mapping):
        return {str(k): clean_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_numbers(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean_numbers(value.item())
    return value


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(clean_numbers(data), indent=2, allow_nan=False) + "\n")


def format_number(value: Any, digits: int = 10) -> str:
    if isinstance(value, float) or hasattr(value, "dtype"):
        value = float(value)
        return "" if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def write_csv_atomic(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
                     digits: int = 10) -> None:
    """A CSV of ``rows`` (mappings by column name), floats to ``digits`` significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_number(row[c], digits) for c in columns])
    write_text_atomic(path, buffer.getvalue())


def write_requests(path: str | Path, log: Any) -> None:
    """Every request's outcome as compressed numpy arrays (``numpy.load`` reads it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    import numpy as np

    n = len(log.t_s)
    arrays = {name: getattr(log, name) for name in log.__dataclass_fields__
              if len(getattr(log, name)) == n}  # optional columns (sessions) only when present
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
