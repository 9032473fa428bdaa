"""Reference ReLU6 (Krizhevsky 2010; MobileNet's activation): y = min(max(x, 0), 6).

Two comparisons per element, both always made. NaN stays NaN (both comparisons are false),
as in PyTorch's `hardtanh(x, 0, 6)`.

Counts: activation_compares, two per element.
"""

from numba import njit


@njit(cache=True)
def relu6(x, y):
    # x, y: (L,)   the input and output flattened; y overwritten
    zero = x.dtype.type(0)
    six = x.dtype.type(6)
    compares = 0
    for k in range(x.shape[0]):
        value = x[k]
        if value < zero:
            value = zero
        if value > six:
            value = six
        y[k] = value
        compares += 2
    return compares
