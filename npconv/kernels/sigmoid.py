"""Reference logistic sigmoid, as PyTorch's CPU kernel evaluates it:

    y = 1 / (1 + exp(-x))

in the input's own precision: for float32 every operation (negation, exp, add, reciprocal)
is a float32 operation. The constant 1 is made of x's dtype on purpose: in Numba a Python
number in float32 arithmetic would promote it to float64. Overflow is harmless: exp(-x) = inf
for very negative x gives y = 1 / inf = 0; x = +-inf gives 1 and 0 exactly; NaN stays NaN.

Counts: sigmoid_exps, one per element (each: one exp, one add, one reciprocal).
"""

import math

from numba import njit


@njit(cache=True)
def sigmoid(x, y):
    # x, y: (L,)   the input and output flattened; y overwritten
    one = x.dtype.type(1)
    exps = 0
    for k in range(x.shape[0]):
        y[k] = one / (one + math.exp(-x[k]))
        exps += 1
    return exps
