"""The fast tier's matrix products: BLAS at one thread, each product split over threads.

    kept = matmul(a, b, out, threads)              out = a @ b
    kept = matmul(a, b, out, threads, epilogue)    the same, then epilogue.apply on each row of
                                                   out, block by block (kept: pixels finished)

NumPy's OpenBLAS parallelises a product on its own pool, whose workers spin for a while after
each call. In a process that also runs PyTorch, they keep a core busy that PyTorch's next
operation needs (on two cores PyTorch's pointwise layers ran 2-3x slower beside them,
bench/README.md), and under a competing load OpenBLAS's static split waits for the worker the
scheduler parked. So npconv asks BLAS for one thread during its own products, and splits each
product of at least MIN_MACS multiply-adds into `threads` blocks of the longer side of `out`:
columns of b (pixels) for the wide products of the early layers, rows of a (output channels)
for the tall ones of the late layers, so that each block packs only its own part of the large
operand. BLAS's thread count is restored after each call, so the user's own NumPy products
keep theirs.

The blocks run on Numba's thread pool (`split_product`, a `prange` over the blocks, each one
BLAS call through `blas`, then the epilogue on the block while it is in cache). npconv puts
that pool on the process's one OpenMP runtime, PyTorch's (npconv/_threads.py): right after a
PyTorch call its workers are still spinning and take a block in microseconds, where a
sleeping worker of a pool of npconv's own took 20-120 us to wake and then shared a core with
the spinning ones (bench/README.md). Where NumPy's BLAS has no 64-bit-integer cblas gemm
(`blas.AVAILABLE`), or in a process forked after Numba's OpenMP pool started (GNU OpenMP does
not survive a fork; `_threads.forked`), the blocks are tasks of npconv's own pool instead
(`workers.run`: the calling thread and sleeping workers; NumPy releases the GIL inside BLAS).

Accuracy: each output is still one BLAS inner product over the full inner dimension (the
split is by rows or columns, never by k), so the error bound of the caller holds unchanged.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
from numba import from_dtype, njit, prange, types

from .. import _threads
from . import blas, workers
from .epilogue import apply

MIN_SIDE = 16                 # rows or columns per block below which a product is not split
# Products smaller than MIN_MACS multiply-adds run on the calling thread alone: a split costs
# a fork and a join, which a small product does not win back. On Numba's pool, shared with
# PyTorch's OpenMP workers (module docstring), that is a few microseconds, and 2^20 (about 1 M,
# 15 us on one thread here) is the threshold. In-process A/B on two cores (December 2026),
# every forward right after PyTorch's, 2 x 28 alternating rounds, fast / PyTorch time:
# MobileNetV2 1.00-1.01 at 2^18 and 2^20, 1.02 at 2^22, 1.20-1.21 at 2^24 (its 52 products are
# 2-20 M); MobileNetV1 (all 25.7 M or more) 1.06-1.08 at every threshold.
MIN_MACS = 1 << 20
# On npconv's own pool (the fallback) the fork and join cost about 80 us (bench/README.md), and
# the threshold is 2^24 (about 16.8 M, 0.2-0.3 ms on one thread): there, 4.8-10.8 M-MAC products
# took 0.95-1.3x their one-thread time when split alone, and 1.4-1.8x right after a PyTorch call;
# 51 M-MAC products took 0.6x.
MIN_MACS_OWN_POOL = 1 << 24

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


def cuts(M: int, L: int, threads: int) -> tuple[bool, list[int]]:
    """How `threads` threads split an (M, L) product output: (by_columns, edges), the longer
    side (columns when L >= M) cut at edges into near-equal parts, none narrower than MIN_SIDE."""
    side = max(M, L)
    count = max(1, min(int(threads), side // MIN_SIDE))
    return L >= M, [side * k // count for k in range(count + 1)]


def blocks(M: int, L: int, threads: int) -> list[tuple[slice, slice]]:
    """The (rows, columns) slices of the blocks `cuts` makes."""
    by_columns, edges = cuts(M, L, threads)
    parts = [slice(lo, hi) for lo, hi in zip(edges, edges[1:])]
    every = slice(None)
    return [(every, part) for part in parts] if by_columns else [(part, every) for part in parts]


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b on the calling thread (one BLAS call; at one BLAS thread inside
    `blas_one_thread`)."""
    with np.errstate(all="ignore"):   # inf / NaN in, inf / NaN out, silently, as in the reference
        np.matmul(a, b, out=out)


@njit(cache=True, nogil=True)
def finish(out, row0, row1, col0, col1, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # out: (M, L) a product; rows row0:row1 (output channels), columns col0:col1 (pixels) go
    # through epilogue.apply in place. Returns the pixels finished.
    for o in range(row0, row1):
        apply(out[o, col0:col1], o, bias, has_bias, scale, shift, affine, lo, hi, clamp)
    return (row1 - row0) * (col1 - col0)


@njit(cache=True, nogil=True)
def blas_product(a, trans_a, lda, b, trans_b, ldb, out, ldc, M, N, K, accumulate):
    # out[:M, :N] = a @ b (accumulate: out += a @ b), one call of NumPy's BLAS from a kernel
    # (`blas`); a, b, out: arrays whose first element is the operand's (0, 0), in the layout
    # CBLAS is told (trans_*, ld*; out row-major); float32 or float64, one dtype.
    if out.itemsize == 4:
        blas.sgemm(blas.ROW_MAJOR, trans_a, trans_b, M, N, K, np.float32(1.0), a.ctypes, lda, b.ctypes, ldb,
                   np.float32(1.0 if accumulate else 0.0), out.ctypes, ldc)
    else:
        blas.dgemm(blas.ROW_MAJOR, trans_a, trans_b, M, N, K, np.float64(1.0), a.ctypes, lda, b.ctypes, ldb,
                   np.float64(1.0 if accumulate else 0.0), out.ctypes, ldc)


@njit(cache=True, parallel=True)
def split_product(a, trans_a, lda, b, trans_b, ldb, out, ldc, edges, by_columns,
                  bias, has_bias, scale, shift, affine, lo, hi, clamp, fused):
    # a: (M, K)  b: (K, L)  out: (M, L), one dtype (float32 or float64); trans_*, ld*: each
    # operand's CBLAS layout (`_layout`)   edges: (blocks + 1,) cuts of the columns (by_columns)
    # or of the rows of out. Block t: out[rows, columns] = a[rows] @ b[:, columns], one BLAS
    # call, then (fused) the epilogue on it. Returns the pixels finished.
    M, K = a.shape
    L = b.shape[1]
    kept = 0
    for t in prange(edges.shape[0] - 1):
        r0, r1, c0, c1 = 0, M, 0, L
        if by_columns:
            c0, c1 = edges[t], edges[t + 1]
        else:
            r0, r1 = edges[t], edges[t + 1]
        blas_product(a[r0:], trans_a, lda, b[:, c0:], trans_b, ldb, out[r0:, c0:], ldc, r1 - r0, c1 - c0, K, False)
        if fused:
            kept += finish(out, r0, r1, c0, c1, bias, has_bias, scale, shift, affine, lo, hi, clamp)
    return kept


def _layout(m: np.ndarray):
    """(CBLAS transpose flag, leading dimension) of a 2-D array with one unit-stride axis and
    a valid leading dimension, or None."""
    rows, cols = m.shape
    item = m.itemsize
    s0, s1 = m.strides
    if s1 == item and (rows == 1 or (s0 % item == 0 and s0 >= cols * item)):
        return blas.NO_TRANS, max(1, cols) if rows == 1 else s0 // item
    if s0 == item and (cols == 1 or (s1 % item == 0 and s1 >= rows * item)):
        return blas.TRANS, max(1, rows) if cols == 1 else s1 // item
    return None


_compiling = threading.Lock()
_compiled: set = set()


def _split_kernel(dtype):
    """`split_product`, compiled once per dtype for arrays of any layout ("A"), the ones it
    only reads declared read-only: NumPy arrays of layout C or F, writable or not, convert to
    these types, so the operands' layouts (a strided `out`, linear's transposed weight) and a
    user's read-only arrays do not each cost a compilation of a parallel kernel."""
    with _compiling:
        if dtype not in _compiled:
            real = from_dtype(dtype)
            operand, vector = types.Array(real, 2, "A", readonly=True), types.Array(real, 1, "A", readonly=True)
            out = types.Array(real, 2, "A")
            i64, flag = types.int64, types.boolean
            split_product.disable_compile(False)
            split_product.compile((operand, i64, i64, operand, i64, i64, out, i64, types.Array(i64, 1, "C"), flag,
                                   vector, flag, vector, vector, flag, real, real, flag, flag))
            split_product.disable_compile(True)
            _compiled.add(dtype)
    return split_product


def on_numba() -> bool:
    """Whether kernels on Numba's pool may call BLAS: NumPy's BLAS has the cblas gemm, and
    this is not a process forked after that pool started (module docstring)."""
    return blas.AVAILABLE and not _threads.forked()


def _numba_layouts(a, b, out):
    """The CBLAS layouts (`_layout`) of a, b and out when `split_product` can run this product
    (`on_numba()`, no side empty, each operand with a layout, out row-major), else None."""
    if not on_numba() or min(a.shape + b.shape) == 0:
        return None
    layouts = _layout(a), _layout(b), _layout(out)
    if None in layouts or layouts[2][0] != blas.NO_TRANS:
        return None
    return layouts


def _on_numba(a, b, out, layouts, by_columns, edges, epilogue) -> int:
    """The blocks as `split_product` on Numba's pool (layouts: `_numba_layouts`)."""
    (trans_a, lda), (trans_b, ldb), (_, ldc) = layouts
    fused = epilogue is not None
    if not fused:
        zero = np.zeros(0, out.dtype)
        epilogue = (zero, False, zero, zero, False, out.dtype.type(0), out.dtype.type(0), False)
    with np.errstate(all="ignore"):
        return int(_split_kernel(out.dtype)(a, trans_a, lda, b, trans_b, ldb, out, ldc, np.array(edges, np.int64),
                                            by_columns, *epilogue, fused))


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int, epilogue=None) -> int:
    """out = a @ b for a (M, K), b (K, L), out (M, L) (rows of unit stride), one dtype: the
    `blocks` of out at once, each a single-threaded BLAS call (module docstring). `epilogue`,
    when given, is epilogue.apply's arguments after `o` (bias, has_bias, scale, shift, affine,
    lo, hi, clamp), run on the same thread right after each block's product, on that block,
    while it is still in cache. Returns the pixels the epilogue finished (0 without one)."""
    M, K = a.shape
    L = b.shape[1]
    layouts = _numba_layouts(a, b, out) if threads > 1 else None
    smallest = MIN_MACS if layouts is not None else max(MIN_MACS, MIN_MACS_OWN_POOL)
    threads = threads if M * K * L >= smallest else 1
    by_columns, edges = cuts(M, L, threads)
    if layouts is not None and len(edges) > 2:
        with blas_one_thread():
            return _on_numba(a, b, out, layouts, by_columns, edges, epilogue)
    parts = blocks(M, L, threads)

    def task(k):
        rows, columns = parts[k]
        product(a[rows], b[:, columns], out[rows, columns])
        if epilogue is None:
            return 0
        return finish(out, *rows.indices(M)[:2], *columns.indices(L)[:2], *epilogue)

    with blas_one_thread():
        return sum(workers.run(task, len(parts), threads))
