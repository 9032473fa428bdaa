"""The fast engine's thread pool in a plain process (npconv/_threads.py, bench/plain.py).

Importing npconv starts Numba's OpenMP layer on the process's one OpenMP runtime, PyTorch's,
on Linux (elsewhere it asks for TBB, then workqueue), unless the user chose a layer; these run
in fresh interpreters, since the layer is a process-wide choice that cannot change once
Numba's pool has started."""

import functools
import os
import subprocess
import sys

import pytest

PROBE = """
import numpy as np, numba, npconv
y = npconv.depthwise_conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32), padding=1, engine="fast")
assert float(y[0, 0, 2, 2]) == 9.0 and float(y[0, 0, 0, 0]) == 4.0
print(numba.threading_layer(), " ".join(numba.config.THREADING_LAYER_PRIORITY))
"""


# Numba's own pool started by a parallel function, without npconv
START_NUMBA = ("import numba, numpy as np\n@numba.njit(parallel=True)\ndef f(a):\n    for i in numba.prange(a.size):\n"
               "        a[i] = i\nf(np.zeros(4))\n")


def _run(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter whose NUMBA_THREADING_* settings are only `env_extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")} | env_extra
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


def _layer(env_extra: dict, before: str = "") -> tuple[str, str]:
    done = _run(before + PROBE, env_extra)
    assert done.returncode == 0, done.stderr[-2000:]
    layer, priority = done.stdout.split(maxsplit=1)
    return layer, priority.strip()


@functools.cache   # one interpreter per layer and xdist worker
def _available(layer: str) -> bool:
    return _run(START_NUMBA, {"NUMBA_THREADING_LAYER": layer}).returncode == 0


def test_npconv_puts_its_layer_first():
    from npconv import _threads

    layer, priority = _layer({})
    assert priority == " ".join(_threads.PRIORITY)
    first = next(name for name in _threads.PRIORITY if _available(name))
    assert layer == first


# One pool: the OS threads that run a Numba parallel region are PyTorch's OpenMP workers (the
# threads its first two-thread call started). With two OpenMP runtimes, Numba's region would
# run on a worker of its own.
ONE_POOL = """
import ctypes, os
import numpy as np
FIRST
from numba import njit, prange
os.sched_setaffinity(0, range(os.cpu_count()))
gettid = ctypes.CDLL(None).gettid
gettid.restype, gettid.argtypes = ctypes.c_int, []
@njit(parallel=True)
def who(tids):
    for i in prange(tids.size):
        tids[i] = gettid()
numba.set_num_threads(1)
who(np.zeros(2, np.int64))          # compiled before the threads are counted (compiling starts one)
npconv.depthwise_conv2d(np.ones((1, 8, 8, 8), np.float32), np.ones((8, 1, 3, 3), np.float32), engine="fast")
threads = lambda: {int(t) for t in os.listdir("/proc/self/task")}
before = threads()
torch.set_num_threads(2)
torch.nn.functional.conv2d(torch.ones(1, 64, 32, 32), torch.ones(64, 1, 3, 3), groups=64)
torch_workers = threads() - before
numba.set_num_threads(2)
tids = np.zeros(2, np.int64)
who(tids)
numba_workers = set(tids.tolist()) - {gettid()}
print(numba.threading_layer(), int(bool(torch_workers)), int(bool(numba_workers) and numba_workers <= torch_workers),
      len(threads() - before - torch_workers), torch.get_num_threads())
"""


def _shared_runtime_expected() -> bool:
    from npconv import _threads

    return _threads.SHARED and _available("omp")


@pytest.mark.parametrize("first", ["torch", "npconv"])
def test_numba_and_pytorch_share_one_openmp_pool(first):
    """Whichever is imported first, Numba's parallel regions (npconv's depthwise layers, its
    split products) run on the worker PyTorch's OpenMP pool started, and no other starts;
    importing npconv leaves PyTorch's thread count as it was."""
    pytest.importorskip("torch")
    if not _shared_runtime_expected():
        pytest.skip("npconv shares the OpenMP runtime on Linux with Numba's OpenMP layer only")
    # torch first: Numba's layer starts at `import npconv` and sets the shared runtime's default
    # thread count (the OpenMP ICV PyTorch's parallel regions read), to 2 here; npconv puts
    # PyTorch's 1 back (npconv/_threads.py)
    order = ("import torch\ntorch.set_num_threads(1)\nimport npconv, numba\n"
             "assert ctypes.CDLL(npconv._threads.runtime).omp_get_max_threads() == 1"
             if first == "torch" else "import npconv, numba, torch")
    done = _run(ONE_POOL.replace("FIRST", order), {})
    assert done.returncode == 0, done.stderr[-2000:]
    layer, torch_started_workers, numba_ran_on_them, new_threads, torch_threads = done.stdout.split()
    assert layer == "omp"
    assert torch_started_workers == "1"
    assert numba_ran_on_them == "1", "Numba's parallel region ran on a thread PyTorch's OpenMP pool did not start"
    assert new_threads == "0", f"{new_threads} threads started after PyTorch's: a second pool"
    assert torch_threads == "2"


FORK = """
import os, numpy as np, numba, npconv
from npconv.fast import gemm
numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
gemm.MIN_MACS = 0
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
dw = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
pw = rng.standard_normal((40, 16, 1, 1)).astype(np.float32)
full = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
def layers():
    y = npconv.depthwise_conv2d(x, dw, padding=1, engine="fast")
    return y, npconv.pointwise_conv2d(y, pw, engine="fast"), npconv.conv2d(x, full, padding=1, engine="fast")
parent = layers()
pid = os.fork()
if pid == 0:
    from npconv import _threads
    from npconv.oracle.tolerance import bound_from_magnitude
    child = layers()
    same = np.array_equal(parent[0], child[0]) and np.array_equal(parent[1], child[1])
    # the standard kernel's blocks sum their KW products by BLAS (parent) or by an add (child)
    as64 = lambda a: a.astype(np.float64)
    exact = npconv.conv2d(as64(x), as64(full), padding=1)
    magnitude = npconv.conv2d(np.abs(as64(x)), np.abs(as64(full)), padding=1)
    within = all((np.abs(y - exact) <= bound_from_magnitude(magnitude, 16 * 9, np.float32)).all() for y in (parent[2], child[2]))
    os._exit(0 if same and within and _threads.forked() == (numba.threading_layer() == "omp") else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_the_fast_engine_runs_in_a_forked_child():
    """GNU OpenMP does not survive a fork, and Numba terminates a child that enters its
    OpenMP pool; npconv's fast kernels run their serial forms there instead, or on npconv's
    own pool: the depthwise and pointwise results are the same bits (the depthwise kernel's
    sums do not depend on the split, each product's output is one BLAS inner product either
    way), the standard kernel's within the rounding bound of the float64 reference in both."""
    done = _run(FORK, {})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"], done.stderr[-2000:]


@pytest.mark.parametrize("how", ["NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "config"])
def test_a_layer_the_user_chose_is_kept(how):
    if how == "config":
        layer, priority = _layer({}, before="import numba\nnumba.config.THREADING_LAYER = 'workqueue'\n")
        assert (layer, priority) == ("workqueue", "tbb omp workqueue")   # Numba's own priority
    elif how == "NUMBA_THREADING_LAYER":
        assert _layer({how: "workqueue"}) == ("workqueue", "tbb omp workqueue")
    else:
        assert _layer({how: "workqueue omp tbb"}) == ("workqueue", "workqueue omp tbb")


def test_a_pool_already_running_is_left_alone():
    layer, priority = _layer({}, before=START_NUMBA + "started = numba.threading_layer()\n")
    assert priority == "tbb omp workqueue"  # Numba's own default, untouched
