"""Reference 3-D max pooling with indices: the 2-D kernel (max_pool2d.py) with a depth axis,
PyTorch's CPU rules (aten/src/ATen/native/cpu/MaxPoolKernel.cpp, cpu_max_pool for 3-D).

Output cell (k, i, j) of volume (n, c) takes the largest input among the taps of its
dilated window

    t = k * s_d - p_d + r * d_d,   h = i * s_h - p_h + a * d_h,   w = j * s_w - p_w + b * d_w,
    0 <= r < K_d,  0 <= a < K_h,  0 <= b < K_w,

that lie inside the input (0 <= t < D, 0 <= h < H, 0 <= w < W). Padding acts as -inf: a
padded tap is never visited.

    y[n, c, k, i, j]   = max_{r, a, b} x[n, c, t, h, w]
    idx[n, c, k, i, j] = t * H * W + h * W + w of the tap chosen   (flat index into the volume)

Scan order, ties and NaN as in 2-D: the in-input taps are visited depth by depth, row by
row, left to right from m = -inf, and a tap replaces the running maximum when
`(value > m) || isnan(value)`: of equal maxima the first wins, the last NaN of a window is
reported, a window of -inf values reports its first in-input tap. The index starts at
t0 * H * W + h0 * W + w0 (the first non-negative tap of each axis, before clipping), so a
dilated window stepping over the whole input gives -inf and an index past the volume, as
PyTorch reports it.

Counts: pool_compares, one per in-input tap compared with the running maximum.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def max_pool3d(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
               dilation_d, dilation_h, dilation_w, y, indices):
    # x:       (N, C, D, H, W)
    # y:       (N, C, OD, OH, OW)   overwritten with the maxima
    # indices: (N, C, OD, OH, OW)   int64, overwritten with t * H * W + h * W + w of each maximum
    N, C, D, H, W = x.shape
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    minus_inf = x.dtype.type(-np.inf)
    compares = 0
    for n in range(N):
        for c in range(C):
            for k in range(OD):
                t_start = k * stride_d - pad_d
                t_end = min(t_start + (kernel_d - 1) * dilation_d + 1, D)
                while t_start < 0:  # step over the taps in the front padding
                    t_start += dilation_d
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
                        best_index = (t_start * H + h_start) * W + w_start
                        for t in range(t_start, t_end, dilation_d):
                            for h in range(h_start, h_end, dilation_h):
                                for w in range(w_start, w_end, dilation_w):
                                    value = x[n, c, t, h, w]
                                    if value > best or np.isnan(value):
                                        best = value
                                        best_index = (t * H + h) * W + w
                                    compares += 1
                        y[n, c, k, i, j] = best
                        indices[n, c, k, i, j] = best_index
    return compares
