"""Reference 3-D convolution (cross-correlation), the 2-D kernel with a depth axis.

    y[n, o, d, i, j] = b[o] + sum_{c < Cg} sum_{r < KD} sum_{p < KH} sum_{q < KW}
                       x_pad[n, g*Cg + c, d*sd + r*dd, i*sh + p*dh, j*sw + q*dw] * w[o, c, r, p, q]

with g = o // (C_out / groups) the group of output channel o and Cg = C_in / groups the
input channels each group sees. x_pad is the input already padded (any padding mode),
so every tap reads memory: this is the dense kernel the textbook formulas count. In the
unpadded input's coordinates the tap reads x[n, g*Cg + c, d*sd + r*dd - pad_front, ...].

Loop order, as conv2d.py: the output-voxel loops innermost, so that the innermost loop
walks a contiguous row of y (and, at stride 1, of x_pad); the weight w[o, c, r, p, q] is
loaded once per output volume. The accumulator is y itself, in the input's dtype.

Counts, incremented where the work happens:
    macs          one per multiply-accumulate y += x * w
    padding_macs  those whose tap lies in the padding border of x_pad
    bias_adds     one per output element that receives b[o]
"""

from numba import njit


@njit(cache=True)
def conv3d(x_pad, w, b, has_bias, y, groups, sd, sh, sw, dd, dh, dw, pad_front, pad_top, pad_left, D, H, W):
    # x_pad: (N, C_in, D + pad_front + pad_back, H + pad_top + pad_bottom, W + pad_left + pad_right)
    # w:     (C_out, Cg, KD, KH, KW)    Cg = C_in / groups
    # b:     (C_out,)                   read only when has_bias
    # y:     (N, C_out, OD, OH, OW)     overwritten
    # D, H, W: the unpadded input size, to tell border taps from input taps
    N, C_out, OD, OH, OW = y.shape
    Cg, KD, KH, KW = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    out_per_group = C_out // groups
    macs = 0
    padding_macs = 0
    bias_adds = 0
    for n in range(N):
        for o in range(C_out):
            g = o // out_per_group
            for d in range(OD):
                for i in range(OH):
                    for j in range(OW):
                        y[n, o, d, i, j] = 0
            for c in range(Cg):
                for r in range(KD):
                    for p in range(KH):
                        for q in range(KW):
                            w_orpq = w[o, c, r, p, q]
                            for d in range(OD):
                                plane = d * sd + r * dd
                                plane_in_border = plane < pad_front or plane >= pad_front + D
                                for i in range(OH):
                                    row = i * sh + p * dh
                                    row_in_border = plane_in_border or row < pad_top or row >= pad_top + H
                                    for j in range(OW):
                                        col = j * sw + q * dw
                                        y[n, o, d, i, j] += x_pad[n, g * Cg + c, plane, row, col] * w_orpq
                                        macs += 1
                                        padding_macs += row_in_border or col < pad_left or col >= pad_left + W
            if has_bias:
                for d in range(OD):
                    for i in range(OH):
                        for j in range(OW):
                            y[n, o, d, i, j] += b[o]
                            bias_adds += 1
    return macs, padding_macs, bias_adds
