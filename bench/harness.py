"""Shared machinery of the benchmarks: the thread configuration, interleaved timing, output.

`configure()` must run before numpy, numba or torch is imported (the pools read their
environment when they load); every bench script calls it first. The configuration
(bench/README.md, "Thread pools", for the measurements behind it):

    T threads everywhere     OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = NUMBA_NUM_THREADS = T,
                             torch.set_num_threads(T), numba.set_num_threads(T)
    no spinning between calls OMP_WAIT_POLICY=PASSIVE (PyTorch's and Numba's OpenMP pools),
                             OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's workers sleep after 2^4
                             cycles instead of spinning 2^28): an idle pool then leaves the
                             cores to whichever library runs next
    OpenBLAS's own kernel    OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (this machine sets
                             them for old OpenBLAS builds; they force the Haswell kernel, half
                             the speed of the one OpenBLAS picks itself here)

NPCONV_BENCH_THREADS overrides T (default: all cores); NPCONV_BENCH_SPIN=1 keeps the
libraries' default spin-waiting, to reproduce the stalls.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent / "results"
RESULTS = BASE  # bench/results/ for all cores, bench/results/<T>-thread/ for another T (set by configure)


def results_dir(T: int) -> Path:
    return BASE if T == (os.cpu_count() or 1) else BASE / f"{T}-thread"


def configure(threads: int | None = None) -> int:
    """Set the thread environment (before numpy/numba/torch load); returns T."""
    if "numpy" in sys.modules and os.environ.get("NPCONV_BENCH_CONFIGURED") != "1":
        print("bench: warning: numpy was imported before configure(); OpenBLAS settings may not apply", file=sys.stderr)
    T = threads or int(os.environ.get("NPCONV_BENCH_THREADS", 0)) or os.cpu_count() or 1
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(T)
    spincount = os.environ.get("NPCONV_BENCH_SPINCOUNT")
    if os.environ.get("NPCONV_BENCH_SPIN") == "1":
        pass
    elif spincount:
        os.environ["GOMP_SPINCOUNT"] = spincount  # spin this long (pause-loop iterations), then sleep
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(name, None)
    os.environ["NPCONV_BENCH_CONFIGURED"] = "1"
    global RESULTS
    RESULTS = results_dir(T)
    return T


def start_pools(T: int) -> None:
    import numba
    import torch

    torch.set_num_threads(T)
    numba.set_num_threads(T)
    warm_allocator()


def warm_allocator() -> None:
    """Leave glibc's allocator as any model run leaves it, before timing single layers.

    glibc serves a block above its mmap threshold (128 KiB at start) with fresh pages from
    the kernel, and raises the threshold to the size of a freed block of at most 32 MiB.
    In a fresh process that has not yet freed such a block, PyTorch's depthwise 32@112 took
    2.4 ms on one thread here, 1,144 page faults per call (its output and oneDNN's buffers),
    against 0.25 ms with none once eight 4 MiB tensors had been freed (bench/README.md).
    Building or running a model frees such blocks; a layer timed in isolation would
    otherwise time the kernel's page faults, not the kernel."""
    import torch

    blocks = [torch.empty(1 << 20) for _ in range(8)]     # 4 MiB each, freed at once
    del blocks


def machine(T: int) -> dict:
    """What the numbers were measured on."""
    import numba
    import numpy as np
    import torch

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "threads": T,
        "numba_threading_layer": None,
        "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT",
                                                 "OPENBLAS_NUM_THREADS",
                                                 "OPENBLAS_CORETYPE", "NPCONV_BENCH_SPIN")},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        info["cpu"] = platform.processor()
    try:
        from threadpoolctl import threadpool_info  # optional: names the BLAS kernel in use

        info["blas"] = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return None


def interleaved(functions: dict, repeats: int, warmup: int = 2, budget_s: float | None = None) -> dict:
    """Time each callable `repeats` times, interleaved (round r runs every function once, in an
    order rotated by r), after `warmup` untimed calls each. Returns, per name, the median, p10
    and p90 in milliseconds and the number of runs. Interleaving spreads slow phases of a
    noisy machine over every contender instead of one; the median ignores the stalls.
    `budget_s` stops early (after at least 3 rounds) when the rounds take too long."""
    names = list(functions)
    for name in names:
        for _ in range(warmup):
            functions[name]()
    times = {name: [] for name in names}
    began = time.perf_counter()
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - t)
        if budget_s is not None and r >= 2 and time.perf_counter() - began > budget_s:
            break
    out = {}
    for name, ts in times.items():
        ts = sorted(ts)
        q = lambda f: ts[min(len(ts) - 1, int(f * len(ts)))] * 1e3  # noqa: E731
        out[name] = {"median_ms": statistics.median(ts) * 1e3, "p10_ms": q(0.1), "p90_ms": q(0.9), "runs": len(ts)}
    return out


def write(name: str, payload: dict, table: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


def markdown(headers: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
