"""Fast standard convolution (groups = 1): packed rows and one BLAS product per kernel column.

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]

Row packing. For a block of output rows, copy, for every kernel row p and input channel c,
the padded input rows i*sh + p*dh that those outputs read, split by column phase as in
`planes` (at stride 1 there is one phase, the padded row itself):

    B[phi][(p, c), i*WJ + jj] = x_pad[n, c, i*sh + p*dh, jj*sw + phi]          (K = KH * C_in rows)

Then the sum over (c, p) for a kernel column q is a matrix product with the packed rows
shifted by q's offset inside its phase, a view and not a copy (numpy hands it to BLAS with a
leading dimension larger than its width):

    Y[:, i*WJ + j] += W_q @ B[(q*dw) % sw][:, i*WJ + j + (q*dw) // sw]      W_q[o, (p, c)] = w[o, c, p, q]

KW products of (C_out x KH*C_in) @ (KH*C_in x rows*WJ), summed in a cache-sized block, then
cropped from the WJ-wide grid to OW columns with bias / BatchNorm / ReLU6 on the way.
The pack holds KH copies of the input rows (KH / sh of the input), not the KH*KW of an im2col.

Threads: the blocks of output rows (of every image) are shared out over `threads` chunks of
Numba's pool (`blocks_on_numba`, a `prange`; on the OpenMP runtime PyTorch uses,
npconv/_threads.py; it reaches the chunks' function `blocks` through its address,
npconv/fast/calls.py, which took its cold compile from 7.2 to 4.9 s in float32), each block
done start to finish on one thread: pack, KW single-threaded
BLAS products called from the kernel (`gemm.blas_product`, the second and later ones adding
into the block, beta = 1), crop. Where kernels cannot call BLAS (`gemm.on_numba()`: no 64-bit
cblas gemm, or a forked process) each block is a task of npconv's own pool instead
(`workers.run`), the same steps in Python with NumPy's matmul and an add. Splitting each
product instead, as this kernel first did, left the pack, the sums and the crop on one
thread and joined the threads KW times per block: at two threads it was no faster than at
one (bench/README.md). The blocks do not depend on the thread count, so neither do the
products BLAS is asked for: the result is the same, bit for bit, on any number of threads (a
block size that shrank with more threads changed BLAS's summation order, found by the
thorough profile). On Numba's pool MobileNetV1's first layer (3 -> 32 channels, stride 2)
took 0.35 ms against 1.1 on npconv's own pool at two threads (its Python per block held the
GIL), and the 32 -> 64 layer of bench/classic.py 14.6 ms against 20.0; same bits.

Counts, in the loop that issues the products: per product, macs += C_out * (KH*C_in) * rows*OW
(the kept columns; the WJ - OW extra columns of the wide grid are computed and thrown away)
and per block padding_macs += C_out * C_in * (the taps of its rows that read padding), from
the per-row table the depthwise kernel counts with (`planes.padding_per_row`). bias_adds, scale_shifts, compares from the
epilogue's loops. Padding taps are multiplied like any other (the pack holds the padding
values), so the counts equal the reference kernel's.
"""

import numpy as np
from numba import njit, prange

from ..kernels.pad2d import source_index
from . import blas, gemm, workers
from .epilogue import apply, crop
from .calls import address, call
from .planes import padding_per_row

# Output columns (rows * WJ) per block: the block's output (C_out x this) and its pack
# (KH*C_in x this) should stay in L2 (2 MiB here) while the KW products go over them.
BLOCK_COLUMNS = 2048


@njit(cache=True, nogil=True)
def pack_rows(x, n, i0, rows, sh, sw, dh, KH, pad_top, pad_left, padded_w, mode, WJ, packed):
    # x: (N, C, H, W)   packed: (sw, KH*C, rows*WJ + slack) overwritten, slack columns zero:
    # packed[phi, p*C + c, r*WJ + jj] = x_pad[n, c, (i0 + r)*sh + p*dh, jj*sw + phi]
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    zero = x.dtype.type(0)
    total = packed.shape[2]
    for p in range(KH):
        for c in range(C):
            for phi in range(sw):
                out = packed[phi, p * C + c]
                for r in range(rows):
                    row = source_index((i0 + r) * sh + p * dh - pad_top, H, mode)
                    dst = out[r * WJ:]
                    if row < 0:
                        for jj in range(WJ):
                            dst[jj] = zero
                        continue
                    src = x[n, c, row]
                    # interior: 0 <= jj*sw + phi - pad_left < W  <=>  first <= jj < last
                    first = min(WJ, max(0, (pad_left - phi + sw - 1) // sw))
                    last = min(WJ, max(first, (pad_left + W - phi + sw - 1) // sw))
                    for jj in range(first):
                        m = source_index(jj * sw + phi - pad_left, W, mode)
                        dst[jj] = zero if m < 0 else src[m]
                    inner = dst[first:]
                    start = src[first * sw + phi - pad_left:]
                    if sw == 1:
                        for t in range(last - first):
                            inner[t] = start[t]
                    else:
                        for t in range(last - first):
                            inner[t] = start[t * sw]
                    for jj in range(last, WJ):
                        col = jj * sw + phi
                        m = source_index(col - pad_left, W, mode) if col < padded_w else -1
                        dst[jj] = zero if m < 0 else src[m]
                for k in range(rows * WJ, total):
                    out[k] = zero


@njit(cache=True, nogil=True)
def finish_block(wide, WJ, y, n, i0, taps, pad_row, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # wide: (C_out, rows*WJ) the block's wide-grid output   y: (N, C_out, OH, OW), rows i0.. of image n
    # pad_row: (rows,) padding taps per output row of the block (one output channel)
    # returns (bias_adds, scale_shifts, compares), per kept pixel
    CO = wide.shape[0]
    block = y[n:n + 1, :, i0:i0 + pad_row.shape[0]]
    kept = 0
    for o in range(CO):
        if has_bias or affine or clamp:
            apply(wide[o], o, bias, has_bias, scale, shift, affine, lo, hi, clamp)
        _, _, k = crop(wide[o], WJ, block, 0, o, taps, pad_row)
        kept += k
    return (kept if has_bias else 0, kept if affine else 0, 2 * kept if clamp else 0)


@njit(cache=True)
def blocks(x, w_q, y, starts, rows_per_block, sh, sw, dh, pad_top, pad_left, padded_w, mode, WJ,
           offsets, phases, pad_rows, bias, has_bias, scale, shift, affine, lo, hi, clamp, t, chunks):
    # Chunk t of `chunks`: the blocks t, t + chunks, ... of `standard`, each start to finish, as
    # `standard`'s task does (pack, KW BLAS products summed in the block by the BLAS call
    # itself, finish). starts (blocks, 2) holds each block's (n, i0); offsets, phases (KW,):
    # each kernel column's place in the pack; pad_rows (OH,): one output channel's padding taps
    # per output row (`planes.padding_per_row`). Returns the five counts of its blocks.
    C = x.shape[1]
    KW, CO, K = w_q.shape
    KH = K // C
    OH, OW = y.shape[2], y.shape[3]
    slack = 0
    for q in range(KW):
        slack = max(slack, offsets[q])
    macs = padding_macs = bias_adds = scale_shifts = compares = 0
    for k in range(t, starts.shape[0], chunks):
        n, i0 = starts[k, 0], starts[k, 1]
        rows = min(rows_per_block, OH - i0)
        columns = rows * WJ
        packed = np.empty((sw, K, columns + slack), x.dtype)
        block = np.empty((CO, columns), x.dtype)
        pack_rows(x, n, i0, rows, sh, sw, dh, KH, pad_top, pad_left, padded_w, mode, WJ, packed)
        for q in range(KW):
            gemm.blas_product(w_q[q], blas.NO_TRANS, K, packed[phases[q], :, offsets[q]:], blas.NO_TRANS,
                              packed.shape[2], block, columns, CO, columns, K, q > 0)
            macs += CO * K * rows * OW
        pad_row = pad_rows[i0:i0 + rows]
        for r in range(rows):
            padding_macs += CO * C * pad_row[r]
        b, s, c = finish_block(block, WJ, y, n, i0, KH * KW * C, pad_row,
                               bias, has_bias, scale, shift, affine, lo, hi, clamp)
        bias_adds += b
        scale_shifts += s
        compares += c
    return macs, padding_macs, bias_adds, scale_shifts, compares


@njit(cache=True, parallel=True)
def blocks_on_numba(work, x, w_q, y, starts, rows_per_block, sh, sw, dh, pad_top, pad_left, padded_w, mode, WJ,
                    offsets, phases, pad_rows, bias, has_bias, scale, shift, affine, lo, hi, clamp, threads):
    # `blocks` (whose address is `work`: npconv/fast/calls.py) on Numba's pool, one chunk of
    # blocks per thread. Returns the five counts.
    chunks = max(1, min(threads, starts.shape[0]))
    macs = padding_macs = bias_adds = scale_shifts = compares = 0
    # the arguments' tuple is made once, outside the prange, as in depthwise.depthwise (made in its
    # body, it cost the depthwise kernel 1.5-4 us per call at 2 threads)
    arguments = (x, w_q, y, starts, rows_per_block, sh, sw, dh, pad_top, pad_left, padded_w, mode, WJ, offsets,
                 phases, pad_rows, bias, has_bias, scale, shift, affine, lo, hi, clamp)
    for t in prange(chunks):
        m, p, b, s, c = call(work, arguments, t, chunks)
        macs += m
        padding_macs += p
        bias_adds += b
        scale_shifts += s
        compares += c
    return macs, padding_macs, bias_adds, scale_shifts, compares


def standard(x, w, sh, sw, dh, dw, pad_top, pad_left, padded_h, padded_w, mode, OH, OW,
             bias, has_bias, scale, shift, affine, lo, hi, clamp, threads):
    """x (N, C_in, H, W), w (C_out, C_in, KH, KW), C-contiguous, one float dtype; groups = 1.
    Returns (y (N, C_out, OH, OW), (macs, padding_macs, bias_adds, scale_shifts, compares)),
    the counts summed over the blocks, each block a task on one of `threads` threads."""
    N, C, H, W = x.shape
    CO, _, KH, KW = w.shape
    offsets = [(q * dw) // sw for q in range(KW)]
    phases = [(q * dw) % sw for q in range(KW)]
    WJ = OW + max(offsets)
    K = KH * C
    # W_q[o, p*C + c] = w[o, c, p, q]: packed once per call (a few KiB to a few MiB)
    w_q = np.ascontiguousarray(w.transpose(3, 0, 2, 1).reshape(KW, CO, K))
    # one output channel's padding taps per output row: C_in of them per input channel, and each
    # block's padding MACs are C_out * C_in times its rows' sum
    pad_rows = padding_per_row(OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left, H, W)
    rows_per_block = max(1, min(OH, BLOCK_COLUMNS // WJ))   # the same at any thread count (docstring)
    starts = [(n, i0) for n in range(N) for i0 in range(0, OH, rows_per_block)]
    y = np.empty((N, CO, OH, OW), dtype=x.dtype)

    def task(k):
        # one block of output rows of one image, on the calling thread: pack, KW products, finish
        n, i0 = starts[k]
        rows = min(rows_per_block, OH - i0)
        columns = rows * WJ
        packed = np.empty((sw, K, columns + max(offsets)), dtype=x.dtype)
        block = np.empty((CO, columns), dtype=x.dtype)
        product = np.empty_like(block)
        pack_rows(x, n, i0, rows, sh, sw, dh, KH, pad_top, pad_left, padded_w, mode, WJ, packed)
        macs = 0
        for q in range(KW):
            view = packed[phases[q], :, offsets[q]:offsets[q] + columns]
            if q == 0:
                gemm.product(w_q[q], view, block)
            else:
                gemm.product(w_q[q], view, product)
                with np.errstate(all="ignore"):  # inf / NaN in, inf / NaN out, silently, as in the reference
                    block += product
            macs += CO * K * rows * OW
        pad_row = pad_rows[i0:i0 + rows]
        return (macs, CO * C * int(pad_row.sum())) + finish_block(block, WJ, y, n, i0, KH * KW * C, pad_row,
                                                        bias, has_bias, scale, shift, affine, lo, hi, clamp)

    with gemm.blas_one_thread():
        if gemm.on_numba():
            arguments = (x, w_q, y, np.array(starts, np.int64).reshape(-1, 2), rows_per_block, sh, sw, dh,
                         pad_top, pad_left, padded_w, mode, WJ, np.array(offsets, np.int64),
                         np.array(phases, np.int64), pad_rows, bias, has_bias, scale, shift, affine, lo, hi, clamp)
            # the blocks' function, compiled once by itself (npconv/fast/calls.py); its types follow from x's dtype
            counts = blocks_on_numba(address(blocks, arguments, key=x.dtype), *arguments, threads)
            return y, tuple(int(c) for c in counts)
        counts = workers.run(task, len(starts), threads)
    return y, tuple(sum(c[i] for c in counts) for i in range(5))
