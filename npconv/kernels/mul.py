"""Reference element-wise multiplication: y = a * b, over operands already broadcast to one
shape and flattened (squeeze-excitation's (N, C, H, W) * (N, C, 1, 1) arrives here as two
(L,) arrays).

Counts: muls, one per element.
"""

from numba import njit


@njit(cache=True)
def mul(a, b, y):
    # a, b, y: (L,)   the operands and the product, flattened; y overwritten
    muls = 0
    for k in range(a.shape[0]):
        y[k] = a[k] * b[k]
        muls += 1
    return muls
