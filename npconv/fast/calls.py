"""Calling a compiled kernel through its address, so that its callers do not compile it again.

    work = address(narrow_channels, arguments, key=x.dtype)   # in Python: compiled once, its address
    counts = call(work, arguments, first, last)    # in a Numba kernel: narrow_channels(*arguments, first, last)

Why. When one Numba function calls another, Numba links the callee's LLVM code into the
caller's and optimises and compiles the whole again: every caller pays for its callees once
more, and a `parallel=True` caller twice more (its `prange` body is a function of its own).
The fast depthwise kernel's chunk functions (`depthwise.narrow_channels`, `channels`) are large,
vectorised loops: with cold caches the parallel kernel that calls them took 13.4 s to compile
per dtype, 10.4 s of it in LLVM, against 2.7-3.3 s for each chunk function alone (December
2026, two-core AMD EPYC). Called through an address, a chunk function is compiled once, by
itself, and the parallel kernel around it in about a second.

How. `address` compiles the function for the arguments' types, made canonical (`canonical`:
every array C-contiguous and writable, every other type as it is; the same machine code reads
a read-only array, and `call` refuses, when its caller is compiled, an array that is not
C-contiguous), and returns the address of Numba's C wrapper of it (`cfunc` calling
convention: the arguments by value, the result returned), cached per function and key.
`call` is a Numba intrinsic: it calls that address with the arguments, in the same LLVM
representation the wrapper takes, and returns the function's result. The address is an
integer argument of the calling kernel, so the kernel's machine code is cached on disk like
any other (`cache=True`); the address itself is worked out again in each process.

What it costs: one indirect call per chunk, and no inlining of the callee into the loop around
it (there is none to gain: each chunk is thousands of loop iterations). The callee must not
raise: the C wrapper cannot pass an exception back, it prints it and returns. npconv's chunk
functions raise only where an allocation fails or a divisor is zero, and their divisors (a
plane's channels, a group's bytes) are not zero when there is a chunk to do; the Python entry
points validate the arguments first.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_addresses: dict = {}


def canonical(numba_type):
    """The type a function reached through `address` is compiled for: arrays C-contiguous and
    writable (the same data model whatever their flags), anything else unchanged."""
    if isinstance(numba_type, types.Array):
        return types.Array(numba_type.dtype, numba_type.ndim, "C")
    return numba_type


def address(function, arguments, key):
    """The address of `function`'s C wrapper, compiled for the canonical types of `arguments`
    (`canonical`, of the types Numba gives those values) followed by two int64 (`call`'s first
    and last). Compiled once per function and `key`: the caller passes a key (a dtype, say)
    that determines every argument's canonical type, so that a call after the first costs a
    dictionary lookup, not the typing of each argument."""
    found = _addresses.get((function, key))
    if found is None:
        argument_types = tuple(canonical(numba.typeof(a)) for a in arguments) + (types.int64, types.int64)
        function.compile(argument_types)
        result = function.overloads[argument_types]
        found = result.library.get_pointer_to_function(result.fndesc.llvm_cfunc_wrapper_name)
        _addresses[(function, key)] = found
    return found


@intrinsic
def call(typingctx, work, arguments, first, last):
    """`function(*arguments, first, last)` for the function whose C wrapper is at `work`
    (`address`), returning a tuple of five int64 (what the chunk functions return)."""
    if not isinstance(arguments, types.BaseTuple) or not isinstance(work, types.Integer):
        return None
    for position, t in enumerate(arguments):
        if isinstance(t, types.Array) and t.layout != "C":   # the callee reads it as C-contiguous
            raise numba.core.errors.TypingError(f"call: argument {position} is a {t.layout}-layout array, not C-contiguous")
    result = types.UniTuple(types.int64, 5)
    parameter_types = [canonical(t) for t in arguments] + [types.int64, types.int64]

    def codegen(context, builder, signature, args):
        work_value, tuple_value, first_value, last_value = args
        values = [builder.extract_value(tuple_value, i) for i in range(len(arguments))]
        values += [context.cast(builder, first_value, signature.args[2], types.int64),
                   context.cast(builder, last_value, signature.args[3], types.int64)]
        function_type = ir.FunctionType(context.get_value_type(result),
                                        [context.get_value_type(t) for t in parameter_types])
        pointer = builder.inttoptr(work_value, function_type.as_pointer())
        return builder.call(pointer, values)

    return result(work, arguments, first, last), codegen

