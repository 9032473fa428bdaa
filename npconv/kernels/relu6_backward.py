"""Gradient of ReLU6, y = min(max(x, 0), 6): dy/dx is 1 strictly between the two corners
and 0 outside them, so

    gx = gy   where 0 < x < 6
    gx = 0    where x <= 0 or x >= 6

At the corners x = 0 and x = 6 the derivative does not exist; PyTorch's
`hardtanh_backward(grad, x, 0, 6)` (what nn.ReLU6 runs) takes 0 there, and so does this
kernel. A NaN input fails both comparisons and passes gy through, as in PyTorch. The zero
is a zero even where gy is NaN or Inf: it is a selection, not a product.

Counts: activation_compares, two per element, both always made.
"""

from numba import njit


@njit(cache=True)
def relu6_backward(x, gy, gx):
    # x, gy, gx: (L,)   the forward's input, dL/dy and dL/dx, flattened; gx overwritten
    zero = x.dtype.type(0)
    six = x.dtype.type(6)
    compares = 0
    for k in range(x.shape[0]):
        at_or_below_zero = x[k] <= zero
        at_or_above_six = x[k] >= six
        compares += 2
        if at_or_below_zero or at_or_above_six:
            gx[k] = zero
        else:
            gx[k] = gy[k]
    return compares
