"""Gradient of adaptive average pooling (PyTorch's window rule, as the forward in
adaptive_avg_pool2d.py):

    y[n, c, i, j] = (1 / |window(i, j)|) * sum_{h, w in window(i, j)} x[n, c, h, w]
    window(i, j)  = rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, columns likewise

Each x in a window receives 1 / |window| of that output's gradient; windows overlap when
OH does not divide H, and then an x collects from every window it lies in:

    gx[n, c, h, w] = sum over the windows (i, j) containing (h, w) of gy[n, c, i, j] / |window(i, j)|

computed as the forward's loops run backwards: divide gy once per window, then scatter-add
the share onto every position of the window. Rows no window covers cannot occur (the
windows cover 0..H-1).

Counts: pool_grad_divides, one per output element (its share); pool_grad_adds, one per
share added onto an input position = the forward's pool_adds.
"""

from numba import njit


@njit(cache=True)
def adaptive_avg_pool2d_backward(gy, gx):
    # gy: (N, C, OH, OW)   dL/dy
    # gx: (N, C, H, W)     overwritten with dL/dx
    N, C, OH, OW = gy.shape
    H, W = gx.shape[2], gx.shape[3]
    zero = gy.dtype.type(0)
    adds = 0
    divides = 0
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    gx[n, c, h, w] = zero
            for i in range(OH):
                start_h = (i * H) // OH
                end_h = ((i + 1) * H + OH - 1) // OH
                for j in range(OW):
                    start_w = (j * W) // OW
                    end_w = ((j + 1) * W + OW - 1) // OW
                    share = gy[n, c, i, j] / gy.dtype.type((end_h - start_h) * (end_w - start_w))
                    divides += 1
                    for h in range(start_h, end_h):
                        for w in range(start_w, end_w):
                            gx[n, c, h, w] += share
                            adds += 1
    return adds, divides
