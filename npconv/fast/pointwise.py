"""Fast pointwise (1x1) convolution: one matrix product per image, through NumPy's BLAS.

    y[n, :, :] = W @ x[n, :, ::sh, ::sw].reshape(C_in, OH*OW)       W = w.reshape(C_out, C_in)

On NCHW memory an image's channels are the rows of a (C_in, H*W) matrix, so a 1x1
convolution is exactly one GEMM per image, (C_out x C_in) @ (C_in x OH*OW), with no copy at
stride 1 (at stride > 1 the kept pixels are gathered first); `gemm.matmul` runs it as
`threads` blocks (of pixels or of output channels, whichever is longer), each a
single-threaded BLAS call. Bias, BatchNorm and ReLU6 then run over the block on the same
thread, right after its product, while it is in cache (`gemm.finish`, `epilogue.apply` on
each of its rows): one fork and join per image for the whole layer.

BLAS sums each output's C_in products in an order of its own (blocked, with fused
multiply-adds); the error bound of npconv.tolerance holds for every order, so the result is
within it of the reference (tested), but not bitwise equal to it.

Counts: `macs` += C_out * C_in * OH * OW in the loop that issues the GEMMs, once per GEMM
issued (BLAS does not report what it executed; the count is what that call is asked to do,
and it asks for nothing else). padding_macs = 0 (no padding). bias_adds, scale_shifts,
compares from the epilogue's loops (`gemm.finish` returns the pixels it finished).
"""

import numpy as np

from . import gemm


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
    epilogue = (bias, has_bias, scale, shift, affine, lo, hi, clamp)
    fused = has_bias or affine or clamp
    macs = kept = 0
    for n in range(N):
        kept += gemm.matmul(weights, columns[n], y[n], threads, epilogue if fused else None)
        macs += CO * C * OH * OW
    counts = (macs, 0, kept if has_bias else 0, kept if affine else 0, 2 * kept if clamp else 0)
    return y.reshape(N, CO, OH, OW), counts
