"""Argument checking and output geometry for 2-D convolution.

Everything here is plain Python: it turns the user's arguments into a validated
`Conv2dGeometry` (explicit per-side padding, output size, group sizes) or raises a
ValueError / TypeError whose message is modelled on PyTorch's. The kernels below it
never see an invalid configuration.

PyTorch's rules, as `torch.nn.functional.conv2d` and `torch.nn.Conv2d` apply them
(aten/src/ATen/native/Convolution.cpp, torch/nn/modules/conv.py):

* stride >= 1, padding >= 0, dilation >= 1, groups >= 1, each an int or a pair;
* weight is (C_out, C_in / groups, kH, kW), C_out divisible by groups, bias is (C_out,);
* padding="valid" is 0; padding="same" pads d*(k-1) in total per dimension, half of it
  (rounded down) on the top/left and the rest on the bottom/right; it needs stride 1;
* padding_mode "reflect" needs padding < the input size of that dimension, "circular"
  needs padding <= it (it may wrap once), "replicate" needs a non-empty input;
* the dilated kernel d*(k-1)+1 may not exceed the padded input.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

_TORCH_DTYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double"}


@dataclass(frozen=True)
class _ConvGeometry:
    """The sizes a convolution and a transposed convolution share (the fields come first in
    both, in this order) and what follows from them."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    height: int
    width: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def output_shape(self) -> tuple[int, ...]:
        shape = (self.batch, self.out_channels, self.out_h, self.out_w)
        return shape[1:] if self.unbatched else shape


@dataclass(frozen=True)
class Conv2dGeometry(_ConvGeometry):
    """A validated 2-D convolution, every size explicit.

    Shapes: input (N, C_in, H, W), weight (C_out, C_in // groups, kH, kW),
    output (N, C_out, OH, OW). Fields: those of every convolution (batch .. dilation_w),
    then the padding, the output size, has_bias and unbatched.
    """

    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    padding_mode: str
    out_h: int
    out_w: int
    has_bias: bool
    unbatched: bool = False


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """floor((size + pad_before + pad_after - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's padding="same" for one dimension: (before, after), the odd pixel after."""
    total = dilation * (kernel - 1)
    before = total // 2
    return before, total - before


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_pair(value, name: str, op: str = "conv2d") -> tuple[int, int]:
    """An int, or a list/tuple of one or two ints, as PyTorch accepts; TypeError for non-integers."""
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}(): {name} must be an int or a tuple of 2 ints, but got {name}={value!r}")
        if len(value) == 1:  # PyTorch expands a one-element list, as for a single int
            return int(value[0]), int(value[0])
        if len(value) != 2:
            raise ValueError(
                f"expected {name} to be a single integer value or a list of 2 values to match "
                f"the convolution dimensions, but got {name}={list(value)}"
            )
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}(): {name} must be an int or a tuple of 2 ints, not {type(value).__name__}")


def check_array(value, name: str, op: str = "conv2d") -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{op}(): argument '{name}' must be a numpy.ndarray, not {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}(): argument '{name}' must have a floating-point dtype (float16, float32 or float64), "
            f"but got {value.dtype}"
        )
    return value


def torch_dtype_name(dtype: np.dtype) -> str:
    return _TORCH_DTYPE_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)


def check_same_dtype(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> None:
    if weight.dtype != input.dtype:
        raise TypeError(
            f"expected scalar type {torch_dtype_name(input.dtype)} but found {torch_dtype_name(weight.dtype)}: "
            f"input is {input.dtype} and weight is {weight.dtype}; convert one of them"
        )
    if bias is not None and bias.dtype != input.dtype:
        raise TypeError(
            f"Input type ({input.dtype}) and bias type ({bias.dtype}) should be the same"
        )


def batched_shapes(input_shape: tuple, weight_shape: tuple, op: str) -> tuple[tuple[int, ...], bool]:
    """PyTorch's rank checks: input 3-D (unbatched) or 4-D, weight 4-D. Returns the input
    shape with a batch dimension and whether one was added."""
    if len(input_shape) not in (3, 4):
        raise ValueError(
            f"Expected 3D (unbatched) or 4D (batched) input to {op}, but got input of size: {list(input_shape)}"
        )
    unbatched = len(input_shape) == 3
    if unbatched:
        input_shape = (1,) + tuple(input_shape)
    if len(weight_shape) != 4:
        raise ValueError(
            f"Expected 4-dimensional weight for 4-dimensional input {list(input_shape)}, "
            f"but got {len(weight_shape)}-dimensional weight of size {list(weight_shape)}"
        )
    return tuple(input_shape), unbatched


def check_stride_groups_kernel(stride: tuple[int, int], groups: int, kernel: tuple[int, int]) -> None:
    """stride >= 1, groups >= 1 and a non-empty kernel, with PyTorch's messages."""
    if stride[0] <= 0 or stride[1] <= 0:
        raise ValueError(f"non-positive stride is not supported, but got stride={list(stride)}")
    if groups <= 0:
        raise ValueError(f"non-positive groups is not supported, but got groups={groups}")
    if kernel[0] <= 0 or kernel[1] <= 0:
        raise ValueError(
            f"kernel size should be greater than zero, but got kernel_height: {kernel[0]} kernel_width: {kernel[1]}"
        )


def conv2d_geometry(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode: str = "zeros",
) -> Conv2dGeometry:
    """Validate a conv2d call from its shapes and arguments; return its geometry.

    Raises ValueError (TypeError for a wrong type) with PyTorch's wording where PyTorch
    rejects the same call.
    """
    input_shape = tuple(input_shape)
    weight_shape = tuple(weight_shape)
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a string, not {type(padding_mode).__name__}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {set(PADDING_MODES)}, but got padding_mode={padding_mode!r}"
        )
    if not _is_int(groups):
        raise TypeError(f"conv2d(): groups must be an int, not {type(groups).__name__}")
    stride_h, stride_w = int_pair(stride, "stride")
    dilation_h, dilation_w = int_pair(dilation, "dilation")

    input_shape, unbatched = batched_shapes(input_shape, weight_shape, "conv2d")
    batch, in_channels, height, width = input_shape
    out_channels, in_per_group, kernel_h, kernel_w = weight_shape

    check_stride_groups_kernel((stride_h, stride_w), groups, (kernel_h, kernel_w))
    if dilation_h <= 0 or dilation_w <= 0:
        raise ValueError(f"dilation should be greater than zero, but got {[dilation_h, dilation_w]}")
    if out_channels % groups != 0:
        raise ValueError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(weight_shape)} instead"
        )
    if in_per_group * groups != in_channels:
        raise ValueError(
            f"Given groups={groups}, weight of size {list(weight_shape)}, expected input{list(input_shape)} "
            f"to have {in_per_group * groups} channels, but got {in_channels} channels instead"
        )
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ValueError(
            f"Given weight of size {list(weight_shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias_shape)} instead"
        )

    if isinstance(padding, str):
        if padding == "valid":
            pad_top = pad_bottom = pad_left = pad_right = 0
        elif padding == "same":
            if stride_h != 1 or stride_w != 1:
                raise ValueError("padding='same' is not supported for strided convolutions")
            pad_top, pad_bottom = same_padding(kernel_h, dilation_h)
            pad_left, pad_right = same_padding(kernel_w, dilation_w)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        pad_h, pad_w = int_pair(padding, "padding")
        if pad_h < 0 or pad_w < 0:
            raise ValueError(f"negative padding is not supported, but got padding={[pad_h, pad_w]}")
        pad_top = pad_bottom = pad_h
        pad_left = pad_right = pad_w

    _check_padding_mode_fits(padding_mode, input_shape, (pad_top, pad_bottom, pad_left, pad_right), unbatched)

    padded_h = height + pad_top + pad_bottom
    padded_w = width + pad_left + pad_right
    span_h = dilation_h * (kernel_h - 1) + 1
    span_w = dilation_w * (kernel_w - 1) + 1
    if padded_h < span_h or padded_w < span_w:
        raise ValueError(
            f"Calculated padded input size per channel: ({padded_h} x {padded_w}). "
            f"Kernel size: ({span_h} x {span_w}). Kernel size can't be greater than actual input size"
        )

    return Conv2dGeometry(
        # the fields every convolution has, in _ConvGeometry's order
        batch, in_channels, out_channels, groups, height, width,
        kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w,
        pad_top=pad_top, pad_bottom=pad_bottom, pad_left=pad_left, pad_right=pad_right, padding_mode=padding_mode,
        out_h=conv_output_size(height, kernel_h, stride_h, pad_top, pad_bottom, dilation_h),
        out_w=conv_output_size(width, kernel_w, stride_w, pad_left, pad_right, dilation_w),
        has_bias=bias_shape is not None, unbatched=unbatched,
    )


def _check_padding_mode_fits(mode: str, input_shape, pads, unbatched: bool) -> None:
    """The limits `torch.nn.functional.pad` puts on reflect / replicate / circular padding."""
    if mode == "zeros":
        return
    batch, channels, height, width = input_shape
    pad_top, pad_bottom, pad_left, pad_right = pads
    shown = list(input_shape[1:]) if unbatched else list(input_shape)
    dim_h, dim_w = len(shown) - 2, len(shown) - 1
    if mode == "replicate" or mode == "reflect":
        if channels == 0 or height == 0 or width == 0:
            raise ValueError(
                f"Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
                f"dimensions for input, but got: {shown}"
            )
    if mode == "reflect":
        for dim, size, before, after in ((dim_w, width, pad_left, pad_right), (dim_h, height, pad_top, pad_bottom)):
            if before >= size or after >= size:
                raise ValueError(
                    f"Argument #4: Padding size should be less than the corresponding input dimension, "
                    f"but got: padding ({before}, {after}) at dimension {dim} of input {shown}"
                )
    if mode == "circular":
        for size, before, after in ((height, pad_top, pad_bottom), (width, pad_left, pad_right)):
            if before > size or after > size:
                raise ValueError(
                    f"Padding value causes wrapping around more than once: padding ({before}, {after}) "
                    f"on a dimension of size {size} of input {shown}"
                )
