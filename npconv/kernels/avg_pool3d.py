"""Reference 3-D average pooling: the 2-D kernel (avg_pool2d.py) with a depth axis, PyTorch's
divisor rule (aten/src/ATen/native/cpu/AvgPoolKernel.cpp, cpu_avg_pool3d).

Output cell (k, i, j) of volume (n, c) averages the window of K_d x K_h x K_w taps starting
at (k * s_d - p_d, i * s_h - p_h, j * s_w - p_w), clipped twice per axis:

    to the padded input:  t0 = k * s_d - p_d,   t1 = min(t0 + K_d, D + p_d)        (pool_d = t1 - t0)
    to the input:         t0' = max(t0, 0),      t1' = min(t1, D)
    (the same for rows and columns), and

    y[n, c, k, i, j] = (1 / Q) * sum_{t0' <= t < t1', h0' <= h < h1', w0' <= w < w1'} x[n, c, t, h, w]

    Q = divisor_override                              when one is given (any non-zero int)
      = pool_d * pool_h * pool_w                      when count_include_pad
      = (t1' - t0') * (h1' - h0') * (w1' - w0')       otherwise

The sum runs depth by depth, row by row, from 0, and is then divided by Q converted to the
working dtype. A window with no in-input tap would give 0 without a divide; PyTorch's
argument rules leave none.

Counts: pool_adds, one per input value added into a window sum; pool_divides, one per
output element divided.
"""

from numba import njit


@njit(cache=True)
def avg_pool3d(x, kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_d, pad_h, pad_w,
               count_include_pad, divisor_override, y):
    # x: (N, C, D, H, W)
    # y: (N, C, OD, OH, OW)   overwritten
    # divisor_override: 0 for "none" (the wrapper rejects an override of 0)
    N, C, D, H, W = x.shape
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    adds = 0
    divides = 0
    for n in range(N):
        for c in range(C):
            for k in range(OD):
                t_start = k * stride_d - pad_d
                t_end = min(t_start + kernel_d, D + pad_d)  # clipped to the padded input
                pool_d = t_end - t_start
                t_start = max(t_start, 0)  # clipped to the input
                t_end = min(t_end, D)
                for i in range(OH):
                    h_start = i * stride_h - pad_h
                    h_end = min(h_start + kernel_h, H + pad_h)
                    pool_h = h_end - h_start
                    h_start = max(h_start, 0)
                    h_end = min(h_end, H)
                    for j in range(OW):
                        w_start = j * stride_w - pad_w
                        w_end = min(w_start + kernel_w, W + pad_w)
                        pool_w = w_end - w_start
                        w_start = max(w_start, 0)
                        w_end = min(w_end, W)
                        if t_start >= t_end or h_start >= h_end or w_start >= w_end:
                            y[n, c, k, i, j] = x.dtype.type(0)
                            continue
                        if divisor_override != 0:
                            divisor = divisor_override
                        elif count_include_pad:
                            divisor = pool_d * pool_h * pool_w
                        else:
                            divisor = (t_end - t_start) * (h_end - h_start) * (w_end - w_start)
                        total = x.dtype.type(0)
                        for t in range(t_start, t_end):
                            for h in range(h_start, h_end):
                                for w in range(w_start, w_end):
                                    total += x[n, c, t, h, w]
                                    adds += 1
                        y[n, c, k, i, j] = total / x.dtype.type(divisor)
                        divides += 1
    return adds, divides
