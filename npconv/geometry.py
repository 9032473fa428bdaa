"""Argument checking and output geometry for convolution over 1, 2 or 3 spatial axes.

Everything here is plain Python: it turns the user's arguments into a validated
`Conv2dGeometry` (explicit per-side padding, output size, group sizes) -- or, for conv1d
and conv3d, a `ConvNdGeometry`, the same with a tuple per axis -- or raises a
ValueError / TypeError whose message is modelled on PyTorch's. The kernels below it
never see an invalid configuration. One set of rules serves every rank
(`conv_nd_geometry`; `conv2d_geometry` is its 2-D instance); the transposed convolutions
of 1 and 3 axes have theirs in `conv_transpose_nd_geometry`.

PyTorch's rules, as `torch.nn.functional.conv2d` and `torch.nn.Conv2d` apply them
(aten/src/ATen/native/Convolution.cpp, torch/nn/modules/conv.py), and likewise for
conv1d / conv3d with one int per axis:

* stride >= 1, padding >= 0, dilation >= 1, groups >= 1, each an int or a pair (1-D: an
  int or a list of one; 3-D: an int or a triple; a list of one int stands for all axes);
* weight is (C_out, C_in / groups, kH, kW), C_out divisible by groups, bias is (C_out,);
* padding="valid" is 0; padding="same" pads d*(k-1) in total per dimension, half of it
  (rounded down) on the top/left and the rest on the bottom/right; it needs stride 1;
* padding_mode "reflect", "replicate" and "circular" pad the input with
  `torch.nn.functional.pad` first (`pad_geometry` below: reflect needs padding < the input
  size of that dimension, circular padding <= it, reflect and replicate a non-empty input),
  and the convolution then runs on the padded input with padding 0, as `nn.Conv2d` does;
* the dilated kernel d*(k-1)+1 may not exceed the padded input;
* C_out >= groups; an input with an empty spatial dimension needs N = 0 or C_in = 0
  (PyTorch sends only those through its "empty" path); with C_in = 0 the output has 0
  channels, whatever C_out is (PyTorch's empty path multiplies the empty input by the
  flattened weight).

PyTorch computes a 1-D convolution as the 2-D one on a plane of height 1 (input
(N, C, 1, L), kernel height 1), and so does npconv: `ConvNdGeometry.as_conv2d` is that
plane. The checks PyTorch makes after that step word the plane (`kernel_height: 1
kernel_width: 0`, `dilation_height: 1`), and npconv's 1-D messages do too (`_plane`).

`pad_geometry` checks a `torch.nn.functional.pad` call (aten's PadNd.cpp, ReflectionPad.cpp,
ReplicationPadding.cpp and `_pad_circular`, as PyTorch 2.13 applies them).
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np

from .dtypes import FLOAT_DTYPES  # float16, bfloat16, float32, float64; re-exported here

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_TORCH_DTYPE_NAMES = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double"}


class _PerGroup:
    """The channels of one group, for any geometry with in_channels, out_channels and groups."""

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups


@dataclass(frozen=True)
class _ConvGeometry(_PerGroup):
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


def int_tuple(value, name: str, dims: int, op: str) -> tuple[int, ...]:
    """An int, or a list/tuple of one or `dims` ints, as PyTorch accepts for a convolution
    over `dims` axes (a single int or a one-element list stands for every axis); TypeError
    for non-integers, ValueError for a list of another length."""
    ints = f"a tuple of {dims} ints" if dims > 1 else "a tuple of 1 int"
    if _is_int(value):
        return (int(value),) * dims
    if isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}(): {name} must be an int or {ints}, but got {name}={value!r}")
        if len(value) == 1:  # PyTorch expands a one-element list, as for a single int
            return (int(value[0]),) * dims
        if len(value) != dims:
            raise ValueError(
                f"expected {name} to be a single integer value or a list of {dims} values to match "
                f"the convolution dimensions, but got {name}={list(value)}"
            )
        return tuple(int(v) for v in value)
    raise TypeError(f"{op}(): {name} must be an int or {ints}, not {type(value).__name__}")


def int_pair(value, name: str, op: str = "conv2d") -> tuple[int, int]:
    """An int, or a list/tuple of one or two ints, as PyTorch accepts; TypeError for non-integers."""
    return int_tuple(value, name, 2, op)


def check_array(value, name: str, op: str = "conv2d") -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{op}(): argument '{name}' must be a numpy.ndarray, not {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}(): argument '{name}' must have a floating-point dtype (float16, bfloat16, float32 or float64), "
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


def batched_shapes(input_shape: tuple, weight_shape: tuple, op: str, dims: int = 2) -> tuple[tuple[int, ...], bool]:
    """PyTorch's rank checks for a convolution over `dims` axes: input (dims + 1)-D
    (unbatched) or (dims + 2)-D, weight (dims + 2)-D. Returns the input shape with a batch
    dimension and whether one was added."""
    if len(input_shape) not in (dims + 1, dims + 2):
        raise ValueError(
            f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to {op}, "
            f"but got input of size: {list(input_shape)}"
        )
    unbatched = len(input_shape) == dims + 1
    if unbatched:
        input_shape = (1,) + tuple(input_shape)
    if len(weight_shape) != dims + 2:
        raise ValueError(
            f"Expected {dims + 2}-dimensional weight for {dims + 2}-dimensional input {list(input_shape)}, "
            f"but got {len(weight_shape)}-dimensional weight of size {list(weight_shape)}"
        )
    return tuple(input_shape), unbatched


def _plane(values: tuple, fill=1) -> tuple:
    """Per-axis values as PyTorch's later messages show them: a 1-D convolution runs as the
    2-D one on a plane of height 1 (module docstring), so its one axis gains a height `fill`."""
    return (fill,) + tuple(values) if len(values) == 1 else tuple(values)


def _labelled(label: str, values: tuple, separator: str = " ") -> str:
    """'label_height: 1 label_width: 3' (or depth, height and width), PyTorch's way of
    listing a per-axis argument."""
    values = _plane(values)
    names = ("depth", "height", "width")[3 - len(values):]
    return separator.join(f"{label}_{axis}: {v}" for axis, v in zip(names, values))


def check_stride_groups_kernel(stride: tuple[int, ...], groups: int, kernel: tuple[int, ...]) -> None:
    """stride >= 1, groups >= 1 and a non-empty kernel, with PyTorch's messages (one int
    per axis: 1, 2 or 3 of them)."""
    if min(stride) <= 0:
        raise ValueError(f"non-positive stride is not supported, but got stride={list(stride)}")
    if groups <= 0:
        raise ValueError(f"non-positive groups is not supported, but got groups={groups}")
    if min(kernel) <= 0:
        if len(kernel) == 3:
            raise ValueError(f"kernel size should be greater than zero, but got: {' x '.join(map(str, kernel))} "
                             f"(TxHxW)")
        raise ValueError(f"kernel size should be greater than zero, but got {_labelled('kernel', tuple(kernel))}")


class _NdShapes(_PerGroup):
    """What ConvNdGeometry and ConvTransposeNdGeometry derive alike from their fields (batch,
    in_channels, out_channels, groups, size, kernel, stride, dilation, out_size, unbatched)."""

    @property
    def dims(self) -> int:
        return len(self.size)

    @property
    def output_shape(self) -> tuple[int, ...]:
        shape = (self.batch, self.out_channels) + tuple(self.out_size)
        return shape[1:] if self.unbatched else shape

    def _on_a_plane(self, what: str) -> tuple[tuple, tuple[int, int]]:
        """For 1 or 2 axes, the fields every 2-D geometry starts with, in _ConvGeometry's order
        (batch, in_channels, out_channels, groups, height, width, kernel_h, kernel_w, stride_h,
        stride_w, dilation_h, dilation_w), and (out_h, out_w): a 1-axis one lifted onto a plane
        of height 1 (kernel height 1, stride and dilation 1). Raises ValueError for 3 axes."""
        if self.dims not in (1, 2):
            raise ValueError(f"a {self.dims}-d {what} is not a 2-d one")
        unit = (1,) * (2 - self.dims)
        fields = ((self.batch, self.in_channels, self.out_channels, self.groups) + unit + tuple(self.size)
                  + unit + tuple(self.kernel) + unit + tuple(self.stride) + unit + tuple(self.dilation))
        out_h, out_w = unit + tuple(self.out_size)
        return fields, (out_h, out_w)


@dataclass(frozen=True)
class ConvNdGeometry(_NdShapes):
    """A validated convolution over `dims` = 1, 2 or 3 spatial axes, every size explicit.
    Per-axis fields are tuples, outermost axis first: (depth, height, width), (height,
    width) or (length,).

    Shapes: input (N, C_in, *size), weight (C_out, C_in // groups, *kernel), output
    (N, C_out, *out_size). `pad_before` / `pad_after`: the padding at the start / end of
    each axis (they differ only under padding="same" with an odd total).
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    padding_mode: str
    out_size: tuple[int, ...]
    has_bias: bool
    unbatched: bool = False

    def pad_argument(self) -> tuple[int, ...]:
        """The padding in `torch.nn.functional.pad`'s order: (before, after) of the last axis
        first."""
        return tuple(v for before, after in zip(reversed(self.pad_before), reversed(self.pad_after))
                     for v in (before, after))

    def as_conv2d(self) -> Conv2dGeometry:
        """The same convolution as a `Conv2dGeometry`: for 2 axes itself; for 1 axis the 2-D
        convolution on a plane of height 1 (kernel height 1, stride and dilation 1, no padding
        across it), which has the same outputs, the same sums in the same order and the
        same counts -- how PyTorch computes conv1d, and npconv too."""
        fields, (out_h, out_w) = self._on_a_plane("convolution")
        zero = (0,) * (2 - self.dims)
        (pad_top, pad_left), (pad_bottom, pad_right) = zero + self.pad_before, zero + self.pad_after
        return Conv2dGeometry(
            *fields,
            pad_top=pad_top, pad_bottom=pad_bottom, pad_left=pad_left, pad_right=pad_right,
            padding_mode=self.padding_mode, out_h=out_h, out_w=out_w, has_bias=self.has_bias,
            unbatched=self.unbatched,
        )


def conv_nd_geometry(
    dims: int,
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode: str = "zeros",
) -> ConvNdGeometry:
    """Validate a conv1d / conv2d / conv3d call (`dims` = 1, 2, 3) from its shapes and
    arguments; return its geometry.

    Raises ValueError (TypeError for a wrong type) with PyTorch's wording where PyTorch
    rejects the same call (`torch.nn.Conv{dims}d` semantics: padding_mode as nn.Conv*d).
    """
    op = f"conv{dims}d"
    input_shape = tuple(input_shape)
    weight_shape = tuple(weight_shape)
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a string, not {type(padding_mode).__name__}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {set(PADDING_MODES)}, but got padding_mode={padding_mode!r}"
        )
    if not _is_int(groups):
        raise TypeError(f"{op}(): groups must be an int, not {type(groups).__name__}")
    stride = int_tuple(stride, "stride", dims, op)
    dilation = int_tuple(dilation, "dilation", dims, op)

    input_shape, unbatched = batched_shapes(input_shape, weight_shape, op, dims)
    batch, in_channels, size = input_shape[0], input_shape[1], input_shape[2:]
    out_channels, in_per_group, kernel = weight_shape[0], weight_shape[1], weight_shape[2:]

    check_stride_groups_kernel(stride, groups, kernel)
    if min(dilation) <= 0:
        raise ValueError(f"dilation should be greater than zero, but got {list(_plane(dilation))}")
    if out_channels < groups:
        raise ValueError(
            f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, "
            f"but got weight of size {list(weight_shape)} instead"
        )
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
            pad_before = pad_after = (0,) * dims
        elif padding == "same":
            if min(stride) != 1 or max(stride) != 1:
                raise ValueError("padding='same' is not supported for strided convolutions")
            pad_before, pad_after = zip(*(same_padding(k, d) for k, d in zip(kernel, dilation)))
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        pad_before = pad_after = int_tuple(padding, "padding", dims, op)
        if min(pad_before) < 0:
            raise ValueError(f"negative padding is not supported, but got padding={list(pad_before)}")

    if padding_mode != "zeros":
        # nn.Conv*d pads with F.pad first ((left, right, top, bottom, ...): the last axis
        # first), on the input as given
        shown = input_shape[1:] if unbatched else input_shape
        f_pad = tuple(v for b, a in zip(reversed(pad_before), reversed(pad_after)) for v in (b, a))
        pad_geometry(shown, f_pad, _PAD_MODE_OF[padding_mode])

    padded = tuple(s + b + a for s, b, a in zip(size, pad_before, pad_after))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(p < k for p, k in zip(padded, span)):
        raise ValueError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, span))}). Kernel size can't be greater than actual input size"
        )
    # the input the convolution itself sees: padded already unless padding_mode is zeros
    seen = size if padding_mode == "zeros" else padded
    if batch > 0 and in_channels > 0 and min(seen) == 0:
        raise ValueError(
            f"Only zero batch or zero channel inputs are supported, but got input shape: "
            f"{[batch, in_channels, *seen]}"
        )

    return ConvNdGeometry(
        batch, in_channels, out_channels, groups, tuple(size), tuple(kernel), stride, dilation,
        tuple(pad_before), tuple(pad_after), padding_mode,
        out_size=tuple(conv_output_size(*axis) for axis in zip(size, kernel, stride, pad_before, pad_after, dilation)),
        has_bias=bias_shape is not None, unbatched=unbatched,
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
    rejects the same call (the rules of `conv_nd_geometry`, with two axes).
    """
    arguments = (input_shape, weight_shape, bias_shape, stride, padding, dilation, groups, padding_mode)
    if _plain(arguments):
        return _conv2d_geometry_of_plain(*arguments)
    return conv_nd_geometry(2, *arguments).as_conv2d()


def _plain(arguments) -> bool:
    """Whether every argument is made of exact ints, strings and None only (a shape, a stride
    pair): such arguments are equal as cache keys exactly when they are the same argument.
    (1.0, True and numpy integers are equal to 1 as keys but are judged differently, so they
    skip the cache.) Plain loops: this runs on every call of every convolution."""
    for argument in arguments:
        kind = type(argument)
        if argument is None or kind is int or kind is str:
            continue
        if kind is not tuple:
            return False
        for value in argument:
            if type(value) is not int:
                return False
    return True


@functools.lru_cache(maxsize=512)
def _conv2d_geometry_of_plain(*arguments) -> Conv2dGeometry:
    """conv2d_geometry, remembered: a layer calls it with the same arguments on every forward,
    and validating them costs about as much as the depthwise kernel on a 7x7 plane. The
    geometry is immutable; a call that raises is not remembered and raises again."""
    return conv_nd_geometry(2, *arguments).as_conv2d()


def conv1d_geometry(input_shape, weight_shape, bias_shape=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode: str = "zeros") -> ConvNdGeometry:
    """Validate a conv1d call (input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, K));
    return its geometry (`.as_conv2d()`: the plane of height 1 it is computed on)."""
    return conv_nd_geometry(1, input_shape, weight_shape, bias_shape, stride, padding, dilation, groups,
                            padding_mode)


def conv3d_geometry(input_shape, weight_shape, bias_shape=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode: str = "zeros") -> ConvNdGeometry:
    """Validate a conv3d call (input (N, C_in, D, H, W) or (C_in, D, H, W), weight
    (C_out, C_in/groups, KD, KH, KW)); return its geometry."""
    return conv_nd_geometry(3, input_shape, weight_shape, bias_shape, stride, padding, dilation, groups,
                            padding_mode)


# --------------------------------------------------------------------------------------
# transposed convolution over 1, 2 or 3 axes
# --------------------------------------------------------------------------------------


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, output_padding: int,
                               dilation: int) -> int:
    """(size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class ConvTransposeNdGeometry(_NdShapes):
    """A validated transposed convolution over `dims` = 1, 2 or 3 axes, every size explicit;
    per-axis fields are tuples, outermost axis first, as in `ConvNdGeometry`.

    Shapes: input (N, C_in, *size), weight (C_in, C_out // groups, *kernel), output
    (N, C_out, *out_size); `full_size` is the uncropped scatter target.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    out_size: tuple[int, ...]
    has_bias: bool
    unbatched: bool = False

    @property
    def full_size(self) -> tuple[int, ...]:
        """Per axis, the uncropped scatter target: every tap of every input position, plus
        output_padding: (size - 1) * stride + dilation * (kernel - 1) + 1 + output_padding."""
        return tuple((s - 1) * st + d * (k - 1) + 1 + op for s, st, d, k, op in
                     zip(self.size, self.stride, self.dilation, self.kernel, self.output_padding))

    def as_conv_transpose2d(self) -> ConvTranspose2dGeometry:
        """The same transposed convolution as a `ConvTranspose2dGeometry`: for 2 axes itself;
        for 1 axis the 2-D one on a plane of height 1 (kernel height 1, stride and dilation 1,
        no padding across it), as `ConvNdGeometry.as_conv2d` does for the forward one."""
        fields, (out_h, out_w) = self._on_a_plane("transposed convolution")
        zero = (0,) * (2 - self.dims)
        (pad_h, pad_w), (output_pad_h, output_pad_w) = zero + self.padding, zero + self.output_padding
        return ConvTranspose2dGeometry(
            *fields,
            pad_h=pad_h, pad_w=pad_w, output_pad_h=output_pad_h, output_pad_w=output_pad_w, out_h=out_h, out_w=out_w,
            has_bias=self.has_bias, unbatched=self.unbatched,
        )


def conv_transpose_nd_geometry(
    dims: int,
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
) -> ConvTransposeNdGeometry:
    """Validate a conv_transpose1d / 2d / 3d call (`dims` = 1, 2, 3) from its shapes and
    arguments; return its geometry. PyTorch's rules (`check_shape_forward`, `ConvParams`):

    * stride >= 1, padding >= 0, output_padding >= 0, dilation >= 1, groups >= 1, a
      non-empty kernel and C_out / groups >= 1; padding may not be a string;
    * output_padding < stride or output_padding < dilation, on each axis;
    * C_in divisible by groups, the input has C_in channels, bias is (C_out,);
    * the output at least 1 on each axis, and no empty input axis; with an empty batch
      both may be empty (PyTorch's empty path), only a negative output size is an error.

    Raises ValueError (TypeError for a wrong type) with PyTorch's wording.
    """
    op = f"conv_transpose{dims}d"
    input_shape = tuple(input_shape)
    weight_shape = tuple(weight_shape)
    if not _is_int(groups):
        raise TypeError(f"{op}(): argument 'groups' must be int, not {type(groups).__name__}")
    stride = int_tuple(stride, "stride", dims, op)
    padding = int_tuple(padding, "padding", dims, op)
    output_padding = int_tuple(output_padding, "output_padding", dims, op)
    dilation = int_tuple(dilation, "dilation", dims, op)

    input_shape, unbatched = batched_shapes(input_shape, weight_shape, op, dims)
    batch, in_channels, size = input_shape[0], input_shape[1], input_shape[2:]
    weight_in, out_per_group, kernel = weight_shape[0], weight_shape[1], weight_shape[2:]
    # PyTorch's 3-D kernel words an empty weight its own way, the 1-D and 2-D ones share the 2-D wording
    empty_weight = (f"non-empty 5D (n_output_plane x n_input_plane x kernel_depth x kernel_height x kernel_width) "
                    f"tensor expected for weight, but got: {list(weight_shape)}" if dims == 3 else
                    f"non-empty 4D weight tensor expected, but got: {list(weight_shape[:2] + _plane(kernel))}")

    if dims == 3:
        check_stride_groups_kernel(stride, groups, (1,) * dims)
        if min(kernel) <= 0:
            raise ValueError(empty_weight)
    else:
        check_stride_groups_kernel(stride, groups, kernel)
    if min(padding) < 0:
        raise ValueError(f"negative padding is not supported, but got padding={list(padding)}")
    if min(output_padding) < 0:
        raise ValueError(f"negative output_padding is not supported, but got output_padding={list(output_padding)}")
    if min(dilation) <= 0:
        raise ValueError(f"dilation should be greater than zero, but got {_labelled('dilation', dilation, ', ')}")
    if weight_in < groups:
        raise ValueError(
            f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, "
            f"but got weight of size {list(weight_shape)} instead"
        )
    if out_per_group <= 0:
        raise ValueError(empty_weight)
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
    if any(not (op_ < s or op_ < d) for op_, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"output padding must be smaller than either stride or dilation, but got "
            f"{_labelled('output_padding', output_padding)} {_labelled('stride', stride)} "
            f"{_labelled('dilation', dilation)}"
        )
    # PyTorch sends an empty batch down its "empty" path, which only shapes the output: an
    # empty input axis, and an empty output, are fine there (a negative output size is not)
    if batch > 0 and min(size) <= 0:
        raise ValueError(f"Only zero batch or zero channel inputs are supported, but got input shape: "
                         f"{[batch, in_channels, *_plane(size)]}")
    out_size = tuple(conv_transpose_output_size(*axis) for axis in
                     zip(size, kernel, stride, padding, output_padding, dilation))
    if min(out_size) < (1 if batch > 0 else 0):
        raise ValueError(
            f"Given input size per channel: ({' x '.join(map(str, _plane(size)))}). Calculated output size per "
            f"channel: ({' x '.join(map(str, _plane(out_size)))}). Output size is too small"
        )
    return ConvTransposeNdGeometry(
        batch, in_channels, out_channels, groups, tuple(size), tuple(kernel), stride, dilation, padding,
        output_padding, out_size, has_bias=bias_shape is not None, unbatched=unbatched,
    )


# --------------------------------------------------------------------------------------
# torch.nn.functional.pad
# --------------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "replicate", "circular")
_PAD_MODE_OF = {"reflect": "reflect", "replicate": "replicate", "circular": "circular", "zeros": "constant"}


@dataclass(frozen=True)
class PadGeometry:
    """A validated `pad` call. The padded axes are the last `len(before)` ones, listed
    outermost first (the reverse of `pad`'s order). For each: `before` and `after` (negative:
    cropped), and the range [keep_lo, keep_hi) of the input axis copied as it is (the whole
    axis, except under circular padding with a negative pad: what is left after cropping,
    which the padding then tiles)."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    mode: str
    before: tuple[int, ...]
    after: tuple[int, ...]
    keep_lo: tuple[int, ...]
    keep_hi: tuple[int, ...]

    @property
    def padded_axes(self) -> int:
        return len(self.before)


def check_pad_arguments(pad, mode, value) -> tuple[tuple[int, ...], str]:
    """The types `torch.nn.functional.pad` accepts: `pad` a tuple or list of ints (bool is
    not one), `mode` a string, `value` None or a real number; TypeError with PyTorch's wording
    otherwise. Then an unknown mode: NotImplementedError, as PyTorch raises. Returns (pad as
    a tuple of ints, mode)."""
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, not {type(pad).__name__}")
    for i, p in enumerate(pad):
        if not _is_int(p):
            raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                            f"{type(p).__name__} at pos {i}")
    if not isinstance(mode, str):
        raise TypeError(f"pad(): argument 'mode' (position 3) must be str, not {type(mode).__name__}")
    if value is not None and not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"pad(): argument 'value' (position 4) must be float, not {type(value).__name__}")
    if mode not in PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    return tuple(int(p) for p in pad), mode


def pad_geometry(input_shape, pad, mode: str = "constant", value=None) -> PadGeometry:
    """Validate a `torch.nn.functional.pad(input, pad, mode, value)` call from the input's
    shape and the (type-checked) arguments; return its geometry.

    `pad` is (before, after) of the last axis, then of the one before it, ...: len(pad) // 2
    axes are padded. Raises where PyTorch 2.13 raises, in its order: ValueError for its
    RuntimeErrors, NotImplementedError for its NotImplementedErrors.

    * len(pad) even and at most 2 * ndim;
    * constant: any number of axes, any value; a negative pad crops, by at most what is left
      of the axis (PyTorch: "narrow(): length must be non-negative");
    * reflect, replicate, circular: no value (or 0); 1, 2 or 3 axes of a 2-3-D, 3-4-D or 4-5-D
      input (the one extra leading axis a batch);
    * reflect and replicate: no empty axis except a batch; reflect pads < the axis size;
      some output axis >= 1 (one for 1 axis), and none negative;
    * circular: pads <= the axis size (one wrap), output axes >= 0; and, npconv only, when
      the output is not empty, a positive pad at most what is left of the axis after the
      other side's crop. PyTorch accepts more but then copies values from parts of its
      output it has not written yet: uninitialised memory (`test_torch_divergences.py`).
    """
    shape = tuple(int(s) for s in input_shape)
    pad = tuple(int(p) for p in pad)
    ndim = len(shape)
    if len(pad) % 2 != 0:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) > 2 * ndim:
        raise ValueError(f"Padding length should be less than or equal to two times the input dimension but got "
                         f"padding length {len(pad)} and input of dimension {ndim}")
    k = len(pad) // 2
    axes = range(ndim - k, ndim)                           # outermost padded axis first
    before = tuple(pad[2 * (ndim - 1 - d)] for d in axes)
    after = tuple(pad[2 * (ndim - 1 - d) + 1] for d in axes)
    sizes = tuple(shape[d] for d in axes)
    out = shape[:ndim - k] + tuple(s + b + a for s, b, a in zip(sizes, before, after))
    whole = dict(keep_lo=(0,) * k, keep_hi=sizes)

    if mode == "constant":
        for d, s, b, a in zip(axes, sizes, before, after):
            if s + min(b, 0) + min(a, 0) < 0:
                raise ValueError(f"narrow(): length must be non-negative. (padding ({b}, {a}) crops more than the "
                                 f"{s} elements of dimension {d} of input {list(shape)})")
        return PadGeometry(shape, out, mode, before, after, **whole)

    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if not (k in (1, 2, 3) and ndim in (k + 1, k + 2)):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {ndim}D input tensor. Supported combinations for "
            f"non-constant padding: 2D or 3D input: padding size = 2 (pads last dimension); 3D or 4D input: "
            f"padding size = 4 (pads last 2 dimensions); 4D or 5D input: padding size = 6 (pads last 3 dimensions)"
        )

    if mode == "circular":
        for d, s, b, a, o in zip(axes, sizes, before, after, out[ndim - k:]):
            if b > s or a > s:
                raise ValueError(f"Padding value causes wrapping around more than once. (padding ({b}, {a}) at "
                                 f"dimension {d} of input {list(shape)})")
            if o < 0:
                raise ValueError(f"Negative padding value is resulting in an empty dimension (padding ({b}, {a}) "
                                 f"at dimension {d} of input {list(shape)})")
        _check_circular_copies(axes, sizes, before, after, out[ndim - k:])
        keep_lo = tuple(max(-b, 0) for b in before)
        keep_hi = tuple(s - max(-a, 0) for s, a in zip(sizes, after))
        if 0 not in out:
            for d, b, a, lo, hi in zip(axes, before, after, keep_lo, keep_hi):
                if b > hi - lo or a > hi - lo:
                    raise ValueError(
                        f"circular padding ({b}, {a}) at dimension {d} of input {list(shape)} wraps the {hi - lo} "
                        f"elements left after cropping more than once; PyTorch fills those positions from memory "
                        f"it has not written (uninitialised), npconv refuses"
                    )
        return PadGeometry(shape, out, mode, before, after, keep_lo, keep_hi)

    # reflect, replicate: aten/src/ATen/native/Padding.h (check_valid_input) and the meta functions
    batch_mode = ndim == k + 2
    if any(size == 0 for size in shape[1 if batch_mode else 0:]):
        raise ValueError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                         f"non-zero dimensions for input, but got: {list(shape)}")
    if mode == "reflect":
        for j, (d, s, b, a) in enumerate(reversed(list(zip(axes, sizes, before, after)))):
            if b >= s or a >= s:
                raise ValueError(f"Argument #{4 + 2 * j}: Padding size should be less than the corresponding input "
                                 f"dimension, but got: padding ({b}, {a}) at dimension {d} of input {list(shape)}")
    out_sizes = out[ndim - k:]
    if max(out_sizes) < 1:  # one axis: it must be >= 1; two or three: any one of them
        names = "DHW"[3 - k:]
        given = ", ".join(f"{n}: {s}" for n, s in zip(names, sizes))
        calculated = " ".join(f"{n}: {o}" for n, o in zip(names, out_sizes))
        raise ValueError(f"input ({given}) is too small. Calculated output {calculated}")
    if min(out_sizes) < 0:
        # PyTorch fails allocating it (or, for reflect with 2 axes and an empty batch, returns a
        # tensor with a negative size: test_torch_divergences.py)
        raise ValueError(f"Trying to create tensor with negative dimension {min(out_sizes)}: {list(out)}")
    return PadGeometry(shape, out, mode, before, after, **whole)


def _slice_length(size: int, start: int, end: int) -> int:
    """The length of `at::slice(start, end)` on an axis of `size`: a negative bound counts
    from the end, then both are clamped into the axis."""
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    start = min(max(start, 0), size)
    return min(max(end, start), size) - start


def _check_circular_copies(axes, sizes, before, after, out_sizes) -> None:
    """PyTorch's `_pad_circular` copies slices: the cropped input into the middle of the
    output, then, axis by axis from the last, each border from the other end of the output.
    When the crops of an axis overlap (before + after < -size, the other pad positive) those
    slices stop matching, and the copy fails unless the source has 1 element (broadcast)."""
    def fits(d, dst, src):
        if src != dst and src != 1:
            raise ValueError(f"The size of tensor a ({dst}) must match the size of tensor b ({src}) at non-singleton "
                             f"dimension {d} (circular padding copies slices that do not fit when crops overlap)")
    for d, s, b, a, o in zip(axes, sizes, before, after, out_sizes):
        fits(d, _slice_length(o, max(b, 0), o - max(a, 0)), _slice_length(s, max(-b, 0), s - max(-a, 0)))
    for d, b, a, o in reversed(list(zip(axes, before, after, out_sizes))):
        if b > 0:
            fits(d, _slice_length(o, 0, b), _slice_length(o, o - b - max(a, 0), o - max(a, 0)))
        if a > 0:
            fits(d, _slice_length(o, o - a, o), _slice_length(o, max(b, 0), max(b, 0) + a))
