"""Concatenation of two arrays along the channel axis (torch.cat((a, b), dim=1)), as
ShuffleNetV2's unit joins its two branches (Ma et al. 2018, Fig. 3(c), (d)):

    y[n, c, l]      = a[n, c, l]      c < Ca
    y[n, Ca + c, l] = b[n, c, l]      c < Cb

Its gradient is the split of gy into the two channel ranges (views: no work), and the
gradient of a channel split (x1, x2 = x[:, :Ca], x[:, Ca:]) is this concatenation of the
two parts' gradients.

Counts: copies, one per element written.
"""

from numba import njit


@njit(cache=True)
def cat_channels(a, b, y):
    # a: (N, Ca, L)   b: (N, Cb, L)   y: (N, Ca + Cb, L) overwritten   L = the product of the spatial sizes
    N, Ca, L = a.shape
    Cb = b.shape[1]
    copies = 0
    for n in range(N):
        for c in range(Ca):
            for l in range(L):
                y[n, c, l] = a[n, c, l]
                copies += 1
        for c in range(Cb):
            for l in range(L):
                y[n, Ca + c, l] = b[n, c, l]
                copies += 1
    return copies
