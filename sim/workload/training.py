"""All training jobs of a run, drawn up front as one arrival-sorted batch of arrays.

A training job is a gang of GPUs that must do an amount of *work*; how fast it goes depends
on the GPU type it lands on. Each job has a *kind*, and the batch's ``rate_table`` gives,
per kind and catalogue GPU type, the work units per second of the whole gang (0: the job
cannot run there). A job's run time on type T is ``work / rate_table[kind, T]``.

Each training workload yields its jobs on ``[0, duration)`` from one of three sources:

* ``poisson`` - Poisson arrivals at ``rate_per_h``, gang size fixed or drawn from choices,
  and work drawn from a model:

  - ``gpu_hours``: GPU-hours on the reference GPU (lognormal mean/cv, or exponential);
    work = GPU-hours x 3600 reference-GPU-seconds, rate on T = gpus x bf16(T) / bf16(ref),
    i.e. perfect linear scaling in GPU count and in peak bf16 TFLOP/s;
  - ``steps``: training steps (lognormal mean/cv), rate on T = gpus x steps/s per GPU on T;
  - ``philly``: wall-clock run time on the reference GPUs drawn from the lognormal mixture
    fitted to Microsoft Philly jobs (:mod:`sim.workload.philly_fit`), work = run time x gpus,
    rates as for ``gpu_hours``.

* ``gavel`` - the Philly-derived Gavel trace: gang = ``scale_factor_gpus``, work =
  ``total_steps``, one kind per (job type, scale factor). Gavel measured throughputs on
  V100, P100 and K80 only; the V100 figure is carried to each catalogue GPU by the ratio of
  its bf16 TFLOP/s to the V100's fp16 tensor peak (``V100_TENSOR_TFLOPS``) - a weak
  assumption (2019 models rarely reach peak on newer GPUs). A scale factor Gavel did not
  measure for a known job type is extrapolated linearly in GPUs from the nearest measured
  one below it (above it if none is below).
* ``alibaba`` - the Alibaba GPU pod list: one job per pod with ``num_gpu >= 1`` (a fractional
  single-GPU pod counts as one whole GPU), arriving at ``creation_time``, running for
  ``deletion_time - scheduled_time`` on the reference GPU; pods never scheduled or with a
  non-positive run time are skipped.

A workload's ``gpu_types`` zeroes the rates of every other type; kinds are made per
workload, so one workload's restriction never leaks into another's. ``max_jobs`` keeps a
workload's first jobs. Trace clocks are divided by ``time_scale``; run times are not.

Randomness comes from named streams: ``jobs/<name>`` for arrivals and ``jobwork/<name>`` for
gang sizes and work (split in two children, so the k-th job's size and work do not depend on
how many jobs arrive), so every placement policy sees the same jobs. Bad trace rows are
reported with file and line through :class:`sim.errors.ScenarioError`, and so are files
that cannot be read (:func:`sim.workload.trace.csv_rows`); trace times are at most
``MAX_TRACE_S``.

Public: ``JobBatch``, ``generate_jobs``, ``V100_TENSOR_TFLOPS``, ``GavelJobs``,
``read_gavel``, ``read_gavel_trace``, ``read_gavel_throughputs``, ``gavel_gang_rate``,
``AlibabaPods``, ``read_alibaba_pods``, ``catalogue_gpu_types``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from sim.errors import Problem, ScenarioError
from sim.scenario.model import (
    AlibabaTrace,
    GavelTrace,
    GpuChoice,
    GpuHoursWork,
    PhillyWork,
    PoissonJobs,
    Scenario,
    StepsWork,
    TrainingWorkload,
)
from sim.streams import Streams
from sim.workload.philly_fit import draw_philly_runtime_s
from sim.workload.service import lognormal_params
from sim.workload.trace import MAX_TRACE_S, csv_rows
from sim.world.catalogue import gpu_catalogue

__all__ = ["JobBatch", "generate_jobs", "V100_TENSOR_TFLOPS", "GavelJobs", "read_gavel", "read_gavel_trace",
           "read_gavel_throughputs", "gavel_gang_rate", "AlibabaPods", "read_alibaba_pods",
           "catalogue_gpu_types"]

# NVIDIA V100 SXM2 datasheet: 125 TFLOP/s fp16 on tensor cores (the V100 has no bf16).
V100_TENSOR_TFLOPS = 125.0
GAVEL_GPU = "v100"
GAVEL_COLUMNS = ("job_type", "total_steps", "arrival_time_s", "scale_factor_gpus")
THROUGHPUT_COLUMNS = ("gpu_type", "job_type", "scale_factor_gpus", "throughput_steps_per_s")
ALIBABA_COLUMNS = ("num_gpu", "gpu_milli", "creation_time", "deletion_time", "scheduled_time")
_MAX_PROBLEMS = 20
_INT32_MAX = int(np.iinfo(np.int32).max)


@dataclass(frozen=True)
class JobBatch:
    """Training jobs as parallel arrays, sorted by arrival time, with their rate table."""

    arrival_s: np.ndarray   # float64, sorted ascending, in [0, duration)
    workload: np.ndarray    # int16, index into scenario.training
    gpus: np.ndarray        # int32, gang size (>= 1)
    work: np.ndarray        # float64, work units of the job
    kind: np.ndarray        # int32, row of rate_table
    gpu_types: tuple[str, ...]  # catalogue GPU names = columns of rate_table
    rate_table: np.ndarray  # float64 (kinds x gpu types): gang work units/s; 0 = cannot run
    kind_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.arrival_s)

    def duration_s(self, i: int, gpu_type: str) -> float:
        """Run time of job ``i`` on ``gpu_type`` (a name or alias), inf where it cannot run."""
        rate = self.rate_table[self.kind[i], self.gpu_types.index(_canonical_name(gpu_type))]
        return float(self.work[i] / rate) if rate > 0 else math.inf

    @staticmethod
    def empty() -> JobBatch:
        types = catalogue_gpu_types()
        return JobBatch(np.empty(0), np.empty(0, np.int16), np.empty(0, np.int32), np.empty(0),
                        np.empty(0, np.int32), types, np.empty((0, len(types))), ())


@dataclass(frozen=True)
class _Jobs:
    """One workload's jobs; ``kind`` indexes its own ``rates`` rows."""

    arrival_s: np.ndarray
    gpus: np.ndarray
    work: np.ndarray
    kind: np.ndarray
    kind_names: tuple[str, ...]
    rates: np.ndarray

    def head(self, limit: int | None) -> _Jobs:
        if limit is None or limit >= len(self.arrival_s):
            return self
        return _Jobs(self.arrival_s[:limit], self.gpus[:limit], self.work[:limit],
                     self.kind[:limit], self.kind_names, self.rates)


def catalogue_gpu_types() -> tuple[str, ...]:
    """Every GPU type of the catalogue by its short name, in catalogue order, once each."""
    return tuple(dict.fromkeys(spec.name for spec in gpu_catalogue().values()))


def _canonical_name(name: str) -> str:
    spec = gpu_catalogue().get(name)
    if spec is None:
        raise KeyError(f"unknown GPU type {name!r} (valid: {', '.join(sorted(gpu_catalogue()))})")
    return spec.name


def generate_jobs(scenario: Scenario, streams: Streams, base_dir: Path,
                  source: str = "<scenario>") -> JobBatch:
    """Every training job of the run, merged and sorted by arrival (ties keep workload order).

    ``base_dir`` resolves relative trace paths; ``source`` names the scenario in errors.
    """
    types = catalogue_gpu_types()
    parts = [_workload_jobs(k, wl, scenario.duration, streams, Path(base_dir), source, types)
             for k, wl in enumerate(scenario.training)]
    return _merge(parts, types)


def _merge(parts: list[_Jobs], types: tuple[str, ...]) -> JobBatch:
    if not parts:
        return JobBatch.empty()
    offsets = np.cumsum([0] + [len(p.kind_names) for p in parts])
    arrival = np.concatenate([p.arrival_s for p in parts])
    order = np.argsort(arrival, kind="stable")
    workload = np.concatenate([np.full(len(p.arrival_s), k, np.int16) for k, p in enumerate(parts)])
    kind = np.concatenate([p.kind + offsets[k] for k, p in enumerate(parts)]).astype(np.int32)
    return JobBatch(arrival[order], workload[order],
                    np.concatenate([p.gpus for p in parts]).astype(np.int32)[order],
                    np.concatenate([p.work for p in parts]).astype(float)[order], kind[order],
                    types, np.vstack([np.empty((0, len(types)))] + [p.rates for p in parts]),
                    tuple(name for p in parts for name in p.kind_names))


def _workload_jobs(k: int, wl: TrainingWorkload, duration_s: float, streams: Streams,
                   base_dir: Path, source: str, types: tuple[str, ...]) -> _Jobs:
    where = f"training[{k}]"
    jobs = wl.jobs
    if isinstance(jobs, PoissonJobs):
        part = _poisson_jobs(where, wl, jobs, duration_s, streams, source, types)
    elif isinstance(jobs, GavelTrace):
        part = _gavel_jobs(where, wl.name, jobs, duration_s, base_dir, source, types)
    elif isinstance(jobs, AlibabaTrace):
        part = _alibaba_jobs(where, wl.name, jobs, duration_s, base_dir, source, types)
    else:
        raise TypeError(f"unknown job source {type(jobs).__name__}")
    part = part.head(wl.max_jobs)
    if wl.gpu_types is not None:
        allowed = {_gpu_name(g, source, f"{where}.gpu_types[{i}]") for i, g in enumerate(wl.gpu_types)}
        part.rates[:, [t not in allowed for t in types]] = 0.0
    return part


def _gpu_name(name: str, source: str, path: str) -> str:
    """The catalogue short name for ``name``; a ScenarioError at ``path`` if unknown."""
    spec = gpu_catalogue().get(name)
    if spec is None:
        valid = ", ".join(sorted(gpu_catalogue()))
        raise ScenarioError([Problem(source, None, path, f"unknown GPU type (valid: {valid})", name)])
    return spec.name


def _by_gang(name: str, gpus: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """One kind per distinct gang size: (sizes, kind of each job, kind names)."""
    sizes, kind = np.unique(gpus, return_inverse=True)
    return sizes, kind.astype(np.int32), tuple(f"{name}/{int(g)} GPUs" for g in sizes)


def _flops_rates(sizes: np.ndarray, reference: str, types: tuple[str, ...]) -> np.ndarray:
    """Reference-GPU-seconds per second of a gang: gpus x bf16(T) / bf16(reference)."""
    catalogue = gpu_catalogue()
    ratio = np.array([catalogue[t].bf16_tflops for t in types]) / catalogue[reference].bf16_tflops
    return sizes.astype(float)[:, None] * ratio[None, :]


# -- poisson --------------------------------------------------------------------------------
def _poisson_jobs(where: str, wl: TrainingWorkload, jobs: PoissonJobs, duration_s: float,
                  streams: Streams, source: str, types: tuple[str, ...]) -> _Jobs:
    rng = streams.get(f"jobs/{wl.name}")
    arrival = _poisson_times(rng, jobs.rate_per_h / 3600.0, duration_s, wl.max_jobs)
    # Split so that the k-th job's size and work do not depend on how many jobs there are.
    size_rng, work_rng = streams.get(f"jobwork/{wl.name}").spawn(2)
    gpus = _gang_sizes(where, jobs.gpus, len(arrival), size_rng, source)
    sizes, kind, names = _by_gang(wl.name, gpus)
    work, rates = _work_and_rates(where, jobs.work, gpus, sizes, work_rng, source, types)
    return _Jobs(arrival, gpus, work, kind, names, rates)


def _poisson_times(rng: np.random.Generator, rate_per_s: float, duration_s: float,
                   max_jobs: int | None) -> np.ndarray:
    """Arrival times in [0, duration) from exponential gaps, stopping after ``max_jobs``.

    Gaps are drawn in chunks from one stream, so a smaller ``max_jobs`` gives a prefix of
    the same arrivals and a huge rate with a small cap draws only what it keeps."""
    limit = max_jobs if max_jobs is not None else math.inf
    chunk = int(min(limit, rate_per_s * duration_s * 1.1 + 16))
    parts, t, count = [], 0.0, 0
    while t < duration_s and count < limit:
        times = t + np.cumsum(rng.exponential(1.0 / rate_per_s, chunk))
        parts.append(times)
        t, count = float(times[-1]), count + chunk
    arrival = np.concatenate(parts) if parts else np.empty(0)
    arrival = arrival[arrival < duration_s]
    return arrival[:max_jobs] if max_jobs is not None else arrival


def _gang_sizes(where: str, gpus: int | GpuChoice, n: int, rng: np.random.Generator,
                source: str) -> np.ndarray:
    if isinstance(gpus, int):
        return np.full(n, gpus, np.int32)
    weights = np.ones(len(gpus.choices)) if gpus.weights is None else np.array(gpus.weights, float)
    if len(weights) != len(gpus.choices) or weights.sum() <= 0:
        raise ScenarioError([Problem(source, None, f"{where}.jobs.gpus.weights",
                                     "must give one weight per choice, summing above zero",
                                     list(gpus.weights or []))])
    return rng.choice(np.array(gpus.choices, np.int32), size=n, p=weights / weights.sum())


def _work_and_rates(where: str, work, gpus: np.ndarray, sizes: np.ndarray,
                    rng: np.random.Generator, source: str,
                    types: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    n = len(gpus)
    if isinstance(work, GpuHoursWork):
        reference = _gpu_name(work.reference_gpu, source, f"{where}.jobs.work.reference_gpu")
        hours = (rng.exponential(work.mean, n) if work.dist == "exponential"
                 else _lognormal(work.mean, work.cv, n, rng))
        return hours * 3600.0, _flops_rates(sizes, reference, types)
    if isinstance(work, StepsWork):
        per_gpu = np.zeros(len(types))
        for name, steps_per_s in work.throughput_steps_per_s.items():
            path = f"{where}.jobs.work.throughput_steps_per_s.{name}"
            per_gpu[types.index(_gpu_name(name, source, path))] = steps_per_s
        steps = np.maximum(np.rint(_lognormal(work.mean, work.cv, n, rng)), 1.0)
        return steps, sizes.astype(float)[:, None] * per_gpu[None, :]
    if isinstance(work, PhillyWork):
        reference = _gpu_name(work.reference_gpu, source, f"{where}.jobs.work.reference_gpu")
        return draw_philly_runtime_s(n, rng) * gpus, _flops_rates(sizes, reference, types)
    raise TypeError(f"unknown work model {type(work).__name__}")


def _lognormal(mean: float, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Lognormal draws with this mean and coefficient of variation (cv 0: constant)."""
    if cv == 0:
        return np.full(n, float(mean))
    mu, sigma = lognormal_params(mean, cv)
    return rng.lognormal(mu, sigma, n)


# -- reading CSV files ----------------------------------------------------------------------
Row = TypeVar("Row")
Parser = Callable[[dict[str, str], str, int, list[Problem]], Row]


def _read_rows(path: Path, name: str, columns: tuple[str, ...], parse: Parser[Row]) -> list[tuple[int, Row]]:
    """(line, parsed value) of every data row parse accepts; every problem raised at once.

    ``parse`` returns ``None`` for a row to skip and records problems in the list it gets."""
    problems: list[Problem] = []
    lines = csv_rows(path, name, problems)
    header = next(lines, (1, []))[1]
    if problems:
        raise ScenarioError(problems)
    index = _header(header, name, columns)
    rows = []
    for line, row in lines:
        if row and len(problems) < _MAX_PROBLEMS:
            value = _parse_row(row, index, name, line, parse, problems)
            if value is not None:
                rows.append((line, value))
    if problems:
        raise ScenarioError(problems)
    return rows


def _header(header: list[str], name: str, columns: tuple[str, ...]) -> dict[str, int]:
    names = [h.strip() for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        raise ScenarioError([Problem(name, 1, c, f"missing column (header: {','.join(names)})")
                             for c in missing])
    return {c: names.index(c) for c in columns}


def _parse_row(row: list[str], index: dict[str, int], name: str, line: int, parse: Parser[Row],
               problems: list[Problem]) -> Row | None:
    if len(row) <= max(index.values()):
        problems.append(Problem(name, line, "", f"has {len(row)} fields, expected {max(index.values()) + 1}"))
        return None
    found = len(problems)
    value = parse({c: row[i].strip() for c, i in index.items()}, name, line, problems)
    return None if len(problems) > found else value


def _integer(text: str, column: str, name: str, line: int, problems: list[Problem],
             low: int = 0, high: int = _INT32_MAX) -> int:
    # Ten significant digits at most: int() of a huge digit string is slow, then refused.
    if text.isascii() and text.isdigit() and len(text.lstrip("0")) <= 10 and low <= int(text) <= high:
        return int(text)
    rule = {0: "must be a non-negative integer", 1: "must be a positive integer"}.get(low)
    if high != _INT32_MAX or rule is None:
        rule = f"must be an integer from {low} to {high}"
    problems.append(Problem(name, line, column, rule, text))
    return low


def _seconds(text: str, column: str, name: str, line: int, problems: list[Problem]) -> float:
    """A finite, non-negative number of seconds, at most ``MAX_TRACE_S``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and 0 <= value <= MAX_TRACE_S:
        return value
    rule = f"must be at most {MAX_TRACE_S:g} s" if value > MAX_TRACE_S else "must be a non-negative number of seconds"
    problems.append(Problem(name, line, column, rule, text))
    return 0.0


def _open(path_text: str, base_dir: Path, source: str, path: str) -> Path:
    file = base_dir / path_text
    if not file.is_file():
        raise ScenarioError([Problem(source, None, path, "file not found", path_text)])
    return file


# -- gavel ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GavelJobs:
    """Rows of a Gavel trace in file order; ``line`` is each row's line in the file."""

    job_type: tuple[str, ...]
    total_steps: np.ndarray      # float64
    arrival_time_s: np.ndarray   # float64, trace clock
    scale_factor: np.ndarray     # int32, gang size
    line: np.ndarray             # int64


def read_gavel_trace(path: Path, name: str) -> GavelJobs:
    """Read and check a Gavel trace; ``name`` is how errors refer to the file."""
    rows = _read_rows(path, name, GAVEL_COLUMNS, _gavel_row)
    values = [v for _, v in rows]
    return GavelJobs(tuple(v[0] for v in values), np.array([v[1] for v in values], float),
                     np.array([v[2] for v in values], float), np.array([v[3] for v in values], np.int32),
                     np.array([line for line, _ in rows], np.int64))


def _gavel_row(f: dict[str, str], name: str, line: int, problems: list[Problem]) -> tuple[str, int, float, int]:
    if not f["job_type"]:
        problems.append(Problem(name, line, "job_type", "must not be empty"))
    return (f["job_type"], _integer(f["total_steps"], "total_steps", name, line, problems, low=1),
            _seconds(f["arrival_time_s"], "arrival_time_s", name, line, problems),
            _integer(f["scale_factor_gpus"], "scale_factor_gpus", name, line, problems, low=1))


def read_gavel_throughputs(path: Path, name: str) -> dict[str, dict[str, dict[int, float]]]:
    """gpu_type -> job_type -> scale factor -> steps/s of the whole gang, measured alone."""
    table: dict[str, dict[str, dict[int, float]]] = {}
    for _, (gpu, job_type, scale, steps_per_s) in _read_rows(path, name, THROUGHPUT_COLUMNS, _throughput_row):
        table.setdefault(gpu, {}).setdefault(job_type, {})[scale] = steps_per_s
    return table


def _throughput_row(f: dict[str, str], name: str, line: int,
                    problems: list[Problem]) -> tuple[str, str, int, float]:
    try:
        rate = float(f["throughput_steps_per_s"])
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate >= 0):  # Gavel writes 0 where a job does not fit
        problems.append(Problem(name, line, "throughput_steps_per_s", "must be a non-negative number",
                                f["throughput_steps_per_s"]))
    scale = _integer(f["scale_factor_gpus"], "scale_factor_gpus", name, line, problems, low=1)
    return f["gpu_type"], f["job_type"], scale, rate


def gavel_gang_rate(measured: dict[int, float], scale: int) -> float:
    """Steps/s of a gang of ``scale`` GPUs from the scale factors Gavel measured.

    A measured scale factor is used as is; otherwise the nearest measured one below (above
    if none is below) is scaled linearly in GPUs: rate(s0) x s / s0."""
    below = [s for s in measured if s <= scale]
    s0 = max(below) if below else min(measured)
    return measured[s0] * scale / s0


def read_gavel(jobs: GavelTrace, trace_file: Path,
               throughputs_file: Path) -> tuple[GavelJobs, dict[str, dict[int, float]]]:
    """A Gavel trace and its job types' V100 throughputs (job type -> scale -> steps/s).

    Every job type of the trace needs a V100 throughput; ``jobs`` names the files in errors."""
    trace = read_gavel_trace(trace_file, jobs.path)
    table = read_gavel_throughputs(throughputs_file, jobs.throughputs_path).get(GAVEL_GPU, {})
    _check_job_types(trace, table, jobs)
    return trace, table


def _gavel_jobs(where: str, name: str, jobs: GavelTrace, duration_s: float, base_dir: Path,
                source: str, types: tuple[str, ...]) -> _Jobs:
    trace, table = read_gavel(jobs, _open(jobs.path, base_dir, source, f"{where}.jobs.path"),
                              _open(jobs.throughputs_path, base_dir, source, f"{where}.jobs.throughputs_path"))
    arrival = trace.arrival_time_s / jobs.time_scale
    order = np.argsort(arrival, kind="stable")
    order = order[arrival[order] < duration_s]
    keys = [(trace.job_type[i], int(trace.scale_factor[i])) for i in order]
    kinds = list(dict.fromkeys(keys))
    kind_of = {key: k for k, key in enumerate(kinds)}
    catalogue = gpu_catalogue()
    flops = np.array([catalogue[t].bf16_tflops for t in types]) / V100_TENSOR_TFLOPS
    rates = np.array([gavel_gang_rate(table[j], s) * flops for j, s in kinds]).reshape(len(kinds), len(types))
    return _Jobs(arrival[order], trace.scale_factor[order], trace.total_steps[order],
                 np.array([kind_of[key] for key in keys], np.int32),
                 tuple(f"{name}/{j} x{s}" for j, s in kinds), rates)


def _check_job_types(trace: GavelJobs, table: dict[str, dict[int, float]], jobs: GavelTrace) -> None:
    """Every job type needs a V100 throughput; one problem per missing type, at its first line."""
    first: dict[str, int] = {}
    for job_type, line in zip(trace.job_type, trace.line, strict=True):
        if job_type not in table:
            first.setdefault(job_type, int(line))
    if first:
        raise ScenarioError([Problem(jobs.path, line, "job_type",
                                     f"no {GAVEL_GPU} throughput in {jobs.throughputs_path}", job_type)
                             for job_type, line in list(first.items())[:_MAX_PROBLEMS]])


# -- alibaba --------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlibabaPods:
    """The GPU pods of an Alibaba pod list that ran, in file order, and what was skipped."""

    creation_s: np.ndarray  # float64, trace clock
    runtime_s: np.ndarray   # float64, deletion - scheduled, > 0
    gpus: np.ndarray        # int32, num_gpu (a fractional pod counts 1)
    fractional: int         # pods sharing one GPU (num_gpu 1, gpu_milli < 1000)
    cpu_only: int           # skipped: num_gpu 0
    never_scheduled: int    # skipped: no scheduled_time
    non_positive: int       # skipped: deletion_time <= scheduled_time


def read_alibaba_pods(path: Path, name: str) -> AlibabaPods:
    """Read and check a pod list; ``name`` is how errors refer to the file."""
    rows = [v for _, v in _read_rows(path, name, ALIBABA_COLUMNS, _pod_row)]
    gpu = [r for r in rows if r[0] >= 1]
    scheduled = [(r, s) for r in gpu if (s := r[4]) is not None]
    ran = [r for r, s in scheduled if r[3] - s > 0]
    return AlibabaPods(np.array([r[2] for r in ran], float),
                       np.array([r[3] - s for r, s in scheduled if r[3] - s > 0], float),
                       np.array([r[0] for r in ran], np.int32),
                       fractional=sum(1 for r in ran if r[0] == 1 and r[1] < 1000),
                       cpu_only=len(rows) - len(gpu),
                       never_scheduled=sum(1 for r in gpu if r[4] is None),
                       non_positive=sum(1 for r, s in scheduled if r[3] - s <= 0))


def _pod_row(f: dict[str, str], name: str, line: int,
             problems: list[Problem]) -> tuple[int, int, float, float, float | None]:
    scheduled = f["scheduled_time"]
    return (_integer(f["num_gpu"], "num_gpu", name, line, problems),
            _integer(f["gpu_milli"], "gpu_milli", name, line, problems, high=1000),
            _seconds(f["creation_time"], "creation_time", name, line, problems),
            _seconds(f["deletion_time"], "deletion_time", name, line, problems),
            _seconds(scheduled, "scheduled_time", name, line, problems) if scheduled else None)


def _alibaba_jobs(where: str, name: str, jobs: AlibabaTrace, duration_s: float, base_dir: Path,
                  source: str, types: tuple[str, ...]) -> _Jobs:
    pods = read_alibaba_pods(_open(jobs.path, base_dir, source, f"{where}.jobs.path"), jobs.path)
    reference = _gpu_name(jobs.reference_gpu, source, f"{where}.jobs.reference_gpu")
    arrival = pods.creation_s / jobs.time_scale
    order = np.argsort(arrival, kind="stable")
    order = order[arrival[order] < duration_s]
    gpus = pods.gpus[order]
    sizes, kind, names = _by_gang(name, gpus)
    return _Jobs(arrival[order], gpus, pods.runtime_s[order] * gpus, kind, names,
                 _flops_rates(sizes, reference, types))
