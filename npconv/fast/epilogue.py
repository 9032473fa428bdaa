"""The last steps of a fast kernel: bias, BatchNorm and ReLU6 on each output, in this order.

    v = the convolution's sum
    v = v + b[o]                 has_bias      (a bias add, as the reference counts it)
    v = v * scale[o] + shift[o]  affine        (BatchNorm in evaluation, folded to a scale and
                                                a shift: scale = gamma / sqrt(var + eps),
                                                shift = beta - mean * scale)
    v = min(max(v, lo), hi)      clamp         (ReLU6: lo = 0, hi = 6; NaN stays NaN, as in
                                                torch.nn.functional.hardtanh)

Each step is taken only when its flag is set, and rounds once in the array's dtype;
npconv/fast/__init__.py gives the error bound of the fused result. Two loops run them:

* `apply`, in place on a contiguous run of outputs (a row of a GEMM block, pointwise.py),
  each step a long, branch-free loop of its own;
* `crop`, from a channel's wide grid (depthwise.py, standard.py: rows of WJ >= OW columns, the
  last WJ - OW computed and thrown away) into y[n, o]: it visits each kept pixel once, runs
  the steps on it and stores it. One pass over the OW kept columns of each row, instead of a
  pass per step over the whole wide grid and a copy after: on the 7x7 and 14x14 planes of
  MobileNet's late layers those short loops were more than half of the depthwise kernel's
  time (bench/README.md).

Counts are made in `crop`'s loop over the kept rows (the wide grid's extra columns are not
counted): per kept row, `taps * OW` MACs and pad_row[i] padding MACs, and the number of kept
pixels, from which the caller counts bias_adds (one per pixel), bn_scale_shift (one per
pixel, op "batch_norm2d") and activation_compares (two per pixel, op "relu6") for the steps
that ran.
"""

from numba import njit


@njit(cache=True)
def apply(wide, o, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # wide: (L,) updated in place   bias, scale, shift: (C_out,), read when their flag is set
    # Each step is its own long, branch-free loop over the whole run.
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
def crop(wide, WJ, y, n, o, taps, pad_row, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # wide: (OH*WJ,)   y: (N, C_out, OH, OW), plane (n, o) overwritten with the first OW columns
    # of each wide row, each through the steps whose flags are set
    # returns (macs, padding_macs, kept): taps per kept pixel, pad_row[i] per kept row, kept pixels
    OH, OW = y.shape[2], y.shape[3]
    b = bias[o] if has_bias else wide.dtype.type(0)
    s = scale[o] if affine else wide.dtype.type(1)
    t = shift[o] if affine else wide.dtype.type(0)
    macs = 0
    padding_macs = 0
    kept = 0
    for i in range(OH):
        src = wide[i * WJ:]
        dst = y[n, o, i]
        for j in range(OW):
            v = src[j]
            if has_bias:
                v = v + b
            if affine:
                v = v * s + t
            if clamp:
                v = lo if v < lo else v
                v = hi if v > hi else v
            dst[j] = v
        macs += taps * OW
        padding_macs += pad_row[i]
        kept += OW
    return macs, padding_macs, kept
