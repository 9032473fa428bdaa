"""Gradient of channel shuffle (channel_shuffle.py, Zhang et al. 2018, Sec. 3.1).

The forward only moves values, y[n, j*g + i, l] = x[n, i*(C/g) + j, l], a permutation of
the channels; each input channel reaches exactly one output channel, so its gradient is
the gradient of that output channel, the inverse permutation:

    gx[n, i * (C / g) + j, l] = gy[n, j * g + i, l]      i < g, j < C / g

(which is itself a shuffle with C/g groups). No arithmetic.

Counts: shuffle_grad_copies, one per element copied (the forward's shuffle_copies).
"""

from numba import njit


@njit(cache=True)
def channel_shuffle_backward(gy, gx, groups):
    # gy, gx: (N, C, L)   dL/dy and dL/dx, L = the product of the spatial sizes; gx overwritten
    N, C, L = gy.shape
    per_group = C // groups
    copies = 0
    for n in range(N):
        for i in range(groups):
            for j in range(per_group):
                for l in range(L):
                    gx[n, i * per_group + j, l] = gy[n, j * groups + i, l]
                    copies += 1
    return copies
