"""Reference element-wise addition, the residual (shortcut) connection of He et al. 2016
and of MobileNetV2's inverted residual blocks: y = a + b.

Counts: residual_adds, one per element.
"""

from numba import njit


@njit(cache=True)
def add(a, b, y):
    # a, b, y: (L,)   the operands and the sum, flattened; y overwritten
    adds = 0
    for k in range(a.shape[0]):
        y[k] = a[k] + b[k]
        adds += 1
    return adds
