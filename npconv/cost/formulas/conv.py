"""Closed-form sizes, parameter counts and MAC counts of the 2-D convolution forward pass:
standard, depthwise, pointwise and depthwise separable.

These live apart from the kernels on purpose: the kernels count what they execute, the
functions here predict it, and the tests hold one against the other. Conventions (see
docs/semantics.md): a MAC is one multiply-accumulate `y += x * w` of a dense kernel over
the padded input, so taps that land in the padding border count; bias adds are apart;
FLOPs = 2 * MACs.

Notation: N batch, C_in / C_out channels, g groups, K_h x K_w kernel, H x W input,
OH x OW output, s stride, d dilation, M channel multiplier of a depthwise layer.
"""

from __future__ import annotations

from ...geometry import Conv2dGeometry, conv_output_size, same_padding
from ._common import _pair, _taps_inside

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
