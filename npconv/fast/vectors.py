"""Explicit vector code for what LLVM does not vectorise well by itself: splitting short runs
of pixels into their even and odd ones, for the stride-2 depthwise layers.

    dst[e0 + t] = src[s0 + 2t]        for t < ne
    dst[o0 + t] = src[s0 + 2t + 1]    for t < no

is the stride-2 depthwise kernel's copy of an input row into two column phases
(`planes.fill_narrow`). Written as a loop, LLVM vectorises it in blocks of its vector width
times an unroll factor (64 float32 outputs on AVX-512) and leaves the rest to scalar code, so
a row of MobileNet's stride-2 layers (7 to 56 outputs a phase) ran almost all scalar: 256
planes of 28x28 took 68 us to split at one thread, where the same bytes copied in one long loop
took 17. A constant trip count of 16 did not help: LLVM unrolled it into 64 scalar moves.

Here the copy of up to LANES outputs a phase is written out as the vector operations it
should be, as Numba intrinsics emitting LLVM IR: one load of 2 * LANES elements, two
shuffles (the even and the odd lanes), two stores. `split_pairs` masks the load and the
stores to the elements asked for, so it reads and writes nothing else (LLVM's
`llvm.masked.load` / `llvm.masked.store`); `split_pairs_full` is the same for a full block,
with plain loads and stores, which LLVM schedules more freely. LLVM lowers the vector types to
the machine's registers (two zmm for 32 float32 on AVX-512, four ymm on AVX2) and the masked
moves to the machine's own, or to scalar code where it has none: the result is the same on
every machine. The same 256 planes of 28x28 within the depthwise kernel: 74 -> 26 us
(December 2026, one thread; making the lanes' masks from the bits of 2**n - 1, not by
comparing lane numbers, was 33 -> 26 of that).

`taps3x3_stride2` goes one step further for MobileNet's stride-2 layers (3x3, padding 1):
it splits the three input rows an output row reads in registers, as above, and computes
LANES outputs from them, the nine products summed in the reference's order, with no copy at
all (`depthwise.stride2_channels`). `taps3x3_stride1` does the same at stride 1 for two
output rows from the four input rows they read (`depthwise.stride1_channels`).

Indices are unsigned (uint64), as in the kernels that call these, and are not checked: the
caller keeps them in bounds.
"""

from llvmlite import ir
from llvmlite.ir import types as ir_types
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16     # outputs a phase per call

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _pointer_suffix(vector: ir.VectorType, elem) -> str:
    # the overloaded intrinsics' name part for a pointer to `vector`: "p0" with opaque pointers
    # (LLVM 15 on), "p0v32f32" with the typed pointers of older llvmlite
    if getattr(ir_types, "ir_layer_typed_pointers_enabled", True):
        return f"p0v{vector.count}{elem.intrinsic_name}"
    return "p0"


def _mask_from_bits(builder, bits, width):
    # the <width x i1> mask whose lane l is bit l of `bits` (i64, width <= 32): AVX-512 moves
    # the bits into a mask register as they are
    return builder.bitcast(builder.trunc(bits, ir.IntType(width)), ir.VectorType(ir.IntType(1), width))


def _lanes_below(builder, count, width):
    # the <width x i1> mask of lanes 0 .. count-1 (count: i64, at most width): 2**count - 1
    return _mask_from_bits(builder, builder.sub(builder.shl(ir.Constant(_I64, 1), count), ir.Constant(_I64, 1)), width)


def _masked_load(context, builder, data, elem, index, lanes, width):
    """data[index :][:width] (data: a pointer to `elem`) under the <width x i1> mask `lanes`,
    zeros in the lanes masked off, which are never read: there the pointer may precede or pass
    the array (llvm.masked.load)."""
    vector = ir.VectorType(elem, width)
    pointer = builder.bitcast(builder.gep(data, [index]), vector.as_pointer())
    load = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [pointer.type, _I32, lanes.type, vector]),
        f"llvm.masked.load.v{width}{elem.intrinsic_name}.{_pointer_suffix(vector, elem)}")
    align = ir.Constant(_I32, context.get_abi_sizeof(elem))
    return builder.call(load, [pointer, align, lanes, ir.Constant(vector, None)])


def _masked_store(context, builder, data, elem, index, values, lanes):
    """data[index + t] = values[t] in the lanes t of the mask `lanes`, nothing else written
    (llvm.masked.store)."""
    pointer = builder.bitcast(builder.gep(data, [index]), values.type.as_pointer())
    store = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [values.type, pointer.type, _I32, lanes.type]),
        f"llvm.masked.store.v{values.type.count}{elem.intrinsic_name}.{_pointer_suffix(values.type, elem)}")
    builder.call(store, [values, pointer, ir.Constant(_I32, context.get_abi_sizeof(elem)), lanes])


_LANE_PICKS = [ir.Constant(ir.VectorType(_I32, LANES), list(range(k, 2 * LANES, 2))) for k in (0, 1)]   # evens, odds


def _evens_odds(builder, pair):
    # the even and the odd lanes of a <2*LANES> vector, two <LANES> vectors
    return tuple(builder.shuffle_vector(pair, pair, picks) for picks in _LANE_PICKS)


def _unpack(context, builder, signature, args, arrays, tuples=()):
    # the data pointers of the array arguments at `arrays`, the elements of the tuple arguments
    # at `tuples`, every other argument as uint64
    out = []
    for k, (value, kind) in enumerate(zip(args, signature.args)):
        if k in arrays:
            out.append(context.make_array(kind)(context, builder, value).data)
        elif k in tuples:
            out.append([builder.extract_value(value, i) for i in range(kind.count)])
        else:
            out.append(context.cast(builder, value, kind, types.uint64))
    return out


def _split(context, builder, signature, args, masked):
    # the IR of both split intrinsics; args: src, s0, dst, e0, o0 (, ne, no)
    src, s0, dst, e0, o0, *counts = _unpack(context, builder, signature, args, (0, 2))
    elem = context.get_data_type(signature.args[0].dtype)
    if masked:
        # ne - no is 0 or 1 (the caller's contract): the pairs read are exactly lanes < ne + no
        ne, no = counts
        pair = _masked_load(context, builder, src, elem, s0, _lanes_below(builder, builder.add(ne, no), 2 * LANES),
                            2 * LANES)
    else:
        source = builder.bitcast(builder.gep(src, [s0]), ir.VectorType(elem, 2 * LANES).as_pointer())
        pair = builder.load(source, align=context.get_abi_sizeof(elem))
    for start, values, count in zip((e0, o0), _evens_odds(builder, pair), counts or (None, None)):
        if masked:
            _masked_store(context, builder, dst, elem, start, values, _lanes_below(builder, count, LANES))
        else:
            target = builder.bitcast(builder.gep(dst, [start]), values.type.as_pointer())
            builder.store(values, target, align=context.get_abi_sizeof(elem))
    return context.get_dummy_value()


@intrinsic
def split_pairs(typingctx, src, s0, dst, e0, o0, ne, no):
    """dst[e0 + t] = src[s0 + 2t] for t < ne, dst[o0 + t] = src[s0 + 2t + 1] for t < no, with
    ne <= LANES and ne - no 0 or 1 (a run split from its start); src and dst 1-D arrays of one dtype,
    the indices uint64. Reads src[s0 : s0 + ne + no] and writes those 2 runs, nothing else."""
    def codegen(context, builder, signature, args):
        return _split(context, builder, signature, args, masked=True)
    return types.void(src, s0, dst, e0, o0, ne, no), codegen


@intrinsic
def split_pairs_full(typingctx, src, s0, dst, e0, o0):
    """split_pairs(src, s0, dst, e0, o0, LANES, LANES), with unmasked loads and stores."""
    def codegen(context, builder, signature, args):
        return _split(context, builder, signature, args, masked=False)
    return types.void(src, s0, dst, e0, o0), codegen


def _row_load(context, builder, x, elem, start, offset, mask, present, width):
    """x[start + offset :][:width] (x: the data pointer) under the lane mask `mask` (bits),
    zeros elsewhere, and everywhere unless `present` (i1). The pointer may precede the array
    (offset < 0 at the first column); those lanes are masked off, never read."""
    bits = builder.select(present, mask, ir.Constant(_I64, 0))
    return _masked_load(context, builder, x, elem, builder.add(start, ir.Constant(_I64, offset)),
                        _mask_from_bits(builder, bits, width), width)


def _weighted_sum(builder, taps, weights, elem):
    """sum of taps[k] * weights[k] over k in order (the reference's (p, q) order), each weight
    broadcast to LANES lanes."""
    phase = ir.VectorType(elem, LANES)
    total = None
    for weight, tap in zip(weights, taps):
        splat = builder.insert_element(ir.Constant(phase, None), weight, ir.Constant(_I32, 0))
        splat = builder.shuffle_vector(splat, splat, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
        product = builder.fmul(tap, splat)
        total = product if total is None else builder.fadd(total, product)
    return total


def _present(builder, rows, p):
    # whether bit p of `rows` is set (row p is an input row, not padding)
    return builder.icmp_unsigned("!=", builder.and_(rows, ir.Constant(_I64, 1 << p)), ir.Constant(_I64, 0))


@intrinsic
def taps3x3_stride2(typingctx, x, row0, row1, row2, rows, before, after, weights, y, at, n):
    """LANES outputs of one output row i of a 3x3, stride-2, padding-1 depthwise convolution,
    straight from the input: for t < n (j = j0 + t),

        y[at + t] = sum_{p, q} x_pad[2i + p, 2j + q] * weights[3p + q]

    summed in the reference's (p, q) order. Row p of the three (x's row 2i + p - 1) is read from
    x at rowp, the index of its column 2*j0, and is a padding row where bit p of `rows` is 0.
    Each row is read twice, as pairs of columns split in registers: from column 2*j0 - 2 (its
    odd lanes are tap column q = 0, input column 2j - 1) under the lane mask `before`, and from
    column 2*j0 (even lanes q = 1, odd lanes q = 2) under `after` (bits, lane l = bit l, from
    the input's width: `depthwise.stride2_lanes`). A lane outside the input is a zero, the
    reference's padding. x and y 1-D of one dtype, weights a tuple of nine of it; indices
    uint64. Reads nothing outside the masks' lanes; writes y[at : at + n], nothing else."""
    def codegen(context, builder, signature, args):
        xd, *starts, rows, before, after, weights, yd, at, n = _unpack(context, builder, signature, args, (0, 8), (7,))
        elem = context.get_data_type(signature.args[0].dtype)
        taps = []
        for p in range(3):
            present = _present(builder, rows, p)
            first = _row_load(context, builder, xd, elem, starts[p], -2, before, present, 2 * LANES)
            second = _row_load(context, builder, xd, elem, starts[p], 0, after, present, 2 * LANES)
            taps += [_evens_odds(builder, first)[1], *_evens_odds(builder, second)]     # q = 0, 1, 2
        _masked_store(context, builder, yd, elem, at, _weighted_sum(builder, taps, weights, elem),
                      _lanes_below(builder, n, LANES))
        return context.get_dummy_value()
    return types.void(x, row0, row1, row2, rows, before, after, weights, y, at, n), codegen


@intrinsic
def taps3x3_stride1(typingctx, x, row0, row1, row2, row3, rows, left, middle, right, weights, y, at, pitch, n, both):
    """LANES outputs of each of two output rows i and i + 1 of a 3x3, stride-1, padding-1
    depthwise convolution, straight from the input: for t < n (j = j0 + t) and r = 0, 1,

        y[at + r*pitch + t] = sum_{p, q} x_pad[i + r + p, j + q] * weights[3p + q]

    summed in the reference's (p, q) order; the second row only where `both` is 1. The four
    rows they read (x's rows i - 1 .. i + 2) are read from x at row0 .. row3, the index of
    their column j0, each a padding row where its bit in `rows` is 0; tap column q reads
    input column j + q - 1, LANES of them from rowk + q - 1 under the lane masks `left`,
    `middle` and `right` (bits, from the input's width: `depthwise.stride1_lanes`). Each
    row's three reads serve both output rows it is in: 12 reads for 2 * LANES outputs. A lane
    outside the input is a zero, the reference's padding. x and y 1-D of one dtype, weights a
    tuple of nine of it; indices uint64. Reads nothing outside the masks' lanes; writes
    y[at : at + n] and, where `both`, y[at + pitch :][:n], nothing else."""
    def codegen(context, builder, signature, args):
        xd, *rest = _unpack(context, builder, signature, args, (0, 10), (9,))
        starts, (rows, left, middle, right, weights, yd, at, pitch, n, both) = rest[:4], rest[4:]
        elem = context.get_data_type(signature.args[0].dtype)
        reads = [[_row_load(context, builder, xd, elem, starts[k], q - 1, mask, _present(builder, rows, k), LANES)
                  for q, mask in enumerate((left, middle, right))] for k in range(4)]
        for r, (target, lanes) in enumerate(((at, n), (builder.add(at, pitch), builder.mul(n, both)))):
            taps = [reads[r + p][q] for p in range(3) for q in range(3)]
            _masked_store(context, builder, yd, elem, target, _weighted_sum(builder, taps, weights, elem),
                          _lanes_below(builder, lanes, LANES))
        return context.get_dummy_value()
    return types.void(x, row0, row1, row2, row3, rows, left, middle, right, weights, y, at, pitch, n, both), codegen
