"""Padding up to three trailing axes, in the four modes of `torch.nn.functional.pad`.

    constant   v v v | a b c d | v v v      (the fill value v outside)
    reflect    d c b | a b c d | c b a      (mirror, the edge element not repeated)
    replicate  a a a | a b c d | d d d      (the edge element repeated)
    circular   b c d | a b c d | a b c      (the input tiled)

Every output element copies one input element or is the fill value:

    y[p, a, b, c] = x[p, source(a - before_d), source(b - before_h), source(c - before_w)]

where `source(k)`, for a coordinate k of the unpadded axis (possibly outside it), is the
input coordinate that position copies, or -1 for the fill value. A negative `before` or
`after` crops: the output window starts inside the input, or stops short of its end.

`keep_lo <= k < keep_hi` is the part of an axis that is copied as it is: the whole axis
[0, size), except under circular padding with a negative pad, which wraps the part left
after cropping (PyTorch's `_pad_circular` crops first, then tiles what is left). Reflect
and replicate padding reflect about, or repeat, the edges of the whole axis even when the
other side is cropped, as PyTorch's kernels do. The argument checks
(`npconv.geometry.pad_geometry`) guarantee that one reflection or one wrap is enough.

Counts, incremented where the work happens:
    copies   one per output element written (an input element or the fill value)
"""

from numba import njit

CONSTANT, REFLECT, REPLICATE, CIRCULAR = 0, 1, 2, 3
MODE_CODES = {"constant": CONSTANT, "reflect": REFLECT, "replicate": REPLICATE, "circular": CIRCULAR}


@njit(cache=True)
def source(k, keep_lo, keep_hi, mode):
    # k: a coordinate of the unpadded axis, possibly outside [keep_lo, keep_hi)
    if keep_lo <= k < keep_hi:
        return k
    if mode == REFLECT:  # keep_lo = 0, keep_hi = size: mirror about the first or the last element
        return -k if k < keep_lo else 2 * (keep_hi - 1) - k
    if mode == REPLICATE:
        return keep_lo if k < keep_lo else keep_hi - 1
    if mode == CIRCULAR:
        return keep_lo + (k - keep_lo) % (keep_hi - keep_lo)
    return -1  # CONSTANT: the fill value


@njit(cache=True)
def pad3d(x, y, before, keep_lo, keep_hi, mode, value):
    # x:       (P, D, H, W)     P: the leading axes, which are not padded, flattened
    # y:       (P, D + before[0] + after[0], H + before[1] + after[1], W + before[2] + after[2])
    # before, keep_lo, keep_hi: (3,) per padded axis (D, H, W); an axis not padded has size 1,
    #          before 0 and keep range [0, 1)
    # value:   the fill value (constant mode), in y's dtype
    # y[p, a, b, c] = x[p, source(a - before[0]), source(b - before[1]), source(c - before[2])], or value
    P, OD, OH, OW = y.shape
    copies = 0
    for p in range(P):
        for a in range(OD):
            i = source(a - before[0], keep_lo[0], keep_hi[0], mode)
            for b in range(OH):
                j = source(b - before[1], keep_lo[1], keep_hi[1], mode)
                for c in range(OW):
                    k = source(c - before[2], keep_lo[2], keep_hi[2], mode)
                    if i < 0 or j < 0 or k < 0:
                        y[p, a, b, c] = value
                    else:
                        y[p, a, b, c] = x[p, i, j, k]
                    copies += 1
    return copies
