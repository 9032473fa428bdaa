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

Precision: float32 and float64 are computed in their own precision; float16 is widened
to float32, accumulated there and rounded once to float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import counting
from .. import memory
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import _ConvGeometry, _is_int, batched_shapes, check_array, check_same_dtype, check_stride_groups_kernel, int_pair
from ..kernels import conv_transpose2d as conv_transpose2d_kernel

_OP = "conv_transpose2d"


@dataclass(frozen=True)
class ConvTranspose2dGeometry(_ConvGeometry):
    """A validated transposed convolution, every size explicit.

    Shapes: input (N, C_in, H, W), weight (C_in, C_out // groups, kH, kW),
    output (N, C_out, OH, OW); the uncropped scatter target is full_h x full_w. Fields: those
    of every convolution (batch .. dilation_w), then the padding, the output size, has_bias
    and unbatched.
    """

    pad_h: int
    pad_w: int
    output_pad_h: int
    output_pad_w: int
    out_h: int
    out_w: int
    has_bias: bool
    unbatched: bool = False

    @property
    def full_h(self) -> int:
        """Rows of the uncropped scatter target: every tap of every input row, plus output_padding."""
        return (self.height - 1) * self.stride_h + self.dilation_h * (self.kernel_h - 1) + 1 + self.output_pad_h

    @property
    def full_w(self) -> int:
        return (self.width - 1) * self.stride_w + self.dilation_w * (self.kernel_w - 1) + 1 + self.output_pad_w


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int) -> int:
    """(size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


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
    rejects the same call.
    """
    input_shape = tuple(input_shape)
    weight_shape = tuple(weight_shape)
    if not _is_int(groups):
        raise TypeError(f"{_OP}(): argument 'groups' must be int, not {type(groups).__name__}")
    stride_h, stride_w = int_pair(stride, "stride", _OP)
    pad_h, pad_w = int_pair(padding, "padding", _OP)
    output_pad_h, output_pad_w = int_pair(output_padding, "output_padding", _OP)
    dilation_h, dilation_w = int_pair(dilation, "dilation", _OP)

    input_shape, unbatched = batched_shapes(input_shape, weight_shape, _OP)
    batch, in_channels, height, width = input_shape
    weight_in, out_per_group, kernel_h, kernel_w = weight_shape

    check_stride_groups_kernel((stride_h, stride_w), groups, (kernel_h, kernel_w))
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"negative padding is not supported, but got padding={[pad_h, pad_w]}")
    if output_pad_h < 0 or output_pad_w < 0:
        raise ValueError(
            f"negative output_padding is not supported, but got output_padding={[output_pad_h, output_pad_w]}"
        )
    if dilation_h <= 0 or dilation_w <= 0:
        raise ValueError(
            f"dilation should be greater than zero, but got dilation_height: {dilation_h}, dilation_width: {dilation_w}"
        )
    if weight_in < groups:
        raise ValueError(
            f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, "
            f"but got weight of size {list(weight_shape)} instead"
        )
    if out_per_group <= 0:
        raise ValueError(f"non-empty 4D weight tensor expected, but got: {list(weight_shape)}")
    if weight_in % groups != 0:
        raise ValueError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(weight_shape)} instead"
        )
    if in_channels != weight_in:
        raise ValueError(
            f"Given transposed=1, weight of size {list(weight_shape)}, expected input{list(input_shape)} "
            f"to have {weight_in} channels, but got {in_channels} channels instead"
        )
    out_channels = out_per_group * groups
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ValueError(
            f"Given transposed=1, weight of size {list(weight_shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias_shape)} instead"
        )
    if not (output_pad_h < stride_h or output_pad_h < dilation_h) or not (
        output_pad_w < stride_w or output_pad_w < dilation_w
    ):
        raise ValueError(
            f"output padding must be smaller than either stride or dilation, but got "
            f"output_padding_height: {output_pad_h} output_padding_width: {output_pad_w} "
            f"stride_height: {stride_h} stride_width: {stride_w} "
            f"dilation_height: {dilation_h} dilation_width: {dilation_w}"
        )
    # PyTorch sends an empty batch down its "empty" path, which only shapes the output: an
    # empty H or W, and an empty output, are fine there (a negative output size is not)
    if batch > 0 and (height <= 0 or width <= 0):
        raise ValueError(f"Only zero batch or zero channel inputs are supported, but got input shape: "
                         f"{list(input_shape)}")
    out_h = conv_transpose_output_size(height, kernel_h, stride_h, pad_h, output_pad_h, dilation_h)
    out_w = conv_transpose_output_size(width, kernel_w, stride_w, pad_w, output_pad_w, dilation_w)
    if out_h < (1 if batch > 0 else 0) or out_w < (1 if batch > 0 else 0):
        raise ValueError(
            f"Given input size per channel: ({height} x {width}). Calculated output size per channel: "
            f"({out_h} x {out_w}). Output size is too small"
        )
    return ConvTranspose2dGeometry(
        # the fields every convolution has, in _ConvGeometry's order
        batch, in_channels, out_channels, groups, height, width,
        kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w,
        pad_h=pad_h, pad_w=pad_w, output_pad_h=output_pad_h, output_pad_w=output_pad_w, out_h=out_h, out_w=out_w,
        has_bias=bias_shape is not None, unbatched=unbatched,
    )


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
