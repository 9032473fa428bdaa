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
MACs = grad-weight MACs = forward MACs (npconv.formulas_backward).

Precision: as the forward, float32 and float64 in their own precision, float16 widened to
float32 and each gradient rounded once to float16. grad_output must have the forward
output's shape and the input's dtype.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import counting
from .geometry import Conv2dGeometry, check_array, check_same_dtype, conv2d_geometry, torch_dtype_name
from .kernels.conv2d_grad_bias import conv2d_grad_bias
from .kernels.conv2d_grad_input import conv2d_grad_input
from .kernels.conv2d_grad_weight import conv2d_grad_weight
from .kernels.conv_transpose2d_grad_input import conv_transpose2d_grad_input
from .kernels.conv_transpose2d_grad_weight import conv_transpose2d_grad_weight
from .kernels.pad2d import MODE_CODES, padded
from .kernels.pad2d_grad import pad2d_grad
from .transpose import ConvTranspose2dGeometry, conv_transpose2d_geometry

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


def _check_flag(value, name: str, op: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}(): {name} must be True or False, not {type(value).__name__}")
    return bool(value)


def _compute_dtype(dtype):
    return np.float32 if dtype == np.float16 else dtype


def _batched(a: np.ndarray, unbatched: bool, dtype) -> np.ndarray:
    a = a[np.newaxis] if unbatched else a
    return np.ascontiguousarray(a, dtype=dtype)


def _finish(a: np.ndarray | None, out_dtype, unbatched: bool = False):
    if a is None:
        return None
    a = a.astype(out_dtype, copy=False)
    return a[0] if unbatched else a


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
    op = "conv2d_backward"
    bias = _check_flag(bias, "bias", op)
    needs_input_grad = _check_flag(needs_input_grad, "needs_input_grad", op)
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    check_same_dtype(input, weight, None)
    g = conv2d_geometry(input.shape, weight.shape, None, stride, padding, dilation, groups, padding_mode)
    g = replace(g, has_bias=bias)
    grad_output = _check_grad_output(grad_output, input, g.output_shape, op)
    return _conv2d_backward(grad_output, input, weight, g, needs_input_grad)


def _conv2d_backward(grad_output, input, weight, g: Conv2dGeometry, needs_input_grad: bool):
    out_dtype = input.dtype
    dtype = _compute_dtype(out_dtype)
    gy = _batched(grad_output, g.unbatched, dtype)
    x = _batched(input, g.unbatched, dtype)
    w = np.ascontiguousarray(weight, dtype=dtype)
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
    return (_finish(grad_input, out_dtype, g.unbatched), _finish(grad_weight, out_dtype),
            _finish(grad_bias, out_dtype))


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
    op = "conv_transpose2d_backward"
    bias = _check_flag(bias, "bias", op)
    needs_input_grad = _check_flag(needs_input_grad, "needs_input_grad", op)
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    check_same_dtype(input, weight, None)
    g = conv_transpose2d_geometry(input.shape, weight.shape, None, stride, padding, output_padding, groups, dilation)
    g = replace(g, has_bias=bias)
    grad_output = _check_grad_output(grad_output, input, g.output_shape, op)
    return _conv_transpose2d_backward(grad_output, input, weight, g, needs_input_grad)


def _conv_transpose2d_backward(grad_output, input, weight, g: ConvTranspose2dGeometry, needs_input_grad: bool):
    out_dtype = input.dtype
    dtype = _compute_dtype(out_dtype)
    gy = _batched(grad_output, g.unbatched, dtype)
    x = _batched(input, g.unbatched, dtype)
    w = np.ascontiguousarray(weight, dtype=dtype)
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
    return (_finish(grad_input, out_dtype, g.unbatched), _finish(grad_weight, out_dtype),
            _finish(grad_bias, out_dtype))
