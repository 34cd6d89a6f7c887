"""Running points on several workers: local processes, or a Dask distributed cluster.

    with Workers(jobs=2) as workers:                       # 2 local worker processes
        outcome = workers.run(fn, points, store)
    with Workers(scheduler="tcp://host:8786") as workers:  # a Dask cluster's workers
        ...

fn(point.options, *point.inputs, **context) -> a JSON-able dict (plus "arrays", see points.py)
must be a module-level function (workers import it by name) and a pure function of its
arguments. Each result is saved by the calling process the moment it arrives; points already
saved are not run again. A point that fails is reported with its options and does not stop the
others. We schedule nothing ourselves: concurrent.futures or Dask hands out the points.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from tinyprune.experiments.points import Point, PointStore

# No numba import at the top: a worker must set its thread count before numba loads.
HOW_TO_GET_DASK = "pip install -e '.[cluster]'"


@dataclass
class Failure:
    point: Point
    error: str  # the exception and its traceback

    def describe(self) -> str:
        return f"point {self.point.name} failed; its options: {self.point.options}\n{self.error}"


@dataclass
class Outcome:
    results: dict[str, dict] = field(default_factory=dict)  # point name -> result
    failures: list[Failure] = field(default_factory=list)
    ran: int = 0  # points run now (the others were saved before)


def threads_per_worker(jobs: int, cores: int | None = None) -> int:
    """numba threads each of `jobs` workers may use so that together they fill the cores
    without fighting over them (benchmarks/contention.py shows what fighting costs)."""
    return max(1, (cores or os.cpu_count() or 1) // jobs)


def limit_threads(threads: int | None) -> None:
    """Let numba's parallel kernels use `threads` threads in this process (None: all).

    NUMBA_NUM_THREADS counts only if numba is not loaded yet; set_num_threads covers a worker
    that loaded it already (by importing the command module first). set_num_threads binds the
    calling thread only, so this runs again in the thread that runs each point."""
    if threads is None:
        return
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def _call(fn: Callable[..., dict], point: Point, context: dict, threads: int | None) -> dict:
    limit_threads(threads)
    return fn(point.options, *point.inputs, **context)


def _dask_threads(client) -> int:
    """numba threads per point so that the points a machine runs at once share its cores: the
    fewest, over the cluster's machines, of cores // task slots (worker threads) there."""
    cores = client.run(os.cpu_count)  # worker address -> cores of its machine
    slots: Counter = Counter()
    workers = client.scheduler_info()["workers"]
    for info in workers.values():
        slots[info["host"]] += info["nthreads"]
    return min(
        (max(1, cores[a] // slots[info["host"]]) for a, info in workers.items() if a in cores),
        default=1,
    )


class Workers:
    """Where points run: here, one after the other (jobs=1); in `jobs` local processes; or
    on the Dask cluster whose scheduler is at `scheduler` (an address, or a Client)."""

    def __init__(self, jobs: int = 1, scheduler=None):
        self.jobs, self.scheduler = jobs, scheduler
        self.pool: ProcessPoolExecutor | None = None
        self.client: Any = None  # a dask.distributed Client
        self.threads: int | None = None  # numba threads per point; None: all cores

    def __enter__(self) -> Workers:
        if self.scheduler is not None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise RuntimeError(
                    f"--scheduler needs dask.distributed: {HOW_TO_GET_DASK}"
                ) from None
            self.client = (
                self.scheduler if isinstance(self.scheduler, Client) else Client(self.scheduler)
            )
            self.threads = _dask_threads(self.client)
        elif self.jobs > 1:
            # Fresh processes ("spawn"): a fork would copy this process's numba and OpenMP
            # threads; each starts with its share of the cores.
            self.threads = threads_per_worker(self.jobs)
            self.pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_threads,
                initargs=(self.threads,),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:  # after Ctrl-C, drop the points not started
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        if self.client is not None and self.client is not self.scheduler:
            self.client.close()

    def _finished(self, fn, points: list[Point], context: dict) -> Iterator[tuple[Point, Future]]:
        """(point, done future) pairs in the order the points finish."""
        if self.client is not None:
            from dask.distributed import as_completed as dask_completed

            futures = {
                self.client.submit(_call, fn, p, context, self.threads, pure=False): p
                for p in points
            }
            for future in dask_completed(futures):
                yield futures[future], future
        elif self.pool is not None:
            futures = {self.pool.submit(_call, fn, p, context, self.threads): p for p in points}
            for future in as_completed(futures):
                yield futures[future], future
        else:
            for p in points:
                done: Future = Future()
                try:
                    done.set_result(_call(fn, p, context, None))
                except Exception as error:  # Ctrl-C is not an Exception: it stops the run
                    done.set_exception(error)
                yield p, done

    def run(
        self,
        fn: Callable[..., dict],
        points: list[Point],
        store: PointStore,
        context: dict | None = None,
        report: Callable[[Point, dict], None] | None = None,
    ) -> Outcome:
        """Run the points not yet in `store`, saving each as it finishes; -> every point's
        result (saved before or new) and the failures. context: keyword arguments for fn that
        do not change its result (where the data is). report(point, result): on each new one."""
        saved = {p.name: store.load(p) for p in points}
        outcome = Outcome({name: result for name, result in saved.items() if result is not None})
        todo = [p for p in points if saved[p.name] is None]
        for p, future in self._finished(fn, todo, context or {}):
            error = future.exception()
            if error is not None:
                text = "".join(traceback.format_exception(error)).rstrip()
                outcome.failures.append(Failure(p, text))
                continue
            result = future.result()
            store.save(p, result)
            outcome.results[p.name] = result
            outcome.ran += 1
            if report is not None:
                report(p, result)
        return outcome
