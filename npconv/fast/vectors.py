"""Explicit vector code for the one copy LLVM does not vectorise well by itself: splitting a
short run of pixels into its even and its odd ones.

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
