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
from .vectors import LANES, split_pairs, split_pairs_full


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


# Stride 2 (the 2x2 phases): each input row is split into its even and odd columns, two rows
# of a row phase's sub-planes, LANES outputs a phase at a time by `vectors.split_pairs`. Which
# block of which row goes where depends on the geometry alone, so `depthwise.layout` makes the
# list once (`stride2_blocks`), and the copy of a plane is then one loop over it, a few loads
# and one vector split an entry. Before, a loop per row (and for planes of at most 400 pixels
# a gather through a table of source offsets) cost more in its set-up than in its copying:
# the copies of MobileNetV1's stride-2 layers at one thread, within the kernel, took 107, 81,
# 74 and 38 us on 64@112, 128@56, 256@28 and 512@14, and take 96, 56, 26 and 24 this way (the
# first is about what reading its 3.2 MB from L3 costs; December 2026).


def stride2_blocks(H, W, RJ, OW, lead, top):
    """The stride-2 narrow grid's copy of an H x W plane, as (blocks, 5) uint64 rows
    (source, even, odd, evens, odds): input row r's block starting at output column t0 reads
    the plane from `source` = r*W + 2*t0 and writes its `evens` even columns to the task's
    buffer from `even`, its `odds` odd ones from `odd` (column phases 0 and 1 of row phase
    r % 2, row top + r // 2, from column t0). Rows past the sub-planes' RJ - top input rows
    are left out, as are columns past OW. Plain NumPy, made once per geometry."""
    plane = RJ * OW
    rows = min(H, 2 * min(RJ - top, (H + 1) // 2))
    evens, odds = min((W + 1) // 2, OW), min(W // 2, OW)
    r = np.arange(rows)[:, np.newaxis]
    t0 = np.arange(0, evens, LANES)[np.newaxis, :]
    even = lead + (r & 1) * 2 * plane + (top + (r >> 1)) * OW + t0
    columns = (r * W + 2 * t0, even, even + plane, np.minimum(evens - t0, LANES), np.clip(odds - t0, 0, LANES))
    return np.stack(np.broadcast_arrays(*columns), axis=-1).reshape(-1, 5).astype(np.uint64)


@njit(cache=True)
def fill_narrow(xf, start, count, H, W, sh, sw, RJ, OW, lead, top, stride, flat, blocks):
    # xf: x flattened; the planes (H x W) of tasks start..start+count-1 (task t at t*H*W)
    # flat: for each task g of the group, at g*stride + lead, the narrow grid's sub-planes
    # (RJ x OW each), their zero rows and unused columns already zero; writes x[n, c, R, C]
    # to sub-plane (R % sh, C % sw), row top + R // sh, column C // sw (the rows and columns
    # that fit). Unsigned indices, as in depthwise.taps3x3_masked: no slice per row.
    # blocks: at stride 2, `stride2_blocks`' list for this geometry (from `depthwise.layout`)
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
        elif sh == 2 and sw == 2:
            base = U(g * stride)
            for e in range(blocks.shape[0]):
                source, even, odd, evens, odds = blocks[e, 0], blocks[e, 1], blocks[e, 2], blocks[e, 3], blocks[e, 4]
                if evens == LANES and odds == LANES:
                    split_pairs_full(xf, src + source, flat, base + even, base + odd)
                else:
                    split_pairs(xf, src + source, flat, base + even, base + odd, evens, odds)
        else:
            for r in range(min(H, sh * rows)):
                s0 = src + U(r * W)
                for b in range(sw):
                    columns = min(max(0, (W - b + sw - 1) // sw), OW)
                    d0 = U(first + ((r % sh) * sw + b) * plane + (r // sh) * OW)
                    for t in range(U(columns)):
                        flat[d0 + t] = xf[s0 + U(sw) * t + U(b)]
