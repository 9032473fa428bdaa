"""Reference 3-D adaptive average pooling: the 2-D kernel (adaptive_avg_pool2d.py) with a
depth axis, PyTorch's window rule on each axis (aten/src/ATen/native/AdaptiveAveragePooling3d.cpp):

    depth   start_d(k) = floor(k * D / OD)  <=  d  <  end_d(k) = ceil((k + 1) * D / OD)
    rows    start_h(i) = floor(i * H / OH)  <=  h  <  end_h(i) = ceil((i + 1) * H / OH)
    columns start_w(j) = floor(j * W / OW)  <=  w  <  end_w(j) = ceil((j + 1) * W / OW)

    y[n, c, k, i, j] = (1 / |window|) * sum_{d, h, w in window} x[n, c, d, h, w]

Counts: pool_adds, one per input value added into a window sum; pool_divides, one per
output element.
"""

from numba import njit


@njit(cache=True)
def adaptive_avg_pool3d(x, y):
    # x: (N, C, D, H, W)
    # y: (N, C, OD, OH, OW)   overwritten
    N, C, D, H, W = x.shape
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    adds = 0
    divides = 0
    for n in range(N):
        for c in range(C):
            for k in range(OD):
                start_d = (k * D) // OD
                end_d = ((k + 1) * D + OD - 1) // OD
                for i in range(OH):
                    start_h = (i * H) // OH
                    end_h = ((i + 1) * H + OH - 1) // OH
                    for j in range(OW):
                        start_w = (j * W) // OW
                        end_w = ((j + 1) * W + OW - 1) // OW
                        total = x.dtype.type(0)
                        for d in range(start_d, end_d):
                            for h in range(start_h, end_h):
                                for w in range(start_w, end_w):
                                    total += x[n, c, d, h, w]
                                    adds += 1
                        size = (end_d - start_d) * (end_h - start_h) * (end_w - start_w)
                        y[n, c, k, i, j] = total / x.dtype.type(size)
                        divides += 1
    return adds, divides
