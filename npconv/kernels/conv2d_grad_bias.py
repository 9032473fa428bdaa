"""Gradient of a per-channel bias: b[o] is added to every output element of channel o, so

    gb[o] = sum_{n, i, j} gy[n, o, i, j]

the same for conv2d and conv_transpose2d (and any layer that adds b[o] to a (N, C, H, W)
output). The sum runs in the input's dtype, in the order n, i, j.

Counts, incremented where the work happens:
    adds          one per gradient element added, N * C_out * OH * OW
"""

from numba import njit


@njit(cache=True)
def conv2d_grad_bias(gy, gb):
    # gy: (N, C_out, OH, OW)
    # gb: (C_out,)              overwritten
    N, C_out, OH, OW = gy.shape
    adds = 0
    for o in range(C_out):
        gb[o] = 0
        for n in range(N):
            for i in range(OH):
                for j in range(OW):
                    gb[o] += gy[n, o, i, j]
                    adds += 1
    return adds
