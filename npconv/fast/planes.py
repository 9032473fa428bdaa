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


# ----------------------------------------------------------------------------- the narrow grid
#
# With zero padding, the sub-planes can be split from the unpadded input instead, each as wide
# as the output: input row R goes to row-phase R % sh, row R // sh; column C to column-phase
# C % sw, column C // sw. Tap (p, q) of output pixel (i, j) reads input row i*sh + p*dh - pad_top
# = (i + rp)*sh + a and column (j + cq)*sw + b, with a, rp and b, cq the floor-division
# remainders and quotients of p*dh - pad_top by sh and of q*dw - pad_left by sw. So on the
# "narrow grid" k = i*OW + j, tap (p, q) is again one unit-stride stream,
#
#     flat[tap_offset[p, q] + k],   tap_offset = lead + base of sub-plane (a, b) + (top + rp) * OW + cq,
#
# and the output needs no crop: the grid is y's own plane. Rows above and below the input are
# zero rows of the sub-planes (`top` of them above). Columns are not padded: a column outside
# the input is read from a neighbouring row, so the taps take a zero there instead, through
# masks[q, k] = 0 <= j + cq < (columns of phase b). That needs each stream to reach no real
# column past OW - 1 (`narrow_fits`): true of "same" padding at stride 1 and of MobileNet's
# stride-2 layers, not of an unpadded kernel wider than 1, which keeps the wide grid.


@njit(cache=True)
def tap_column(q, W, sw, dw, pad_left):
    # kernel column q on the narrow grid: (b, cq, columns), its column phase b and shift cq (it
    # reads input column (j + cq)*sw + b at output column j), and the input columns of phase b
    d = q * dw - pad_left
    b = d % sw
    return b, d // sw, max(0, (W - b + sw - 1) // sw)


@njit(cache=True)
def narrow_fits(W, OW, KW, sw, dw, pad_left):
    # whether every tap column's stream stays within the narrow grid's rows (see above)
    for q in range(KW):
        _, cq, columns = tap_column(q, W, sw, dw, pad_left)
        if cq > 0 and (columns > OW or cq > OW):
            return False
    return True


@njit(cache=True)
def narrow_layout(H, W, OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left):
    # returns RJ (rows of a sub-plane, zero rows included), lead (slack before the first
    # sub-plane), top (zero rows above the input's rows), offsets (KH, KW), masks (KW, OH*OW)
    rp_min, rp_max = 0, 0
    for p in range(KH):
        rp = (p * dh - pad_top) // sh
        rp_min = rp if p == 0 else min(rp_min, rp)
        rp_max = rp if p == 0 else max(rp_max, rp)
    cq_min = 0
    for q in range(KW):
        cq = (q * dw - pad_left) // sw
        cq_min = cq if q == 0 else min(cq_min, cq)
    top = max(0, -rp_min)
    RJ = top + max(1, OH + rp_max)
    lead = max(0, -cq_min)
    offsets = np.empty((KH, KW), np.int64)
    for p in range(KH):
        dp = p * dh - pad_top
        for q in range(KW):
            dq = q * dw - pad_left
            a, b = dp % sh, dq % sw
            offsets[p, q] = lead + (a * sw + b) * RJ * OW + (top + dp // sh) * OW + dq // sw
    masks = np.empty((KW, OH * OW), np.bool_)
    for q in range(KW):
        _, cq, columns = tap_column(q, W, sw, dw, pad_left)
        for i in range(OH):
            for j in range(OW):
                masks[q, i * OW + j] = 0 <= j + cq < columns
    return RJ, lead, top, offsets, masks


# Stride 2 on planes of at most SMALL_S2 pixels: the four sub-planes are filled by one gather
# each through a table of source offsets (`stride2_gather`) instead of row by row. A row there
# is 7-10 pixels, and the loops and slices of the row split cost more than the copying: on
# 512 channels of 14x14, 50 -> 32 us. At 28x28 the two took the same time, and from 56x56 the
# gather was 2-3x slower (December 2026). The table is made once per geometry, in Python
# (`depthwise.layout`): made inside the kernel, it added 5.4 s to the depthwise kernel's cold
# compile per dtype (1.2 s as it is).
SMALL_S2 = 400


@njit(cache=True)
def stride2_gather(H, W, RJ, OW, lead, top):
    # (offsets (4 * n,), starts (4,)): sub-plane (a, b) of a stride-2 narrow grid, n = rows * OW
    # of input pixels at its `top`-th row, takes x_plane[offsets[s*n + k]] (s = 2a + b) into
    # flat[starts[s] + k]; both empty where that is not the whole of each sub-plane's input
    # (an odd height or width, a width other than 2 * OW) or the plane has over SMALL_S2 pixels
    rows = H // 2
    if H % 2 or W != 2 * OW or rows > RJ - top or H * W > SMALL_S2:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    n = rows * OW
    offsets = np.empty(4 * n, np.uint64)
    starts = np.empty(4, np.uint64)
    for a in range(2):
        for b in range(2):
            s = a * 2 + b
            starts[s] = lead + s * RJ * OW + top * OW
            for k in range(n):
                offsets[s * n + k] = (2 * (k // OW) + a) * W + 2 * (k % OW) + b
    return offsets, starts


@njit(cache=True)
def fill_narrow(xf, start, count, H, W, sh, sw, RJ, OW, lead, top, stride, flat, gather, starts):
    # xf: x flattened; the planes (H x W) of tasks start..start+count-1 (task t at t*H*W)
    # flat: for each task g of the group, at g*stride + lead, the narrow grid's sub-planes
    # (RJ x OW each), their zero rows and unused columns already zero; writes x[n, c, R, C]
    # to sub-plane (R % sh, C % sw), row top + R // sh, column C // sw (the rows and columns
    # that fit). Unsigned indices, as in depthwise.taps3x3_masked: no slice per row.
    # gather, starts: `stride2_gather`'s table for this geometry, from `depthwise.layout` (empty: row by row)
    U = np.uint64
    plane = RJ * OW
    rows = min(RJ - top, (H + sh - 1) // sh)
    for g in range(count):
        src = U((start + g) * H * W)
        first = g * stride + lead + top * OW    # sub-plane (0, 0)'s first input row
        if sh == 1 and sw == 1:
            columns = min(W, OW)
            if columns == W == OW:           # the plane is one contiguous run: one loop
                dst = U(first)
                for k in range(U(rows * W)):
                    flat[dst + k] = xf[src + k]
                continue
            for r in range(rows):
                s0, d0 = src + U(r * W), U(first + r * OW)
                for k in range(U(columns)):
                    flat[d0 + k] = xf[s0 + k]
        elif sh == 2 and sw == 2 and gather.size:     # small planes: a gather per sub-plane (SMALL_S2)
            n = U(gather.size // 4)
            for s in range(4):
                d0, g0 = U(g * stride) + starts[s], U(s) * n
                for k in range(n):
                    flat[d0 + k] = xf[src + gather[g0 + k]]
        elif sh == 2 and sw == 2:            # even and odd columns split by one loop (fill_interior_s2)
            count_even = min((W + 1) >> 1, OW)
            count_odd = min(W >> 1, OW)
            both = min(count_even, count_odd)
            for r in range(min(H, 2 * rows)):
                # slices here, not unsigned indices: LLVM vectorises the stride-2 reads of a
                # slice (a de-interleave), which it did not with unsigned indices (the larger
                # planes' copies took 1.1-1.2x as long). The loops are fill_interior_s2's,
                # written out again: as one helper called by both, the stride-2 layers took
                # 1.4-1.8x as long (December 2026)
                row = xf[(start + g) * H * W + r * W:]
                evens = flat[first + (r & 1) * 2 * plane + (r >> 1) * OW:]
                odds = flat[first + (r & 1) * 2 * plane + plane + (r >> 1) * OW:]
                for t in range(both):
                    evens[t] = row[2 * t]
                    odds[t] = row[2 * t + 1]
                for t in range(both, count_even):
                    evens[t] = row[2 * t]
                for t in range(both, count_odd):
                    odds[t] = row[2 * t + 1]
        else:
            for r in range(min(H, sh * rows)):
                s0 = src + U(r * W)
                for b in range(sw):
                    columns = min(max(0, (W - b + sw - 1) // sw), OW)
                    d0 = U(first + ((r % sh) * sw + b) * plane + (r // sh) * OW)
                    for t in range(U(columns)):
                        flat[d0 + t] = xf[s0 + U(sw) * t + U(b)]
