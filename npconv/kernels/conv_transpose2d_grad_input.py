"""Gradient of conv_transpose2d with respect to its input: a convolution of gy.

The forward (npconv/kernels/conv_transpose2d.py) scatters

    y_full[n, g*Cog + o, i*sh + p*dh, j*sw + q*dw] += x[n, c, i, j] * w[c, o, p, q]

and crops y = y_full[..., pad_h : pad_h + OH, pad_w : pad_w + OW]. So the gradient of the
uncropped result is gy put back in its window with zeros around it (gy_full, built by
the caller), and x[n, c, i, j] collects it from every position it was scattered to:

    gx[n, c, i, j] = sum_{o, p, q} gy_full[n, g*Cog + o, i*sh + p*dh, j*sw + q*dw] * w[c, o, p, q]

(g = c // (C_in / groups)): conv2d of gy_full with the weight read as (C_in, Cog, KH, KW),
the forward's index set (n, c, i, j, o, p, q) gathered instead of scattered. Products with
the zeros around gy's window (the cropped positions) are computed too, as the forward
computed the values that were cropped.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate, N * C_in * H * W * Cog * KH * KW
    inside_macs   those that read gy inside its window
"""

from numba import njit


@njit(cache=True)
def conv_transpose2d_grad_input(gy_full, w, gx, groups, sh, sw, dh, dw, pad_h, pad_w, OH, OW):
    # gy_full: (N, C_out, full_h, full_w)   gy in rows [pad_h, pad_h + OH), columns [pad_w, pad_w + OW), 0 elsewhere
    # w:       (C_in, Cog, KH, KW)          Cog = C_out / groups
    # gx:      (N, C_in, H, W)              overwritten
    N, C_in, H, W = gx.shape
    Cog, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    in_per_group = C_in // groups
    macs = 0
    inside_macs = 0
    for n in range(N):
        for c in range(C_in):
            g = c // in_per_group
            for i in range(H):
                for j in range(W):
                    gx[n, c, i, j] = 0
            for o in range(Cog):
                for p in range(KH):
                    for q in range(KW):
                        w_copq = w[c, o, p, q]
                        for i in range(H):
                            row = i * sh + p * dh
                            row_inside = pad_h <= row < pad_h + OH
                            for j in range(W):
                                col = j * sw + q * dw
                                gx[n, c, i, j] += gy_full[n, g * Cog + o, row, col] * w_copq
                                macs += 1
                                inside_macs += row_inside and pad_w <= col < pad_w + OW
    return macs, inside_macs
