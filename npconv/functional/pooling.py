"""Pooling and mean ops of exported CNN graphs, mirroring their ATen operators.

    max_pool2d   aten.max_pool2d_with_indices: the window maximum and its flat index h*W + w
    avg_pool2d   aten.avg_pool2d: the window mean, PyTorch's divisor rule
    max_pool1d, avg_pool1d   the 2-D ops on a plane of height 1, as aten computes them, after
                 aten's 1-D checks (max_pool1d without indices: check_max_pool1d's own)
    max_pool3d, avg_pool3d   aten.max_pool3d_with_indices and aten.avg_pool3d: the 2-D rules
                 with a depth axis (pool3d_shape_check; avg_pool3d also wants every size
                 >= its kernel size)
    mean         aten.mean.dim: the mean over a set of dimensions (global average pooling,
                 squeeze-excitation)

(aten._adaptive_avg_pool2d is `npconv.ops.adaptive_avg_pool2d`.)

NumPy arrays in and out, as in `npconv.ops`: each function checks its arguments in the order
PyTorch's CPU implementation does and raises, where PyTorch raises, ValueError (PyTorch's
RuntimeError), IndexError or TypeError with PyTorch's message; it then hands C-contiguous
float32 or float64 arrays to its reference kernel in `npconv.kernels` and records the counts
the kernel's loops returned with `npconv.counting.record` under the op's name. float16 is
computed in float32 and rounded back once. The 2-D pooling ops take (N, C, H, W) or
unbatched (C, H, W) inputs (1-D: (N, C, L) or (C, L); 3-D: (N, C, D, H, W) or (C, D, H, W));
an empty batch (N = 0) is allowed, empty C or spatial sizes are not.

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
from ..kernels import avg_pool3d as avg3d_kernel
from ..kernels import max_pool2d as max_kernel
from ..kernels import max_pool3d as max3d_kernel
from ..kernels import mean as mean_kernel

__all__ = ["avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "mean", "reduced_dims"]


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

    return _run_max_pool2d(op, input, kernel, stride, padding, dilation, out_size, return_indices)


def _run_max_pool2d(op: str, input, kernel, stride, padding, dilation, out_size, return_indices: bool):
    """max_pool2d's kernel on a checked (N, C, H, W) or (C, H, W) input, counted under `op`."""
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
    override = 0 if divisor_override is None else int(divisor_override)
    return _run_avg_pool2d(op, input, kernel, stride, padding, ceil_mode, count_include_pad, override)


def _run_avg_pool2d(op: str, input, kernel, stride, padding, ceil_mode, count_include_pad, override: int):
    """avg_pool2d's checks from the output size on (pooling_output_shape, pool2d_shape_check),
    then its kernel on the (N, C, H, W) or (C, H, W) input, counted under `op`. `override`:
    the divisor_override, 0 for none."""
    H, W = input.shape[-2:]
    out_size = (_checked_output_size(H, kernel[0], padding[0], stride[0], 1, ceil_mode),
                _checked_output_size(W, kernel[1], padding[1], stride[1], 1, ceil_mode))
    _shape_check(input.shape, kernel, stride, padding, (1, 1), out_size)

    unbatched = input.ndim == 3
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C = x.shape[:2]
    memory.check_output(op, (N, C) + out_size, x.dtype)
    y = np.empty((N, C) + out_size, dtype=x.dtype)
    adds, divides = avg_kernel.avg_pool2d(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                                          bool(count_include_pad), override, y)
    counting.record(op, pool_adds=adds, pool_divides=divides)
    return finish(y, input.dtype, unbatched)


# ----------------------------------------------------------------------------- one and three axes


def _one(values: list[int], name: str, op: str) -> int:
    """checkSize(op, name, 1) of aten's 1-D pools (max_pool1d_with_indices, avg_pool1d)."""
    if len(values) != 1:
        raise ValueError(f"{op}() argument '{name}' should contain one int (got {len(values)})")
    return values[0]


def _check_rank_2_to_3(input: np.ndarray, op: str) -> None:
    """checkDimRange(op, self, 2, 4): the 1-D pools that run the 2-D op on a plane."""
    if input.ndim not in (2, 3):
        raise ValueError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for argument #1 "
                         f"'self' (while checking arguments for {op})")


def _plane(input: np.ndarray) -> np.ndarray:
    """(N, C, L) or (C, L) viewed as (N, C, 1, L) or (C, 1, L): torch's unsqueeze(-2)."""
    return input[..., np.newaxis, :]


def max_pool1d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling of (N, C, L) or (C, L), as `torch.nn.functional.max_pool1d`.

    kernel_size, stride, padding, dilation: an int or a list of one; stride None or [] means
    kernel_size. The values and indices (int64, the position l in the input row) are
    max_pool2d's on the plane (N, C, 1, L) with kernel (1, K), stride (1, s), padding (0, p)
    and dilation (1, d), which is how PyTorch computes both (PyTorch's own 1-D kernel for the
    values alone scans the row in the same order with the same NaN rule). Exact.

    The checks follow the path PyTorch's CPU takes, and their messages differ between its two
    paths: with return_indices=True, aten.max_pool1d_with_indices (rank 2 or 3, one int per
    list, then max_pool2d's checks on the plane, worded for the plane); without,
    aten.max_pool1d's own check_max_pool1d (a non-empty 2-D or 3-D input but the batch, one
    int per list, then kernel > 0, stride > 0, padding >= 0, padding <= K / 2, dilation > 0
    and an output of at least one cell, each in its own words).

    Counts (op "max_pool1d"): pool_compares, one per in-input window tap compared.
    """
    op = "max_pool1d"
    input = check_array(input, "input", op)
    name = "max_pool1d_with_indices" if return_indices else op  # the name of torch's argument errors
    kernel = _ints(kernel_size, "kernel_size", name)
    strides = [] if stride is None else _ints(stride, "stride", name)
    pads = _ints(padding, "padding", name)
    dilations = _ints(dilation, "dilation", name)
    if return_indices:  # aten.max_pool1d_with_indices: max_pool2d_with_indices on the plane
        _check_rank_2_to_3(input, op)
        k = _one(kernel, "kernel_size", op)
        s = _one(strides or kernel, "stride", op)
        p = _one(pads, "padding", op)
        d = _one(dilations, "dilation", op)
        plane = _plane(input)
        out_size = (_checked_output_size(1, 1, 0, 1, 1, ceil_mode),
                    _checked_output_size(input.shape[-1], k, p, s, d, ceil_mode))
        _shape_check(plane.shape, (1, k), (1, s), (0, p), (1, d), out_size)
    else:  # aten.max_pool1d: check_max_pool1d
        shape = input.shape
        if not ((input.ndim == 2 and shape[0] != 0 and shape[1] != 0)
                or (input.ndim == 3 and shape[1] != 0 and shape[2] != 0)):
            raise ValueError(f"max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size "
                             f"for input, but got:{list(shape)}")
        if len(kernel) != 1:
            raise ValueError(f"max_pool1d() kernel_size must be an int, list of ints or tuple of ints of size 1 "
                             f"but got size {len(kernel)}")
        if len(strides) > 1:
            raise ValueError(f"max_pool1d() stride must be None, an int, list of ints, or tuple of ints of size 1 "
                             f"but got size {len(strides)}")
        if len(pads) != 1:
            raise ValueError(f"max_pool1d() padding must be an int, list of ints, or tuple of ints of size 1 "
                             f"but got size {len(pads)}")
        if len(dilations) != 1:
            raise ValueError(f"max_pool1d() dilation must be an int, list of ints or tuple of ints of size 1 "
                             f"but got size {len(dilations)}")
        k, s, p, d = kernel[0], (strides or kernel)[0], pads[0], dilations[0]
        if k <= 0:
            raise ValueError(f"max_pool1d() kernel_size must be greater than zero, but got {k}")
        if s <= 0:
            raise ValueError(f"max_pool1d() stride must be greater than zero, but got {s}")
        if p < 0:
            raise ValueError(f"max_pool1d() padding must be non-negative, but got {p}")
        if p > k // 2:
            raise ValueError(f"max_pool1d() padding should be at most half of kernel size, but got padding={p} "
                             f"and kernel_size={k}")
        if d <= 0:
            raise ValueError(f"max_pool1d() dilation must be greater than zero, but got {d}")
        length = _output_size(shape[-1], k, s, p, d, ceil_mode)
        if length <= 0:
            raise ValueError(f"max_pool1d() Invalid computed output size: {length}")
        plane = _plane(input)
        out_size = (1, length)
    result = _run_max_pool2d(op, plane, (1, k), (1, s), (0, p), (1, d), out_size, return_indices)
    if return_indices:
        return result[0][..., 0, :], result[1][..., 0, :]
    return result[..., 0, :]


def avg_pool1d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling of (N, C, L) or (C, L), as `torch.nn.functional.avg_pool1d` (which has
    no divisor_override): aten.avg_pool1d checks the rank (2 or 3) and that each list holds
    one int, then runs avg_pool2d on the plane (N, C, 1, L) with kernel (1, K), stride (1, s)
    and padding (0, p); so does npconv, with avg_pool2d's checks and messages from there on.
    The sums and divisors are avg_pool2d's (npconv/kernels/avg_pool2d.py).

    Counts (op "avg_pool1d"): pool_adds, one per in-input value added; pool_divides, one per
    output element.
    """
    op = "avg_pool1d"
    input = check_array(input, "input", op)
    kernel = _ints(kernel_size, "kernel_size", op)
    strides = [] if stride is None else _ints(stride, "stride", op)
    pads = _ints(padding, "padding", op)
    _check_rank_2_to_3(input, op)
    k = _one(kernel, "kernel_size", op)
    s = _one(strides or kernel, "stride", op)
    p = _one(pads, "padding", op)
    return _run_avg_pool2d(op, _plane(input), (1, k), (1, s), (0, p), ceil_mode, count_include_pad, 0)[..., 0, :]


def _triple(values: list[int], name: str, op: str, rule: str) -> tuple[int, int, int]:
    if len(values) not in (1, 3):
        raise ValueError(f"{op}: {name} must {rule}")
    return (values[0], values[-2 if len(values) == 3 else 0], values[-1])


def _pool3d_shape_check(shape: tuple, kernel, stride, padding, dilation, out_size, fn: str,
                        check_input_size: bool = False) -> None:
    """pool3d_shape_check (aten/src/ATen/native/Pool.h), in its order; the rank (4 or 5) has
    been checked before."""
    (kt, kh, kw), (st, sh, sw), (pt, ph, pw), (dt, dh, dw), (ot, oh, ow) = kernel, stride, padding, dilation, out_size
    if not (kt > 0 and kw > 0 and kh > 0):
        raise ValueError(f"kernel size should be greater than zero, but got kT: {kt} kH: {kh} kW: {kw}")
    if not (st > 0 and sw > 0 and sh > 0):
        raise ValueError(f"stride should be greater than zero, but got dT: {st} dH: {sh} dW: {sw}")
    if not (dt > 0 and dw > 0 and dh > 0):
        raise ValueError(f"dilation should be greater than zero, but got dilationT: {dt} dilationH: {dh} "
                         f"dilationW: {dw}")
    for i, size in enumerate(shape):
        if size == 0 and not (len(shape) == 5 and i == 0):  # the batch may be empty
            raise ValueError(f"{fn}: Expected input's non-batch dimensions to have positive length, but input has "
                             f"a shape of {list(shape)} and non-batch dimension 0 has length zero!")
    channels, t, h, w = shape[-4:]
    if check_input_size and not (t >= kt and h >= kh and w >= kw):
        raise ValueError(f"input image (T: {t} H: {h} W: {w}) smaller than kernel size (kT: {kt} kH: {kh} kW: {kw})")
    if not (kt // 2 >= pt and kw // 2 >= pw and kh // 2 >= ph):
        raise ValueError(f"pad should be smaller than or equal to half of kernel size, but got kT: {kt} kW: {kw} "
                         f"kH: {kh} padT: {pt} padW: {pw} padH: {ph}")
    if not (ot >= 1 and ow >= 1 and oh >= 1):
        raise ValueError(f"Given input size: ({channels}x{t}x{h}x{w}). Calculated output size: "
                         f"({channels}x{ot}x{oh}x{ow}). Output size is too small")


def _out_size_3d(shape, kernel, stride, padding, dilation, ceil_mode) -> tuple[int, int, int]:
    """pooling_output_shape for depth, height and width in turn (each with its checks)."""
    return tuple(_checked_output_size(shape[-3 + a], kernel[a], padding[a], stride[a], dilation[a], ceil_mode)
                 for a in range(3))


def max_pool3d(input: np.ndarray, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W), as `torch.nn.functional.max_pool3d` and
    aten.max_pool3d_with_indices (which PyTorch's CPU runs with or without indices).

    kernel_size, stride, padding, dilation: an int, a list of one or a triple (depth, height,
    width); stride None or [] means kernel_size. Padding acts as -inf; NaN, ties and the
    index of an empty window as max_pool2d's (npconv/kernels/max_pool3d.py). Returns the
    maxima, and with return_indices=True also the flat indices t * H * W + h * W + w into
    the input volume (int64). Exact: no rounding.

    Checks in PyTorch's order: the list lengths; a 4-D or 5-D input; pooling_output_shape
    per axis, depth first (stride != 0, padding >= 0, padding <= (d (K - 1) + 1) / 2); then
    pool3d_shape_check: kernel, stride and dilation > 0, no empty dimension but the batch,
    padding <= K / 2, an output of at least one cell.

    Counts (op "max_pool3d"): pool_compares, one per in-input window tap compared.
    """
    op = "max_pool3d"
    input = check_array(input, "input", op)
    name = "max_pool3d_with_indices" if return_indices else op
    kernel = _triple(_ints(kernel_size, "kernel_size", name), "kernel_size", op,
                     "either be a single int, or a tuple of three ints")
    strides = [] if stride is None else _ints(stride, "stride", name)
    stride = kernel if not strides else _triple(strides, "stride", op,
                                                "either be omitted, a single int, or a tuple of three ints")
    padding = _triple(_ints(padding, "padding", name), "padding", op,
                      "either be a single int, or a tuple of three ints")
    dilation = _triple(_ints(dilation, "dilation", name), "dilation", op,
                       "be either a single int, or a tuple of three ints")
    if input.ndim not in (4, 5):
        raise ValueError("non-empty 4D or 5D (batch mode) tensor expected for input")
    out_size = _out_size_3d(input.shape, kernel, stride, padding, dilation, ceil_mode)
    _pool3d_shape_check(input.shape, kernel, stride, padding, dilation, out_size,
                        "max_pool3d_with_indices_out_cpu_template()")

    unbatched = input.ndim == 4
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C = x.shape[:2]
    memory.check_output(op, (N, C) + out_size, x.dtype, scratch=N * C * int(np.prod(out_size)) * 8)  # + indices
    y = np.empty((N, C) + out_size, dtype=x.dtype)
    indices = np.empty((N, C) + out_size, dtype=np.int64)
    compares = max3d_kernel.max_pool3d(x, *kernel, *stride, *padding, *dilation, y, indices)
    counting.record(op, pool_compares=compares)
    y = finish(y, input.dtype, unbatched)
    return (y, indices[0] if unbatched else indices) if return_indices else y


def avg_pool3d(input: np.ndarray, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> np.ndarray:
    """Average pooling of (N, C, D, H, W) or (C, D, H, W), as `torch.nn.functional.avg_pool3d`
    and aten.avg_pool3d: avg_pool2d's divisor rule over three axes
    (npconv/kernels/avg_pool3d.py). float16 is computed in float32 and rounded once (PyTorch's
    CPU has no float16 avg_pool3d: it raises NotImplementedError; its CUDA kernel has one).

    Checks in PyTorch's order: the list lengths; a 4-D or 5-D input; divisor_override != 0;
    pooling_output_shape per axis, depth first; then pool3d_shape_check, which for
    avg_pool3d also requires each spatial size >= its kernel size, padding or not.

    Counts (op "avg_pool3d"): pool_adds, one per in-input value added; pool_divides, one per
    output element.
    """
    op = "avg_pool3d"
    input = check_array(input, "input", op)
    kernel = _triple(_ints(kernel_size, "kernel_size", op), "kernel_size", op,
                     "be a single int, or a tuple of three ints")
    strides = [] if stride is None else _ints(stride, "stride", op)
    stride = kernel if not strides else _triple(strides, "stride", op,
                                                "be omitted, a single int, or a tuple of three ints")
    padding = _triple(_ints(padding, "padding", op), "padding", op, "be a single int, or a tuple of three ints")
    if divisor_override is not None and not _is_int(divisor_override):
        raise TypeError(f"{op}(): argument 'divisor_override' must be int, not {type(divisor_override).__name__}")
    if input.ndim not in (4, 5):
        raise ValueError("non-empty 4D or 5D (batch mode) tensor expected for input")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor must be not zero")
    out_size = _out_size_3d(input.shape, kernel, stride, padding, (1, 1, 1), ceil_mode)
    _pool3d_shape_check(input.shape, kernel, stride, padding, (1, 1, 1), out_size, "avg_pool3d()",
                        check_input_size=True)

    unbatched = input.ndim == 4
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C = x.shape[:2]
    memory.check_output(op, (N, C) + out_size, x.dtype)
    y = np.empty((N, C) + out_size, dtype=x.dtype)
    override = 0 if divisor_override is None else int(divisor_override)
    adds, divides = avg3d_kernel.avg_pool3d(x, *kernel, *stride, *padding, bool(count_include_pad), override, y)
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
