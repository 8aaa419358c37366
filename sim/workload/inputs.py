"""The trace files a scenario names, read and checked before a run starts.

A scenario may name an inference request trace (``inference[i].arrival.path``), Gavel or
Alibaba job traces (``training[i].jobs.path`` and ``throughputs_path``), a copy trace
(``transfers.trace``) and a failure trace (``failures.trace``), each relative to the
scenario file's folder. :func:`check_inputs` reads every one with the reader the run uses,
so ``validate`` finds what ``run`` would, and ``run`` finds it before it creates a run
folder. A missing file or a folder is reported at the scenario field that names it
(``scenario.yaml:12: failures.trace: file not found ...``), a bad row at its file and line
(``fail.csv:3: replicas: ...``).

Reading a file here and again in the run is cheap: the 19,366-request Azure conversation
trace takes about 70 ms.

Public: ``check_inputs``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sim.errors import Problem, ScenarioError
from sim.scenario import LoadedScenario
from sim.scenario.model import AlibabaTrace, GavelTrace, TraceArrival
from sim.workload.copy_trace import read_copy_trace
from sim.workload.failure_trace import read_failure_trace
from sim.workload.trace import LOOP_RULE, read_trace
from sim.workload.training import read_alibaba_pods, read_gavel

__all__ = ["check_inputs"]

Field = tuple[Any, ...]             # a scenario path, e.g. ("failures", "trace")
Files = list[tuple[Field, str]]     # the fields naming a reader's files, and their values
Reader = Callable[..., object]      # called with one resolved Path per file


def check_inputs(loaded: LoadedScenario) -> list[Problem]:
    """Problems of every trace file the scenario names (empty: all of them read cleanly)."""
    base = Path(loaded.source).parent
    problems: list[Problem] = []
    for files, read in _readers(loaded):
        problems += _check(loaded, base, files, read)
    return list(dict.fromkeys(problems))  # a file named twice is reported once


def _readers(loaded: LoadedScenario) -> Iterator[tuple[Files, Reader]]:
    """Each group of trace files with the reader that checks it, in scenario order."""
    scenario = loaded.scenario
    for i, wl in enumerate(scenario.inference):
        if isinstance(wl.arrival, TraceArrival):
            yield [(("inference", i, "arrival", "path"), wl.arrival.path)], _request_reader(loaded, i, wl.arrival)
    for k, training in enumerate(scenario.training):
        jobs = training.jobs
        where = ("training", k, "jobs")
        if isinstance(jobs, GavelTrace):
            yield ([(where + ("path",), jobs.path), (where + ("throughputs_path",), jobs.throughputs_path)],
                   lambda trace, throughputs, jobs=jobs: read_gavel(jobs, trace, throughputs))
        elif isinstance(jobs, AlibabaTrace):
            yield [(where + ("path",), jobs.path)], lambda pods, jobs=jobs: read_alibaba_pods(pods, jobs.path)
    transfers = scenario.transfers
    if transfers is not None and transfers.trace:
        copies = transfers.trace
        yield [(("transfers", "trace"), copies)], lambda trace: read_copy_trace(trace, copies, scenario)
    failures = scenario.failures
    if failures is not None and failures.trace:
        name = failures.trace
        pools = {f"{r.name}/{p.name}" for r in scenario.regions for p in r.pools}
        yield [(("failures", "trace"), name)], lambda trace: read_failure_trace(trace, name, loaded.source, pools)


def _request_reader(loaded: LoadedScenario, i: int, arrival: TraceArrival) -> Reader:
    def read(path: Path) -> None:
        trace = read_trace(path, arrival.path)
        if arrival.loop and trace.period_s <= 0:
            raise ScenarioError([loaded.problem(("inference", i, "arrival", "loop"), LOOP_RULE, True)])
    return read


def _check(loaded: LoadedScenario, base: Path, files: Files, read: Reader) -> list[Problem]:
    """The fields whose file is missing; else the problems the reader raises."""
    missing = [p for field, text in files if (p := _not_a_file(loaded, base, field, text)) is not None]
    if missing:
        return missing
    try:
        read(*(base / text for _, text in files))
    except ScenarioError as exc:
        return exc.problems
    return []


def _not_a_file(loaded: LoadedScenario, base: Path, field: Field, text: str) -> Problem | None:
    path = base / text
    if path.is_dir():
        return loaded.problem(field, "names a folder, not a file", text)
    if not path.is_file():
        return loaded.problem(field, f"file not found (looked in {base})", text)
    return None
