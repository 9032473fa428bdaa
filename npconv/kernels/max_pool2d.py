"""Reference 2-D max pooling with indices, with PyTorch's CPU rules.

Output cell (i, j) of plane (n, c) takes the largest input among the taps of its dilated window

    h = i * s_h - p_h + a * d_h,   w = j * s_w - p_w + b * d_w,   0 <= a < K_h,  0 <= b < K_w,

that lie inside the input (0 <= h < H, 0 <= w < W). Padding acts as -inf: a padded tap is
never chosen, so it is not even visited.

    y[n, c, i, j]   = max_{a, b} x[n, c, h, w]
    idx[n, c, i, j] = h * W + w of the tap chosen   (flat index into the input plane)

Scan order, ties and NaN (aten/src/ATen/native/cpu/MaxPoolKernel.cpp, cpu_max_pool): the
in-input taps are visited row by row, left to right, starting from m = -inf; a tap replaces
the running maximum when `(value > m) || isnan(value)`. Hence

* of equal maxima the first wins (-0.0 and 0.0 are equal: the first of them is kept);
* a NaN beats everything, and the LAST NaN of the window is the one reported;
* a window of -inf values reports its first in-input tap.

The index starts at the first in-input tap h0 * W + w0 (h0, w0 the first non-negative tap
row and column, before the window is clipped) even when no tap of the window is inside the
input. That happens for a dilated window that steps over the whole input, e.g. H = 2,
K_h = 2, d_h = 3, p_h = 1: taps -1 and 2. The cell is then -inf and its index h0 * W + w0
points past the plane, exactly as PyTorch reports it.

Counts: pool_compares, one per in-input tap compared with the running maximum.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def max_pool2d(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, y, indices):
    # x:       (N, C, H, W)
    # y:       (N, C, OH, OW)   overwritten with the maxima
    # indices: (N, C, OH, OW)   int64, overwritten with h * W + w of each maximum
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    minus_inf = x.dtype.type(-np.inf)
    compares = 0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                h_start = i * stride_h - pad_h
                h_end = min(h_start + (kernel_h - 1) * dilation_h + 1, H)
                while h_start < 0:  # step over the taps in the top padding
                    h_start += dilation_h
                for j in range(OW):
                    w_start = j * stride_w - pad_w
                    w_end = min(w_start + (kernel_w - 1) * dilation_w + 1, W)
                    while w_start < 0:  # step over the taps in the left padding
                        w_start += dilation_w
                    best = minus_inf
                    best_index = h_start * W + w_start
                    for h in range(h_start, h_end, dilation_h):
                        for w in range(w_start, w_end, dilation_w):
                            value = x[n, c, h, w]
                            if value > best or np.isnan(value):
                                best = value
                                best_index = h * W + w
                            compares += 1
                    y[n, c, i, j] = best
                    indices[n, c, i, j] = best_index
    return compares
