"""The fast tier's own thread pool: independent tasks, taken from a shared counter.

    results = run(task, count, threads)      # [task(0), task(1), ..., task(count - 1)]

The standard convolution hands it its blocks of output rows, `gemm.matmul` its blocks of a
product's output (the depthwise kernel is a Numba `prange` loop, which measured faster on its
small tasks). The calling thread and `threads - 1` workers of a `concurrent.futures` pool
each take the next task number from one counter until none is left, so:

* a thread that the OS parks (another process's work, PyTorch's OpenMP workers spinning after
  its last call) holds up only the task it is on; the others take the rest;
* idle workers sleep on a lock, they do not spin: PyTorch's next call gets the cores back;
* OpenBLAS's own pool is not used: BLAS runs at one thread inside each task (`gemm`);
* the kernels release the GIL (Numba's `nogil=True`; NumPy releases it inside BLAS), so the
  tasks run in parallel.

Each task writes its own part of the output and returns its own counts; `run` returns them in
task order, so the caller's sums do not depend on which thread ran what. A task run from a
worker of this pool runs its own `run` calls on its own thread (no nesting, no deadlock).
When a task raises, the threads stop taking tasks, and the caller raises the exception once
every thread that took one has finished it.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading

_pools: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_lock = threading.Lock()
_inside = threading.local()


def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    with _lock:
        if workers not in _pools:
            _pools[workers] = concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix="npconv", initializer=_mark_worker)
        return _pools[workers]


def _mark_worker() -> None:
    _inside.worker = True


def run(task, count: int, threads: int) -> list:
    """[task(i) for i in range(count)], on up to `threads` threads (the caller's included)."""
    threads = max(1, min(int(threads), count))
    if threads == 1 or getattr(_inside, "worker", False):
        return [task(i) for i in range(count)]
    results = [None] * count
    numbers = itertools.count()
    take = threading.Lock()
    failed = []

    def work():
        while not failed:
            with take:
                i = next(numbers)
            if i >= count:
                return
            try:
                results[i] = task(i)
            except BaseException:
                failed.append(i)         # the other threads stop after their current task
                raise

    helpers = [_pool(threads - 1).submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            if not helper.cancel():      # a helper that has not started has nothing left to do
                helper.result()
    return results
