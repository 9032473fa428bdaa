"""Element-wise ops of a torch.export graph (after `run_decompositions()`), mirroring ATen:

    hardtanh   aten.hardtanh(x, min_val, max_val)      min(max(x, min_val), max_val)
    clamp      aten.clamp(x, min=None, max=None)       the same, with either limit absent
    sigmoid    aten.sigmoid(x)                         1 / (1 + exp(-x))
    add, sub   aten.add.Tensor / aten.sub.Tensor       a + alpha * b, a - alpha * b
    mul, div   aten.mul.Tensor / aten.div.Tensor       a * b, a / b  (true division)

NumPy arrays in and out. An operand of add/sub/mul/div may be a Python number (int, float,
or a NumPy real scalar); array operands broadcast with NumPy's (and PyTorch's) rules, e.g.
(N, C, H, W) * (N, C, 1, 1) for squeeze-excitation. The result has the array operands'
dtype (float16, bfloat16, float32 or float64); two arrays must share it (PyTorch would promote
float32 + float64 to float64; here that is a TypeError, so that no precision is chosen
silently). Each function checks its arguments, materialises every operand at the broadcast
shape as a C-contiguous copy (a copy that moves data and is not counted), runs a flat loop
of `npconv.kernels`, and records the counts the loop returned with `npconv.counting.record`
under the op's name.

Precision: float32 and float64 are computed in their own precision; float16 and bfloat16
are widened to float32, computed, and rounded back once, as PyTorch's CPU kernels do. A Python
number is converted to the array's dtype, as PyTorch converts one for a floating tensor,
with one PyTorch quirk kept for float16 and bfloat16: a number b (the second operand) of mul and div is
taken in float32 (PyTorch's "opmath" scalar, binary_op_scalar in BinaryOpsKernel.cpp); every
other number (a of mul and div, both of add and sub, alpha, clamp's limits) rounds to
the narrow dtype first, through float32 as PyTorch does. Limits and alpha that overflow the dtype
raise, as in PyTorch ("value cannot be converted to type float without overflow"); a number
operand that overflows becomes +-inf, as in PyTorch.

Counts (op name = function name): activation_compares (clamp, hardtanh: one per executed
comparison), sigmoid_exps (one per element: one exp, one add, one reciprocal), adds, subs,
muls, divides (one per output element), plus muls for alpha != 1 (b * alpha is computed,
then added or subtracted). Closed forms: `npconv.formulas.elementwise_count` and friends.
Rounding bounds: `npconv.bounds.add_bound` and friends (clamp and hardtanh are exact).
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import counting
from ..dtypes import NARROW_DTYPES, as_kernel_array, compute_dtype, finfo, finish
from ..geometry import check_array
from ..kernels import add as add_kernel
from ..kernels import clamp as clamp_kernel
from ..kernels import div as div_kernel
from ..kernels import mul as mul_kernel
from ..kernels import sigmoid as sigmoid_kernel
from ..kernels import sub as sub_kernel

__all__ = [
    "add",
    "broadcast_shape",
    "clamp",
    "div",
    "hardtanh",
    "mul",
    "sigmoid",
    "sub",
]

_TORCH_TYPE_NAMES = {"float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double"}


def _is_number(value) -> bool:
    """A real number PyTorch accepts as a scalar operand (bool included, as in PyTorch)."""
    return isinstance(value, numbers.Real) and not isinstance(value, np.ndarray)


def _checked_number(value, dtype: np.dtype, name: str, op: str) -> float:
    """`value` as a float of `dtype`, raising where PyTorch's checked conversion does."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}(): {name} must be a real number, not bool")
    if not _is_number(value):
        raise TypeError(f"{op}(): {name} must be a real number, not {type(value).__name__}")
    value = float(value)
    if np.isfinite(value) and abs(value) > float(finfo(dtype).max):
        raise ValueError(f"value cannot be converted to type {_TORCH_TYPE_NAMES[dtype.name]} without overflow")
    return value


def _in_dtype(value: float, dtype: np.dtype):
    """A Python number rounded to `dtype` as PyTorch rounds it: overflowing to +-inf, and to
    float16 and bfloat16 through float32 (c10::Half and c10::BFloat16 are made from a float:
    two roundings, which differ from one in rare ties, e.g. 1 + 2^-11 + 2^-40 becomes 1.0 in
    float16, not 1 + 2^-10, and 1 + 2^-8 + 2^-40 becomes 1.0 in bfloat16, not 1 + 2^-7)."""
    with np.errstate(over="ignore"):
        if dtype in NARROW_DTYPES:
            return dtype.type(np.float32(value))
        return dtype.type(value)


def broadcast_shape(shape_a, shape_b) -> tuple[int, ...]:
    """The shape two operands broadcast to (NumPy's and PyTorch's rule: align the shapes on
    the right; each pair of sizes must be equal or contain a 1). Raises ValueError with
    PyTorch's message, naming the rightmost mismatching dimension of the result."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    ndim = max(len(shape_a), len(shape_b))
    padded_a = (1,) * (ndim - len(shape_a)) + shape_a
    padded_b = (1,) * (ndim - len(shape_b)) + shape_b
    out = [0] * ndim
    for d in range(ndim - 1, -1, -1):
        size_a, size_b = padded_a[d], padded_b[d]
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise ValueError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                f"at non-singleton dimension {d}"
            )
        out[d] = size_b if size_a == 1 else size_a
    return tuple(out)


def _operands(a, b, op: str, b_number_in_compute_dtype: bool = False):
    """Check a and b; return (a, b, shape, dtype): a and b as flat C-contiguous arrays of the
    compute dtype materialised at the broadcast `shape`, and the result's dtype."""
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, np.ndarray):
            check_array(value, name, op)
        elif not _is_number(value):
            raise TypeError(f"{op}(): argument '{name}' must be a numpy.ndarray or a real number, "
                            f"not {type(value).__name__}")
    arrays = [v for v in (a, b) if isinstance(v, np.ndarray)]
    if not arrays:
        raise TypeError(f"{op}(): at least one of a and b must be a numpy.ndarray, but got two numbers "
                        f"({type(a).__name__} and {type(b).__name__})")
    if len(arrays) == 2 and a.dtype != b.dtype:
        raise TypeError(f"{op}(): a and b must have one dtype, but got {a.dtype} and {b.dtype} "
                        f"(PyTorch would promote to the wider one; convert one of them)")
    dtype = arrays[0].dtype
    compute = compute_dtype(dtype)
    b_number_dtype = compute if b_number_in_compute_dtype else dtype
    a = a if isinstance(a, np.ndarray) else np.asarray(_in_dtype(float(a), dtype))
    b = b if isinstance(b, np.ndarray) else np.asarray(_in_dtype(float(b), b_number_dtype))
    shape = broadcast_shape(a.shape, b.shape)
    flat = lambda v: as_kernel_array(np.broadcast_to(v, shape), compute).reshape(-1)  # noqa: E731
    return flat(a), flat(b), shape, dtype


# --------------------------------------------------------------------------------------
# Clamp, hardtanh, sigmoid
# --------------------------------------------------------------------------------------


def _clamp(input, low, high, op: str) -> np.ndarray:
    input = check_array(input, "input", op)
    dtype = compute_dtype(input.dtype)
    # limits round to the input's dtype (float16 too), then widen to the compute dtype
    as_limit = lambda v: dtype.type(0) if v is None else dtype.type(_in_dtype(v, input.dtype))  # noqa: E731
    x = as_kernel_array(input, dtype).reshape(-1)
    y = np.empty_like(x)
    compares = clamp_kernel.clamp(x, as_limit(low), as_limit(high), low is not None, high is not None, y)
    counting.record(op, activation_compares=compares)
    return finish(y.reshape(input.shape), input.dtype)


def clamp(input: np.ndarray, min=None, max=None) -> np.ndarray:  # noqa: A002 (PyTorch's names)
    """min(max(x, min), max) element-wise, any shape; either limit may be None (not both).

    As torch.clamp with number limits: the limits are rounded to the input's dtype; NaN
    stays NaN; a value equal to a limit is kept (so -0.0 stays -0.0); min > max gives max
    everywhere; a NaN limit gives NaN everywhere. Counts activation_compares: one per element
    and limit given (none when a limit is NaN).
    """
    op = "clamp"
    input = check_array(input, "input", op)
    if min is None and max is None:
        raise ValueError("torch.clamp: At least one of 'min' or 'max' must not be None")
    low = None if min is None else _checked_number(min, input.dtype, "min", op)
    high = None if max is None else _checked_number(max, input.dtype, "max", op)
    return _clamp(input, low, high, op)


def hardtanh(input: np.ndarray, min_val: float = -1.0, max_val: float = 1.0) -> np.ndarray:
    """min(max(x, min_val), max_val) element-wise, any shape (`torch.nn.functional.hardtanh`).

    Raises ValueError for min_val > max_val, as F.hardtanh does. (aten.hardtanh itself does
    not check: it is clamp, max_val everywhere but at NaN; call `clamp(x, min_val, max_val)`
    for that.) Otherwise as `clamp`. Counts activation_compares, two per element.
    """
    op = "hardtanh"
    input = check_array(input, "input", op)
    low = _checked_number(min_val, input.dtype, "min_val", op)
    high = _checked_number(max_val, input.dtype, "max_val", op)
    if low > high:
        raise ValueError("min_val cannot be greater than max_val")
    return _clamp(input, low, high, op)


def sigmoid(input: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) element-wise, any shape, computed in the input's precision (float16
    in float32, rounded once). Counts sigmoid_exps, one per element."""
    op = "sigmoid"
    input = check_array(input, "input", op)
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype).reshape(-1)
    y = np.empty_like(x)
    exps = sigmoid_kernel.sigmoid(x, y)
    counting.record(op, sigmoid_exps=exps)
    return finish(y.reshape(input.shape), input.dtype)


# --------------------------------------------------------------------------------------
# Arithmetic with broadcasting
# --------------------------------------------------------------------------------------


def _scaled_by_alpha(b: np.ndarray, alpha, input_dtype: np.dtype, op: str):
    """(b * alpha, muls): b itself and 0 multiplies when alpha == 1 (as given)."""
    if isinstance(alpha, (bool, np.bool_)):
        raise TypeError("Boolean alpha only supported for Boolean results.")
    alpha = _checked_number(alpha, input_dtype, "alpha", op)
    if alpha == 1:
        return b, 0
    factor = np.full(b.shape, _in_dtype(alpha, input_dtype), dtype=b.dtype)  # alpha rounds to the dtype (float16 too)
    scaled = np.empty_like(b)
    muls = mul_kernel.mul(b, factor, scaled)
    return scaled, muls


def _binary(op: str, kind: str, kernel, a, b, alpha=None, b_number_in_compute_dtype: bool = False) -> np.ndarray:
    """One flat loop `kernel(x, z, y)` over the broadcast operands, counted under `kind`;
    with `alpha` (add, sub), b * alpha first, its multiplies counted as muls."""
    x, z, shape, dtype = _operands(a, b, op, b_number_in_compute_dtype)
    scaling = {}
    if alpha is not None:
        z, scaling["muls"] = _scaled_by_alpha(z, alpha, dtype, op)
    y = np.empty_like(x)
    n = kernel(x, z, y)
    counting.record(op, **{kind: n}, **scaling)
    return finish(y.reshape(shape), dtype)


def add(a, b, alpha=1) -> np.ndarray:
    """a + alpha * b with broadcasting (aten.add.Tensor). Either operand may be a number.

    alpha != 1: b * alpha is computed (rounded) first, then added; PyTorch's CPU kernel
    fuses the two (one rounding) for a tensor b, and does either, element by element, for a
    number b (docs/findings.md, finding 26). Both are within `npconv.bounds.add_bound`. Counts adds
    (one per output element) and muls (one per output element when alpha != 1).
    """
    return _binary("add", "adds", add_kernel.add, a, b, alpha)


def sub(a, b, alpha=1) -> np.ndarray:
    """a - alpha * b with broadcasting (aten.sub.Tensor). Either operand may be a number.
    Counts subs (one per output element) and muls (one per output element when alpha != 1)."""
    return _binary("sub", "subs", sub_kernel.sub, a, b, alpha)


def mul(a, b) -> np.ndarray:
    """a * b with broadcasting (aten.mul.Tensor). Either operand may be a number (b is taken
    in float32 for a float16 array, as PyTorch does). Counts muls, one per output element."""
    return _binary("mul", "muls", mul_kernel.mul, a, b, b_number_in_compute_dtype=True)


def div(a, b) -> np.ndarray:
    """a / b, true division, with broadcasting (aten.div.Tensor without rounding_mode).
    Either operand may be a number (b is taken in float32 for a float16 array, as PyTorch
    does).
    x / 0 is +-inf and 0 / 0 NaN. Counts divides, one per output element."""
    return _binary("div", "divides", div_kernel.div, a, b, b_number_in_compute_dtype=True)
