"""Fast pointwise (1x1) convolution: one matrix product per image, through NumPy's BLAS.

    y[n, :, :] = W @ x[n, :, ::sh, ::sw].reshape(C_in, OH*OW)       W = w.reshape(C_out, C_in)

On NCHW memory an image's channels are the rows of a (C_in, H*W) matrix, so a 1x1
convolution is exactly one GEMM per image, (C_out x C_in) @ (C_in x OH*OW), with no copy at
stride 1 (at stride > 1 the kept pixels are gathered first); `gemm.matmul` runs it as
`threads` blocks (of pixels or of output channels, whichever is longer), each a
single-threaded BLAS call. Bias, BatchNorm and ReLU6 then run over each output row in a
parallel Numba pass (`epilogue.apply`).

BLAS sums each output's C_in products in an order of its own (blocked, with fused
multiply-adds); the error bound of npconv.tolerance holds for every order, so the result is
within it of the reference (tested), but not bitwise equal to it.

Counts: `macs` += C_out * C_in * OH * OW in the loop that issues the GEMMs, once per GEMM
issued (BLAS does not report what it executed; the count is what that call is asked to do,
and it asks for nothing else). padding_macs = 0 (no padding). bias_adds, scale_shifts,
compares from the epilogue's loops.
"""

import numpy as np
from numba import njit, prange

from . import gemm
from .epilogue import apply


@njit(cache=True, parallel=True)
def finish_rows(y, bias, has_bias, scale, shift, affine, lo, hi, clamp, threads):
    # y: (N, C_out, L) updated in place: each row (n, o) goes through epilogue.apply
    # returns (bias_adds, scale_shifts, compares)
    N, CO, L = y.shape
    rows = N * CO
    chunks = max(1, min(rows, threads))
    kept = 0
    for chunk in prange(chunks):
        for row in range(chunk * rows // chunks, (chunk + 1) * rows // chunks):
            n = row // CO
            o = row - n * CO
            apply(y[n, o], o, bias, has_bias, scale, shift, affine, lo, hi, clamp)
            kept += L
    return (kept if has_bias else 0, kept if affine else 0, 2 * kept if clamp else 0)


def pointwise(x, w, sh, sw, bias, has_bias, scale, shift, affine, lo, hi, clamp, threads):
    """x (N, C_in, H, W), w (C_out, C_in, 1, 1), both C-contiguous, one float dtype.
    Returns (y (N, C_out, OH, OW), (macs, padding_macs, bias_adds, scale_shifts, compares))."""
    N, C, H, W = x.shape
    CO = w.shape[0]
    if sh != 1 or sw != 1:
        x = np.ascontiguousarray(x[:, :, ::sh, ::sw])
    OH, OW = x.shape[2], x.shape[3]
    columns = x.reshape(N, C, OH * OW)
    weights = w.reshape(CO, C)
    y = np.empty((N, CO, OH * OW), dtype=x.dtype)
    macs = 0
    for n in range(N):
        gemm.matmul(weights, columns[n], y[n], threads)
        macs += CO * C * OH * OW
    epilogue = (0, 0, 0)
    if has_bias or affine or clamp:
        epilogue = finish_rows(y, bias, has_bias, scale, shift, affine, lo, hi, clamp, threads)
    return y.reshape(N, CO, OH, OW), (macs, 0) + tuple(int(k) for k in epilogue)
