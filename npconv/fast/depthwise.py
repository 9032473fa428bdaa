"""Fast depthwise convolution: phase-split padded planes, taps as unit-stride streams.

    y[n, o, i, j] = b[o] + sum_{p < KH} sum_{q < KW} x_pad[n, o // M, i*sh + p*dh, j*sw + q*dw] * w[o, p, q]

(M = C_out / C_in, the channel multiplier): the reference kernel's formula with groups = C_in.
What changes is the order of the work (see `planes` for the layout):

* the (image, channel) pairs are split into one chunk per thread (`prange`), each done by
  `channels` (the wide grid), `narrow_channels` (the narrow grid, below) or
  `stride1_channels` / `stride2_channels` (MobileNet's layers, below) start to finish
  (`depthwise_serial` runs them all on the calling thread); `run` picks the one and calls the
  kernel, which reaches it through its address (`calls.py`: compiled once, not again inside
  each kernel);
* each channel is copied once into sh * sw padded sub-planes, flat in a buffer that stays in
  L1/L2; the stride is specialised there: at stride 1 the copy is row by row, at stride 2 it
  splits even and odd rows and columns, so that afterwards every tap (p, q) is one
  unit-stride stream `flat[tap_offset[p, q] + k]` over the wide grid k = i*WJ + j;
* for the 3x3 kernel (every MobileNet depthwise layer) the nine weights sit in registers and
  each wide-grid output is one expression of nine products, summed in the reference's (p, q)
  order; other kernel sizes add one tap stream at a time;
* bias, BatchNorm (a scale and a shift) and ReLU6 are applied to the wide grid while it is
  in cache (`epilogue.apply`), which is then cropped to OW columns into y (`epilogue.crop`).

With zero padding, where the geometry allows (`planes.narrow_fits`: "same" padding at stride
1, MobileNet's stride-2 layers, most layers of real networks), the sub-planes are split from
the unpadded input and are only OW wide: the "narrow grid" k = i*OW + j is y's own plane, so
the taps write straight into y and there is no crop. Padding rows are zero rows of the
sub-planes; a tap column that falls outside the input reads a neighbouring row instead, so
there the tap takes a zero through a mask (`taps3x3_masked`, `taps_any_masked`), the same
zero the reference's padded input holds. The same products are summed in the same order: the
two grids give the same bits. The narrow grid also works on a group of channels at a time
(`narrow_channels`), each step one loop over the group with unsigned flat indices, where the
wide grid makes a few calls and slices per channel. Against the wide grid, interleaved in one
process on MobileNetV1's layers (December 2026): 0.37-0.97 of its time on one thread (dw
1024@7 129 -> 47 us, 512@14 stride 2 94 -> 73 us), 0.49-1.01 on two. bench/README.md has the
ratios to PyTorch.

MobileNet's layers (3x3, padding 1, dilation 1, zeros) skip the copy: at stride 2
`stride2_channels` computes each block of 16 outputs of an output row straight from x's three
input rows, split into even and odd columns in registers by `vectors.taps3x3_stride2`; at
stride 1, on planes at least MIN_STRIDE1_WIDTH wide, `stride1_channels` computes two output
rows a block from the four input rows they read (`vectors.taps3x3_stride1`). Against the
narrow grid on MobileNetV1's layers, 0.64-0.81 of its time at stride 2 and 0.73-0.90 at
stride 1, at one and two threads (December 2026). Padding rows are zeros and padding columns
masked-off lanes, zeros too, each multiplied by its weight: the same products in the same
order, the same bits.

A channel costs a few long loops, not one loop per output row, which is what keeps the
7x7 and 14x14 layers (1,024 and 512 channels of 49 and 196 pixels) from drowning in loop
overhead.

Counts (returned; the caller records them under the reference's op names), made in the crop
loop, which visits each kept output pixel once (on the narrow grid, where every grid pixel is
kept, per plane from the same per-row padding table):
    macs          KH*KW per kept output pixel: the products summed into it
    padding_macs  per kept output row i: the taps that read padding (`planes.padding_per_row`)
    bias_adds, scale_shifts, compares   per kept output pixel, for the epilogue steps that ran
Every tap is executed, padding taps included (they multiply the padding value, 0 or a copied
pixel), so these equal the reference kernel's counts, and non-finite results match too
(0 * inf = NaN at the border, as in the reference and in PyTorch). The wide grid's extra
((KW - 1) * dw) // sw columns per row are executed, thrown away and not counted.
"""

import functools

import numpy as np
from numba import njit, prange

from .calls import address, call
from .vectors import LANES, taps3x3_stride1, taps3x3_stride2
from .epilogue import apply, apply_planes, crop
from .planes import (fill_all, fill_interior, fill_interior_s1, fill_interior_s2, fill_narrow, narrow_fits,
                     narrow_layout, padding_per_row, stride2_blocks)


# The taps and the epilogue run over the wide grid rounded up to a multiple of VECTOR
# elements: LLVM's vectorised loop takes whole blocks of lanes and leaves the rest of a loop
# to a scalar one, which on the small planes is a large part of a 63- or 105-element grid.
# The extra elements read the zeros of the slack and are never cropped. On one thread (AVX-512,
# December 2026) dw 1024@7 went 112 -> 107 us and dw 512@14 stride 2 91 -> 83 us; the larger
# planes did not move.
VECTOR = 64

# stride1_channels pays on planes this wide or wider: its blocks of LANES outputs are full
# enough, where a 7x7 plane fills 7 of 16 lanes (there the narrow grid took 47 us against its
# 50 on MobileNetV1's 1024@7; from 14x14 on it is 0.70-0.79 of the narrow grid's time)
MIN_STRIDE1_WIDTH = 14


@njit(cache=True, parallel=True)
def depthwise(work, x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
              padded_h, padded_w, mode, RJ, WJ, lead, top, offsets, pad_row, masks, blocks, threads):
    # work: the address of a chunk function (`CHUNKS`, picked by `run`), called on each chunk
    # x: (N, C, H, W)   w: (C*M, KH, KW)   bias, scale, shift: (C*M,)   y: (N, C*M, OH, OW) overwritten
    # the rest: `channels`' arguments   threads: how many chunks to split the (image, channel) pairs into
    N, C = x.shape[0], x.shape[1]
    tasks = N * C
    chunks = max(1, min(tasks, threads))
    macs = 0
    padding_macs = 0
    bias_adds = 0
    scale_shifts = 0
    compares = 0
    # The arguments' tuple is made once, outside the prange. Made in its body, it cost 1.5-4 us more
    # per call at 2 threads on MobileNet's small layers (dw 512@14 33.5 -> 36.8 us; at 1 thread
    # nothing), likely each thread taking and releasing a reference to each of its arrays, on
    # counters both threads share
    arguments = (x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left, padded_h,
                 padded_w, mode, RJ, WJ, lead, top, offsets, pad_row, masks, blocks)
    for chunk in prange(chunks):
        first, last = chunk * tasks // chunks, (chunk + 1) * tasks // chunks
        m, p, b, s, c = call(work, arguments, first, last)
        macs += m
        padding_macs += p
        bias_adds += b
        scale_shifts += s
        compares += c
    return macs, padding_macs, bias_adds, scale_shifts, compares


@njit(cache=True)
def depthwise_serial(work, x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
                     padded_h, padded_w, mode, RJ, WJ, lead, top, offsets, pad_row, masks, blocks):
    # `depthwise` on the calling thread alone, without Numba's thread pool (for a forked
    # process, where that pool cannot run: npconv/_threads.py). Same arguments, less `threads`.
    return call(work, (x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
                       padded_h, padded_w, mode, RJ, WJ, lead, top, offsets, pad_row, masks, blocks),
                0, x.shape[0] * x.shape[1])


def run(x, w, epilogue, y, steps, grid, threads):
    """The depthwise convolution of x (N, C, H, W) by w (C*M, KH, KW) into y (N, C*M, OH, OW),
    all C-contiguous of x's dtype: `stride1_channels`, `stride2_channels`, `narrow_channels` or
    `channels`, as `layout` chose (`grid` is its result), on every (image, channel) pair, in
    `threads` chunks on Numba's pool, or on the calling thread when `threads` is None or 1 (one
    chunk either way; entering the pool for it cost 1.3 us a call, December 2026). epilogue:
    (bias, has_bias, scale, shift, affine, lo, hi, clamp); steps: (sh, sw, pad_top, pad_left,
    padded_h, padded_w, mode). Returns the five counts (module docstring).

    The chunk function is reached through its address (`calls`): compiled once by itself, not
    again inside each of the two kernels around it. Its types follow from x's dtype, since every
    other argument is made here or by `npconv.fast.conv2d` with that dtype."""
    kind, *shape = grid
    arguments = (x, w, *epilogue, y, *steps, *shape)
    work = address(CHUNKS[kind], arguments, key=x.dtype)
    if threads is None or threads == 1:
        return depthwise_serial(work, *arguments)
    return depthwise(work, *arguments, threads)


@functools.lru_cache(maxsize=256)
def layout(H, W, OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left, mode, direct=True):
    """How the kernel computes this geometry, and where each tap's stream starts: (kind, RJ,
    WJ, lead, top, offsets, pad_row, masks, blocks), the kernels' last arguments.

        kind        "stride2" for MobileNet's stride-2 layers (3x3, stride 2, padding 1 at the
                    top and left, dilation 1, zero padding; unless `direct` is False), and
                    "stride1" for its stride-1 ones on planes at least MIN_STRIDE1_WIDTH wide:
                    their taps read x itself (`stride2_channels`, `stride1_channels`), and of
                    the rest only pad_row and blocks (`stride2_lanes`, `stride1_lanes`) are
                    used; "narrow" where the narrow grid fits (`planes.narrow_fits`, zero
                    padding only); else "wide"
        RJ, WJ      rows and columns of a channel's sub-planes (WJ: OW on the narrow grid)
        lead, top   the narrow grid's slack before the first sub-plane, and zero rows above
                    each sub-plane's first input row (0 on the wide grid)
        offsets     (KH, KW): where tap (p, q)'s stream starts in the buffer
        pad_row     (OH,): the padding taps of each output row (`planes.padding_per_row`)
        masks       (KW, OH*OW): on the narrow grid, whether tap column q reads an input pixel
                    at each output pixel (shape (0, 0) on the wide grid)
        blocks      on the narrow grid at stride 2, `planes.stride2_blocks`' list of the
                    vector copies that split a plane into its sub-planes; for "stride1" and
                    "stride2", the lane masks of `stride1_lanes` / `stride2_lanes` ((0, 5)
                    otherwise)

    A layout depends on the geometry alone: it is worked out once per geometry (a layer's
    every call after its first finds it here) and shared, so its arrays are read-only. Plain
    Python: compiled into the kernels, it was one more function for every caller to re-optimise."""
    pad_row = padding_per_row(OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left, H, W)
    blocks = np.zeros((0, 5), np.uint64)     # no stride-2 copy
    if mode == 0 and narrow_fits(W, OW, KW, sw, dw, pad_left):
        RJ, lead, top, offsets, masks = narrow_layout(H, W, OH, OW, KH, KW, sh, sw, dh, dw, pad_top, pad_left)
        kind, WJ = "narrow", OW
        mobilenet = direct and (KH, KW, dh, dw, pad_top, pad_left) == (3, 3, 1, 1, 1, 1)
        if mobilenet and (sh, sw) == (2, 2):
            kind, blocks = "stride2", stride2_lanes(W, OW)
        elif mobilenet and (sh, sw) == (1, 1) and W >= MIN_STRIDE1_WIDTH:
            kind, blocks = "stride1", stride1_lanes(W, OW)
        elif sh == 2 and sw == 2:
            blocks = stride2_blocks(H, W, RJ, OW, lead, top)
    else:
        RJ = OH + ((KH - 1) * dh) // sh      # rows of a sub-plane
        WJ = OW + ((KW - 1) * dw) // sw      # columns of a sub-plane = width of the wide grid
        offsets = np.empty((KH, KW), np.int64)
        for p in range(KH):
            for q in range(KW):
                a, b = (p * dh) % sh, (q * dw) % sw
                offsets[p, q] = (a * sw + b) * RJ * WJ + ((p * dh) // sh) * WJ + (q * dw) // sw
        kind, lead, top, masks = "wide", 0, 0, np.zeros((0, 0), np.bool_)
    for array in (offsets, pad_row, masks, blocks):
        array.flags.writeable = False
    return kind, int(RJ), int(WJ), int(lead), int(top), offsets, pad_row, masks, blocks


@njit(cache=True)
def channels(x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
             padded_h, padded_w, mode, RJ, WJ, lead, top, offsets, pad_row, masks, blocks, first, last):
    # The (image, channel) pairs first..last-1 (task = n * C + c) on the wide grid, each start
    # to finish: copy into the sub-planes, the taps, the epilogue, the crop (RJ, WJ, offsets,
    # pad_row: `layout`; the narrow grid's twin is `narrow_channels`, whose arguments these are
    # too, so that one kernel calls either: lead, top, masks, blocks are the narrow
    # grid's and unused here). Returns the five counts.
    C = x.shape[1]
    CO, KH, KW = w.shape
    M = CO // C
    OH = y.shape[2]
    L = OH * WJ                              # length of the wide grid
    LV = (L + VECTOR - 1) // VECTOR * VECTOR  # ... rounded up to whole vector blocks (see VECTOR)
    size = sh * sw * RJ * WJ + WJ + VECTOR   # all sub-planes, and slack for the wide grid's tail
    macs = 0
    padding_macs = 0
    bias_adds = 0
    scale_shifts = 0
    compares = 0
    flat = np.zeros(size, x.dtype)
    wide = np.empty(LV, x.dtype)
    for task in range(first, last):
        n = task // C
        c = task - n * C
        if mode == 0 and sh == 1 and sw == 1:
            fill_interior_s1(x, n, c, RJ, WJ, pad_top, pad_left, flat)
        elif mode == 0 and sh == 2 and sw == 2:
            fill_interior_s2(x, n, c, RJ, WJ, pad_top, pad_left, flat)
        elif mode == 0:
            fill_interior(x, n, c, sh, sw, RJ, WJ, pad_top, pad_left, flat)
        else:
            fill_all(x, n, c, sh, sw, RJ, WJ, pad_top, pad_left, padded_h, padded_w, mode, flat)
        for m in range(M):
            o = c * M + m
            if KH == 3 and KW == 3:
                taps3x3(flat, offsets, w, o, wide)
            else:
                taps_any(flat, offsets, w, o, wide)
            if has_bias or affine or clamp:
                apply(wide, o, bias, has_bias, scale, shift, affine, lo, hi, clamp)
            counted, padded, kept = crop(wide, WJ, y, n, o, KH * KW, pad_row)
            macs += counted
            padding_macs += padded
            if has_bias:
                bias_adds += kept
            if affine:
                scale_shifts += kept
            if clamp:
                compares += 2 * kept
    return macs, padding_macs, bias_adds, scale_shifts, compares


# The narrow grid fills the sub-planes of a group of channels, GROUP_BYTES of them at most, then
# runs their taps, then their epilogue, each step one loop over the group. One call per channel
# and step instead cost more than the work on MobileNet's 7x7 planes: their taps and copies
# took 46 and 14 us per 1,024 channels that way and 31 and 5 us this way (December 2026).
GROUP_BYTES = 1 << 15


@njit(cache=True)
def narrow_channels(x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
                    padded_h, padded_w, mode, RJ, OW, lead, top, offsets, pad_row, masks, blocks, first, last):
    # `channels` on the narrow grid (planes.py): tasks first..last-1, a group at a time, each
    # task's sub-planes `stride` elements after the last one's; the output is written in place
    # (pad_top, pad_left, padded_h, padded_w, mode: the wide grid's, unused here)
    N, C, H, W = x.shape
    CO, KH, KW = w.shape
    M = CO // C
    OH = y.shape[2]
    L = OH * OW
    stride = lead + sh * sw * RJ * OW + OW + VECTOR  # a task's sub-planes, and slack for its last streams
    group = max(1, min(last - first, GROUP_BYTES // (stride * x.itemsize)))
    flat = np.zeros(group * stride, x.dtype)
    xf, yf, mf = x.reshape(x.size), y.reshape(y.size), masks.reshape(masks.size)
    uoffsets = offsets.astype(np.uint64)
    planes = 0                               # output planes the taps loops wrote, all L pixels each
    for start in range(first, last, group):
        count = min(group, last - start)
        fill_narrow(xf, start, count, H, W, sh, sw, RJ, OW, lead, top, stride, flat, blocks)
        # task t's M output planes are planes t*M .. t*M + M - 1 of y: the group's are contiguous
        if KH == 3 and KW == 3:
            taps3x3_masked(flat, stride, uoffsets, mf, w, start, count, M, yf, L)
        else:
            taps_any_masked(flat, stride, uoffsets, mf, w, start, count, M, yf, L)
        if has_bias or affine or clamp:
            apply_planes(yf, start * M, count * M, CO, L, bias, has_bias, scale, shift, affine, lo, hi, clamp)
        planes += count * M
    return plane_counts(planes, L, KH * KW, pad_row, has_bias, affine, clamp)


@njit(cache=True)
def stride2_channels(x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
                     padded_h, padded_w, mode, RJ, OW, lead, top, offsets, pad_row, masks, blocks, first, last):
    # MobileNet's stride-2 layers (3x3, stride 2, padding 1 at the top and left, dilation 1,
    # zeros; `layout`'s "stride2"), tasks first..last-1, with no copy: each block of LANES
    # outputs of an output row i is computed from x's rows 2i - 1, 2i and 2i + 1 by
    # `vectors.taps3x3_stride2`, which splits their columns into even and odd in registers.
    # blocks (`stride2_lanes`) holds the lane masks of each block's reads; a row outside the
    # input is a padding row (its bit in `rows` is 0), a column outside it a masked-off lane:
    # zeros, as the reference's padded input has there, each multiplied by its weight. The
    # same products in the same order as on the other grids: the same bits. Against the
    # narrow grid's copy into sub-planes and taps over them (interleaved, December 2026),
    # MobileNetV1's stride-2 layers 64@112, 128@56, 256@28 and 512@14 take 0.64-0.77 of its
    # time at one thread and 0.72-0.81 at two (two runs; 128@56, for one, 91 -> 62 us and
    # 70 -> 52 us). Without the mask table, each block working out its masks, it was
    # 0.75-0.87 and 0.71-0.85.
    # (The other arguments are the other chunk functions'; only pad_row is used here.)
    U = np.uint64
    N, C, H, W = x.shape
    CO = w.shape[0]
    M = CO // C
    OH = y.shape[2]
    L = OH * OW
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    for task in range(first, last):
        plane = task * H * W
        for m in range(M):
            P = task * M + m
            weights = nine_weights(w, P % CO)
            for i in range(OH):
                top_row = 2 * i - 1                   # x's row read by kernel row p = 0
                rows = U((top_row >= 0) + 2 * (top_row + 1 < H) + 4 * (top_row + 2 < H))
                base = plane + top_row * W            # (top_row may be -1: that row is then not read)
                at = P * L + i * OW
                if rows == U(7):                      # (a constant there: the compiler drops the rows' tests)
                    for b in range(blocks.shape[0]):
                        start = U(base + 2 * LANES * b)
                        taps3x3_stride2(xf, start, start + U(W), start + U(2 * W), U(7), blocks[b, 0], blocks[b, 1],
                                        weights, yf, U(at + LANES * b), U(min(LANES, OW - LANES * b)))
                else:
                    for b in range(blocks.shape[0]):
                        start = base + 2 * LANES * b
                        taps3x3_stride2(xf, U(max(0, start)), U(start + W), U(start + 2 * W), rows, blocks[b, 0],
                                        blocks[b, 1], weights, yf, U(at + LANES * b), U(min(LANES, OW - LANES * b)))
    return direct_epilogue(yf, first, last, M, CO, L, pad_row, bias, has_bias, scale, shift, affine, lo, hi, clamp)


@njit(cache=True)
def stride1_channels(x, w, bias, has_bias, scale, shift, affine, lo, hi, clamp, y, sh, sw, pad_top, pad_left,
                     padded_h, padded_w, mode, RJ, OW, lead, top, offsets, pad_row, masks, blocks, first, last):
    # MobileNet's stride-1 layers on planes at least MIN_STRIDE1_WIDTH wide (3x3, stride 1,
    # padding 1 at the top and left, dilation 1, zeros; `layout`'s "stride1"), tasks
    # first..last-1, with no copy: output rows i and i + 1, a block of LANES outputs of each,
    # from x's rows i - 1 .. i + 2 by `vectors.taps3x3_stride1`, which reads each row three
    # times (tap columns q = 0, 1, 2), once for both output rows. blocks (`stride1_lanes`)
    # holds the lane masks of each block's reads; padding rows and columns are zeros, each
    # multiplied by its weight, as in `stride2_channels`: the same bits as the other grids.
    # Against the narrow grid (interleaved, December 2026) MobileNetV1's stride-1 layers
    # 32@112, 128@56, 256@28 and 512@14 took 184, 171, 91 and 55 us that way and 144, 129, 75
    # and 48 this way at one thread (0.73-0.90 of its time at two); 1024@7, one block of 16
    # lanes holding 7 outputs a row, 47 against 50, so 7x7 planes keep the narrow grid.
    U = np.uint64
    N, C, H, W = x.shape
    CO = w.shape[0]
    M = CO // C
    OH = y.shape[2]
    L = OH * OW
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    for task in range(first, last):
        plane = task * H * W
        for m in range(M):
            P = task * M + m
            weights = nine_weights(w, P % CO)
            for i in range(0, OH, 2):
                top_row = i - 1                       # x's row read by kernel row p = 0 for output row i
                rows = U((top_row >= 0) + 2 * (i < H) + 4 * (i + 1 < H) + 8 * (i + 2 < H))
                both = U(i + 1 < OH)                  # a second output row
                base = plane + top_row * W            # (top_row may be -1: that row is then not read)
                at = P * L + i * OW
                if rows == U(15):                     # (a constant there: the compiler drops the rows' tests)
                    for b in range(blocks.shape[0]):
                        start = U(base + LANES * b)
                        taps3x3_stride1(xf, start, start + U(W), start + U(2 * W), start + U(3 * W), U(15),
                                        blocks[b, 0], blocks[b, 1], blocks[b, 2], weights, yf, U(at + LANES * b),
                                        U(OW), U(min(LANES, OW - LANES * b)), both)
                else:
                    for b in range(blocks.shape[0]):
                        start = base + LANES * b
                        taps3x3_stride1(xf, U(max(0, start)), U(start + W), U(start + 2 * W), U(start + 3 * W), rows,
                                        blocks[b, 0], blocks[b, 1], blocks[b, 2], weights, yf, U(at + LANES * b),
                                        U(OW), U(min(LANES, OW - LANES * b)), both)
    return direct_epilogue(yf, first, last, M, CO, L, pad_row, bias, has_bias, scale, shift, affine, lo, hi, clamp)


@njit(cache=True)
def nine_weights(w, o):
    # output channel o's 3x3 weights, in the (p, q) order of the sums
    return (w[o, 0, 0], w[o, 0, 1], w[o, 0, 2], w[o, 1, 0], w[o, 1, 1], w[o, 1, 2], w[o, 2, 0], w[o, 2, 1], w[o, 2, 2])


@njit(cache=True)
def direct_epilogue(yf, first, last, M, CO, L, pad_row, bias, has_bias, scale, shift, affine, lo, hi, clamp):
    # the epilogue of tasks first..last-1's output planes (M each, of L pixels), and the five
    # counts, for `stride1_channels` and `stride2_channels` (3x3: 9 products an output pixel)
    planes = (last - first) * M
    if has_bias or affine or clamp:
        apply_planes(yf, first * M, planes, CO, L, bias, has_bias, scale, shift, affine, lo, hi, clamp)
    return plane_counts(planes, L, 9, pad_row, has_bias, affine, clamp)


@njit(cache=True)
def plane_counts(planes, L, taps, pad_row, has_bias, affine, clamp):
    # the five counts (module docstring) of `planes` whole output planes of L pixels, each pixel
    # the sum of `taps` products; pad_row: the padding taps of each output row of a plane
    padding_per_plane = 0
    for i in range(pad_row.shape[0]):
        padding_per_plane += pad_row[i]
    kept = planes * L
    return (taps * kept, planes * padding_per_plane, kept if has_bias else 0, kept if affine else 0,
            2 * kept if clamp else 0)


def stride1_lanes(W, OW):
    """`layout`'s `blocks` for `stride1_channels`: for each block of LANES outputs of a row
    (from column j0 = LANES * b), the lanes of its reads of a row from columns j0 - 1, j0 and
    j0 + 1 (tap columns q = 0, 1, 2) that lie in the input, as bits (lane l = bit l)."""
    return np.array([(_lanes(1 if j0 == 0 else 0, W - j0 + 1, LANES), _lanes(0, W - j0, LANES),
                      _lanes(0, W - j0 - 1, LANES)) for j0 in range(0, OW, LANES)], np.uint64).reshape(-1, 3)


def _lanes(first, end, width):
    # the bits of lanes first .. end-1, clipped to 0 .. width
    end = min(width, max(0, end))
    return ((1 << end) - 1) & ~((1 << min(first, end)) - 1)


def stride2_lanes(W, OW):
    """`layout`'s `blocks` for `stride2_channels`: for each block of LANES outputs of a row
    (from column j0 = LANES * b), the lanes of its two reads of a row that lie in the input, as
    bits (lane l = bit l): the 2 * LANES columns from 2*j0 - 2, and those from 2*j0."""
    return np.array([(_lanes(2 if j0 == 0 else 0, W - 2 * j0 + 2, 2 * LANES), _lanes(0, W - 2 * j0, 2 * LANES))
                     for j0 in range(0, OW, LANES)], np.uint64).reshape(-1, 2)


CHUNKS = {"wide": channels, "narrow": narrow_channels, "stride1": stride1_channels, "stride2": stride2_channels}


@njit(cache=True)
def taps3x3(flat, offsets, w, o, wide):
    # flat: the sub-planes of one channel   offsets: (3, 3)   w: (C*M, 3, 3)   wide: (L,) overwritten
    # wide[k] = sum_{p,q} flat[offsets[p, q] + k] * w[o, p, q]
    L = wide.shape[0]
    t00, t01, t02 = flat[offsets[0, 0]:], flat[offsets[0, 1]:], flat[offsets[0, 2]:]
    t10, t11, t12 = flat[offsets[1, 0]:], flat[offsets[1, 1]:], flat[offsets[1, 2]:]
    t20, t21, t22 = flat[offsets[2, 0]:], flat[offsets[2, 1]:], flat[offsets[2, 2]:]
    w00, w01, w02 = w[o, 0, 0], w[o, 0, 1], w[o, 0, 2]
    w10, w11, w12 = w[o, 1, 0], w[o, 1, 1], w[o, 1, 2]
    w20, w21, w22 = w[o, 2, 0], w[o, 2, 1], w[o, 2, 2]
    for k in range(L):
        wide[k] = (t00[k] * w00 + t01[k] * w01 + t02[k] * w02
                   + t10[k] * w10 + t11[k] * w11 + t12[k] * w12
                   + t20[k] * w20 + t21[k] * w21 + t22[k] * w22)


@njit(cache=True)
def taps_any(flat, offsets, w, o, wide):
    # any KH x KW: wide[k] = sum_{p,q} flat[offsets[p, q] + k] * w[o, p, q], one tap stream at a time
    L = wide.shape[0]
    KH, KW = offsets.shape
    zero = wide.dtype.type(0)
    for k in range(L):
        wide[k] = zero
    for p in range(KH):
        for q in range(KW):
            tap = flat[offsets[p, q]:]
            w_pq = w[o, p, q]
            for k in range(L):
                wide[k] += tap[k] * w_pq


@njit(cache=True)
def taps3x3_masked(flat, stride, offsets, masks, w, start, count, M, out, L):
    # the narrow grid's taps3x3 for tasks start..start+count-1, whose sub-planes are `stride`
    # apart in flat: output plane P = t*M + m (t = start + g; y's plane (n, c*M + m) for
    # t = n*C + c) is out[P*L :][:L], of output channel o = P % C_out, and
    #   out[P*L + k] = sum_{p,q} (flat[g*stride + offsets[p, q] + k] if masks[q*L + k] else 0) * w[o, p, q]
    # masks (3 * L,) say where tap column q reads an input pixel; elsewhere it reads padding, a
    # zero, as the reference's padded input has there. Every index is unsigned (offsets are
    # uint64): Numba then needs no negative-index wraparound and LLVM vectorises the loop on
    # flat views. With a slice per stream instead (taps3x3), their setup cost more than the
    # 49 outputs of a 7x7 plane: 1,024 such planes took 62 us that way and 22 us this way.
    U = np.uint64
    CO = w.shape[0]
    zero = out.dtype.type(0)
    n = U(L)
    m1, m2 = n, n + n
    for g in range(count):
        shift = U(g * stride)
        o00, o01, o02 = offsets[0, 0] + shift, offsets[0, 1] + shift, offsets[0, 2] + shift
        o10, o11, o12 = offsets[1, 0] + shift, offsets[1, 1] + shift, offsets[1, 2] + shift
        o20, o21, o22 = offsets[2, 0] + shift, offsets[2, 1] + shift, offsets[2, 2] + shift
        for m in range(M):
            plane = (start + g) * M + m
            base = U(plane * L)
            o = plane % CO                       # its output channel
            w00, w01, w02 = w[o, 0, 0], w[o, 0, 1], w[o, 0, 2]
            w10, w11, w12 = w[o, 1, 0], w[o, 1, 1], w[o, 1, 2]
            w20, w21, w22 = w[o, 2, 0], w[o, 2, 1], w[o, 2, 2]
            for k in range(n):
                a, b, c = masks[k], masks[m1 + k], masks[m2 + k]
                out[base + k] = ((flat[o00 + k] if a else zero) * w00 + (flat[o01 + k] if b else zero) * w01
                                 + (flat[o02 + k] if c else zero) * w02
                                 + (flat[o10 + k] if a else zero) * w10 + (flat[o11 + k] if b else zero) * w11
                                 + (flat[o12 + k] if c else zero) * w12
                                 + (flat[o20 + k] if a else zero) * w20 + (flat[o21 + k] if b else zero) * w21
                                 + (flat[o22 + k] if c else zero) * w22)


@njit(cache=True)
def taps_any_masked(flat, stride, offsets, masks, w, start, count, M, out, L):
    # the narrow grid's taps_any, one tap stream at a time, padding taps reading zero; the
    # arguments and unsigned indices of taps3x3_masked
    U = np.uint64
    CO = w.shape[0]
    KH, KW = offsets.shape
    zero = out.dtype.type(0)
    n = U(L)
    for g in range(count):
        shift = U(g * stride)
        for m in range(M):
            plane = (start + g) * M + m
            base = U(plane * L)
            o = plane % CO                       # its output channel
            for k in range(n):
                out[base + k] = zero
            for p in range(KH):
                for q in range(KW):
                    tap = offsets[p, q] + shift
                    inside = U(q) * n
                    w_pq = w[o, p, q]
                    for k in range(n):
                        out[base + k] += (flat[tap + k] if masks[inside + k] else zero) * w_pq
