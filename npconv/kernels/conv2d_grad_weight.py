"""Gradient of conv2d with respect to its weight: a correlation of the input with gy.

From the forward

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

w[o, c, p, q] multiplies one input value for every output element of channel o, so

    gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x_pad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw]

(g = o // (C_out / groups)): for each weight a sum of N * OH * OW products, a
convolution of x_pad with gy used as the filter, strided by the dilation and dilated by
the stride. Again the forward's index set, one multiply-accumulate per index; the sum
runs in the input's dtype, in the order n, i, j.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate, N * C_out * OH * OW * Cg * KH * KW
    padding_macs  those whose x_pad value lies in the padding border
"""

from numba import njit


@njit(cache=True)
def conv2d_grad_weight(gy, x_pad, gw, groups, sh, sw, dh, dw, pad_top, pad_left, H, W):
    # gy:    (N, C_out, OH, OW)
    # x_pad: (N, C_in, H + pad_top + pad_bottom, W + pad_left + pad_right)
    # gw:    (C_out, Cg, KH, KW)        overwritten; Cg = C_in / groups
    # H, W:  the unpadded input size, to tell border taps from input taps
    N, C_out, OH, OW = gy.shape
    Cg, KH, KW = gw.shape[1], gw.shape[2], gw.shape[3]
    out_per_group = C_out // groups
    macs = 0
    padding_macs = 0
    for o in range(C_out):
        g = o // out_per_group
        for c in range(Cg):
            for p in range(KH):
                for q in range(KW):
                    gw[o, c, p, q] = 0
                    for n in range(N):
                        for i in range(OH):
                            row = i * sh + p * dh
                            row_in_border = row < pad_top or row >= pad_top + H
                            for j in range(OW):
                                col = j * sw + q * dw
                                gw[o, c, p, q] += gy[n, o, i, j] * x_pad[n, g * Cg + c, row, col]
                                macs += 1
                                padding_macs += row_in_border or col < pad_left or col >= pad_left + W
    return macs, padding_macs
