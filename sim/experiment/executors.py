"""Where the runs of an experiment execute: in this process, a local process pool, or Dask.

Every backend takes the same list of :class:`~sim.experiment.tasks.RunTask` and yields
``(index, result)`` pairs as runs finish, in whatever order they finish. A run's result
depends only on its task (scenario, overrides, seed), never on the backend or the number
of workers, so the same sweep gives byte-identical run folders everywhere.

- ``serial`` (``workers=1``): one run after another, in this process.
- ``process``: a ``ProcessPoolExecutor`` over the ``spawn`` start method (no state copied
  from the parent by fork), one task per run.
- ``dask``: ``dask.distributed``; a ``LocalCluster`` of ``workers`` single-threaded worker
  processes, or the existing cluster whose scheduler is at ``scheduler``
  (``tcp://host:8786``). Its workers must import ``sim`` and see the output folder.

A worker that dies turns its runs into ``failed`` results; Ctrl-C cancels what has not
started and lets the runs in flight stop. A pool worker dies with its parent: if the
parent is killed (``kill -9``), each worker notices within a second, interrupts its run
(whose manifest is marked failed) and exits, so no orphan goes on writing run folders, or
holding the parent's stdout open, after it.

A :class:`Executor` keeps its pool or cluster open across several batches (a planner that
evaluates one batch of runs per step pays the workers' start-up once); ``execute_tasks``
is one batch on a fresh executor. Any picklable module-level function can stand in for
:func:`~sim.experiment.tasks.run_task` (``fn``): it takes one task and returns a dict.

Public: ``BACKENDS``, ``Executor``, ``execute_tasks``, ``watch_parent``.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from sim.errors import UsageError
from sim.experiment.tasks import RunTask, describe_error, run_task

__all__ = ["BACKENDS", "Executor", "execute_tasks", "watch_parent"]

BACKENDS = ("process", "dask")
# One run is one single-threaded process: a BLAS thread pool per worker would fight the
# other workers for the cores (2 workers ran no faster than 1 on 2 cores without this).
# Dask's nanny sets the same variables for its workers.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
Result = tuple[int, dict[str, Any]]
# A generator, not just an iterator: closing it early shuts the pool or cluster down.
Results = Generator[Result, None, None]
TaskFn = Callable[[Any], dict[str, Any]]


def check_executor(backend: str = "process", workers: int = 1, scheduler: str | None = None) -> None:
    """Reject bad --workers/--backend/--scheduler before anything is written or run."""
    if workers < 1:
        raise UsageError(f"--workers: must be >= 1 (got {workers})")
    if backend not in BACKENDS:
        raise UsageError(f"--backend: must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if scheduler is not None and backend != "dask":
        raise UsageError("--scheduler: needs --backend dask")


def execute_tasks(tasks: Sequence[RunTask], backend: str = "process", workers: int = 1,
                  scheduler: str | None = None) -> Results:
    """Run every task on ``backend``; yield ``(task index, result)`` as each finishes."""
    check_executor(backend, workers, scheduler)
    return _one_batch(tasks, backend, workers, scheduler)


def _one_batch(tasks: Sequence[RunTask], backend: str, workers: int, scheduler: str | None) -> Results:
    # A cluster for one run is not worth starting; a pool of one worker neither.
    size = workers if backend == "dask" else max(1, min(workers, len(tasks)))
    with Executor(backend, size, scheduler) as executor:
        yield from executor.run(tasks)


class Executor:
    """Runs batches of tasks on one backend, its pool or cluster started on first use and
    shut down on ``close`` (or at the end of a ``with`` block)."""

    def __init__(self, backend: str = "process", workers: int = 1, scheduler: str | None = None):
        check_executor(backend, workers, scheduler)
        self.backend, self.workers, self.scheduler = backend, workers, scheduler
        self._pool: ProcessPoolExecutor | None = None
        self._client: Any = None
        self._cluster: Any = None

    def run(self, tasks: Sequence[Any], fn: TaskFn = run_task) -> Results:
        """Yield ``(index, result)`` for every task as it finishes; a task that raises (or a
        worker that dies) gives ``{"status": "failed", "error": ...}``."""
        if self.backend == "dask":
            return self._dask(tasks, fn)
        if self.workers == 1 or len(tasks) <= 1:
            return _serial(tasks, fn)
        return self._pooled(tasks, fn)

    def _pooled(self, tasks: Sequence[Any], fn: TaskFn) -> Results:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            with _child_environment(SINGLE_THREAD_ENV):
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                                 initializer=watch_parent, initargs=(os.getpid(),))
        pool = self._pool
        futures = {pool.submit(_run_in_worker, task, fn): i for i, task in enumerate(tasks)}
        finished = False
        try:
            for future in as_completed(futures):
                index = futures[future]
                try:
                    yield index, future.result()
                except Exception as exc:  # a worker died (BrokenProcessPool) or could not unpickle
                    yield index, _failed(tasks[index], exc)
            finished = True
        finally:
            if not finished:  # interrupted or abandoned: what has not started never will
                for future in futures:
                    future.cancel()
                self.close()

    def _dask(self, tasks: Sequence[Any], fn: TaskFn) -> Results:
        if self._client is None:
            self._client, self._cluster = _dask_client(self.workers, self.scheduler)
        from dask.distributed import as_completed as dask_completed

        finished = False
        try:
            # pure=False: a task's key must not dedupe two runs, and retries would re-run work.
            futures = [self._client.submit(fn, task, pure=False) for task in tasks]
            index = {future.key: i for i, future in enumerate(futures)}
            for future in dask_completed(futures):
                i = index[future.key]
                try:
                    yield i, future.result()
                except Exception as exc:  # KilledWorker, lost connection, ...
                    yield i, _failed(tasks[i], exc)
            finished = True
        finally:
            if not finished:
                self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serial(tasks: Sequence[Any], fn: TaskFn = run_task) -> Results:
    for index, task in enumerate(tasks):
        yield index, fn(task)


def _failed(task: Any, exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": describe_error(exc), "metrics": {}, "path": getattr(task, "out", "")}


@contextlib.contextmanager
def _child_environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` (unless the user set them) for the processes started inside."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def watch_parent(parent_pid: int, period_s: float = 0.5, grace_s: float = 5.0) -> None:
    """In a worker (its initializer): end this process once ``parent_pid`` is gone.

    SIGTERM becomes a KeyboardInterrupt in the run in progress, so its manifest is marked
    failed (SIGINT cannot serve: a shell starts background jobs with it ignored); a daemon
    thread sends it when the parent is gone, and exits outright ``grace_s`` later.

    Ctrl-C reaches every process of the terminal's foreground group: it interrupts the run
    in progress (marked failed, like SIGTERM), while an idle worker ignores it and waits
    for the parent to shut the pool down (an idle worker used to die with a traceback)."""
    signal.signal(signal.SIGTERM, _terminated)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupted)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(period_s)
        _orphaned.set()  # no further task starts
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


_orphaned = threading.Event()
_busy = threading.Event()  # a run is in progress in this worker


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("terminated: the worker's parent is gone, or SIGTERM")


def _interrupted(signum: int, frame: Any) -> None:
    if _busy.is_set():
        raise KeyboardInterrupt("interrupted (Ctrl-C)")


def _run_in_worker(task: Any, fn: TaskFn = run_task) -> dict[str, Any]:
    """``fn(task)`` in a pool worker, unless the worker is already orphaned."""
    if _orphaned.is_set():
        os._exit(1)
    _busy.set()
    try:
        return fn(task)
    finally:
        _busy.clear()


def _dask_client(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise UsageError(f"--backend dask: needs dask[distributed] (pip install -r requirements.txt): {exc}") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        client = Client(cluster if cluster is not None else scheduler)
    except (OSError, ValueError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise UsageError(f"--scheduler: cannot connect to {scheduler!r} ({exc})") from None
    return client, cluster
