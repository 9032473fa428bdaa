"""The last passes of a fast kernel: bias, BatchNorm and ReLU6 on the wide grid, then the crop.

`apply` runs on one output channel's wide grid (or one GEMM output row), each step a long,
branch-free loop of its own, taken only when its flag is set:

    v = wide[k]                  the convolution's sum
    v = v + b[o]                 has_bias      (a bias add, as the reference counts it)
    v = v * scale[o] + shift[o]  affine        (BatchNorm in evaluation, folded to a scale and
                                                a shift: scale = gamma / sqrt(var + eps),
                                                shift = beta - mean * scale)
    v = min(max(v, lo), hi)      clamp         (ReLU6: lo = 0, hi = 6; NaN stays NaN, as in
                                                torch.nn.functional.hardtanh)

`crop` then copies the OW kept columns of each wide-grid row (WJ >= OW columns) into
y[n, o, i, :]. Each step rounds once in the array's dtype; npconv/fast/__init__.py gives the
error bound of the fused result.

Counts are made in `crop`, the loop that visits every kept pixel once (the wide grid's extra
columns are computed and thrown away, and not counted): per kept row, `taps * OW` MACs and
pad_row[i] padding MACs, and the number of kept pixels, from which the caller counts
bias_adds (one per pixel), bn_scale_shift (one per pixel, op "batch_norm2d") and
activation_compares (two per pixel, op "relu6") for the steps that ran.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def apply(wide, o, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # wide: (L,) updated in place   bias, scale, shift: (C_out,), read when their flag is set
    # Each step is its own long, branch-free loop over the whole wide grid.
    L = wide.shape[0]
    if has_bias:
        b = bias[o]
        for k in range(L):
            wide[k] += b
    if affine:
        s = scale[o]
        t = shift[o]
        for k in range(L):
            wide[k] = wide[k] * s + t
    if clamp:
        for k in range(L):
            v = wide[k]
            v = lo if v < lo else v
            wide[k] = hi if v > hi else v


@njit(cache=True)
def crop(wide, WJ, y, n, o, taps, pad_row):
    # wide: (OH*WJ,)   y: (N, C_out, OH, OW), plane (n, o) overwritten with the first OW columns
    # returns (macs, padding_macs, kept): taps per kept pixel, pad_row[i] per kept row, kept pixels
    OH, OW = y.shape[2], y.shape[3]
    macs = 0
    padding_macs = 0
    kept = 0
    for i in range(OH):
        src = wide[i * WJ:]
        dst = y[n, o, i]
        for j in range(OW):
            dst[j] = src[j]
        macs += taps * OW
        padding_macs += pad_row[i]
        kept += OW
    return macs, padding_macs, kept


@njit(cache=True)
def apply_planes(out, first, planes, CO, L, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # `apply` on output planes first..first+planes-1 of out (flat; plane P is out[P*L :][:L],
    # channel P % CO), as one loop per step over the planes, with unsigned indices (the narrow
    # depthwise grid, npconv/fast/depthwise.py). The same steps, in the same order, as `apply`.
    U = np.uint64
    n = U(L)
    for P in range(first, first + planes):
        o = P % CO
        base = U(P * L)
        if has_bias:
            b = bias[o]
            for k in range(n):
                out[base + k] += b
        if affine:
            s = scale[o]
            t = shift[o]
            for k in range(n):
                out[base + k] = out[base + k] * s + t
        if clamp:
            for k in range(n):
                v = out[base + k]
                v = lo if v < lo else v
                out[base + k] = hi if v > hi else v
