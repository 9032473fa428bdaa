"""Reference mean over a set of dimensions, as `torch.mean(x, dim)`.

The caller moves the reduced dimensions last and merges them, so the input is a matrix of
R rows (one per output element) and m columns (the values each output averages):

    y[r] = (1 / m) * sum_{k < m} x[r, k]

Each row is summed from 0, left to right, then divided by m converted to the working dtype.
An empty row (m = 0) gives 0 / 0 = NaN, as in PyTorch.

Counts: pool_adds, one per input value added; pool_divides, one per output element.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def mean(x, y):
    # x: (R, m)   the input, reduced dimensions last and merged
    # y: (R,)     overwritten
    R, m = x.shape
    adds = 0
    divides = 0
    for r in range(R):
        total = x.dtype.type(0)
        for k in range(m):
            total += x[r, k]
            adds += 1
        if m == 0:
            y[r] = x.dtype.type(np.nan)  # 0 / 0 (Numba would raise ZeroDivisionError)
        else:
            y[r] = total / x.dtype.type(m)
        divides += 1
    return adds, divides
