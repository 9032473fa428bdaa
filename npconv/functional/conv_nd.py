"""Convolution over one and three spatial axes, with `torch.nn.functional`'s semantics.

    conv1d             x (N, C_in, L)          w (C_out, C_in/groups, K)
    conv3d             x (N, C_in, D, H, W)    w (C_out, C_in/groups, KD, KH, KW)
    conv_transpose1d   x (N, C_in, L)          w (C_in, C_out/groups, K)
    conv_transpose3d   x (N, C_in, D, H, W)    w (C_in, C_out/groups, KD, KH, KW)
    conv1d_backward, conv_transpose1d_backward   their gradients

and unbatched inputs without N. The arguments, rules and errors are those of conv2d and
conv_transpose2d with one int per axis (`npconv.geometry.conv_nd_geometry`,
`conv_transpose_nd_geometry`): stride, padding (int, tuple, "same", "valid"), dilation,
groups, bias, and for conv1d / conv3d `padding_mode` as `nn.Conv1d` / `nn.Conv3d` apply it.

**1-D is the 2-D convolution on a plane of height 1.** conv1d(x, w) is conv2d of x viewed
as (N, C_in, 1, L) with w viewed as (C_out, C_in/groups, 1, K), kernel height 1, stride,
dilation 1 and no padding across the plane; PyTorch computes it the same way. The plane
has the same outputs, the same sums in the same order and the same counts, so conv1d
runs the 2-D kernels (npconv/kernels/conv2d.py, conv_transpose2d.py and the 2-D backward)
and its counts, formulas and rounding bound are theirs, with kH = 1:

    y[n, o, l] = b[o] + sum_{c < Cg} sum_{q < K} x[n, g*Cg + c, l*s + q*d - pad] * w[o, c, q]

Its counts are recorded under the 1-D names ("conv1d", "conv_transpose1d",
"conv1d_grad_input", ...).

**3-D has its own loop nest** (npconv/kernels/conv3d.py, conv_transpose3d.py), the 2-D one
with a depth axis:

    y[n, o, d, i, j] = b[o] + sum_{c, r, p, q} x[n, g*Cg + c, d*sd + r*dd - pad_d,
                                                 i*sh + p*dh - pad_h, j*sw + q*dw - pad_w] * w[o, c, r, p, q]

Counted under "conv3d" (macs, padding_macs, bias_adds) and "conv_transpose3d" (macs,
inside_macs, bias_adds), as the 2-D ops. The fast tier (`engine="fast"`) covers conv1d as
it covers the plane's conv2d; conv3d always runs the reference kernel.

Precision: as conv2d, float32 / float64 in their own dtype; float16 widened to float32,
accumulated there and rounded once per output element.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import counting
from .. import engine as engines
from .. import memory
from ..dtypes import as_kernel_array, check_flag, compute_dtype, finish
from ..geometry import (PADDING_MODES, check_array, check_same_dtype, conv1d_geometry,
                        conv3d_geometry, conv_transpose_nd_geometry, int_tuple, pad_geometry)
from ..kernels import conv3d as conv3d_kernel
from ..kernels import conv_transpose3d as conv_transpose3d_kernel
from .backward import _check_grad_output, conv2d_backward, conv_transpose2d_backward
from .conv import _conv2d
from .conv_transpose import _conv_transpose2d
from .pad import padded

__all__ = ["conv1d", "conv1d_backward", "conv3d", "conv_transpose1d", "conv_transpose1d_backward",
           "conv_transpose3d"]


def conv1d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    engine: str | None = None,
) -> np.ndarray:
    """1-D cross-correlation with `torch.nn.Conv1d`'s semantics (`F.conv1d`'s for zeros padding).

    Shapes: input (N, C_in, L) or unbatched (C_in, L); weight (C_out, C_in/groups, K); bias
    (C_out,) or None; returns (N, C_out, OL) (or (C_out, OL)) with
    OL = floor((L + 2*padding - dilation*(K-1) - 1) / stride) + 1 ("same": d*(K-1) in total,
    the odd element at the end).

    Computed as `npconv.conv2d` on the plane of height 1 (module docstring): the same
    kernel, counts, formulas (npconv.formulas.conv1d_*, the 2-D ones with kH = 1) and
    rounding bound. Records op "conv1d": macs, padding_macs, bias_adds.
    """
    op = "conv1d"
    input, weight, bias = _checked_arrays(input, weight, bias, op)
    input, padding = _crop_for_negative_padding(input, padding, padding_mode, 1)
    geometry = conv1d_geometry(input.shape, weight.shape, None if bias is None else bias.shape,
                               stride, padding, dilation, groups, padding_mode)
    y = _conv2d(input[..., np.newaxis, :], weight[..., np.newaxis, :], bias, geometry.as_conv2d(), op=op,
                engine=engine)
    return y[..., 0, :]


def conv3d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    engine: str | None = None,
) -> np.ndarray:
    """3-D cross-correlation with `torch.nn.Conv3d`'s semantics (`F.conv3d`'s for zeros padding).

    Shapes: input (N, C_in, D, H, W) or unbatched (C_in, D, H, W); weight
    (C_out, C_in/groups, KD, KH, KW); bias (C_out,) or None; returns (N, C_out, OD, OH, OW)
    (or unbatched) with, per axis, O = floor((size + pad_before + pad_after - d*(k-1) - 1) / s) + 1.

    stride, dilation: int or triple; padding: int, triple, "valid" or "same"; padding_mode
    as `npconv.conv2d`'s, applied before the convolution with `npconv.pad`. Empty sizes as
    conv2d: an input without channels gives an output without channels.

    Records op "conv3d": macs, padding_macs, bias_adds (npconv.formulas.conv3d_*). `engine`
    is accepted as conv2d's; the fast tier has no 3-D kernel, so both run the reference one.
    """
    op = "conv3d"
    engines.resolve(engine)  # a valid engine name; either runs the reference kernel here
    input, weight, bias = _checked_arrays(input, weight, bias, op)
    input, padding = _crop_for_negative_padding(input, padding, padding_mode, 3)
    g = conv3d_geometry(input.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups, padding_mode)
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype, g.unbatched)
    w = as_kernel_array(weight, dtype)
    b = np.zeros(0, dtype) if bias is None else as_kernel_array(bias, dtype)
    # PyTorch's empty path gives an input without channels an output without channels
    out_channels = 0 if g.in_channels == 0 else g.out_channels
    memory.check_output(op, (g.batch, out_channels) + g.out_size, dtype)
    x_pad = padded(x, g.pad_argument(), g.padding_mode)
    y = np.empty((g.batch, out_channels) + g.out_size, dtype=dtype)
    macs, padding_macs, bias_adds = conv3d_kernel.conv3d(
        x_pad, w, b, g.has_bias, y, g.groups, *g.stride, *g.dilation, *g.pad_before, *g.size,
    )
    counting.record(op, macs=macs, padding_macs=padding_macs, bias_adds=bias_adds)
    return finish(y, input.dtype, g.unbatched)


def conv_transpose1d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> np.ndarray:
    """1-D transposed convolution with `torch.nn.functional.conv_transpose1d`'s semantics
    (same argument order).

    Shapes: input (N, C_in, L) or (C_in, L); weight (C_in, C_out/groups, K); bias (C_out,)
    or None; returns (N, C_out, OL) with OL = (L-1)*stride - 2*padding + dilation*(K-1) +
    output_padding + 1:

        y[n, g*Cog + o, l*s + q*d - pad] += x[n, c, l] * w[c, o, q]      then + b

    Computed as `npconv.conv_transpose2d` on the plane of height 1 (module docstring).
    Records op "conv_transpose1d": macs, inside_macs, bias_adds.
    """
    op = "conv_transpose1d"
    input, weight, bias = _checked_arrays(input, weight, bias, op)
    g = conv_transpose_nd_geometry(1, input.shape, weight.shape, None if bias is None else bias.shape,
                                   stride, padding, output_padding, groups, dilation)
    with _counted_as("conv_transpose1d", "conv_transpose2d"):
        y = _conv_transpose2d(input[..., np.newaxis, :], weight[..., np.newaxis, :], bias, g.as_conv_transpose2d())
    return y[..., 0, :]


def conv_transpose3d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> np.ndarray:
    """3-D transposed convolution with `torch.nn.functional.conv_transpose3d`'s semantics
    (same argument order).

    Shapes: input (N, C_in, D, H, W) or (C_in, D, H, W); weight (C_in, C_out/groups, KD,
    KH, KW); bias (C_out,) or None; returns (N, C_out, OD, OH, OW) with, per axis,
    O = (size-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1:

        y[n, g*Cog + o, d*sd + r*dd - pad_d, i*sh + p*dh - pad_h, j*sw + q*dw - pad_w]
            += x[n, c, d, i, j] * w[c, o, r, p, q]                      then + b

    (npconv/kernels/conv_transpose3d.py). Records op "conv_transpose3d": macs (every scatter
    product, N * C_in * D * H * W * C_out/groups * KD * KH * KW), inside_macs (those landing
    in the output) and bias_adds.
    """
    op = "conv_transpose3d"
    input, weight, bias = _checked_arrays(input, weight, bias, op)
    g = conv_transpose_nd_geometry(3, input.shape, weight.shape, None if bias is None else bias.shape,
                                   stride, padding, output_padding, groups, dilation)
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype, g.unbatched)
    w = as_kernel_array(weight, dtype)
    b = np.zeros(0, dtype) if bias is None else as_kernel_array(bias, dtype)
    # (an empty batch may have an empty input: the uncropped frame may then be "negative")
    full = tuple(max(s, 0) for s in g.full_size)
    memory.check_output(op, (g.batch, g.out_channels) + g.out_size, dtype,  # and the uncropped frame:
                        scratch=g.batch * g.out_channels * int(np.prod(full)) * dtype.itemsize)
    y_full = np.empty((g.batch, g.out_channels) + full, dtype=dtype)
    y = np.empty((g.batch, g.out_channels) + g.out_size, dtype=dtype)
    macs, inside_macs, bias_adds = conv_transpose3d_kernel.conv_transpose3d(
        x, w, b, g.has_bias, y_full, y, g.groups, *g.stride, *g.dilation, *g.padding,
    )
    counting.record(op, macs=macs, inside_macs=inside_macs, bias_adds=bias_adds)
    return finish(y, input.dtype, g.unbatched)


# ----------------------------------------------------------------------------- backward (1-D)


def conv1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    bias: bool = True,
    needs_input_grad: bool = True,
):
    """Gradients of y = conv1d(input, weight, b, stride, padding, dilation, groups, padding_mode):
    (grad_input, grad_weight, grad_bias), shaped as input, weight and (C_out,); grad_bias is
    None when bias=False, grad_input None when needs_input_grad=False.

    `npconv.conv2d_backward` on the plane of height 1 (module docstring), whose kernels and
    formulas are derived in npconv/kernels/conv2d_grad_*.py and docs/backward.md. Records
    "conv1d_grad_input", "conv1d_grad_weight", "conv1d_grad_bias".
    """
    op = "conv1d_backward"
    input, weight, grad_output = _checked_backward_arrays(grad_output, input, weight, bias, needs_input_grad, op)
    g = conv1d_geometry(input.shape, weight.shape, None, stride, padding, dilation, groups, padding_mode)
    _check_grad_output(grad_output, input, g.output_shape, op)
    unit = lambda value, name: (1,) + int_tuple(value, name, 1, "conv1d")  # noqa: E731
    with _counted_as("conv1d", "conv2d"):
        grads = conv2d_backward(
            grad_output[..., np.newaxis, :], input[..., np.newaxis, :], weight[..., np.newaxis, :],
            stride=unit(stride, "stride"), padding=padding if isinstance(padding, str) else (0,) + g.pad_before,
            dilation=unit(dilation, "dilation"), groups=groups, padding_mode=padding_mode, bias=bias,
            needs_input_grad=needs_input_grad,
        )
    return _off_the_plane(grads)


def conv_transpose1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    *,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
    bias: bool = True,
    needs_input_grad: bool = True,
):
    """Gradients of y = conv_transpose1d(input, weight, b, stride, padding, output_padding,
    groups, dilation): (grad_input, grad_weight, grad_bias) as `conv1d_backward` returns them.

    `npconv.conv_transpose2d_backward` on the plane of height 1. Records
    "conv_transpose1d_grad_input", "conv_transpose1d_grad_weight", "conv_transpose1d_grad_bias".
    """
    op = "conv_transpose1d_backward"
    input, weight, grad_output = _checked_backward_arrays(grad_output, input, weight, bias, needs_input_grad, op)
    g = conv_transpose_nd_geometry(1, input.shape, weight.shape, None, stride, padding, output_padding, groups,
                                   dilation)
    _check_grad_output(grad_output, input, g.output_shape, op)
    with _counted_as("conv_transpose1d", "conv_transpose2d"):
        grads = conv_transpose2d_backward(
            grad_output[..., np.newaxis, :], input[..., np.newaxis, :], weight[..., np.newaxis, :],
            stride=(1,) + g.stride, padding=(0,) + g.padding, output_padding=(0,) + g.output_padding,
            groups=groups, dilation=(1,) + g.dilation, bias=bias, needs_input_grad=needs_input_grad,
        )
    return _off_the_plane(grads)


# ----------------------------------------------------------------------------- shared plumbing


def _checked_arrays(input, weight, bias, op: str):
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    if bias is not None:
        bias = check_array(bias, "bias", op)
    check_same_dtype(input, weight, bias)
    return input, weight, bias


def _checked_backward_arrays(grad_output, input, weight, bias, needs_input_grad, op: str):
    """The backward's checks in the 2-D backward's order, worded for the 1-D op: flags,
    arrays, dtypes (the geometry and grad_output's shape follow)."""
    check_flag(bias, "bias", op)
    check_flag(needs_input_grad, "needs_input_grad", op)
    input, weight, _ = _checked_arrays(input, weight, None, op)
    return input, weight, check_array(grad_output, "grad_output", op)


def _crop_for_negative_padding(input: np.ndarray, padding, padding_mode, dims: int):
    """nn.Conv1d / nn.Conv3d pad with `F.pad(input, pads, padding_mode)` unless the mode is
    zeros, so a negative padding there crops the input (under F.pad's checks) and the
    convolution never sees it: PyTorch accepts it (conv2d does the same, npconv.functional.conv).
    Returns the input cropped on the axes whose padding is negative and the padding left
    (>= 0), or the arguments unchanged (the geometry then judges them, as F.conv*d would)."""
    if padding_mode == "zeros" or padding_mode not in PADDING_MODES or isinstance(padding, str) or \
            input.ndim not in (dims + 1, dims + 2):
        return input, padding
    pads = int_tuple(padding, "padding", dims, f"conv{dims}d")
    if min(pads) >= 0:
        return input, padding
    pad_geometry(input.shape, tuple(v for p in reversed(pads) for v in (p, p)), padding_mode)  # F.pad's errors
    crops = [max(-p, 0) for p in pads]
    window = tuple(slice(c, max(size - c, c)) for c, size in zip(crops, input.shape[-dims:]))
    return input[(Ellipsis,) + window], tuple(max(p, 0) for p in pads)


def _off_the_plane(grads):
    """The 2-D backward's (grad_input, grad_weight, grad_bias) of the plane, back in 1-D."""
    grad_input, grad_weight, grad_bias = grads
    return (None if grad_input is None else grad_input[..., 0, :]), grad_weight[..., 0, :], grad_bias


@contextlib.contextmanager
def _counted_as(op_1d: str, op_2d: str):
    """The 2-D wrappers the 1-D ops call record their kernels' counts under the 2-D names
    ("conv_transpose2d", "conv2d_grad_input", ...); inside this block they are recorded
    under the 1-D names ("conv_transpose1d", "conv1d_grad_input", ...) instead, the same
    counts, one record per op."""
    with counting.paused(), counting.count() as inner:
        yield
    for op, counts in inner.by_op.items():
        totals = {kind: n for kind, n in counts.as_dict().items() if kind != "calls"}
        counting.record(op.replace(op_2d, op_1d, 1), **totals)
