"""Fast fully connected layer: one matrix product through NumPy's BLAS, then the bias.

    y = x @ W^T + b          x (N, IN), W (OUT, IN), b (OUT,) or None

The reference kernel (npconv/kernels/linear.py) sums each output's IN products in one loop
on one thread; a classifier of 1,024 -> 1,000 features took 0.85 ms of a MobileNetV1
forward on the fast engine that way. Here `gemm.matmul` runs x @ W^T as `threads` blocks of
the longer side of y (output features for a batch of one, rows for a large batch), each one
single-threaded BLAS call; the bias is then added to each output, as the reference adds it
after the sum.

Accuracy: each output is one BLAS inner product of IN terms, in BLAS's order, plus b[o]:
within bound_from_magnitude(M, IN + 1, dtype) of the exact value, M = sum |x||w| + |b|
(Higham's bound holds for any summation order; tested against the float64 reference).

Counts: macs = N * OUT * IN where the product is issued (BLAS does not report what it
executed; this is what the call asks of it, and it asks for nothing else); bias_adds =
N * OUT where the bias is added, 0 without one. Both equal the reference kernel's.
"""

import numpy as np

from . import gemm, thread_count


def covers(x: np.ndarray, w: np.ndarray) -> bool:
    """Whether the fast linear computes this product: float32 or float64, no empty side."""
    return x.dtype in (np.float32, np.float64) and min(*x.shape, w.shape[0]) > 0


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, threads: int | None = None):
    """x (N, IN), w (OUT, IN), b (OUT,) or None, C-contiguous, one float dtype; threads: by
    default `numba.get_num_threads()`, as for the convolutions.
    Returns (y (N, OUT), (macs, bias_adds))."""
    threads = thread_count() if threads is None else int(threads)
    N, IN = x.shape
    OUT = w.shape[0]
    y = np.empty((N, OUT), dtype=x.dtype)
    gemm.matmul(x, w.T, y, threads)
    macs = N * OUT * IN
    bias_adds = 0
    if b is not None:
        with np.errstate(all="ignore"):   # inf / NaN in, inf / NaN out, as in the reference
            y += b
        bias_adds = N * OUT
    return y, (macs, bias_adds)
