"""The last pass of a fast kernel: crop the wide grid into y, with bias, BatchNorm, ReLU6 fused.

For each output pixel of one (image, channel), on the wide grid:

    v = wide[i*WJ + j]           the convolution's sum (the wide grid is WJ >= OW columns wide)
    v = v + b[o]                 has_bias      (a bias add, as the reference counts it)
    v = v * scale[o] + shift[o]  affine        (BatchNorm in evaluation, folded to a scale and
                                                a shift: scale = gamma / sqrt(var + eps),
                                                shift = beta - mean * scale)
    v = min(max(v, lo), hi)      clamp         (ReLU6: lo = 0, hi = 6; NaN stays NaN, as in
                                                torch.nn.functional.hardtanh)
    y[n, o, i, j] = v

Each step rounds once in the array's dtype; npconv/fast/__init__.py gives the error bound of
the fused result. Counts, made in this loop (it visits every kept pixel once):
    macs                 taps per pixel (the products the kernel summed into it)
    padding_macs         pad_row[i] per row (its taps that read padding)
    bias_adds            one per pixel that received b[o]
    bn_scale_shift       one per pixel scaled and shifted (op "batch_norm2d")
    activation_compares  two per pixel clamped (op "relu6")
"""

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
