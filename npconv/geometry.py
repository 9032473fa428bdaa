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
* padding_mode "reflect", "replicate" and "circular" pad the input with
  `torch.nn.functional.pad` first (`pad_geometry` below: reflect needs padding < the input
  size of that dimension, circular padding <= it, reflect and replicate a non-empty input),
  and the convolution then runs on the padded input with padding 0, as `nn.Conv2d` does;
* the dilated kernel d*(k-1)+1 may not exceed the padded input;
* C_out >= groups; an input with an empty spatial dimension needs N = 0 or C_in = 0
  (PyTorch sends only those through its "empty" path); with C_in = 0 the output has 0
  channels, whatever C_out is (PyTorch's empty path multiplies the empty input by the
  flattened weight).

`pad_geometry` checks a `torch.nn.functional.pad` call (aten's PadNd.cpp, ReflectionPad.cpp,
ReplicationPadding.cpp and `_pad_circular`, as PyTorch 2.13 applies them).
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

    if padding_mode != "zeros":
        # nn.Conv2d pads with F.pad first, (left, right, top, bottom), on the input as given
        shown = input_shape[1:] if unbatched else input_shape
        pad_geometry(shown, (pad_left, pad_right, pad_top, pad_bottom), _PAD_MODE_OF[padding_mode])

    padded_h = height + pad_top + pad_bottom
    padded_w = width + pad_left + pad_right
    span_h = dilation_h * (kernel_h - 1) + 1
    span_w = dilation_w * (kernel_w - 1) + 1
    if padded_h < span_h or padded_w < span_w:
        raise ValueError(
            f"Calculated padded input size per channel: ({padded_h} x {padded_w}). "
            f"Kernel size: ({span_h} x {span_w}). Kernel size can't be greater than actual input size"
        )
    # the input the convolution itself sees: padded already unless padding_mode is zeros
    conv_h, conv_w = (height, width) if padding_mode == "zeros" else (padded_h, padded_w)
    if batch > 0 and in_channels > 0 and (conv_h == 0 or conv_w == 0):
        raise ValueError(
            f"Only zero batch or zero channel inputs are supported, but got input shape: "
            f"{[batch, in_channels, conv_h, conv_w]}"
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
