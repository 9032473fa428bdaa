"""Gradient of conv2d with respect to its (padded) input: a transposed convolution.

The forward (npconv/kernels/conv2d.py) reads

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

so x_pad[n, g*Cg + c, r, s] reaches y[n, o, i, j] through w[o, c, p, q] exactly when
r = i*sh + p*dh and s = j*sw + q*dw, and by the chain rule

    gx_pad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] += gy[n, o, i, j] * w[o, c, p, q]

summed over every (n, o, i, j, c, p, q): the forward's own index set, each index one
multiply-accumulate, now scattered instead of gathered. This is conv_transpose2d of gy
with the same weight (npconv/kernels/conv_transpose2d.py, there called with x = gy):
the same loops, in the same order. What happens to the border of gx_pad depends on the
padding mode and is done afterwards by npconv/kernels/pad2d_grad.py.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate, N * C_out * OH * OW * Cg * KH * KW
    padding_macs  those whose target lies in the padding border of gx_pad
"""

from numba import njit


@njit(cache=True)
def conv2d_grad_input(gy, w, gx_pad, groups, sh, sw, dh, dw, pad_top, pad_left, H, W):
    # gy:     (N, C_out, OH, OW)        gradient of the loss with respect to y
    # w:      (C_out, Cg, KH, KW)       Cg = C_in / groups
    # gx_pad: (N, C_in, H + pad_top + pad_bottom, W + pad_left + pad_right)   overwritten
    # H, W:   the unpadded input size, to tell border targets from input targets
    N, C_out, OH, OW = gy.shape
    Cg, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    out_per_group = C_out // groups
    macs = 0
    padding_macs = 0
    gx_pad[...] = 0
    for n in range(N):
        for o in range(C_out):
            g = o // out_per_group
            for c in range(Cg):
                for p in range(KH):
                    for q in range(KW):
                        w_ocpq = w[o, c, p, q]
                        for i in range(OH):
                            row = i * sh + p * dh
                            row_in_border = row < pad_top or row >= pad_top + H
                            for j in range(OW):
                                col = j * sw + q * dw
                                gx_pad[n, g * Cg + c, row, col] += gy[n, o, i, j] * w_ocpq
                                macs += 1
                                padding_macs += row_in_border or col < pad_left or col >= pad_left + W
    return macs, padding_macs
