"""The functional API, mirroring `torch.nn.functional`: NumPy arrays in and out, NCHW.

    conv2d                      any stride / padding / dilation / groups / padding_mode
    depthwise_conv2d            groups == C_in, one (or M) filters per input channel
    pointwise_conv2d            a 1x1 convolution: a per-pixel matrix product over channels
    depthwise_separable_conv2d  pointwise(depthwise(x)): MobileNet's factorisation

Precision: float32 and float64 are computed in their own precision (the accumulator is the
output array, of the input's dtype). float16 and bfloat16 (ml_dtypes.bfloat16) are widened to
float32, accumulated in float32 and rounded once per output element, as PyTorch's CPU kernels
do (measured: docs/semantics.md); the result is float16 or bfloat16. The output dtype is always the input dtype; input, weight and bias must share it.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import counting
from .. import memory
from .. import engine as engines
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import (PADDING_MODES, Conv2dGeometry, check_array, check_same_dtype, conv2d_geometry, int_pair,
                        pad_geometry)
from ..kernels import conv2d as conv2d_kernel
from .pad import padded


def conv2d(
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
    """2-D cross-correlation with `torch.nn.Conv2d`'s semantics.

    Shapes: input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_out, C_in/groups, kH, kW);
    bias (C_out,) or None; returns (N, C_out, OH, OW) (or (C_out, OH, OW)) with
    OH = floor((H + pad_top + pad_bottom - dilation_h*(kH-1) - 1) / stride_h) + 1, likewise OW.

    stride, dilation: int or (h, w). padding: int, (h, w), "valid" or "same" (PyTorch's rule:
    d*(k-1) in total, the odd pixel at the bottom/right; stride must be 1). padding_mode:
    "zeros", "reflect", "replicate" or "circular", applied as `nn.Conv2d` does, before the
    convolution. Depthwise with channel multiplier M is groups == C_in with C_out = M*C_in.

    Precision: float32 / float64 accumulate in their own dtype; float16 and bfloat16 are
    widened to float32, accumulated in float32 and rounded once per output element.

    Empty sizes, as in PyTorch: N = 0 gives an empty batch; C_in = 0 gives an output with
    0 channels (not C_out); an empty H or W needs N = 0 or C_in = 0; C_out must be at least
    `groups`. The padding of a non-zeros padding_mode is `npconv.pad`'s (same checks, same
    kernel), not counted under the convolution; as in nn.Conv2d, a negative padding is
    then a crop (`npconv.conv2d_backward` does not take one).

    Inside `npconv.count()`, records under op "conv2d" the MACs, padding MACs and bias adds
    its loops executed (see docs/semantics.md for the conventions).

    engine: "reference", "fast", or None for the current one (`npconv.engine`: "reference"
    unless a `with npconv.engine.use(...)` block says otherwise). The fast tier (npconv/fast)
    gives results within the same error bound and records the same counts under the same op;
    what it does not cover runs on the reference kernel (docs/engines.md).
    """
    input = check_array(input, "input")
    weight = check_array(weight, "weight")
    if bias is not None:
        bias = check_array(bias, "bias")
    check_same_dtype(input, weight, bias)
    input, padding = _crop_for_negative_padding(input, padding, padding_mode)
    geometry = conv2d_geometry(
        input.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups, padding_mode
    )
    return _conv2d(input, weight, bias, geometry, op="conv2d", engine=engine)


def _crop_for_negative_padding(input: np.ndarray, padding, padding_mode):
    """nn.Conv2d pads with `F.pad(input, (w, w, h, h), padding_mode)` unless the mode is
    zeros, so a negative padding there crops the input (under F.pad's checks) and the
    convolution never sees it: PyTorch accepts it. Returns the input cropped on the axes
    whose padding is negative and the padding left (>= 0), or the arguments unchanged (a
    negative padding under zeros is then rejected by the geometry, as F.conv2d rejects it).
    A padding is the same on both sides of an axis, so cropping one axis commutes with
    padding the other, in every mode."""
    if padding_mode == "zeros" or padding_mode not in PADDING_MODES or isinstance(padding, str) or \
            input.ndim not in (3, 4):
        return input, padding
    pad_h, pad_w = int_pair(padding, "padding")
    if pad_h >= 0 and pad_w >= 0:
        return input, padding
    pad_geometry(input.shape, (pad_w, pad_w, pad_h, pad_h), padding_mode)  # F.pad's errors
    crop_h, crop_w = max(-pad_h, 0), max(-pad_w, 0)
    height, width = input.shape[-2:]
    cropped = input[..., crop_h:max(height - crop_h, crop_h), crop_w:max(width - crop_w, crop_w)]
    return cropped, (max(pad_h, 0), max(pad_w, 0))


@functools.cache
def _fast():
    """npconv.fast, imported on first use: the reference path never loads it (a cached call,
    where an import statement in `_conv2d` cost 0.3 us a call)."""
    from .. import fast

    return fast


def _conv2d(input, weight, bias, geometry: Conv2dGeometry, op: str, engine: str | None = None) -> np.ndarray:
    g = geometry
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype, g.unbatched)
    w = as_kernel_array(weight, dtype)
    b = None if bias is None else as_kernel_array(bias, dtype)
    memory.check_output(op, (g.batch, g.out_channels if g.in_channels else 0, g.out_h, g.out_w), dtype)
    if engines.resolve(engine) == "fast":
        fast = _fast()
        kind = fast.covers(g, dtype)
        if kind is not None:
            y, counts = fast.conv2d(x, w, b, g, kind=kind)
            counting.record(op, **counts["conv"])
            return finish(y, input.dtype, g.unbatched)
    # nn.Conv2d's padding: F.pad's (left, right, top, bottom), with the mode (zeros: constant 0)
    x_pad = padded(x, (g.pad_left, g.pad_right, g.pad_top, g.pad_bottom), g.padding_mode)
    # PyTorch's empty path gives an input without channels an output without channels
    out_channels = 0 if g.in_channels == 0 else g.out_channels
    y = np.empty((g.batch, out_channels, g.out_h, g.out_w), dtype=dtype)
    macs, padding_macs, bias_adds = conv2d_kernel.conv2d(
        x_pad, w, np.zeros(0, dtype) if b is None else b, g.has_bias, y, g.groups,
        g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, g.height, g.width,
    )
    counting.record(op, macs=macs, padding_macs=padding_macs, bias_adds=bias_adds)
    return finish(y, input.dtype, g.unbatched)


def depthwise_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, padding_mode="zeros", *, engine=None):
    """Depthwise convolution: each input channel convolved with its own filter(s).

    weight (C_in*M, 1, kH, kW) for a channel multiplier M; equals
    `conv2d(..., groups=C_in)`. Output channel o reads input channel o // M only, so a
    pixel costs kH*kW MACs per output channel instead of C_in*kH*kW. Recorded as op
    "depthwise_conv2d".
    """
    input = check_array(input, "input")
    weight = check_array(weight, "weight")
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise ValueError(
            f"depthwise_conv2d(): expected weight of shape (C_in * M, 1, kH, kW), but got {list(weight.shape)}"
        )
    if input.ndim not in (3, 4):
        raise ValueError(
            f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: {list(input.shape)}"
        )
    in_channels = input.shape[-3]
    if bias is not None:
        bias = check_array(bias, "bias")
    check_same_dtype(input, weight, bias)
    input, padding = _crop_for_negative_padding(input, padding, padding_mode)
    geometry = conv2d_geometry(
        input.shape, weight.shape, None if bias is None else bias.shape,
        stride, padding, dilation, in_channels, padding_mode,
    )
    return _conv2d(input, weight, bias, geometry, op="depthwise_conv2d", engine=engine)


def pointwise_conv2d(input, weight, bias=None, stride=1, *, engine=None):
    """Pointwise (1x1) convolution: y[n, o, i, j] = b[o] + sum_c w[o, c] x[n, c, i*s, j*s].

    weight (C_out, C_in, 1, 1) or (C_out, C_in). A matrix product over channels at every
    pixel; no padding. Recorded as op "pointwise_conv2d".
    """
    input = check_array(input, "input")
    weight = check_array(weight, "weight")
    if weight.ndim == 2:
        weight = weight[:, :, np.newaxis, np.newaxis]
    if weight.ndim != 4 or weight.shape[2:] != (1, 1):
        raise ValueError(
            f"pointwise_conv2d(): expected weight of shape (C_out, C_in, 1, 1) or (C_out, C_in), "
            f"but got {list(weight.shape)}"
        )
    if bias is not None:
        bias = check_array(bias, "bias")
    check_same_dtype(input, weight, bias)
    geometry = conv2d_geometry(input.shape, weight.shape, None if bias is None else bias.shape, stride, 0, 1, 1)
    return _conv2d(input, weight, bias, geometry, op="pointwise_conv2d", engine=engine)


def depthwise_separable_conv2d(
    input,
    depthwise_weight,
    pointwise_weight,
    depthwise_bias=None,
    pointwise_bias=None,
    stride=1,
    padding=0,
    dilation=1,
    padding_mode="zeros",
    *,
    engine=None,
):
    """MobileNet's depthwise separable convolution: pointwise(depthwise(x)).

    depthwise_weight (C_in*M, 1, kH, kW), pointwise_weight (C_out, C_in*M, 1, 1). Stride,
    padding and dilation belong to the depthwise step. Against a standard kH x kW
    convolution from C_in to C_out its MACs shrink by 1/C_out + 1/(kH*kW) (for M = 1);
    see `npconv.formulas.separable_to_standard_ratio`.
    """
    hidden = depthwise_conv2d(
        input, depthwise_weight, depthwise_bias, stride, padding, dilation, padding_mode, engine=engine
    )
    return pointwise_conv2d(hidden, pointwise_weight, pointwise_bias, engine=engine)
