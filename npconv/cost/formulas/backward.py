"""Closed-form MAC counts for transposed convolution and for the backward pass of conv2d
and conv_transpose2d.

As in `npconv.formulas.conv`, these predict what the kernels count; tests hold them against
the counters. Notation: N batch, C_in / C_out channels of the *forward* op, g groups,
K_h x K_w kernel, H x W input, OH x OW output, s stride, d dilation, p padding.

The backward of y = conv(x, w) + b, given dL/dy = gy:

    grad_input   dL/dx_pad[n, g*Cg + c, i*s + p*d, j*s + q*d] += gy[n, o, i, j] * w[o, c, p, q]
    grad_weight  dL/dw[o, c, p, q]  = sum_{n, i, j} gy[n, o, i, j] * x_pad[n, g*Cg + c, i*s + p*d, j*s + q*d]
    grad_bias    dL/db[o]           = sum_{n, i, j} gy[n, o, i, j]

Each of the first two runs over exactly the index set (n, o, i, j, c, p, q) of the forward
sum, one multiply-accumulate per index, so for a dense kernel

    forward MACs = grad-input MACs = grad-weight MACs = N * C_out * OH * OW * (C_in/g) * K_h * K_w

and a training step's convolution costs 3x its forward, plus N * C_out * OH * OW adds for
the bias gradient. The same holds for conv_transpose2d with its own index set
(n, c, i, j, o, p, q) over the *input* pixels: N * C_in * H * W * (C_out/g) * K_h * K_w.
See docs/backward.md for the derivations.
"""

from __future__ import annotations

from ._common import _pair, _taps_inside
from .conv import conv2d_bias_adds, conv2d_macs, conv2d_padding_macs

__all__ = [
    "conv_transpose2d_macs",
    "conv_transpose2d_inside_macs",
    "conv2d_grad_input_macs",
    "conv2d_grad_input_padding_macs",
    "conv2d_grad_input_fold_adds",
    "conv2d_grad_weight_macs",
    "conv2d_grad_weight_padding_macs",
    "conv2d_grad_bias_adds",
    "conv_transpose2d_grad_input_macs",
    "conv_transpose2d_grad_input_inside_macs",
    "conv_transpose2d_grad_weight_macs",
    "conv_transpose2d_grad_weight_inside_macs",
    "conv_transpose2d_grad_bias_adds",
]


def conv_transpose2d_macs(batch: int, in_channels: int, out_channels: int, in_size, kernel_size, groups: int = 1) -> int:
    """Scatter MACs of a transposed convolution: N * C_in * H * W * (C_out / g) * K_h * K_w.

    Derivation: every input element x[n, c, i, j] is multiplied by each of the
    (C_out / g) * K_h * K_w weights w[c, o, p, q] of its group and added to one output
    position; cropped positions (those `padding` removes) are computed all the same.
    """
    h, w = _pair(in_size)
    kh, kw = _pair(kernel_size)
    return batch * in_channels * h * w * (out_channels // groups) * kh * kw


def conv_transpose2d_inside_macs(geometry) -> int:
    """Scatter MACs that land inside the cropped output (a ConvTranspose2dGeometry).

    Derivation: the product x[n, c, i, j] * w[c, o, p, q] lands on row i*s_h + p*d_h and
    column j*s_w + q*d_w of the uncropped result; the output is the window
    [pad_h, pad_h + OH) x [pad_w, pad_w + OW). The row condition depends on (i, p) only
    and the column condition on (j, q) only, so the inside (pixel, tap) pairs factorise as
    R * C, R = sum_p #{i < H : pad_h <= i*s_h + p*d_h < pad_h + OH} (an interval count,
    `formulas._common._taps_inside`), C likewise, and

        inside_macs = N * C_in * (C_out / g) * R * C
    """
    g = geometry
    rows = sum(_taps_inside(g.height, g.stride_h, p * g.dilation_h, g.pad_h, g.out_h) for p in range(g.kernel_h))
    cols = sum(_taps_inside(g.width, g.stride_w, q * g.dilation_w, g.pad_w, g.out_w) for q in range(g.kernel_w))
    return g.batch * g.in_channels * g.out_per_group * rows * cols


def _bias_adds(g) -> int:
    """N * C_out * OH * OW with a bias, else 0: the forward's bias adds, and its gradient's."""
    return conv2d_bias_adds(g.batch, g.out_channels, (g.out_h, g.out_w), g.has_bias)


def _conv2d_forward_macs(g) -> int:
    return conv2d_macs(g.batch, g.in_channels, g.out_channels, (g.out_h, g.out_w), (g.kernel_h, g.kernel_w), g.groups)


def conv2d_grad_input_macs(geometry) -> int:
    """MACs of conv2d's input gradient = the forward's, N * C_out * OH * OW * (C_in/g) * K_h * K_w.

    Derivation: gx_pad[n, g*Cg + c, i*s + p*d, j*s + q*d] += gy[n, o, i, j] * w[o, c, p, q]
    runs once for every index (n, o, i, j, c, p, q) of the forward's sum: the chain rule
    sends each forward product's derivative back along the edge it came from.
    """
    return _conv2d_forward_macs(geometry)


def conv2d_grad_input_padding_macs(geometry) -> int:
    """Grad-input MACs whose target lies in the padding border = the forward's padding MACs.

    Derivation: the target of index (n, o, i, j, c, p, q) is the padded position the
    forward read, so it is in the border exactly when the forward's tap was
    (`formulas.conv2d_padding_macs`). With zeros padding these gradients are discarded;
    with the other modes they are folded back onto the input (`conv2d_grad_input_fold_adds`).
    """
    return conv2d_padding_macs(geometry)


def conv2d_grad_input_fold_adds(geometry) -> int:
    """Adds that fold the border of the padded gradient back onto the input.

    Derivation: zeros padding copies nothing, so nothing is folded (0). Reflect, replicate
    and circular padding make every border position a copy of one input pixel, and its
    gradient is added to that pixel once: N * C_in * ((H + p_t + p_b)(W + p_l + p_r) - H W).
    """
    g = geometry
    if g.padding_mode == "zeros":
        return 0
    padded_area = (g.height + g.pad_top + g.pad_bottom) * (g.width + g.pad_left + g.pad_right)
    return g.batch * g.in_channels * (padded_area - g.height * g.width)


def conv2d_grad_weight_macs(geometry) -> int:
    """MACs of conv2d's weight gradient = the forward's, N * C_out * OH * OW * (C_in/g) * K_h * K_w.

    Derivation: gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] x_pad[n, g*Cg + c, i*s + p*d, j*s + q*d]
    has C_out * (C_in/g) * K_h * K_w weights, each a sum of N * OH * OW products: the
    forward's index set once more. A grouped convolution has C_in/g, not C_in, channels per
    weight: a depthwise layer's weight gradient costs N * C * OH * OW * K_h * K_w.
    """
    return _conv2d_forward_macs(geometry)


def conv2d_grad_weight_padding_macs(geometry) -> int:
    """Grad-weight MACs that read the padding border = the forward's padding MACs (same taps)."""
    return conv2d_padding_macs(geometry)


def conv2d_grad_bias_adds(geometry) -> int:
    """Adds of the bias gradient: N * C_out * OH * OW (one per element of gy), 0 without a bias."""
    return _bias_adds(geometry)


def _conv_transpose2d_forward_macs(g) -> int:
    return conv_transpose2d_macs(g.batch, g.in_channels, g.out_channels, (g.height, g.width),
                                 (g.kernel_h, g.kernel_w), g.groups)


def conv_transpose2d_grad_input_macs(geometry) -> int:
    """MACs of conv_transpose2d's input gradient = its forward's, N * C_in * H * W * (C_out/g) * K_h * K_w.

    Derivation: gx[n, c, i, j] = sum_{o, p, q} gy_full[n, g*Cog + o, i*s + p*d, j*s + q*d] w[c, o, p, q]
    gathers along every edge the forward scattered along, the cropped ones included (they
    read the zeros around gy's window).
    """
    return _conv_transpose2d_forward_macs(geometry)


def conv_transpose2d_grad_input_inside_macs(geometry) -> int:
    """Those of them that read gy inside its window = the forward's inside MACs (same positions)."""
    return conv_transpose2d_inside_macs(geometry)


def conv_transpose2d_grad_weight_macs(geometry) -> int:
    """MACs of conv_transpose2d's weight gradient = its forward's.

    Derivation: gw[c, o, p, q] = sum_{n, i, j} x[n, c, i, j] gy_full[...]: C_in * (C_out/g) * K_h * K_w
    weights, each a sum over the N * H * W input pixels.
    """
    return _conv_transpose2d_forward_macs(geometry)


def conv_transpose2d_grad_weight_inside_macs(geometry) -> int:
    """Those of them that read gy inside its window = the forward's inside MACs."""
    return conv_transpose2d_inside_macs(geometry)


def conv_transpose2d_grad_bias_adds(geometry) -> int:
    """Adds of the bias gradient: N * C_out * OH * OW, 0 without a bias."""
    return _bias_adds(geometry)
