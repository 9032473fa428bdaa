"""Numba's threading layer for the fast engine: the process's one OpenMP runtime, chosen at import.

A process that imports torch and npconv holds several thread pools: PyTorch's OpenMP pool,
Numba's, OpenBLAS's (NumPy's GEMMs; the fast tier runs BLAS at one thread inside its own
blocks, npconv/fast/gemm.py) and npconv's own (npconv/fast/workers.py). On a machine with few
cores they get in each other's way: after each call PyTorch's OpenMP workers spin for about
9 ms waiting for more work, and a pool that sleeps meanwhile must be woken (20-120 us here)
and then shares a core with a spinning worker (bench/README.md). The environment variables
that tame the spinning (OMP_WAIT_POLICY=PASSIVE, ...) must be set before the libraries load,
which a library cannot ask of its users, and they slow PyTorch down. With the depthwise
layers on Numba's TBB layer and the products on npconv's own pool, MobileNetV1 on the fast
engine took 1.22-1.29x PyTorch's time at two threads in a plain process; on PyTorch's OpenMP
pool, 0.93 (bench/results/plain.md, December 2026).

So npconv puts Numba's pool on PyTorch's pool: one OpenMP runtime for the process.
On Linux, `configure` loads the GNU OpenMP runtime to share into the process's global symbol
scope before Numba's OpenMP layer loads, so that the layer's calls bind to it:

* the libgomp already loaded (PyTorch's, when torch was imported first; PyTorch's own
  wheels already put it in the global scope, through libtorch_global_deps), else
* the one PyTorch's installation ships (found without importing torch; torch, imported
  later, then finds it loaded), else
* the system's (`ctypes.util.find_library("gomp")`);

then starts Numba's layer with the priority omp, tbb, workqueue, and puts back the two
settings Numba's start changes in that runtime, the default thread count and the nesting
level, so that `torch.get_num_threads()` is what it was. Right after a PyTorch call the
runtime's workers are still spinning, and npconv's next parallel region (a depthwise layer,
the blocks of a product) is taken by them in microseconds instead of competing with them for
the cores; PyTorch's next call finds the same workers spinning after npconv's.

GNU OpenMP does not survive a fork (a child has none of the parent's threads, and Numba
terminates a child that enters its OpenMP pool): in a process forked after the layer started,
`forked()` is True, and the fast tier runs the depthwise kernel's serial form and the
products' blocks on its own pool (npconv/fast/workers.py) instead.

Elsewhere (macOS, Windows: other OpenMP runtimes) the priority is tbb, workqueue, omp, as it
was before: pools that do not spin (TBB's work stealing, Numba's own workqueue). On Linux TBB
is the fallback where Numba's OpenMP layer does not load (no libgomp).

The choice is the user's when they made one: nothing changes when NUMBA_THREADING_LAYER or
NUMBA_THREADING_LAYER_PRIORITY is set, when `numba.config.THREADING_LAYER` was assigned, or
when Numba's layer has already started (it cannot change after that).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import sys

SHARED = sys.platform.startswith("linux")
PRIORITY = ["omp", "tbb", "workqueue"] if SHARED else ["tbb", "workqueue", "omp"]

_forked = False
runtime: str | None = None     # the path of the OpenMP runtime shared with PyTorch, once loaded


def configure() -> bool:
    """Put PRIORITY into numba.config unless the user chose a layer or one is running, and
    (Linux) start Numba's layer on the shared OpenMP runtime; True when it did."""
    import numba
    from numba.np.ufunc import parallel

    if os.environ.get("NUMBA_THREADING_LAYER") or os.environ.get("NUMBA_THREADING_LAYER_PRIORITY"):
        return False
    if str(numba.config.THREADING_LAYER).lower() != "default" or parallel._is_initialized:
        return False
    numba.config.THREADING_LAYER_PRIORITY = list(PRIORITY)
    if SHARED:
        _start_on_shared_runtime(parallel)
    return True


def _loaded_libgomps() -> list[str]:
    """The paths of the libgomps this process has already loaded, in the order they were mapped."""
    found: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if os.path.basename(path).startswith("libgomp") and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def _torch_libgomp() -> str | None:
    """The libgomp PyTorch's installation ships, found without importing torch, or None."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(glob.glob(os.path.join(folder, "lib", "libgomp*.so*")))
        if found:
            return found[0]
    return None


def _candidates() -> list[str]:
    """The runtimes to share, best first: PyTorch's if loaded, any loaded one, PyTorch's
    installed one, the system's (module docstring)."""
    loaded, torchs = _loaded_libgomps(), _torch_libgomp()
    real = {os.path.realpath(path): path for path in loaded}
    first = [real[os.path.realpath(torchs)]] if torchs and os.path.realpath(torchs) in real else []
    return [path for path in (*first, *loaded, torchs, ctypes.util.find_library("gomp")) if path]


def _start_on_shared_runtime(parallel) -> None:
    global runtime
    for path in _candidates():
        try:
            library = ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
            threads, levels = library.omp_get_max_threads(), library.omp_get_max_active_levels()
        except (OSError, AttributeError):
            continue
        runtime = path
        break
    else:
        library = None
    try:
        parallel._launch_threads()
    except Exception:   # no layer of PRIORITY loads here: Numba will say so at the first parallel call
        return
    if library is not None:
        library.omp_set_num_threads(threads)
        library.omp_set_max_active_levels(levels)


def _after_fork_in_child() -> None:
    global _forked
    from numba.np.ufunc import parallel

    _forked = _forked or (parallel._is_initialized and parallel._threading_layer == "omp")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    """True in a process forked (at any depth) from one whose Numba OpenMP pool had started:
    there the fast tier must not enter that pool (module docstring)."""
    return _forked
