"""npconv/fast/workers.py: the fast tier's one thread pool.

What is proved: `run` returns every task's result in task order, whatever the thread count;
a slow thread does not keep the tasks it has not started (the others take them); a task's
exception reaches the caller; a task that itself calls `run` does not deadlock the pool; and
the pool's idle workers sleep instead of spinning (they use no CPU time between calls); and a
worker that wakes on a CPU the call already uses steps aside to a free one, keeping its affinity
mask (and the mask a user narrowed)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npconv.fast import workers


@given(count=st.integers(0, 40), threads=st.integers(1, 5))
def test_every_task_runs_once_and_results_come_in_task_order(count, threads):
    ran = []
    lock = threading.Lock()

    def task(i):
        with lock:
            ran.append(i)
        return i * i

    assert workers.run(task, count, threads) == [i * i for i in range(count)]
    assert sorted(ran) == list(range(count))


def test_a_parked_thread_leaves_the_tasks_it_has_not_started_to_the_others():
    """Task 0 holds its thread until every other task has run: with a static split its thread
    would own half of them and this would never finish; with the shared counter the other
    thread takes them all."""
    others_done = threading.Event()
    threads_of, finished, lock = {}, [], threading.Lock()

    def task(i):
        threads_of[i] = threading.get_ident()
        if i == 0:
            assert others_done.wait(timeout=60), "the other tasks waited for the parked thread"
            return i
        with lock:
            finished.append(i)
            if len(finished) == 7:
                others_done.set()
        return i

    assert workers.run(task, 8, 2) == list(range(8))
    assert threads_of[0] not in {threads_of[i] for i in range(1, 8)}


def test_a_task_exception_reaches_the_caller():
    def task(i):
        if i == 3:
            raise ValueError("task 3 failed")
        return i

    with pytest.raises(ValueError, match="task 3 failed"):
        workers.run(task, 8, 2)
    assert workers.run(lambda i: i, 4, 2) == [0, 1, 2, 3]   # the pool still works


def test_a_task_may_call_run_itself():
    assert workers.run(lambda i: sum(workers.run(lambda j: i * j, 3, 2)), 4, 2) == [0, 3, 6, 9]


def test_idle_workers_sleep():
    """After a call, the pool's workers use no CPU time: they wait on a lock, they do not spin
    (the spinning OpenMP workers this pool replaces took a core from PyTorch's next call)."""
    workers.run(lambda i: sum(range(10_000)), 8, 2)
    before = time.thread_time(), time.process_time()
    time.sleep(0.3)
    used = time.process_time() - before[1] - (time.thread_time() - before[0])  # CPU of the other threads
    assert used < 0.05, f"the pool's idle threads used {used:.3f} s of CPU in 0.3 s"


def _in_a_thread(fn):
    """fn() on a fresh thread (affinity changes stay with that thread); returns its result."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _settle_on(cpu, allowed):
    """Move this thread to `cpu` and give it back its mask `allowed`: it stays there for now."""
    os.sched_setaffinity(0, {cpu})
    os.sched_setaffinity(0, allowed)


needs_two_cpus = pytest.mark.skipif(
    workers._current_cpu() is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux's sched_getcpu and at least two CPUs this process may use")


class _Scheduler:
    """Linux's side of `_step_aside`, as it sees it: the CPU the thread is on, its affinity
    mask, and every mask it sets (a mask without the thread's CPU moves it into the mask at
    once, as Linux does). A real thread with every CPU allowed may be moved by the real
    scheduler between any two lines, most of all while the suite's other worker keeps the
    other core busy: a test that reads where it is after the call fails then, whatever
    `_step_aside` decided (a December 2026 CI-like run did). These tests check the decisions."""

    def __init__(self, cpu, allowed):
        self.cpu, self.mask, self.masks_set = cpu, set(allowed), []

    def install(self, monkeypatch):
        monkeypatch.setattr(workers, "_current_cpu", lambda: self.cpu)
        monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(self.mask))
        monkeypatch.setattr(workers.os, "sched_setaffinity", self.set_mask)

    def set_mask(self, pid, mask):
        self.masks_set.append(set(mask))
        self.mask = set(mask)
        if self.cpu not in self.mask:
            self.cpu = min(self.mask)


def test_a_worker_on_a_taken_cpu_steps_aside_and_keeps_its_mask(monkeypatch):
    """The nudge of `_step_aside`: a thread on a CPU another thread of the call is on narrows
    its mask to the free CPUs (which moves it at once), then sets its own mask back (not a
    pin), and records where it now is."""
    scheduler = _Scheduler(cpu=0, allowed={0, 1, 2})
    scheduler.install(monkeypatch)
    taken = {0}
    workers._step_aside(taken, threading.Lock())
    assert scheduler.masks_set == [{1, 2}, {0, 1, 2}]
    assert scheduler.cpu == 1 and scheduler.mask == {0, 1, 2}
    assert taken == {0, 1}


def test_a_worker_stays_where_it_is_when_no_cpu_is_free_or_its_own_is_free(monkeypatch):
    scheduler = _Scheduler(cpu=0, allowed={0, 1})
    scheduler.install(monkeypatch)
    every = {0, 1}
    workers._step_aside(every, threading.Lock())            # all taken: nowhere to go
    assert scheduler.masks_set == [] and every == {0, 1}
    other = set()
    workers._step_aside(other, threading.Lock())            # its CPU is free: it stays, and takes it
    assert scheduler.masks_set == [] and other == {0}


@needs_two_cpus
def test_stepping_aside_on_linux_keeps_the_threads_mask():
    """The same on the real scheduler, with what it cannot undo: wherever the thread ends up
    (the scheduler may move it back at once), its mask is the one it had and the process's is
    untouched."""

    def scenario():
        allowed = os.sched_getaffinity(0)
        here = min(allowed)
        _settle_on(here, allowed)
        taken = {here}
        workers._step_aside(taken, threading.Lock())
        return os.sched_getaffinity(0), allowed, taken, here

    before = os.sched_getaffinity(0)
    mask, allowed, taken, here = _in_a_thread(scenario)
    assert mask == allowed
    assert here in taken and taken <= allowed
    assert os.sched_getaffinity(0) == before      # the mask is the moving thread's own, not the process's


@needs_two_cpus
def test_a_mask_the_user_narrowed_to_one_cpu_is_kept():
    def scenario():
        here = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {here})      # the user's choice for this thread
        workers._step_aside({here}, threading.Lock())
        return workers._current_cpu() == here, os.sched_getaffinity(0) == {here}

    assert _in_a_thread(scenario) == (True, True)
