"""Reference adaptive average pooling, with PyTorch's window rule.

Output cell (i, j) of an OH x OW output averages the input window

    rows    start_h(i) = floor(i * H / OH)  <=  h  <  end_h(i) = ceil((i + 1) * H / OH)
    columns start_w(j) = floor(j * W / OW)  <=  w  <  end_w(j) = ceil((j + 1) * W / OW)

(aten/src/ATen/native/AdaptiveAveragePooling.cpp, start_index / end_index). Windows may
overlap when OH does not divide H, and every window is non-empty when H >= 1.

    y[n, c, i, j] = (1 / |window|) * sum_{h, w in window} x[n, c, h, w]

Counts: pool_adds, one per input value added into a window sum; pool_divides, one per
output element.
"""

from numba import njit


@njit(cache=True)
def adaptive_avg_pool2d(x, y):
    # x: (N, C, H, W)
    # y: (N, C, OH, OW)   overwritten
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    adds = 0
    divides = 0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                start_h = (i * H) // OH
                end_h = ((i + 1) * H + OH - 1) // OH
                for j in range(OW):
                    start_w = (j * W) // OW
                    end_w = ((j + 1) * W + OW - 1) // OW
                    total = x.dtype.type(0)
                    for h in range(start_h, end_h):
                        for w in range(start_w, end_w):
                            total += x[n, c, h, w]
                            adds += 1
                    y[n, c, i, j] = total / x.dtype.type((end_h - start_h) * (end_w - start_w))
                    divides += 1
    return adds, divides
