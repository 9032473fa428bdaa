"""Phase-split padded planes: how the fast depthwise kernel makes every tap a unit-stride read.

A tap (p, q) of output pixel (i, j) reads the padded input at

    x_pad[i*sh + p*dh, j*sw + q*dw].

Split the padded plane by row phase and column phase into sh * sw sub-planes of RJ x WJ,

    sub[a, b][rr, jj] = x_pad[rr*sh + a, jj*sw + b]          (a < sh, b < sw)

and the tap becomes  sub[(p*dh) % sh, (q*dw) % sw][i + (p*dh) // sh, j + (q*dw) // sw].
Store each sub-plane row-major, all of them in one flat buffer, and compute the output on the
"wide grid" k = i*WJ + j (j running past OW to WJ - 1): then every tap is

    flat[tap_offset[p, q] + k],   tap_offset = base of its sub-plane + (p*dh // sh) * WJ + q*dw // sw,

one unit-stride stream per tap, whatever the stride and dilation; the columns j >= OW of the
wide grid are computed and thrown away (WJ - OW = ((KW - 1) * dw) // sw of them per row).
At stride 1 there is one sub-plane, the padded plane itself.

The copy into the planes does the padding, in any of the four modes (through
`npconv.kernels.pad2d.source_index`), so the kernel then reads memory only, padding taps
included, as the reference kernel does on its padded input. With zero padding the border
cells are the same zeros for every channel: `fill_interior` rewrites only the input's own
pixels, into a buffer zeroed once.
"""

import numpy as np
from numba import njit

from ..kernels.pad2d import source_index


@njit(cache=True)
def fill_interior(x, n, c, sh, sw, RJ, WJ, pad_top, pad_left, flat):
    # x: (N, C, H, W)   flat: (sh*sw*RJ*WJ + slack,), its border cells already zero
    # writes x_pad[n, c, R, Cl] = x[n, c, R - pad_top, Cl - pad_left] into sub[R % sh, Cl % sw][R // sh, Cl // sw]
    H, W = x.shape[2], x.shape[3]
    plane = RJ * WJ
    for r in range(H):
        R = r + pad_top
        rr = R // sh
        if rr >= RJ:
            break
        src = x[n, c, r]
        for b in range(sw):
            # input columns k with (k + pad_left) % sw == b: k = k0, k0 + sw, ...
            k0 = (b - pad_left) % sw
            jj0 = (k0 + pad_left) // sw
            count = min((W - k0 + sw - 1) // sw, WJ - jj0)
            if count <= 0:
                continue
            dst = flat[((R % sh) * sw + b) * plane + rr * WJ + jj0:]
            if sw == 1:
                for t in range(count):
                    dst[t] = src[t]
            else:
                for t in range(count):
                    dst[t] = src[k0 + t * sw]


@njit(cache=True)
def fill_interior_s1(x, n, c, RJ, WJ, pad_top, pad_left, flat):
    # fill_interior at stride 1: one sub-plane, the padded plane; row R = r + pad_top, column k + pad_left
    H, W = x.shape[2], x.shape[3]
    count = min(W, WJ - pad_left)
    rows = min(H, RJ - pad_top)
    for r in range(rows):
        src = x[n, c, r]
        dst = flat[(r + pad_top) * WJ + pad_left:]
        for k in range(count):
            dst[k] = src[k]


@njit(cache=True)
def fill_interior_s2(x, n, c, RJ, WJ, pad_top, pad_left, flat):
    # fill_interior at stride 2: four sub-planes (row parity a, column parity b). Input column
    # k lands in column parity (k + pad_left) & 1: even k in one sub-plane, odd k in the other,
    # so each row is split by one loop that reads src[2t] and src[2t + 1] (a de-interleave the
    # compiler vectorises) and writes two unit-stride rows.
    H, W = x.shape[2], x.shape[3]
    plane = RJ * WJ
    b_even = pad_left & 1                 # column parity of the even input columns
    jj_even = pad_left >> 1               # their first index in that sub-plane
    jj_odd = (1 + pad_left) >> 1
    count_even = min((W + 1) >> 1, WJ - jj_even)
    count_odd = min(W >> 1, WJ - jj_odd)
    both = min(count_even, count_odd)
    for r in range(H):
        R = r + pad_top
        rr = R >> 1
        if rr >= RJ:
            break
        src = x[n, c, r]
        base = (R & 1) * 2 * plane + rr * WJ
        evens = flat[base + b_even * plane + jj_even:]
        odds = flat[base + (1 - b_even) * plane + jj_odd:]
        for t in range(both):
            evens[t] = src[2 * t]
            odds[t] = src[2 * t + 1]
        for t in range(both, count_even):
            evens[t] = src[2 * t]
        for t in range(both, count_odd):
            odds[t] = src[2 * t + 1]


@njit(cache=True)
def fill_all(x, n, c, sh, sw, RJ, WJ, pad_top, pad_left, padded_h, padded_w, mode, flat):
    # like fill_interior, but every cell of every sub-plane, padding included, in any mode;
    # cells past the padded plane (padded_h x padded_w) are zeros: no output reads them
    H, W = x.shape[2], x.shape[3]
    plane = RJ * WJ
    zero = x.dtype.type(0)
    for a in range(sh):
        for rr in range(RJ):
            R = rr * sh + a
            row = source_index(R - pad_top, H, mode) if R < padded_h else -1
            for b in range(sw):
                dst = flat[(a * sw + b) * plane + rr * WJ:]
                for jj in range(WJ):
                    Cl = jj * sw + b
                    col = source_index(Cl - pad_left, W, mode) if Cl < padded_w else -1
                    dst[jj] = zero if row < 0 or col < 0 else x[n, c, row, col]


@njit(cache=True)
def border_columns(OW, KW, sw, dw, pad_left, W):
    # returns (KW,): border[q] = #{j < OW : column j*sw + q*dw of x_pad lies in its padding}
    border = np.zeros(KW, np.int64)
    for q in range(KW):
        for j in range(OW):
            col = j * sw + q * dw
            if col < pad_left or col >= pad_left + W:
                border[q] += 1
    return border


@njit(cache=True)
def border_rows(OH, KH, sh, dh, pad_top, H):
    # returns (OH, KH): 1 where row i*sh + p*dh of x_pad lies in its padding
    border = np.zeros((OH, KH), np.int64)
    for i in range(OH):
        for p in range(KH):
            row = i * sh + p * dh
            if row < pad_top or row >= pad_top + H:
                border[i, p] = 1
    return border


@njit(cache=True)
def padding_per_row(OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left, H, W):
    # returns (OH,): the taps of output row i, over all j < OW and all (p, q), that read padding
    border_q = border_columns(OW, KW, sw, dw, pad_left, W)
    border_p = border_rows(OH, KH, sh, dh, pad_top, H)
    inside_q = 0
    for q in range(KW):
        inside_q += OW - border_q[q]
    per_row = np.zeros(OH, np.int64)
    for i in range(OH):
        for p in range(KH):
            per_row[i] += KW * OW if border_p[i, p] else KW * OW - inside_q
    return per_row
