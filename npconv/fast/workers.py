"""The fast tier's own thread pool: independent tasks, taken from a shared counter.

    results = run(task, count, threads)      # [task(0), task(1), ..., task(count - 1)]

Where Numba kernels cannot call BLAS (`gemm.on_numba()`: NumPy's BLAS has no 64-bit cblas
gemm, or the process was forked after Numba's OpenMP pool started), the standard convolution
hands it its blocks of output rows and `gemm.matmul` its blocks of a product's output;
otherwise those run as Numba `prange` loops on the OpenMP pool shared with PyTorch
(npconv/_threads.py), which measured faster beside PyTorch (bench/README.md). The calling thread and `threads - 1` workers of a `concurrent.futures` pool
each take the next task number from one counter until none is left, so:

* a thread that the OS parks (another process's work, PyTorch's OpenMP workers spinning after
  its last call) holds up only the task it is on; the others take the rest;
* idle workers sleep on a lock, they do not spin: PyTorch's next call gets the cores back;
* a worker that wakes up on a CPU another thread of the same call is on steps aside to a free
  one (`_step_aside`). Linux wakes a sleeping thread on its waker's CPU when the other CPUs
  look busy, and right after a PyTorch call they are: PyTorch's OpenMP workers spin there for
  about 9 ms (measured on two cores). The worker then shared the caller's CPU while the
  other ran the spin loop, and two threads took as long as one (bench/README.md);
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
import ctypes
import itertools
import os
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


def _forget_pools() -> None:
    """In a forked child: the parent's pools have no threads here; new ones start on demand."""
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _cpu_finder():
    """glibc's sched_getcpu (the CPU the calling thread runs on), or None where there is none."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        finder = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    finder.restype = ctypes.c_int
    finder.argtypes = []
    return finder


_sched_getcpu = _cpu_finder()


def _current_cpu() -> int | None:
    """The CPU the calling thread is on now, or None where that cannot be known."""
    cpu = _sched_getcpu() if _sched_getcpu is not None else -1
    return cpu if cpu >= 0 else None


def _step_aside(taken: set, lock: threading.Lock) -> None:
    """Move this thread off a CPU in `taken` (the CPUs of this call's other threads) when it
    is on one and another CPU it may use is not taken; then record its CPU in `taken`.

    Narrowing the thread's affinity mask migrates it at once; restoring the mask right after
    leaves it where it now is, free to move again. So this is a nudge, not a pin: under a
    competing load the scheduler may still move it anywhere the user's mask allows."""
    cpu = _current_cpu()
    if cpu is None:
        return
    with lock:
        crowded = cpu in taken
        if not crowded:
            taken.add(cpu)
    if not crowded:
        return
    try:
        allowed = os.sched_getaffinity(0)
        with lock:
            free = allowed - taken
        if not free:
            return
        os.sched_setaffinity(0, free)            # moves this thread now...
        os.sched_setaffinity(0, allowed)         # ...and frees it again where it now is
    except OSError:      # a mask the user or a container forbids changing: stay put
        return
    cpu = _current_cpu()
    with lock:
        taken.add(cpu)


def run(task, count: int, threads: int) -> list:
    """[task(i) for i in range(count)], on up to `threads` threads (the caller's included)."""
    threads = max(1, min(int(threads), count))
    if threads == 1 or getattr(_inside, "worker", False):
        return [task(i) for i in range(count)]
    results = [None] * count
    numbers = itertools.count()
    take = threading.Lock()
    failed = []
    taken = {_current_cpu()}

    def assist():
        _step_aside(taken, take)
        work()

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

    helpers = [_pool(threads - 1).submit(assist) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            if not helper.cancel():      # a helper that has not started has nothing left to do
                helper.result()
    return results
