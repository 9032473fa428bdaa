"""Gradients of the fully connected layer y = x W^T + b, from its forward

    y[n, o] = b[o] + sum_{k < IN} x[n, k] * w[o, k]

Each product x[n, k] * w[o, k] sends gy[n, o] back along its two factors:

    gx[n, k] = sum_{o < OUT} gy[n, o] * w[o, k]        grad_input  = gy W
    gw[o, k] = sum_{n < N}   gy[n, o] * x[n, k]        grad_weight = gy^T x
    gb[o]    = sum_{n < N}   gy[n, o]                  grad_bias

Both products run over the forward's index set (n, o, k), one multiply-accumulate per
index, so each costs the forward's N * OUT * IN MACs. Sums run in the input's dtype, in
the order written.

Counts: macs (one per multiply-accumulate) for grad_input and grad_weight; adds (one per
gy element) for grad_bias.
"""

from numba import njit


@njit(cache=True)
def linear_grad_input(gy, w, gx):
    # gy: (N, OUT)   w: (OUT, IN)   gx: (N, IN) overwritten
    N, OUT = gy.shape
    IN = w.shape[1]
    macs = 0
    for n in range(N):
        for k in range(IN):
            acc = gy.dtype.type(0)
            for o in range(OUT):
                acc += gy[n, o] * w[o, k]
                macs += 1
            gx[n, k] = acc
    return macs


@njit(cache=True)
def linear_grad_weight(gy, x, gw):
    # gy: (N, OUT)   x: (N, IN)   gw: (OUT, IN) overwritten
    N, OUT = gy.shape
    IN = x.shape[1]
    macs = 0
    for o in range(OUT):
        for k in range(IN):
            acc = gy.dtype.type(0)
            for n in range(N):
                acc += gy[n, o] * x[n, k]
                macs += 1
            gw[o, k] = acc
    return macs


@njit(cache=True)
def linear_grad_bias(gy, gb):
    # gy: (N, OUT)   gb: (OUT,) overwritten
    N, OUT = gy.shape
    adds = 0
    for o in range(OUT):
        acc = gy.dtype.type(0)
        for n in range(N):
            acc += gy[n, o]
            adds += 1
        gb[o] = acc
    return adds
