"""Pooling and mean ops of exported CNN graphs, mirroring their ATen operators.

    max_pool2d   aten.max_pool2d_with_indices: the window maximum and its flat index h*W + w
    avg_pool2d   aten.avg_pool2d: the window mean, PyTorch's divisor rule
    mean         aten.mean.dim: the mean over a set of dimensions (global average pooling,
                 squeeze-excitation)

(aten._adaptive_avg_pool2d is `npconv.ops.adaptive_avg_pool2d`.)

NumPy arrays in and out, as in `npconv.ops`: each function checks its arguments in the order
PyTorch's CPU implementation does and raises, where PyTorch raises, ValueError (PyTorch's
RuntimeError), IndexError or TypeError with PyTorch's message; it then hands C-contiguous
float32 or float64 arrays to its reference kernel in `npconv.kernels` and records the counts
the kernel's loops returned with `npconv.counting.record` under the op's name. float16 is
computed in float32 and rounded back once. The pooling ops take (N, C, H, W) or unbatched
(C, H, W) inputs; an empty batch (N = 0) is allowed, empty C, H or W are not.

Output size (aten/src/ATen/native/Pool.h, pooling_output_shape), per spatial dimension:

    out = floor((size + 2 p - d (K - 1) - 1 + (s - 1 if ceil_mode else 0)) / s) + 1,
    and with ceil_mode one less when the last window would start at or past size + p
    (every window starts inside the input or the left padding).

Argument rules, in PyTorch's order. First the list lengths of kernel_size, stride (0 to 2
ints), padding (and dilation); then max_pool2d requires a 3-D or 4-D input, while avg_pool2d
rejects divisor_override == 0 and raises IndexError below 3 dimensions (it reads size(-3)).
Then (Pool.h, pooling_output_shape and pool2d_shape_check): stride != 0, padding >= 0 and padding <= (d (K - 1) + 1) / 2 (C's truncating division),
per dimension, height first; then kernel > 0, stride > 0, dilation > 0, a non-empty 3-D or
4-D input, padding <= K / 2 (the undilated kernel: this later check rejects dilated windows
that the first allows), and an output of at least one cell.
"""

from __future__ import annotations

import numpy as np

from .. import counting
from .. import memory
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import _is_int, check_array
from ..kernels import avg_pool2d as avg_kernel
from ..kernels import max_pool2d as max_kernel
from ..kernels import mean as mean_kernel

__all__ = ["avg_pool2d", "max_pool2d", "mean", "reduced_dims"]


def _ints(value, name: str, op: str) -> list[int]:
    """An int or a list/tuple of ints, as a list (PyTorch's int[] arguments)."""
    if _is_int(value):
        return [int(value)]
    if isinstance(value, (tuple, list)):
        for v in value:
            if not _is_int(v):
                raise TypeError(
                    f"{op}(): argument '{name}' must be tuple of ints, but found element of type {type(v).__name__}"
                )
        return [int(v) for v in value]
    raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__}")


def _pair(values: list[int], name: str, op: str, rule: str) -> tuple[int, int]:
    if len(values) not in (1, 2):
        raise ValueError(f"{op}: {name} must {rule}")
    return (values[0], values[-1])


def _pool_args(op: str, kernel_size, stride, padding, dilation=None):
    """(kernel, stride, padding, dilation) as (h, w) pairs: PyTorch's list-length checks,
    stride None or [] meaning the kernel size."""
    kernel = _pair(_ints(kernel_size, "kernel_size", op), "kernel_size", op,
                   "either be a single int, or a tuple of two ints")
    strides = [] if stride is None else _ints(stride, "stride", op)
    if len(strides) == 0:
        stride = kernel
    else:
        stride = _pair(strides, "stride", op, "either be omitted, a single int, or a tuple of two ints")
    padding = _pair(_ints(padding, "padding", op), "padding", op, "either be a single int, or a tuple of two ints")
    if dilation is not None:
        dilation = _pair(_ints(dilation, "dilation", op), "dilation", op,
                         "be either a single int, or a tuple of two ints")
    return kernel, stride, padding, dilation


def _c_div(a: int, b: int) -> int:
    """a / b rounded toward zero, as C++ integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size along one dimension (module docstring; no checks).
    `npconv.formulas.pool_output_size` is the same rule, written apart to be tested against."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _checked_output_size(size: int, kernel: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """pooling_output_shape's checks, then the size."""
    if stride == 0:
        raise ValueError("stride should not be zero")
    if pad < 0:
        raise ValueError(f"pad must be non-negative, but got pad: {pad}")
    if pad > _c_div((kernel - 1) * dilation + 1, 2):
        raise ValueError(
            f"pad should be at most half of effective kernel size, but got pad={pad}, "
            f"kernel_size={kernel} and dilation={dilation}"
        )
    return _output_size(size, kernel, stride, pad, dilation, ceil_mode)


def _shape_check(shape: tuple, kernel, stride, padding, dilation, out_size) -> None:
    """pool2d_shape_check, in its order."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_size
    if not (kw > 0 and kh > 0):
        raise ValueError(f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}")
    if not (sw > 0 and sh > 0):
        raise ValueError(f"stride should be greater than zero, but got dH: {sh} dW: {sw}")
    if not (dh > 0 and dw > 0):
        raise ValueError(f"dilation should be greater than zero, but got dilationH: {dh} dilationW: {dw}")
    ndim = len(shape)
    valid = ndim >= 3 and shape[1] != 0 and shape[2] != 0
    if not ((ndim == 3 and shape[0] != 0 and valid) or (ndim == 4 and valid and shape[3] != 0)):
        raise ValueError(
            f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:{list(shape)}"
        )
    if not (kw // 2 >= pw and kh // 2 >= ph):
        raise ValueError(
            f"pad should be smaller than or equal to half of kernel size, but got padW = {pw}, padH = {ph}, "
            f"kW = {kw}, kH = {kh}"
        )
    channels, height, width = shape[-3:]
    if not (ow >= 1 and oh >= 1):
        raise ValueError(
            f"Given input size: ({channels}x{height}x{width}). Calculated output size: ({channels}x{oh}x{ow}). "
            f"Output size is too small"
        )


def max_pool2d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling of (N, C, H, W) or (C, H, W), as `torch.nn.functional.max_pool2d` and
    aten.max_pool2d_with_indices.

    kernel_size, stride, padding, dilation: an int or one or two ints (height, width); stride
    None or [] means kernel_size. Padding acts as -inf (a padded tap is never chosen). NaN
    propagates as in PyTorch's CPU kernel: the last NaN of a window is chosen; of equal
    maxima the first. Returns the maxima, and with return_indices=True also the flat indices
    h * W + w into the input plane (int64) of the same shape. Exact: no rounding.

    Counts (op "max_pool2d"): pool_compares, one per in-input window tap compared.
    """
    op = "max_pool2d"
    input = check_array(input, "input", op)
    kernel, stride, padding, dilation = _pool_args(op, kernel_size, stride, padding, dilation)
    if input.ndim not in (3, 4):
        raise ValueError("non-empty 3D or 4D (batch mode) tensor expected for input")
    H, W = input.shape[-2:]
    out_size = (_checked_output_size(H, kernel[0], padding[0], stride[0], dilation[0], ceil_mode),
                _checked_output_size(W, kernel[1], padding[1], stride[1], dilation[1], ceil_mode))
    _shape_check(input.shape, kernel, stride, padding, dilation, out_size)

    unbatched = input.ndim == 3
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C = x.shape[:2]
    memory.check_output(op, (N, C) + out_size, x.dtype, scratch=N * C * out_size[0] * out_size[1] * 8)  # + indices
    y = np.empty((N, C) + out_size, dtype=x.dtype)
    indices = np.empty((N, C) + out_size, dtype=np.int64)
    compares = max_kernel.max_pool2d(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                                     dilation[0], dilation[1], y, indices)
    counting.record(op, pool_compares=compares)
    y = finish(y, input.dtype, unbatched)
    return (y, indices[0] if unbatched else indices) if return_indices else y


def avg_pool2d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    """Average pooling of (N, C, H, W) or (C, H, W), as `torch.nn.functional.avg_pool2d` and
    aten.avg_pool2d.

    Each output is the sum of its window's in-input values divided by divisor_override when
    given (any non-zero int), else by the window size clipped to the padded input
    (count_include_pad=True; a ceil_mode window past the padded end is cut) or to the input
    (False). See npconv/kernels/avg_pool2d.py for the formula.

    Counts (op "avg_pool2d"): pool_adds, one per in-input value added; pool_divides, one per
    output element.
    """
    op = "avg_pool2d"
    input = check_array(input, "input", op)
    kernel, stride, padding, _ = _pool_args(op, kernel_size, stride, padding)
    if divisor_override is not None and not _is_int(divisor_override):
        raise TypeError(f"{op}(): argument 'divisor_override' must be int, not {type(divisor_override).__name__}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor must be not zero")
    if input.ndim < 3:
        if input.ndim == 0:
            raise IndexError("Dimension specified as -3 but tensor has no dimensions")
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], "
                         f"but got -3)")
    H, W = input.shape[-2:]
    out_size = (_checked_output_size(H, kernel[0], padding[0], stride[0], 1, ceil_mode),
                _checked_output_size(W, kernel[1], padding[1], stride[1], 1, ceil_mode))
    _shape_check(input.shape, kernel, stride, padding, (1, 1), out_size)

    unbatched = input.ndim == 3
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C = x.shape[:2]
    memory.check_output(op, (N, C) + out_size, x.dtype)
    y = np.empty((N, C) + out_size, dtype=x.dtype)
    override = 0 if divisor_override is None else int(divisor_override)
    adds, divides = avg_kernel.avg_pool2d(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                                          bool(count_include_pad), override, y)
    counting.record(op, pool_adds=adds, pool_divides=divides)
    return finish(y, input.dtype, unbatched)


def reduced_dims(dim, ndim: int) -> list[int]:
    """torch's dim list for a reduction: an int or a list/tuple of ints, negative allowed;
    None or [] means every dimension. Returns the wrapped dims, sorted. IndexError for a dim
    out of range, then ValueError for one given twice (PyTorch's order)."""
    if dim is None:
        return list(range(ndim))
    if _is_int(dim):
        dims = [int(dim)]
    elif isinstance(dim, (tuple, list)) and all(_is_int(d) for d in dim):
        dims = [int(d) for d in dim]
    else:
        raise TypeError(f"mean(): argument 'dim' must be an int or a list of ints, not {type(dim).__name__}")
    if not dims:
        return list(range(ndim))
    low, high = (-ndim, ndim - 1) if ndim > 0 else (-1, 0)
    for d in dims:  # every dim is range-checked before any is checked for repeats
        if not low <= d <= high:
            raise IndexError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {d})")
    seen: list[int] = []
    for d in dims:
        d = d % max(ndim, 1)
        if d in seen:
            raise ValueError(f"dim {d} appears multiple times in the list of dims")
        seen.append(d)
    return sorted(seen) if ndim > 0 else []


def mean(input: np.ndarray, dim, keepdim: bool = False) -> np.ndarray:
    """The mean over the dimensions `dim`, as `torch.mean(input, dim, keepdim)` and aten.mean.dim.

    dim: an int or a list of ints, negative allowed; None or [] reduces every dimension.
    The reduced dimensions are moved last and merged (rows x m), each row summed and divided
    by m; m = 0 gives NaN. keepdim=True keeps them as size 1.

    Counts (op "mean"): pool_adds, one per input element added; pool_divides, one per output
    element.
    """
    op = "mean"
    input = check_array(input, "input", op)
    dims = reduced_dims(dim, input.ndim)
    kept = [d for d in range(input.ndim) if d not in dims]
    rows = int(np.prod([input.shape[d] for d in kept], dtype=np.int64))
    m = int(np.prod([input.shape[d] for d in dims], dtype=np.int64))
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(np.transpose(input, kept + dims), dtype).reshape(rows, m)
    y = np.empty(rows, dtype=dtype)
    adds, divides = mean_kernel.mean(x, y)
    counting.record(op, pool_adds=adds, pool_divides=divides)
    if keepdim:
        shape = tuple(1 if d in dims else input.shape[d] for d in range(input.ndim))
    else:
        shape = tuple(input.shape[d] for d in kept)
    return finish(y.reshape(shape), input.dtype)
