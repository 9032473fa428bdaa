"""Padding an NCHW array on its two spatial sides, in the four modes of `nn.Conv2d`.

    zeros      . . . | a b c d | . . .      (0 outside)
    reflect    d c b | a b c d | c b a      (mirror, the edge pixel not repeated)
    replicate  a a a | a b c d | d d d      (the edge pixel repeated)
    circular   b c d | a b c d | a b c      (the input tiled)

`source_index` says, for a coordinate of the padded array, which input coordinate it
copies (-1 for a zero). The geometry layer has already checked that reflect padding is
narrower than the input and circular padding at most as wide, so one reflection or one
wrap is enough.
"""

import numpy as np
from numba import njit

ZEROS, REFLECT, REPLICATE, CIRCULAR = 0, 1, 2, 3
MODE_CODES = {"zeros": ZEROS, "reflect": REFLECT, "replicate": REPLICATE, "circular": CIRCULAR}


@njit(cache=True)
def source_index(k, size, mode):
    # k: a coordinate of the unpadded axis, possibly outside [0, size)
    if 0 <= k < size:
        return k
    if mode == REFLECT:
        return -k if k < 0 else 2 * (size - 1) - k
    if mode == REPLICATE:
        return 0 if k < 0 else size - 1
    if mode == CIRCULAR:
        return k % size
    return -1  # ZEROS


@njit(cache=True)
def pad2d(x, x_padded, pad_top, pad_left, mode):
    # x:        (N, C, H, W)
    # x_padded: (N, C, H + pad_top + pad_bottom, W + pad_left + pad_right)
    # x_padded[n, c, r, s] = x[n, c, source(r - pad_top), source(s - pad_left)], or 0
    N, C, H, W = x.shape
    HP, WP = x_padded.shape[2], x_padded.shape[3]
    for n in range(N):
        for c in range(C):
            for r in range(HP):
                row = source_index(r - pad_top, H, mode)
                for s in range(WP):
                    col = source_index(s - pad_left, W, mode)
                    if row < 0 or col < 0:
                        x_padded[n, c, r, s] = 0
                    else:
                        x_padded[n, c, r, s] = x[n, c, row, col]


def padded(x: np.ndarray, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int, mode: str) -> np.ndarray:
    """A new C-contiguous array: `x` (N, C, H, W) padded on its spatial sides."""
    N, C, H, W = x.shape
    out = np.empty((N, C, H + pad_top + pad_bottom, W + pad_left + pad_right), dtype=x.dtype)
    pad2d(np.ascontiguousarray(x), out, pad_top, pad_left, MODE_CODES[mode])
    return out
