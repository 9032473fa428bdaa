"""Gradient of ReLU, y = max(x, 0): dy/dx is 1 for x > 0 and 0 for x < 0, so

    gx = gy   where x > 0
    gx = 0    where x <= 0

At x = 0 PyTorch's `threshold_backward(grad, y, 0)` takes 0, and so does this kernel
(it tests y <= 0, which holds exactly when x <= 0). A NaN input passes gy through, as in
PyTorch; the zero is a selection, so it stays zero even where gy is NaN.

Counts: activation_compares, one per element.
"""

from numba import njit


@njit(cache=True)
def relu_backward(x, gy, gx):
    # x, gy, gx: (L,)   the forward's input, dL/dy and dL/dx, flattened; gx overwritten
    zero = x.dtype.type(0)
    compares = 0
    for k in range(x.shape[0]):
        compares += 1
        if x[k] <= zero:
            gx[k] = zero
        else:
            gx[k] = gy[k]
    return compares
