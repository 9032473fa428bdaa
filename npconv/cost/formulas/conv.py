"""Closed-form sizes, parameter counts and MAC counts of the convolution forward pass:
standard, depthwise, pointwise and depthwise separable in 2-D; conv1d, conv3d and their
transposed twins at the end of the file.

These live apart from the kernels on purpose: the kernels count what they execute, the
functions here predict it, and the tests hold one against the other. Conventions (see
docs/semantics.md): a MAC is one multiply-accumulate `y += x * w` of a dense kernel over
the padded input, so taps that land in the padding border count; bias adds are apart;
FLOPs = 2 * MACs.

Notation: N batch, C_in / C_out channels, g groups, K_h x K_w kernel, H x W input,
OH x OW output, s stride, d dilation, M channel multiplier of a depthwise layer.
"""

from __future__ import annotations

import numbers

from ...geometry import Conv2dGeometry, ConvNdGeometry, ConvTransposeNdGeometry, conv_output_size, same_padding
from ._common import _numel, _pair, _taps_inside

__all__ = [
    "conv_output_size",
    "same_padding",
    "conv2d_params",
    "conv2d_macs",
    "conv2d_bias_adds",
    "conv2d_padding_macs",
    "depthwise_params",
    "depthwise_macs",
    "pointwise_params",
    "pointwise_macs",
    "depthwise_separable_params",
    "depthwise_separable_macs",
    "separable_to_standard_ratio",
    "standard_conv_macs",
    "conv1d_params",
    "conv1d_macs",
    "conv1d_bias_adds",
    "conv1d_padding_macs",
    "conv3d_params",
    "conv3d_macs",
    "conv3d_bias_adds",
    "conv3d_padding_macs",
    "conv_transpose1d_macs",
    "conv_transpose1d_inside_macs",
    "conv_transpose3d_macs",
    "conv_transpose3d_inside_macs",
]


def conv2d_params(in_channels: int, out_channels: int, kernel_size, groups: int = 1, bias: bool = True) -> int:
    """Parameters of a convolution: C_out * (C_in / g) * K_h * K_w  (+ C_out with a bias).

    Derivation: each of the C_out filters sees only its group's C_in / g input channels and
    holds one weight per channel and tap; the bias is one number per output channel.
    """
    kh, kw = _pair(kernel_size)
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


def conv2d_macs(batch: int, in_channels: int, out_channels: int, out_size, kernel_size, groups: int = 1) -> int:
    """MACs of a dense convolution: N * C_out * OH * OW * (C_in / g) * K_h * K_w.

    Derivation: every output element y[n, o, i, j] is a sum over the C_in / g channels of
    its group and the K_h * K_w taps, one multiply-accumulate per term; there are
    N * C_out * OH * OW output elements. Padding taps are included (they are multiplied,
    by zero or by a copied value), which is why the textbook count uses OH * OW * K_h * K_w.
    """
    oh, ow = _pair(out_size)
    kh, kw = _pair(kernel_size)
    return batch * out_channels * oh * ow * (in_channels // groups) * kh * kw


def conv2d_bias_adds(batch: int, out_channels: int, out_size, bias: bool = True) -> int:
    """Bias adds: one per output element, N * C_out * OH * OW, when there is a bias."""
    oh, ow = _pair(out_size)
    return batch * out_channels * oh * ow if bias else 0


def conv2d_padding_macs(geometry: Conv2dGeometry) -> int:
    """MACs whose tap lies in the padding border.

    Derivation: tap (p, q) of output (i, j) reads the input iff its row i*s_h + p*d_h and
    its column j*s_w + q*d_w both fall inside; the row condition depends on (i, p) only
    and the column condition on (j, q) only, so the number of inside (output, tap) pairs
    factorises as R * C with R = sum_p rows_inside(p), C = sum_q cols_inside(q) (each a
    closed-form interval count, `_taps_inside`). Every (output element, tap, channel) that
    is not inside is a padding MAC:

        padding_macs = N * C_out * (C_in / g) * (OH * OW * K_h * K_w - R * C)
    """
    g = geometry
    rows = sum(_taps_inside(g.out_h, g.stride_h, p * g.dilation_h, g.pad_top, g.height) for p in range(g.kernel_h))
    cols = sum(_taps_inside(g.out_w, g.stride_w, q * g.dilation_w, g.pad_left, g.width) for q in range(g.kernel_w))
    taps = g.out_h * g.out_w * g.kernel_h * g.kernel_w
    return g.batch * g.out_channels * g.in_per_group * (taps - rows * cols)


def standard_conv_macs(batch: int, in_channels: int, out_channels: int, out_size, kernel_size) -> int:
    """A standard (groups = 1) convolution: N * C_out * OH * OW * C_in * K_h * K_w."""
    return conv2d_macs(batch, in_channels, out_channels, out_size, kernel_size, groups=1)


def depthwise_params(channels: int, kernel_size, multiplier: int = 1, bias: bool = True) -> int:
    """Depthwise: C * M filters of one channel each: C * M * K_h * K_w (+ C * M)."""
    return conv2d_params(channels, channels * multiplier, kernel_size, groups=channels, bias=bias)


def depthwise_macs(batch: int, channels: int, out_size, kernel_size, multiplier: int = 1) -> int:
    """Depthwise: N * (C * M) * OH * OW * K_h * K_w, i.e. the standard count with C_in / g = 1."""
    return conv2d_macs(batch, channels, channels * multiplier, out_size, kernel_size, groups=channels)


def pointwise_params(in_channels: int, out_channels: int, bias: bool = True) -> int:
    """Pointwise (1 x 1): C_out * C_in (+ C_out)."""
    return conv2d_params(in_channels, out_channels, 1, bias=bias)


def pointwise_macs(batch: int, in_channels: int, out_channels: int, size) -> int:
    """Pointwise (1 x 1, stride 1): N * C_out * H * W * C_in."""
    return conv2d_macs(batch, in_channels, out_channels, size, 1)


def depthwise_separable_params(in_channels: int, out_channels: int, kernel_size, bias: bool = True) -> int:
    """Depthwise K_h x K_w on C_in channels, then pointwise C_in -> C_out:
    C_in * K_h * K_w + C_out * C_in (+ C_in + C_out with biases)."""
    return depthwise_params(in_channels, kernel_size, bias=bias) + pointwise_params(in_channels, out_channels, bias)


def depthwise_separable_macs(batch: int, in_channels: int, out_channels: int, out_size, kernel_size) -> int:
    """N * OH * OW * C_in * (K_h * K_w + C_out): the depthwise and the pointwise parts."""
    return depthwise_macs(batch, in_channels, out_size, kernel_size) + pointwise_macs(
        batch, in_channels, out_channels, out_size
    )


def separable_to_standard_ratio(out_channels: int, kernel_size) -> float:
    """MACs of depthwise separable / standard convolution = 1/C_out + 1/(K_h * K_w).

    Derivation (Howard et al. 2017, eq. 5): divide N*OH*OW*C_in*(K_h*K_w + C_out) by
    N*OH*OW*C_in*C_out*K_h*K_w. The same ratio holds for the weights without biases.
    """
    kh, kw = _pair(kernel_size)
    return 1 / out_channels + 1 / (kh * kw)


# ----------------------------------------------------------------------------- 1-D and 3-D
#
# The 2-D derivations above hold axis by axis: a kernel has one tap per axis and channel,
# an output one position per axis, and the inside condition of a tap is a product of one
# condition per axis. conv1d is the 2-D convolution on a plane of height 1 (npconv.conv1d),
# so each 1-D count equals its 2-D count with K_h = OH = H = 1; conv3d adds a depth axis.
# Sizes are one int per axis (a single int: the same on every axis).


def _per_axis(value, dims: int) -> tuple[int, ...]:
    """An int (the same on every axis) or a sequence of `dims` ints."""
    if isinstance(value, numbers.Integral):
        return (int(value),) * dims
    value = tuple(int(v) for v in value)
    if len(value) != dims:
        raise ValueError(f"expected {dims} sizes, got {value}")
    return value


def _conv_nd_params(in_channels, out_channels, kernel_size, groups, bias, dims) -> int:
    """C_out * (C_in / g) * prod(kernel) (+ C_out): conv2d_params' derivation, per axis."""
    return out_channels * (in_channels // groups) * _numel(_per_axis(kernel_size, dims)) + (out_channels if bias else 0)


def _conv_nd_macs(batch, in_channels, out_channels, out_size, kernel_size, groups, dims) -> int:
    """N * C_out * prod(out) * (C_in / g) * prod(kernel): conv2d_macs' derivation, per axis."""
    return (batch * out_channels * _numel(_per_axis(out_size, dims)) * (in_channels // groups)
            * _numel(_per_axis(kernel_size, dims)))


def _conv_nd_padding_macs(g: ConvNdGeometry) -> int:
    """conv2d_padding_macs' derivation, per axis: a tap reads the input iff it does on every
    axis, and the condition on one axis depends on that axis's output index and tap only, so
    the inside (output, tap) pairs are the product over axes of
    inside_a = sum_t #{i < O_a : pad_before_a <= i*s_a + t*d_a < pad_before_a + size_a}:

        padding_macs = N * C_out * (C_in / g) * (prod_a O_a * K_a - prod_a inside_a)
    """
    taps, inside = 1, 1
    for out, kernel, stride, dilation, pad, size in zip(g.out_size, g.kernel, g.stride, g.dilation, g.pad_before,
                                                         g.size):
        taps *= out * kernel
        inside *= sum(_taps_inside(out, stride, t * dilation, pad, size) for t in range(kernel))
    return g.batch * g.out_channels * g.in_per_group * (taps - inside)


def _conv_transpose_nd_macs(batch, in_channels, out_channels, in_size, kernel_size, groups, dims) -> int:
    """N * C_in * prod(in) * (C_out / g) * prod(kernel): every input element times each of
    the weights of its group, one product each, cropped ones included
    (formulas.conv_transpose2d_macs' derivation, per axis)."""
    return (batch * in_channels * _numel(_per_axis(in_size, dims)) * (out_channels // groups)
            * _numel(_per_axis(kernel_size, dims)))


def _conv_transpose_nd_inside_macs(g: ConvTransposeNdGeometry) -> int:
    """formulas.conv_transpose2d_inside_macs' derivation, per axis: the product of input
    position i and tap t lands at i*s + t*d of the uncropped axis, inside the output iff
    padding <= i*s + t*d < padding + O; the condition factorises over axes, so

        inside_macs = N * C_in * (C_out / g) * prod_a sum_t #{i < size_a : inside on axis a}
    """
    inside = 1
    for size, kernel, stride, dilation, pad, out in zip(g.size, g.kernel, g.stride, g.dilation, g.padding,
                                                         g.out_size):
        inside *= sum(_taps_inside(size, stride, t * dilation, pad, out) for t in range(kernel))
    return g.batch * g.in_channels * g.out_per_group * inside


def conv1d_params(in_channels: int, out_channels: int, kernel_size, groups: int = 1, bias: bool = True) -> int:
    """Parameters of a 1-D convolution: C_out * (C_in / g) * K (+ C_out with a bias)."""
    return _conv_nd_params(in_channels, out_channels, kernel_size, groups, bias, 1)


def conv1d_macs(batch: int, in_channels: int, out_channels: int, out_length, kernel_size, groups: int = 1) -> int:
    """MACs of a dense 1-D convolution: N * C_out * OL * (C_in / g) * K (padding taps included)."""
    return _conv_nd_macs(batch, in_channels, out_channels, out_length, kernel_size, groups, 1)


def conv1d_bias_adds(batch: int, out_channels: int, out_length, bias: bool = True) -> int:
    """Bias adds: one per output element, N * C_out * OL, when there is a bias."""
    return batch * out_channels * _numel(_per_axis(out_length, 1)) if bias else 0


def conv1d_padding_macs(geometry: ConvNdGeometry) -> int:
    """MACs whose tap lies in the padding border (a 1-D ConvNdGeometry, npconv.geometry.conv1d_geometry):
    N * C_out * (C_in / g) * (OL * K - sum_q #{l : l*s + q*d reads the input})."""
    return _conv_nd_padding_macs(geometry)


def conv3d_params(in_channels: int, out_channels: int, kernel_size, groups: int = 1, bias: bool = True) -> int:
    """Parameters of a 3-D convolution: C_out * (C_in / g) * K_d * K_h * K_w (+ C_out with a bias)."""
    return _conv_nd_params(in_channels, out_channels, kernel_size, groups, bias, 3)


def conv3d_macs(batch: int, in_channels: int, out_channels: int, out_size, kernel_size, groups: int = 1) -> int:
    """MACs of a dense 3-D convolution: N * C_out * OD * OH * OW * (C_in / g) * K_d * K_h * K_w.

    Derivation: as conv2d_macs, one multiply-accumulate per (output element, input channel
    of its group, tap), padding taps included."""
    return _conv_nd_macs(batch, in_channels, out_channels, out_size, kernel_size, groups, 3)


def conv3d_bias_adds(batch: int, out_channels: int, out_size, bias: bool = True) -> int:
    """Bias adds: one per output element, N * C_out * OD * OH * OW, when there is a bias."""
    return batch * out_channels * _numel(_per_axis(out_size, 3)) if bias else 0


def conv3d_padding_macs(geometry: ConvNdGeometry) -> int:
    """MACs whose tap lies in the padding border (a 3-D ConvNdGeometry):
    N * C_out * (C_in / g) * (OD*OH*OW*K_d*K_h*K_w - P * R * C), P, R, C the inside
    (output, tap) pairs of the depth, height and width axes (`_conv_nd_padding_macs`)."""
    return _conv_nd_padding_macs(geometry)


def conv_transpose1d_macs(batch: int, in_channels: int, out_channels: int, in_length, kernel_size,
                          groups: int = 1) -> int:
    """Scatter MACs of a 1-D transposed convolution: N * C_in * L * (C_out / g) * K."""
    return _conv_transpose_nd_macs(batch, in_channels, out_channels, in_length, kernel_size, groups, 1)


def conv_transpose1d_inside_macs(geometry: ConvTransposeNdGeometry) -> int:
    """Scatter MACs that land inside the cropped output (a 1-D ConvTransposeNdGeometry):
    N * C_in * (C_out / g) * sum_q #{l < L : pad <= l*s + q*d < pad + OL}."""
    return _conv_transpose_nd_inside_macs(geometry)


def conv_transpose3d_macs(batch: int, in_channels: int, out_channels: int, in_size, kernel_size,
                          groups: int = 1) -> int:
    """Scatter MACs of a 3-D transposed convolution: N * C_in * D * H * W * (C_out / g) * K_d * K_h * K_w."""
    return _conv_transpose_nd_macs(batch, in_channels, out_channels, in_size, kernel_size, groups, 3)


def conv_transpose3d_inside_macs(geometry: ConvTransposeNdGeometry) -> int:
    """Scatter MACs that land inside the cropped output (a 3-D ConvTransposeNdGeometry): the
    2-D count's product of per-axis interval counts with a depth factor (`_conv_transpose_nd_inside_macs`)."""
    return _conv_transpose_nd_inside_macs(geometry)
