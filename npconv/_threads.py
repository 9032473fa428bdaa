"""Numba's threading layer for the fast engine: one that does not spin, chosen at import.

A process that imports torch and npconv holds three thread pools: PyTorch's OpenMP pool,
Numba's and OpenBLAS's (NumPy's GEMMs). Numba picks its layer from the priority
tbb, omp, workqueue; without TBB installed that is its OpenMP layer, on the system's libgomp, a
second OpenMP runtime beside PyTorch's. Each libgomp's idle workers spin after every parallel
region (GOMP_SPINCOUNT), and on a machine with few cores a pool that spins while the other
library runs takes a core away from it: in a plain `import torch, npconv` process at two
threads MobileNetV1 took 2.4x PyTorch's time on the fast engine (bench/results/plain.md).
The environment variables that tame the spinning (OMP_WAIT_POLICY=PASSIVE, ...) must be set
before the libraries load, which a library cannot ask of its users.

So npconv asks Numba for TBB first (work stealing: a worker that the scheduler has parked
does not hold up the others, which is what keeps the fast engine graceful when other work
competes for the cores), then its own `workqueue` layer (condition variables, no spinning),
and its OpenMP layer last. TBB comes with npconv on the platforms that have `tbb` wheels
(pyproject.toml); elsewhere the workqueue layer is used.

The choice is the user's when they made one: nothing changes when NUMBA_THREADING_LAYER or
NUMBA_THREADING_LAYER_PRIORITY is set, when `numba.config.THREADING_LAYER` was assigned, or
when Numba's layer has already started (it cannot change after that).
"""

from __future__ import annotations

import os

PRIORITY = ["tbb", "workqueue", "omp"]


def configure() -> bool:
    """Put PRIORITY into numba.config unless the user chose a layer or one is running; True
    when it did."""
    import numba
    from numba.np.ufunc import parallel

    if os.environ.get("NUMBA_THREADING_LAYER") or os.environ.get("NUMBA_THREADING_LAYER_PRIORITY"):
        return False
    if str(numba.config.THREADING_LAYER).lower() != "default" or parallel._is_initialized:
        return False
    numba.config.THREADING_LAYER_PRIORITY = list(PRIORITY)
    return True
