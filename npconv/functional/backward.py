"""Backward passes of conv2d and conv_transpose2d, from first principles.

    grad_input, grad_weight, grad_bias = conv2d_backward(grad_output, input, weight, stride=2, padding=1)

Given the loss gradient gy = dL/dy of y = conv2d(x, w, b, ...):

    grad_input   = fold(conv_transpose2d(gy, w))     a scatter of gy through w onto the padded
                                                    input, whose border is folded back onto the
                                                    pixels it copied (reflect / replicate / circular)
                                                    or dropped (zeros)
    grad_weight  = sum over n, i, j of gy * x_pad   a correlation of the padded input with gy
    grad_bias    = sum over n, i, j of gy

and likewise for y = conv_transpose2d(x, w, b, ...), whose input gradient is a conv2d of gy.
The derivations are in the kernels' docstrings (npconv/kernels/conv2d_grad_*.py,
conv_transpose2d_grad_*.py, pad2d_grad.py) and in docs/backward.md.

Counting: inside `npconv.count()` each gradient is recorded under its own op, apart from
the forward's:

    conv2d_grad_input            macs, padding_macs (targets in the padding border), fold_adds
    conv2d_grad_weight           macs, padding_macs (border values read)
    conv2d_grad_bias             adds
    conv_transpose2d_grad_input  macs, inside_macs (products with gy inside its window)
    conv_transpose2d_grad_weight macs, inside_macs
    conv_transpose2d_grad_bias   adds

For a dense kernel the gradients run over the forward's own index set, so grad-input
MACs = grad-weight MACs = forward MACs (npconv.formulas.backward).

Precision: as the forward, float32 and float64 in their own precision, float16 widened to
float32 and each gradient rounded once to float16. grad_output must have the forward
output's shape and the input's dtype.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import counting
from ..dtypes import as_kernel_array, check_flag, compute_dtype, finish
from ..geometry import Conv2dGeometry, check_array, check_same_dtype, conv2d_geometry, torch_dtype_name
from ..kernels.conv2d_grad_bias import conv2d_grad_bias
from ..kernels.conv2d_grad_input import conv2d_grad_input
from ..kernels.conv2d_grad_weight import conv2d_grad_weight
from ..kernels.conv_transpose2d_grad_input import conv_transpose2d_grad_input
from ..kernels.conv_transpose2d_grad_weight import conv_transpose2d_grad_weight
from ..kernels.pad2d import MODE_CODES, padded
from ..kernels.pad2d_grad import pad2d_grad
from .conv_transpose import ConvTranspose2dGeometry, conv_transpose2d_geometry

__all__ = ["conv2d_backward", "conv_transpose2d_backward"]


def _check_grad_output(grad_output, input, expected_shape, op: str) -> np.ndarray:
    grad_output = check_array(grad_output, "grad_output", op)
    if grad_output.dtype != input.dtype:
        raise TypeError(
            f"{op}(): expected grad_output of scalar type {torch_dtype_name(input.dtype)} like the input, "
            f"but got {torch_dtype_name(grad_output.dtype)}"
        )
    if tuple(grad_output.shape) != tuple(expected_shape):
        raise ValueError(
            f"Mismatch in shape: grad_output has a shape of {list(grad_output.shape)} and the output of "
            f"{op.removesuffix('_backward')} has a shape of {list(expected_shape)}"
        )
    return grad_output


def _backward(op: str, gradients, grad_output, input, weight, geometry, bias, needs_input_grad):
    """What both backward functions share: the argument checks, in PyTorch's order (flags,
    arrays, dtypes, the forward's geometry, grad_output against the forward's output), the
    arrays brought to the kernels' dtype and layout, `gradients(gy, x, w, g, needs_input_grad)`
    run on them, and its three results rounded back to the input's dtype."""
    bias = check_flag(bias, "bias", op)
    needs_input_grad = check_flag(needs_input_grad, "needs_input_grad", op)
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    check_same_dtype(input, weight, None)
    g = replace(geometry(input.shape, weight.shape), has_bias=bias)
    grad_output = _check_grad_output(grad_output, input, g.output_shape, op)
    dtype = compute_dtype(input.dtype)
    grad_input, grad_weight, grad_bias = gradients(as_kernel_array(grad_output, dtype, g.unbatched),
                                                   as_kernel_array(input, dtype, g.unbatched),
                                                   as_kernel_array(weight, dtype), g, needs_input_grad)
    return (finish(grad_input, input.dtype, g.unbatched), finish(grad_weight, input.dtype),
            finish(grad_bias, input.dtype))


def _grad_bias(gy: np.ndarray, op: str) -> np.ndarray:
    gb = np.empty(gy.shape[1], dtype=gy.dtype)
    adds = conv2d_grad_bias(gy, gb)
    counting.record(op, adds=adds)
    return gb


def conv2d_backward(
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
    """Gradients of y = conv2d(input, weight, b, stride, padding, dilation, groups, padding_mode).

    Shapes: grad_output (N, C_out, OH, OW) (or unbatched (C_out, OH, OW)), input
    (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW). Returns (grad_input, grad_weight,
    grad_bias) of the shapes of input, weight and (C_out,); grad_bias is None when
    bias=False, grad_input None when needs_input_grad=False (a network's first layer, whose
    input needs no gradient: PyTorch skips it too). Every configuration `npconv.conv2d`
    accepts is accepted, padding="same" and the four padding modes included:

        gx_pad[n, g*Cg + c, i*s_h + p*d_h, j*s_w + q*d_w] += gy[n, o, i, j] w[o, c, p, q]   (all n, o, i, j, c, p, q)
        grad_input[n, :, a, b]  = sum of gx_pad[n, :, r, t] over the padded positions (r, t) that copy (a, b)
        grad_weight[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] x_pad[n, g*Cg + c, i*s_h + p*d_h, j*s_w + q*d_w]
        grad_bias[o]            = sum_{n, i, j} gy[n, o, i, j]

    Records ops "conv2d_grad_input", "conv2d_grad_weight", "conv2d_grad_bias" (module docstring).
    """
    geometry = lambda input_shape, weight_shape: conv2d_geometry(  # noqa: E731
        input_shape, weight_shape, None, stride, padding, dilation, groups, padding_mode)
    return _backward("conv2d_backward", _conv2d_gradients, grad_output, input, weight, geometry, bias,
                     needs_input_grad)


def _conv2d_gradients(gy, x, w, g: Conv2dGeometry, needs_input_grad: bool):
    dtype = x.dtype
    conv_args = (g.groups, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left,
                 g.height, g.width)

    grad_input = None
    if needs_input_grad:
        gx_pad = np.empty((g.batch, g.in_channels, g.height + g.pad_top + g.pad_bottom,
                           g.width + g.pad_left + g.pad_right), dtype=dtype)
        macs, padding_macs = conv2d_grad_input(gy, w, gx_pad, *conv_args)
        grad_input = np.empty(x.shape, dtype=dtype)
        fold_adds = pad2d_grad(gx_pad, grad_input, g.pad_top, g.pad_left, MODE_CODES[g.padding_mode])
        counting.record("conv2d_grad_input", macs=macs, padding_macs=padding_macs, fold_adds=fold_adds)

    x_pad = padded(x, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right, g.padding_mode)
    grad_weight = np.empty(w.shape, dtype=dtype)
    macs, padding_macs = conv2d_grad_weight(gy, x_pad, grad_weight, *conv_args)
    counting.record("conv2d_grad_weight", macs=macs, padding_macs=padding_macs)

    grad_bias = _grad_bias(gy, "conv2d_grad_bias") if g.has_bias else None
    return grad_input, grad_weight, grad_bias


def conv_transpose2d_backward(
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
    """Gradients of y = conv_transpose2d(input, weight, b, stride, padding, output_padding, groups, dilation).

    Shapes: grad_output (N, C_out, OH, OW) (or unbatched), input (N, C_in, H, W), weight
    (C_in, C_out/groups, kH, kW). Returns (grad_input, grad_weight, grad_bias) as
    `conv2d_backward` does. With gy_full = grad_output placed in the window
    [pad_h, pad_h + OH) x [pad_w, pad_w + OW) of the uncropped result and zeros elsewhere:

        grad_input[n, c, i, j]  = sum_{o, p, q} gy_full[n, g*Cog + o, i*s_h + p*d_h, j*s_w + q*d_w] w[c, o, p, q]
        grad_weight[c, o, p, q] = sum_{n, i, j} x[n, c, i, j] gy_full[n, g*Cog + o, i*s_h + p*d_h, j*s_w + q*d_w]
        grad_bias[o]            = sum_{n, i, j} gy[n, o, i, j]

    Records ops "conv_transpose2d_grad_input", "conv_transpose2d_grad_weight",
    "conv_transpose2d_grad_bias" (module docstring).
    """
    geometry = lambda input_shape, weight_shape: conv_transpose2d_geometry(  # noqa: E731
        input_shape, weight_shape, None, stride, padding, output_padding, groups, dilation)
    return _backward("conv_transpose2d_backward", _conv_transpose2d_gradients, grad_output, input, weight, geometry,
                     bias, needs_input_grad)


def _conv_transpose2d_gradients(gy, x, w, g: ConvTranspose2dGeometry, needs_input_grad: bool):
    dtype = x.dtype
    # gy back in the uncropped frame: `padding` rows above and below it. The frame is
    # full_h = OH + 2 * pad_h rows tall, output_padding included.
    gy_full = padded(gy, g.pad_h, g.pad_h, g.pad_w, g.pad_w, "zeros")
    assert gy_full.shape[2:] == (g.full_h, g.full_w)
    args = (g.groups, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_h, g.pad_w, g.out_h, g.out_w)

    grad_input = None
    if needs_input_grad:
        grad_input = np.empty(x.shape, dtype=dtype)
        macs, inside_macs = conv_transpose2d_grad_input(gy_full, w, grad_input, *args)
        counting.record("conv_transpose2d_grad_input", macs=macs, inside_macs=inside_macs)

    grad_weight = np.empty(w.shape, dtype=dtype)
    macs, inside_macs = conv_transpose2d_grad_weight(x, gy_full, grad_weight, *args)
    counting.record("conv_transpose2d_grad_weight", macs=macs, inside_macs=inside_macs)

    grad_bias = _grad_bias(gy, "conv_transpose2d_grad_bias") if g.has_bias else None
    return grad_input, grad_weight, grad_bias
