"""Gradient of inverted dropout (dropout.py), y[k] = x[k] * scale where keep[k], else 0:
with the forward's own keep-mask, dy[k]/dx[k] is scale where the element was kept and 0
where it was dropped, so

    gx[k] = gy[k] * scale   if keep[k]
    gx[k] = 0               otherwise,          scale = 1 / (1 - p)

The zero is a selection, not a product: it stays zero even where gy is NaN or Inf, as in
PyTorch (whose backward multiplies gy by the saved mask times scale, so it would give NaN
there; npconv's dropout is not PyTorch's random stream anyway).

Counts: dropout_grad_multiplies, one per kept element (the forward's dropout_multiplies).
"""

from numba import njit


@njit(cache=True)
def dropout_backward(gy, keep, scale, gx):
    # gy, gx: (L,)   keep: (L,) booleans, the forward's mask   scale: a scalar of gy's dtype; gx overwritten
    zero = gy.dtype.type(0)
    multiplies = 0
    for k in range(gy.shape[0]):
        if keep[k]:
            gx[k] = gy[k] * scale
            multiplies += 1
        else:
            gx[k] = zero
    return multiplies
