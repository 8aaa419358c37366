"""Cheap no-ops: a sweep or plan that has finished answers again from its folder at once.

When ``simulate.py sweep`` or ``plan`` finishes with every run done (none failed, nothing
interrupted) and its charts drawn, it records in the folder's ``done.json`` a **key** for the
command and the lines it printed. The key is a sha256 over what decides the answer: the
command, its options that change results (not ``--workers``, ``--backend``, ``--quiet``),
and the absolute path and bytes of the scenario file (and of the sweep file).

The same command again finds its key (in ``--out``, or else in the experiment folders under
``--root``), checks that ``index.csv`` lists every run as done and that every run folder
still has ``_SUCCESS``, and prints the recorded lines after a note saying that nothing ran,
without validating the scenario or loading the simulator. Anything else (an edited
scenario, another grid value or target, a removed run folder) falls through to the usual
resume, which runs what is missing, and so does a run whose ``summary.json`` changed (size
or modification time) since. As for resuming, files that the scenario reads (traces) are
not part of the key.

Public: ``Done``, ``command_key``, ``experiment_files``, ``answer_if_done``, ``record_done``, ``DONE_FILE``.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.fileio import write_json_atomic

__all__ = ["Done", "command_key", "experiment_files", "answer_if_done", "record_done", "DONE_FILE"]

DONE_FILE = "done.json"
_DONE_STATUSES = frozenset({"ok", "skipped"})


@dataclass(frozen=True)
class Done:
    """A finished experiment found for a command: its folder, how many runs it holds, the
    lines the command printed and its exit code."""

    folder: Path
    runs: int
    lines: tuple[str, ...]
    code: int


_MAX_BYTES = 1_000_000  # a scenario's size limit (sim.scenario.yaml_io.MAX_BYTES, not imported: too heavy)


def _read_bounded(path: Path) -> bytes | None:
    """The bytes of ``path`` if it can be read and holds at most ``_MAX_BYTES``, else None."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= _MAX_BYTES else None


def command_key(kind: str, options: Mapping[str, Any], files: Iterable[str | Path]) -> str | None:
    """The key of a command: ``kind``, its result-deciding ``options`` (JSON-able after
    ``str`` of paths) and the files it reads; None when a file cannot be read."""
    contents = {}
    for name in files:
        path = Path(name).resolve()
        data = _read_bounded(path)
        if data is None:  # unreadable or too long for a scenario: the usual path says so
            return None
        contents[str(path)] = hashlib.sha256(data).hexdigest()
    text = json.dumps({"kind": kind, "options": options, "files": contents}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def experiment_files(path: str | Path) -> tuple[list[Path], Path | None]:
    """The files a sweep or plan command on ``path`` reads (a scenario; or a sweep file and
    the scenario it names) and the sweep file's own ``out``, read as plain YAML without
    validation (a file that is not what it claims is the usual path's to report), by the
    at most a scenario's size limit of it (an endless file, /dev/zero, is not read to its end;
    the scenario loader is not imported: the no-op stays light)."""
    import yaml

    path = Path(path)
    raw = _read_bounded(path)
    try:
        data = yaml.safe_load(raw.decode("utf-8")) if raw is not None else None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError):  # nested 5,000 deep, 2020-02-30
        return [path], None
    if not (isinstance(data, dict) and "grid" in data and isinstance(data.get("scenario"), str)):
        return [path], None
    base = path.resolve().parent
    out = base / data["out"] if isinstance(data.get("out"), str) else None
    return [path, base / data["scenario"]], out


def answer_if_done(key: str | None, out: Path | None, root: Path, pattern: str) -> Done | None:
    """The finished experiment with ``key``, looked for in ``out``, or else in the folders
    ``root/*/<pattern>``; None when there is none."""
    if key is None:
        return None
    folders = [Path(out)] if out is not None else sorted(Path(root).glob(f"*/{pattern}"))
    for folder in folders:
        entry = _read(folder / DONE_FILE).get(key)
        if isinstance(entry, dict) and _still_done(folder, entry.get("runs")):
            return Done(folder, len(entry["runs"]), tuple(str(line) for line in entry.get("lines", [])),
                        int(entry.get("code", 0)))
    return None


def record_done(folder: Path, key: str | None, runs: Sequence[str], lines: Sequence[str], code: int = 0) -> None:
    """Record in ``folder/done.json`` that the command with ``key`` finished ``runs`` (run
    folder names), printed ``lines`` (to print again) and exited with ``code``. A folder
    that cannot be written is left as it is: the next invocation resumes the usual way."""
    if key is None:
        return
    entries = _read(folder / DONE_FILE)
    entries[key] = {"runs": {run: _signature(folder / run) for run in runs}, "lines": list(lines), "code": code}
    try:
        write_json_atomic(folder / DONE_FILE, entries)
    except OSError:
        pass


def _read(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def _signature(run_dir: Path) -> list[int] | None:
    """Size and modification time of a run's ``summary.json`` (None without ``_SUCCESS``):
    a summary edited or damaged since is read again the usual way, and reported."""
    try:
        if not (run_dir / "_SUCCESS").is_file():
            return None
        stat = (run_dir / "summary.json").stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _still_done(folder: Path, runs: Any) -> bool:
    """Every run is done in ``index.csv``, still has ``_SUCCESS`` and the same summary."""
    try:
        with open(folder / "index.csv", newline="", encoding="utf-8") as handle:
            status = {row["run"]: row["status"] for row in csv.DictReader(handle)}
    except (OSError, KeyError, csv.Error):
        return False
    return (isinstance(runs, dict) and bool(runs)
            and all(status.get(run) in _DONE_STATUSES and signature is not None
                    and _signature(folder / run) == signature for run, signature in runs.items()))
