"""Transposed 2-D convolution with `torch.nn.functional.conv_transpose2d`'s semantics.

    y = conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)

x (N, C_in, H, W) or unbatched (C_in, H, W); w (C_in, C_out / groups, kH, kW) -- note
the order, input channels first, as PyTorch stores it; b (C_out,); y (N, C_out, OH, OW):

    OH = (H - 1) * stride_h - 2 * padding_h + dilation_h * (kH - 1) + output_padding_h + 1

Each input pixel scatters a weighted copy of the (dilated) kernel onto the output at
stride spacing; `padding` then crops that many rows/columns from every side and
`output_padding` adds rows/columns at the bottom/right only, to pick one of the
`stride` input sizes that a strided conv2d maps to the same output size. conv_transpose2d
is the adjoint of conv2d with the same weight and arguments:
<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>, and so it is conv2d's input gradient.

PyTorch's rules (aten/src/ATen/native/Convolution.cpp, `check_shape_forward` and
`ConvParams`), checked here before any kernel runs:
* stride >= 1, padding >= 0, output_padding >= 0, dilation >= 1, groups >= 1;
* output_padding < stride or output_padding < dilation, in each dimension;
* C_in divisible by groups, the input has C_in channels, bias is (C_out,);
* the output must be at least 1 x 1, and the input not empty in H or W; with an empty
  batch (N = 0) both may be empty (PyTorch's empty path), only a negative output size is
  an error; `padding` may not be a string.

Precision: float32 and float64 are computed in their own precision; float16 and bfloat16
are widened to float32, accumulated there and rounded once (PyTorch's CPU kernels add the
taps in the narrow dtype itself: docs/semantics.md).
"""

from __future__ import annotations

import numpy as np

from .. import counting
from .. import memory
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import (ConvTranspose2dGeometry, check_array, check_same_dtype, conv_transpose_nd_geometry,
                        conv_transpose_output_size)
from ..kernels import conv_transpose2d as conv_transpose2d_kernel

# the geometry lives in npconv.geometry; its names stay importable from here (npconv.transpose)
__all__ = ["ConvTranspose2dGeometry", "conv_transpose2d", "conv_transpose2d_geometry", "conv_transpose_output_size"]

_OP = "conv_transpose2d"


def conv_transpose2d_geometry(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
) -> ConvTranspose2dGeometry:
    """Validate a conv_transpose2d call from its shapes and arguments; return its geometry.

    Raises ValueError (TypeError for a wrong type) with PyTorch's wording where PyTorch
    rejects the same call (the rules of `npconv.geometry.conv_transpose_nd_geometry`, with
    two axes).
    """
    return conv_transpose_nd_geometry(2, input_shape, weight_shape, bias_shape, stride, padding, output_padding,
                                      groups, dilation).as_conv_transpose2d()


def conv_transpose2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> np.ndarray:
    """2-D transposed convolution with `torch.nn.functional.conv_transpose2d`'s semantics
    (same argument order).

    Shapes: input (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out/groups, kH, kW);
    bias (C_out,) or None; returns (N, C_out, OH, OW) (or (C_out, OH, OW)) with
    OH = (H-1)*stride_h - 2*padding_h + dilation_h*(kH-1) + output_padding_h + 1, likewise OW.

        y[n, g*Cog + o, i*s + p*d - pad, j*s + q*d - pad] += x[n, c, i, j] * w[c, o, p, q]

    (g the group of c, Cog = C_out/groups), positions outside the output dropped, then + b.

    Inside `npconv.count()`, records under op "conv_transpose2d": `macs`, every scatter
    multiply-accumulate (N * C_in * H * W * C_out/groups * kH * kW, cropped ones included),
    `inside_macs`, those that land inside the output, and `bias_adds`.
    """
    input = check_array(input, "input", _OP)
    weight = check_array(weight, "weight", _OP)
    if bias is not None:
        bias = check_array(bias, "bias", _OP)
    check_same_dtype(input, weight, bias)
    geometry = conv_transpose2d_geometry(
        input.shape, weight.shape, None if bias is None else bias.shape,
        stride, padding, output_padding, groups, dilation,
    )
    return _conv_transpose2d(input, weight, bias, geometry)


def _conv_transpose2d(input, weight, bias, geometry: ConvTranspose2dGeometry) -> np.ndarray:
    g = geometry
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype, g.unbatched)
    w = as_kernel_array(weight, dtype)
    b = np.zeros(0, dtype) if bias is None else as_kernel_array(bias, dtype)
    memory.check_output(_OP, (g.batch, g.out_channels, g.out_h, g.out_w), dtype,  # and the uncropped frame:
                        scratch=g.batch * g.out_channels * max(g.full_h, 0) * max(g.full_w, 0) * dtype.itemsize)
    # (an empty batch may have an empty input: the uncropped frame may then be "negative")
    y_full = np.empty((g.batch, g.out_channels, max(g.full_h, 0), max(g.full_w, 0)), dtype=dtype)
    y = np.empty((g.batch, g.out_channels, g.out_h, g.out_w), dtype=dtype)
    macs, inside_macs, bias_adds = conv_transpose2d_kernel.conv_transpose2d(
        x, w, b, g.has_bias, y_full, y, g.groups,
        g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_h, g.pad_w,
    )
    counting.record(_OP, macs=macs, bias_adds=bias_adds, inside_macs=inside_macs)
    return finish(y, input.dtype, g.unbatched)
