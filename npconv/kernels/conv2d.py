"""Reference 2-D convolution (cross-correlation, as in every deep-learning framework).

    y[n, o, i, j] = b[o] + sum_{c < Cg} sum_{p < KH} sum_{q < KW}
                    x_pad[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

with g = o // (C_out / groups) the group of output channel o and Cg = C_in / groups the
input channels each group sees. x_pad is the input already padded (any padding mode),
so every tap reads memory: this is the dense kernel the textbook formulas count.

Loop order: the two output-pixel loops are innermost so that the innermost loop walks a
contiguous row of y (and, at stride 1, of x_pad); the weight w[o, c, p, q] is loaded once
per output row. The accumulator is y itself, in the input's dtype.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate y += x * w
    padding_macs  those whose tap lies in the padding border of x_pad
    bias_adds     one per output element that receives b[o]
"""

from numba import njit


@njit(cache=True)
def conv2d(x_pad, w, b, has_bias, y, groups, sh, sw, dh, dw, pad_top, pad_left, H, W):
    # x_pad: (N, C_in, H + pad_top + pad_bottom, W + pad_left + pad_right)
    # w:     (C_out, Cg, KH, KW)        Cg = C_in / groups
    # b:     (C_out,)                   read only when has_bias
    # y:     (N, C_out, OH, OW)         overwritten
    # H, W:  the unpadded input size, to tell border taps from input taps
    N, C_out, OH, OW = y.shape
    Cg, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    out_per_group = C_out // groups
    macs = 0
    padding_macs = 0
    bias_adds = 0
    for n in range(N):
        for o in range(C_out):
            g = o // out_per_group
            for i in range(OH):
                for j in range(OW):
                    y[n, o, i, j] = 0
            for c in range(Cg):
                for p in range(KH):
                    for q in range(KW):
                        w_opq = w[o, c, p, q]
                        for i in range(OH):
                            row = i * sh + p * dh
                            row_in_border = row < pad_top or row >= pad_top + H
                            for j in range(OW):
                                col = j * sw + q * dw
                                y[n, o, i, j] += x_pad[n, g * Cg + c, row, col] * w_opq
                                macs += 1
                                padding_macs += row_in_border or col < pad_left or col >= pad_left + W
            if has_bias:
                for i in range(OH):
                    for j in range(OW):
                        y[n, o, i, j] += b[o]
                        bias_adds += 1
    return macs, padding_macs, bias_adds
