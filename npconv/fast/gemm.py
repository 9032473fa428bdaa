"""The fast tier's matrix products: BLAS at one thread, each product split over npconv's own threads.

    matmul(a, b, out, threads)           out = a @ b
    matmul(a, b, out, threads, finish)   the same, finish(rows, columns) run on each block after it

NumPy's OpenBLAS parallelises a product on its own pool, whose workers spin for a while after
each call. In a process that also runs PyTorch, they keep a core busy that PyTorch's next
operation needs (on two cores PyTorch's pointwise layers ran 2-3x slower beside them,
bench/README.md), and under a competing load OpenBLAS's static split waits for the worker the
scheduler parked. So npconv asks BLAS for one thread during its own products, and splits each
product of at least MIN_MACS multiply-adds into `threads` blocks of the longer side of `out`:
columns of b (pixels) for the wide products of the early layers, rows of a (output channels)
for the tall ones of the late layers, so that each block packs only its own part of the large
operand. The blocks run as tasks of the fast tier's own pool (`workers.run`: the calling
thread and sleeping workers); NumPy releases the GIL inside BLAS. BLAS's thread count is
restored after each call, so the user's own NumPy products keep theirs.

Accuracy: each output is still one BLAS inner product over the full inner dimension (the
split is by rows or columns, never by k), so the error bound of the caller holds unchanged.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import workers

MIN_SIDE = 16                 # rows or columns per block below which a product is not split
# Products smaller than MIN_MACS (about 16.8 M multiply-adds, 0.2-0.3 ms on one thread here) run
# on the calling thread alone: splitting one costs a fork and a join of about 80 us on this
# pool (bench/README.md), which such a product does not win back. Measured on two cores
# (December 2026): alone, 4.8-10.8 M-MAC products took 0.95-1.3x their one-thread time when
# split, and right after a PyTorch call 1.4-1.8x; 51 M-MAC products took 0.6x. On whole models,
# in-process A/B against the earlier 2^18: MobileNetV2 17.4 -> 15.6 ms right after a PyTorch
# call and 16.6 -> 16.5 alone; MobileNetV1, whose products are all 25.7 M or more, unchanged.
MIN_MACS = 1 << 24

_blas = None


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (found once)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _blas


@contextlib.contextmanager
def blas_one_thread():
    """BLAS at one thread inside the block, its previous thread count restored after."""
    saved = []
    for lib in _blas_libraries():
        count = lib.get_num_threads()
        if count != 1:
            lib.set_num_threads(1)
            saved.append((lib, count))
    try:
        yield
    finally:
        for lib, count in saved:
            lib.set_num_threads(count)


def blocks(M: int, L: int, threads: int) -> list[tuple[slice, slice]]:
    """The (rows, columns) blocks that `threads` threads compute of an (M, L) product output:
    the longer side cut into `threads` near-equal parts (none narrower than MIN_SIDE)."""
    side = max(M, L)
    count = max(1, min(int(threads), side // MIN_SIDE))
    edges = [side * k // count for k in range(count + 1)]
    cuts = [slice(lo, hi) for lo, hi in zip(edges, edges[1:])]
    every = slice(None)
    return [(every, cut) for cut in cuts] if L >= M else [(cut, every) for cut in cuts]


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b on the calling thread (one BLAS call; at one BLAS thread inside
    `blas_one_thread`)."""
    with np.errstate(all="ignore"):   # inf / NaN in, inf / NaN out, silently, as in the reference
        np.matmul(a, b, out=out)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int, finish=None) -> list:
    """out = a @ b for a (M, K), b (K, L), out (M, L) (rows of unit stride), one dtype: the
    `blocks` of out at once on `workers.run`'s threads, each a single-threaded BLAS call
    (module docstring). `finish(rows, columns)`, when given, runs on the same thread right
    after each block's product, on that block (row and column ranges as (start, stop)), while
    it is still in cache; matmul returns what each call returned, in block order ([] without
    `finish`)."""
    M, K = a.shape
    L = b.shape[1]
    parts = blocks(M, L, threads if M * K * L >= MIN_MACS else 1)

    def task(k):
        rows, columns = parts[k]
        product(a[rows], b[:, columns], out[rows, columns])
        if finish is not None:
            return finish(rows.indices(M)[:2], columns.indices(L)[:2])

    with blas_one_thread():
        done = workers.run(task, len(parts), threads)
    return done if finish is not None else []
