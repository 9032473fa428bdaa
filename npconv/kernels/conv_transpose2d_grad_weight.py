"""Gradient of conv_transpose2d with respect to its weight.

From the forward scatter (npconv/kernels/conv_transpose2d.py)

    y_full[n, g*Cog + o, i*sh + p*dh, j*sw + q*dw] += x[n, c, i, j] * w[c, o, p, q]

and the crop to y's window, w[c, o, p, q] meets every input pixel of channel c once:

    gw[c, o, p, q] = sum_{n, i, j} x[n, c, i, j] * gy_full[n, g*Cog + o, i*sh + p*dh, j*sw + q*dw]

with gy_full = gy in its window and zeros around it (built by the caller), g = c // (C_in
/ groups). A sum of N * H * W products per weight; the forward's index set again. The sum
runs in the input's dtype, in the order n, i, j.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate, N * C_in * H * W * Cog * KH * KW
    inside_macs   those that read gy inside its window
"""

from numba import njit


@njit(cache=True)
def conv_transpose2d_grad_weight(x, gy_full, gw, groups, sh, sw, dh, dw, pad_h, pad_w, OH, OW):
    # x:       (N, C_in, H, W)
    # gy_full: (N, C_out, full_h, full_w)   gy in rows [pad_h, pad_h + OH), columns [pad_w, pad_w + OW), 0 elsewhere
    # gw:      (C_in, Cog, KH, KW)          overwritten; Cog = C_out / groups
    N, C_in, H, W = x.shape
    Cog, KH, KW = gw.shape[1], gw.shape[2], gw.shape[3]
    in_per_group = C_in // groups
    macs = 0
    inside_macs = 0
    for c in range(C_in):
        g = c // in_per_group
        for o in range(Cog):
            for p in range(KH):
                for q in range(KW):
                    gw[c, o, p, q] = 0
                    for n in range(N):
                        for i in range(H):
                            row = i * sh + p * dh
                            row_inside = pad_h <= row < pad_h + OH
                            for j in range(W):
                                col = j * sw + q * dw
                                gw[c, o, p, q] += x[n, c, i, j] * gy_full[n, g * Cog + o, row, col]
                                macs += 1
                                inside_macs += row_inside and pad_w <= col < pad_w + OW
    return macs, inside_macs
