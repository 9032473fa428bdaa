"""Reference 3-D transposed convolution, written as the scatter it is (conv_transpose2d.py
with a depth axis).

Every input voxel stamps a weighted copy of the kernel onto the output:

    y_full[n, g*Cog + o, d*sd + r*dd, i*sh + p*dh, j*sw + q*dw] += x[n, c, d, i, j] * w[c, o, r, p, q]

for every input element x[n, c, d, i, j], every o < Cog = C_out / groups and every tap
(r, p, q), with g = c // Cig the group of input channel c (Cig = C_in / groups). y_full is
the uncropped result, (D-1)*sd + dd*(KD-1) + 1 planes (plus output_padding planes, which
no tap reaches), likewise rows and columns. The output is the window of y_full that starts
`padding` in on every axis, OD x OH x OW in size, plus the bias:

    y[n, o, d, i, j] = b[o] + y_full[n, o, d + pad_d, i + pad_h, j + pad_w]

so `padding` crops the border of y_full and `output_padding` lets the window run past its
far edge into positions that are all zeros. This is the adjoint of conv3d with the same
weight, stride, padding, dilation and groups (the gradient of conv3d's input).

Counts, incremented where the work happens:
    macs         one per scatter multiply-accumulate: N * C_in * D * H * W * Cog * KD * KH * KW
    inside_macs  those whose target lies inside the cropped window (the rest are cut away)
    bias_adds    one per output element that receives b[o]
"""

from numba import njit


@njit(cache=True)
def conv_transpose3d(x, w, b, has_bias, y_full, y, groups, sd, sh, sw, dd, dh, dw, pad_d, pad_h, pad_w):
    # x:      (N, C_in, D, H, W)
    # w:      (C_in, Cog, KD, KH, KW)   Cog = C_out / groups
    # b:      (C_out,)                  read only when has_bias
    # y_full: (N, C_out, (D-1)*sd + dd*(KD-1) + 1 + opd, (H-1)*sh + ... + oph, (W-1)*sw + ... + opw)   scratch
    # y:      (N, C_out, OD, OH, OW)    overwritten; the window starting at (pad_d, pad_h, pad_w)
    N, C_in, D, H, W = x.shape
    Cog, KD, KH, KW = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    in_per_group = C_in // groups
    macs = 0
    inside_macs = 0
    bias_adds = 0
    y_full[...] = 0
    for n in range(N):
        for c in range(C_in):
            g = c // in_per_group
            for o in range(Cog):
                for r in range(KD):
                    for p in range(KH):
                        for q in range(KW):
                            w_corpq = w[c, o, r, p, q]
                            for d in range(D):
                                plane = d * sd + r * dd
                                plane_inside = pad_d <= plane < pad_d + OD
                                for i in range(H):
                                    row = i * sh + p * dh
                                    row_inside = plane_inside and pad_h <= row < pad_h + OH
                                    for j in range(W):
                                        col = j * sw + q * dw
                                        y_full[n, g * Cog + o, plane, row, col] += x[n, c, d, i, j] * w_corpq
                                        macs += 1
                                        inside_macs += row_inside and pad_w <= col < pad_w + OW
    for n in range(N):
        for o in range(groups * Cog):
            for d in range(OD):
                for i in range(OH):
                    for j in range(OW):
                        y[n, o, d, i, j] = y_full[n, o, d + pad_d, i + pad_h, j + pad_w]
            if has_bias:
                for d in range(OD):
                    for i in range(OH):
                        for j in range(OW):
                            y[n, o, d, i, j] += b[o]
                            bias_adds += 1
    return macs, inside_macs, bias_adds
