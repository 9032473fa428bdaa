"""Reference element-wise subtraction: y = a - b, over operands already broadcast to one
shape and flattened (PyTorch's sub(a, b, alpha) = a - alpha * b; the caller scales b first).

Counts: subs, one per element.
"""

from numba import njit


@njit(cache=True)
def sub(a, b, y):
    # a, b, y: (L,)   the operands and the difference, flattened; y overwritten
    subs = 0
    for k in range(a.shape[0]):
        y[k] = a[k] - b[k]
        subs += 1
    return subs
