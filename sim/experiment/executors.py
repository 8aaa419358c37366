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

Public: ``BACKENDS``, ``execute_tasks``, ``watch_parent``.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from sim.errors import UsageError
from sim.experiment.tasks import RunTask, describe_error, run_task

__all__ = ["BACKENDS", "execute_tasks", "watch_parent"]

BACKENDS = ("process", "dask")
# One run is one single-threaded process: a BLAS thread pool per worker would fight the
# other workers for the cores (2 workers ran no faster than 1 on 2 cores without this).
# Dask's nanny sets the same variables for its workers.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
Result = tuple[int, dict[str, Any]]
# A generator, not just an iterator: closing it early shuts the pool or cluster down.
Results = Generator[Result, None, None]


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
    if backend == "dask":
        return _dask(tasks, workers, scheduler)
    if workers == 1 or len(tasks) <= 1:
        return _serial(tasks)
    return _pool(tasks, workers)


def _serial(tasks: Sequence[RunTask]) -> Results:
    for index, task in enumerate(tasks):
        yield index, run_task(task)


def _failed(task: RunTask, exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": describe_error(exc), "metrics": {}, "path": task.out}


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


def _pool(tasks: Sequence[RunTask], workers: int) -> Results:
    context = multiprocessing.get_context("spawn")
    with _child_environment(SINGLE_THREAD_ENV):
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                                   initializer=watch_parent, initargs=(os.getpid(),))
        futures = {pool.submit(_run_in_worker, task): i for i, task in enumerate(tasks)}
    try:
        for future in as_completed(futures):
            index = futures[future]
            try:
                yield index, future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or could not unpickle
                yield index, _failed(tasks[index], exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def _run_in_worker(task: RunTask) -> dict[str, Any]:
    """``run_task`` in a pool worker, unless the worker is already orphaned."""
    if _orphaned.is_set():
        os._exit(1)
    _busy.set()
    try:
        return run_task(task)
    finally:
        _busy.clear()


def _dask(tasks: Sequence[RunTask], workers: int, scheduler: str | None) -> Results:
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
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
    return _dask_results(client, cluster, tasks, dask_completed)


def _dask_results(client, cluster, tasks: Sequence[RunTask], dask_completed) -> Results:
    try:
        # pure=False: a task's key must not dedupe two runs, and retries would re-run work.
        futures = [client.submit(run_task, task, pure=False) for task in tasks]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures):
            i = index[future.key]
            try:
                yield i, future.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                yield i, _failed(tasks[i], exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
