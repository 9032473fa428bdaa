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
all (`depthwise.stride2_channels`).

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


def _lanes_below(builder, count, width):
    # the <width x i1> mask of lanes 0 .. count-1 (count: i64, at most width <= 32): the bits
    # of 2**count - 1, which AVX-512 moves into a mask register as they are
    bits = builder.sub(builder.shl(ir.Constant(_I64, 1), count), ir.Constant(_I64, 1))
    return builder.bitcast(builder.trunc(bits, ir.IntType(width)), ir.VectorType(ir.IntType(1), width))


def _split(context, builder, signature, args, masked):
    # the IR shared by both intrinsics; args: src, s0, dst, e0, o0 (, ne, no)
    src_type, dst_type = signature.args[0], signature.args[2]
    src = context.make_array(src_type)(context, builder, args[0])
    dst = context.make_array(dst_type)(context, builder, args[2])
    elem = context.get_data_type(src_type.dtype)
    align = ir.Constant(_I32, context.get_abi_sizeof(elem))
    s0, e0, o0 = (context.cast(builder, args[k], signature.args[k], types.uint64) for k in (1, 3, 4))
    pair, phase = ir.VectorType(elem, 2 * LANES), ir.VectorType(elem, LANES)
    source = builder.bitcast(builder.gep(src.data, [s0]), pair.as_pointer())
    if masked:
        ne, no = (context.cast(builder, args[k], signature.args[k], types.uint64) for k in (5, 6))
        # ne - no is 0 or 1 (the caller's contract): the pairs read are exactly lanes < ne + no
        load_type = ir.FunctionType(pair, [source.type, _I32, ir.VectorType(ir.IntType(1), 2 * LANES), pair])
        load = cgutils.get_or_insert_function(
            builder.module, load_type, f"llvm.masked.load.v{2 * LANES}{elem.intrinsic_name}.{_pointer_suffix(pair, elem)}")
        both = builder.call(load, [source, align, _lanes_below(builder, builder.add(ne, no), 2 * LANES),
                                   ir.Constant(pair, ir.Undefined)])
    else:
        both = builder.load(source, align=align.constant)
    evens = builder.shuffle_vector(both, both, ir.Constant(ir.VectorType(_I32, LANES), list(range(0, 2 * LANES, 2))))
    odds = builder.shuffle_vector(both, both, ir.Constant(ir.VectorType(_I32, LANES), list(range(1, 2 * LANES, 2))))
    for start, values, count in ((e0, evens, 5), (o0, odds, 6)):
        target = builder.bitcast(builder.gep(dst.data, [start]), phase.as_pointer())
        if masked:
            store_type = ir.FunctionType(ir.VoidType(), [phase, target.type, _I32, ir.VectorType(ir.IntType(1), LANES)])
            store = cgutils.get_or_insert_function(
                builder.module, store_type,
                f"llvm.masked.store.v{LANES}{elem.intrinsic_name}.{_pointer_suffix(phase, elem)}")
            builder.call(store, [values, target, align, _lanes_below(builder, (ne, no)[count - 5], LANES)])
        else:
            builder.store(values, target, align=align.constant)
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


def _mask_from_bits(builder, bits, width):
    # the <width x i1> mask whose lane l is bit l of `bits` (i64)
    return builder.bitcast(builder.trunc(bits, ir.IntType(width)), ir.VectorType(ir.IntType(1), width))


class _Rows3x3:
    """taps3x3_stride2's IR, in parts: its arguments (x, row0, row1, row2, rows, two lane
    masks, the nine weights, y, at, n), masked loads of x, and the weighted sum and store."""

    def __init__(self, context, builder, signature, args):
        self.context, self.builder = context, builder
        x_type, y_type = signature.args[0], signature.args[8]
        self.x = context.make_array(x_type)(context, builder, args[0]).data
        self.weights = [builder.extract_value(args[7], k) for k in range(9)]
        self.y = context.make_array(y_type)(context, builder, args[8]).data
        self.elem = context.get_data_type(x_type.dtype)
        self.align = ir.Constant(_I32, context.get_abi_sizeof(self.elem))
        u64 = {k: context.cast(builder, args[k], signature.args[k], types.uint64) for k in (1, 2, 3, 4, 5, 6, 9, 10)}
        self.starts, self.rows, self.masks = (u64[1], u64[2], u64[3]), u64[4], (u64[5], u64[6])
        self.at, self.n = u64[9], u64[10]

    def load(self, p, offset, mask, width):
        """x[starts[p] + offset :][:width] under the lane mask `mask` (bits), zeros elsewhere
        and everywhere when row p is padding (bit p of rows is 0). The pointer may precede
        the array (offset < 0 at the first column); those lanes are masked off, never read."""
        builder = self.builder
        vector = ir.VectorType(self.elem, width)
        present = builder.icmp_unsigned("!=", builder.and_(self.rows, ir.Constant(_I64, 1 << p)), ir.Constant(_I64, 0))
        bits = builder.select(present, mask, ir.Constant(_I64, 0))
        at = builder.gep(self.x, [builder.add(self.starts[p], ir.Constant(_I64, offset))])
        pointer = builder.bitcast(at, vector.as_pointer())
        load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [pointer.type, _I32, ir.VectorType(ir.IntType(1), width), vector]),
            f"llvm.masked.load.v{width}{self.elem.intrinsic_name}.{_pointer_suffix(vector, self.elem)}")
        return builder.call(load, [pointer, self.align, _mask_from_bits(builder, bits, width), ir.Constant(vector, None)])

    def sum_and_store(self, taps):
        """y[at + t] = sum of taps[k][t] * weights[k] over k in order, for t < n."""
        builder, phase = self.builder, ir.VectorType(self.elem, LANES)
        total = None
        for weight, tap in zip(self.weights, taps):       # (p, q) order, as the reference
            splat = builder.insert_element(ir.Constant(phase, None), weight, ir.Constant(_I32, 0))
            splat = builder.shuffle_vector(splat, splat, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
            product = builder.fmul(tap, splat)
            total = product if total is None else builder.fadd(total, product)
        target = builder.bitcast(builder.gep(self.y, [self.at]), phase.as_pointer())
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [phase, target.type, _I32, ir.VectorType(ir.IntType(1), LANES)]),
            f"llvm.masked.store.v{LANES}{self.elem.intrinsic_name}.{_pointer_suffix(phase, self.elem)}")
        builder.call(store, [total, target, self.align, _lanes_below(builder, self.n, LANES)])
        return self.context.get_dummy_value()


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
        rows3 = _Rows3x3(context, builder, signature, args)
        evens = ir.Constant(ir.VectorType(_I32, LANES), list(range(0, 2 * LANES, 2)))
        odds = ir.Constant(ir.VectorType(_I32, LANES), list(range(1, 2 * LANES, 2)))
        taps = []
        for p in range(3):
            first = rows3.load(p, -2, rows3.masks[0], 2 * LANES)
            second = rows3.load(p, 0, rows3.masks[1], 2 * LANES)
            taps += [builder.shuffle_vector(first, first, odds),       # q = 0
                     builder.shuffle_vector(second, second, evens),    # q = 1
                     builder.shuffle_vector(second, second, odds)]     # q = 2
        return rows3.sum_and_store(taps)
    return types.void(x, row0, row1, row2, rows, before, after, weights, y, at, n), codegen
