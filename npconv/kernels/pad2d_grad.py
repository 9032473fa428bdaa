"""Gradient of padding: fold the gradient of the padded array back onto the input.

pad2d (npconv/kernels/pad2d.py) copies

    x_pad[n, c, r, s] = x[n, c, source(r - pad_top), source(s - pad_left)]   (or 0)

so x[n, c, a, b] receives the gradient of every padded position that copies it:

    gx[n, c, a, b] = sum over (r, s) with source(r - pad_top) = a and source(s - pad_left) = b
                     of gx_pad[n, c, r, s]

With zeros padding the border copies nothing and is dropped (gx is the interior of
gx_pad). With reflect, replicate and circular padding each border position adds its
gradient to the input pixel it copied: an edge pixel under replicate padding collects a
whole strip of the border.

Counts, incremented where the work happens:
    fold_adds     one per border gradient added onto an input pixel (0 for zeros padding)
"""

from numba import njit

from .pad2d import source_index


@njit(cache=True)
def pad2d_grad(gx_pad, gx, pad_top, pad_left, mode):
    # gx_pad: (N, C, H + pad_top + pad_bottom, W + pad_left + pad_right)
    # gx:     (N, C, H, W)      overwritten
    N, C, H, W = gx.shape
    HP, WP = gx_pad.shape[2], gx_pad.shape[3]
    fold_adds = 0
    for n in range(N):
        for c in range(C):
            for a in range(H):
                for b in range(W):
                    gx[n, c, a, b] = gx_pad[n, c, a + pad_top, b + pad_left]
            for r in range(HP):
                row = source_index(r - pad_top, H, mode)
                for s in range(WP):
                    inside = pad_top <= r < pad_top + H and pad_left <= s < pad_left + W
                    col = source_index(s - pad_left, W, mode)
                    if inside or row < 0 or col < 0:
                        continue
                    gx[n, c, row, col] += gx_pad[n, c, r, s]
                    fold_adds += 1
    return fold_adds
