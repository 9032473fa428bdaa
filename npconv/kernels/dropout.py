"""Reference inverted dropout (Srivastava et al. 2014), applied in training mode only.

Each element is kept with probability 1 - p and then scaled by 1 / (1 - p), so that the
expected output equals the input; dropped elements become 0:

    y[k] = x[k] * scale   if keep[k]   else 0,       scale = 1 / (1 - p)

The keep mask is drawn by the caller (from a seeded NumPy generator), so this loop is
deterministic. Counts: dropout_multiplies, one per kept element scaled.
"""

from numba import njit


@njit(cache=True)
def dropout(x, keep, scale, y):
    # x, y: (L,)   keep: (L,) booleans   scale: a scalar of x's dtype; y overwritten
    zero = x.dtype.type(0)
    multiplies = 0
    for k in range(x.shape[0]):
        if keep[k]:
            y[k] = x[k] * scale
            multiplies += 1
        else:
            y[k] = zero
    return multiplies
