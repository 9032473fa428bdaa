"""Reference element-wise true division: y = a / b, over operands already broadcast to one
shape and flattened. IEEE semantics: x / 0 is +-inf (the sign of x times that of the zero),
0 / 0 and inf / inf are NaN.

Compiled with Numba's "numpy" error model: its default ("python") would raise
ZeroDivisionError for a zero divisor instead of returning +-inf or NaN.

Counts: divides, one per element.
"""

from numba import njit


@njit(cache=True, error_model="numpy")
def div(a, b, y):
    # a, b, y: (L,)   dividend, divisor and quotient, flattened; y overwritten
    divides = 0
    for k in range(a.shape[0]):
        y[k] = a[k] / b[k]
        divides += 1
    return divides
