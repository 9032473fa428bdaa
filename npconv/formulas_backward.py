"""Closed-form MAC counts for transposed convolution and for the backward pass of conv2d
and conv_transpose2d.

As in `npconv.formulas`, these predict what the kernels count; tests hold them against
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

from .formulas import _pair, _taps_inside

__all__ = [
    "conv_transpose2d_macs",
    "conv_transpose2d_inside_macs",
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
    `formulas._taps_inside`), C likewise, and

        inside_macs = N * C_in * (C_out / g) * R * C
    """
    g = geometry
    rows = sum(_taps_inside(g.height, g.stride_h, p * g.dilation_h, g.pad_h, g.out_h) for p in range(g.kernel_h))
    cols = sum(_taps_inside(g.width, g.stride_w, q * g.dilation_w, g.pad_w, g.out_w) for q in range(g.kernel_w))
    return g.batch * g.in_channels * g.out_per_group * rows * cols
