"""Reference fully connected layer: y = x W^T + b.

    y[n, o] = b[o] + sum_{k < IN} x[n, k] * w[o, k]

Counts: macs, one per multiply-accumulate; bias_adds, one per output that receives b[o].
"""

from numba import njit


@njit(cache=True)
def linear(x, w, b, has_bias, y):
    # x: (N, IN)   w: (OUT, IN)   b: (OUT,), read only when has_bias
    # y: (N, OUT)  overwritten
    N, IN = x.shape
    OUT = w.shape[0]
    macs = 0
    bias_adds = 0
    for n in range(N):
        for o in range(OUT):
            acc = x.dtype.type(0)
            for k in range(IN):
                acc += x[n, k] * w[o, k]
                macs += 1
            if has_bias:
                acc += b[o]
                bias_adds += 1
            y[n, o] = acc
    return macs, bias_adds
