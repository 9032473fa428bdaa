"""Reference 2-D average pooling, with PyTorch's divisor rule.

Output cell (i, j) of plane (n, c) averages the window of K_h x K_w taps starting at
(i * s_h - p_h, j * s_w - p_w), clipped twice (aten/src/ATen/native/cpu/AvgPoolKernel.cpp,
cpu_avg_pool):

    to the padded input:  h0 = i * s_h - p_h,   h1 = min(h0 + K_h, H + p_h)        (pool_h = h1 - h0)
    to the input:         h0' = max(h0, 0),      h1' = min(h1, H)
    (the same for columns), and

    y[n, c, i, j] = (1 / D) * sum_{h0' <= h < h1', w0' <= w < w1'} x[n, c, h, w]

    D = divisor_override                        when one is given (any non-zero int, even negative)
      = pool_h * pool_w                         when count_include_pad (padded taps count, but
                                                a ceil_mode window past the padded end is cut)
      = (h1' - h0') * (w1' - w0')               otherwise (only the in-input taps count)

The sum runs row by row from 0 and is then divided by D converted to the working dtype (a
divisor above 2^24 rounds in float32, as in PyTorch). A window with no in-input tap would
give 0 without a divide; the output-size rule (the last window starts inside the input or
the left padding, and p <= K / 2) leaves none.

Counts: pool_adds, one per input value added into a window sum; pool_divides, one per
output element divided.
"""

from numba import njit


@njit(cache=True)
def avg_pool2d(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad, divisor_override, y):
    # x: (N, C, H, W)
    # y: (N, C, OH, OW)   overwritten
    # divisor_override: 0 for "none" (the wrapper rejects an override of 0)
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    adds = 0
    divides = 0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                h_start = i * stride_h - pad_h
                h_end = min(h_start + kernel_h, H + pad_h)  # clipped to the padded input
                pool_h = h_end - h_start
                h_start = max(h_start, 0)  # clipped to the input
                h_end = min(h_end, H)
                for j in range(OW):
                    w_start = j * stride_w - pad_w
                    w_end = min(w_start + kernel_w, W + pad_w)
                    pool_w = w_end - w_start
                    w_start = max(w_start, 0)
                    w_end = min(w_end, W)
                    if h_start >= h_end or w_start >= w_end:
                        y[n, c, i, j] = x.dtype.type(0)
                        continue
                    if divisor_override != 0:
                        divisor = divisor_override
                    elif count_include_pad:
                        divisor = pool_h * pool_w
                    else:
                        divisor = (h_end - h_start) * (w_end - w_start)
                    total = x.dtype.type(0)
                    for h in range(h_start, h_end):
                        for w in range(w_start, w_end):
                            total += x[n, c, h, w]
                            adds += 1
                    y[n, c, i, j] = total / x.dtype.type(divisor)
                    divides += 1
    return adds, divides
