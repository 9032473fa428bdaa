"""Reference 2-D transposed convolution, written as the scatter it is.

Every input pixel stamps a weighted copy of the kernel onto the output:

    y_full[n, g*Cog + o, i*sh + p*dh, j*sw + q*dw] += x[n, c, i, j] * w[c, o, p, q]

for every input element x[n, c, i, j], every o < Cog = C_out / groups and every tap
(p, q), with g = c // Cig the group of input channel c (Cig = C_in / groups). y_full is
the uncropped result, (H-1)*sh + dh*(KH-1) + 1 rows (plus output_padding rows, which no
tap reaches). The output is the window of y_full that starts `padding` rows and columns
in, OH x OW in size, plus the bias:

    y[n, o, i, j] = b[o] + y_full[n, o, i + pad_h, j + pad_w]

so `padding` crops the border of y_full and `output_padding` lets the window run past
its bottom/right edge into rows that are all zeros. This is the adjoint of conv2d with
the same weight, stride, padding, dilation and groups (the gradient of conv2d's input).

Counts, incremented where the work happens:
    macs         one per scatter multiply-accumulate: N * C_in * H * W * Cog * KH * KW
    inside_macs  those whose target lies inside the cropped window (the rest are cut away)
    bias_adds    one per output element that receives b[o]
"""

from numba import njit


@njit(cache=True)
def conv_transpose2d(x, w, b, has_bias, y_full, y, groups, sh, sw, dh, dw, pad_h, pad_w):
    # x:      (N, C_in, H, W)
    # w:      (C_in, Cog, KH, KW)       Cog = C_out / groups
    # b:      (C_out,)                  read only when has_bias
    # y_full: (N, C_out, (H-1)*sh + dh*(KH-1) + 1 + oph, (W-1)*sw + dw*(KW-1) + 1 + opw)   scratch
    # y:      (N, C_out, OH, OW)        overwritten; the window [pad_h, pad_h + OH) x [pad_w, pad_w + OW)
    N, C_in, H, W = x.shape
    Cog, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    in_per_group = C_in // groups
    macs = 0
    inside_macs = 0
    bias_adds = 0
    y_full[...] = 0
    for n in range(N):
        for c in range(C_in):
            g = c // in_per_group
            for o in range(Cog):
                for p in range(KH):
                    for q in range(KW):
                        w_copq = w[c, o, p, q]
                        for i in range(H):
                            row = i * sh + p * dh
                            row_inside = pad_h <= row < pad_h + OH
                            for j in range(W):
                                col = j * sw + q * dw
                                y_full[n, g * Cog + o, row, col] += x[n, c, i, j] * w_copq
                                macs += 1
                                inside_macs += row_inside and pad_w <= col < pad_w + OW
    for n in range(N):
        for o in range(groups * Cog):
            for i in range(OH):
                for j in range(OW):
                    y[n, o, i, j] = y_full[n, o, i + pad_h, j + pad_w]
            if has_bias:
                for i in range(OH):
                    for j in range(OW):
                        y[n, o, i, j] += b[o]
                        bias_adds += 1
    return macs, inside_macs, bias_adds
