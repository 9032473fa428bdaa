"""Reference ReLU (Nair & Hinton 2010): y = max(x, 0), element by element.

NaN stays NaN (the comparison `NaN < 0` is false), as in PyTorch.

Counts: activation_compares, one per element.
"""

from numba import njit


@njit(cache=True)
def relu(x, y):
    # x, y: (L,)   the input and output flattened; y overwritten
    zero = x.dtype.type(0)
    compares = 0
    for k in range(x.shape[0]):
        value = x[k]
        if value < zero:
            value = zero
        y[k] = value
        compares += 1
    return compares
