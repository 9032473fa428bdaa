"""Closed-form sizes, parameter counts and MAC counts for 2-D convolution.

These live apart from the kernels on purpose: the kernels count what they execute, the
functions here predict it, and the tests hold one against the other. Conventions (see
docs/semantics.md): a MAC is one multiply-accumulate `y += x * w` of a dense kernel over
the padded input, so taps that land in the padding border count; bias adds are apart;
FLOPs = 2 * MACs.

Notation: N batch, C_in / C_out channels, g groups, K_h x K_w kernel, H x W input,
OH x OW output, s stride, d dilation, M channel multiplier of a depthwise layer.
"""

from __future__ import annotations

from .geometry import Conv2dGeometry, conv_output_size, same_padding

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
    "adaptive_pool_windows",
    "adaptive_pool_window_total",
]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


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


def _taps_inside(out_size: int, stride: int, offset: int, pad_before: int, size: int) -> int:
    """#{i in [0, out_size) : pad_before <= i*stride + offset < pad_before + size}.

    The padded coordinate of output i under kernel tap offset `offset` (= p * d) is
    i*s + offset; it reads the input, not the border, iff it lies in [pad_before,
    pad_before + size). Solving for i: ceil((pad_before - offset) / s) <= i <=
    floor((pad_before + size - 1 - offset) / s), clipped to [0, out_size - 1].
    """
    first = max(0, -(-(pad_before - offset) // stride))
    last = min(out_size - 1, (pad_before + size - 1 - offset) // stride)
    return max(0, last - first + 1)


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


def adaptive_pool_windows(size: int, out: int) -> list[int]:
    """Window lengths of adaptive pooling from `size` to `out` cells along one dimension:
    cell i spans floor(i*size/out) .. ceil((i+1)*size/out) - 1 (PyTorch's start_index /
    end_index in aten/src/ATen/native/AdaptiveAveragePooling.cpp)."""
    return [((i + 1) * size + out - 1) // out - (i * size) // out for i in range(out)]


def adaptive_pool_window_total(size: int, out: int) -> int:
    """Sum of the window lengths along one dimension: the values each output row adds up."""
    return sum(adaptive_pool_windows(size, out))


# Backward-pass counts (grad_input, grad_weight, grad_bias), derived in npconv/formulas_backward.py.
# Imported last: that module builds on the helpers above.
from .formulas_backward import *  # noqa: E402,F401,F403
from .formulas_backward import __all__ as _backward_all  # noqa: E402

__all__ += _backward_all


# --- pooling (graph evaluator)
# Counts of npconv.pooling's max_pool2d, avg_pool2d and mean, from shapes and arguments.
# A pooling window is separable: its in-input taps are (rows inside) x (columns inside), so
# the total over all output cells is the product of two one-dimensional sums over output
# positions, written out here as explicit sums.

__all__ += [
    "pool_output_size",
    "max_pool_taps_inside",
    "avg_pool_taps_inside",
    "max_pool2d_compares",
    "avg_pool2d_adds",
    "avg_pool2d_divides",
    "mean_adds",
    "mean_divides",
]


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output cells of max/avg pooling along one dimension (PyTorch's pooling_output_shape,
    aten/src/ATen/native/Pool.h):

        out = floor((size + 2p - d(K - 1) - 1) / s) + 1                    (ceil_mode=False)
        out = ceil((size + 2p - d(K - 1) - 1) / s) + 1, less one if (out - 1) s >= size + p

    Derivation: window i covers padded positions i*s - p .. i*s - p + d(K - 1); it fits in
    the padded input [-p, size + p) iff i*s + d(K - 1) <= size + 2p - 1, which gives the floor.
    ceil_mode also keeps a last window that runs past the padded end, but only if it starts
    inside the input or the left padding (i*s - p < size), hence the correction.
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def max_pool_taps_inside(size: int, out: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """sum_{i < out} #{a in [0, K) : 0 <= i*s - p + a*d < size}: the in-input taps of the
    dilated windows along one dimension.

    Derivation: tap a of window i reads position i*s - p + a*d; it is inside iff
    ceil((p - i*s) / d) <= a <= floor((size - 1 + p - i*s) / d); clip to [0, K - 1].
    """
    total = 0
    for i in range(out):
        first = max(0, -((i * stride - pad) // dilation))  # ceil((p - i*s) / d)
        last = min(kernel - 1, (size - 1 + pad - i * stride) // dilation)
        total += max(0, last - first + 1)
    return total


def avg_pool_taps_inside(size: int, out: int, kernel: int, stride: int, pad: int) -> list[int]:
    """Per output position i < out, the in-input length of the (undilated) window along one
    dimension: min(i*s - p + K, size) - max(i*s - p, 0), and 0 when negative (the window
    clipped to the padded input, then to the input, as aten's cpu_avg_pool does)."""
    lengths = []
    for i in range(out):
        start = i * stride - pad
        end = min(start + kernel, size + pad)
        lengths.append(max(0, min(end, size) - max(start, 0)))
    return lengths


def _pool_pair(v) -> tuple[int, int]:
    """An int, or one or two ints, as (height, width)."""
    if isinstance(v, int):
        return v, v
    return int(v[0]), int(v[-1])


def _pool_geometry(in_size, kernel_size, stride, padding, dilation, ceil_mode):
    size = _pool_pair(in_size)
    kernel = _pool_pair(kernel_size)
    omitted = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel if omitted else _pool_pair(stride)
    pad = _pool_pair(padding)
    dil = _pool_pair(dilation)
    out = tuple(pool_output_size(size[d], kernel[d], stride[d], pad[d], dil[d], ceil_mode) for d in range(2))
    return size, kernel, stride, pad, dil, out


def max_pool2d_compares(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode: bool = False) -> int:
    """Compares of max pooling: N * C * (sum_i taps_inside_h(i)) * (sum_j taps_inside_w(j)).

    Derivation: each output cell compares every in-input tap of its window once with the
    running maximum (padded taps are skipped, not compared); a window's in-input taps are
    the product of its in-input rows and columns, and summing the product over (i, j)
    factorises into the two one-dimensional sums of `max_pool_taps_inside`.
    """
    size, kernel, stride, pad, dil, out = _pool_geometry(in_size, kernel_size, stride, padding, dilation, ceil_mode)
    rows = max_pool_taps_inside(size[0], out[0], kernel[0], stride[0], pad[0], dil[0])
    cols = max_pool_taps_inside(size[1], out[1], kernel[1], stride[1], pad[1], dil[1])
    return batch * channels * rows * cols


def avg_pool2d_adds(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0,
                    ceil_mode: bool = False) -> int:
    """Adds of average pooling: N * C * (sum_i len_h(i)) * (sum_j len_w(j)), with len the
    in-input window lengths of `avg_pool_taps_inside` (one add per in-input value summed;
    the divisor rule does not change what is added)."""
    size, kernel, stride, pad, _, out = _pool_geometry(in_size, kernel_size, stride, padding, 1, ceil_mode)
    rows = sum(avg_pool_taps_inside(size[0], out[0], kernel[0], stride[0], pad[0]))
    cols = sum(avg_pool_taps_inside(size[1], out[1], kernel[1], stride[1], pad[1]))
    return batch * channels * rows * cols


def avg_pool2d_divides(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0,
                       ceil_mode: bool = False) -> int:
    """Divides of average pooling: one per output cell whose window holds an input value,
    N * C * #{i : len_h(i) > 0} * #{j : len_w(j) > 0}; with PyTorch's argument rules every
    window does, so this is N * C * OH * OW."""
    size, kernel, stride, pad, _, out = _pool_geometry(in_size, kernel_size, stride, padding, 1, ceil_mode)
    rows = sum(1 for n in avg_pool_taps_inside(size[0], out[0], kernel[0], stride[0], pad[0]) if n > 0)
    cols = sum(1 for n in avg_pool_taps_inside(size[1], out[1], kernel[1], stride[1], pad[1]) if n > 0)
    return batch * channels * rows * cols


def _mean_dims(shape, dim) -> set[int]:
    ndim = len(shape)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return set(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return {d % ndim for d in dims} if ndim else set()


def mean_adds(shape, dim=None) -> int:
    """Adds of a mean: one per input element, prod(shape) (every element is added into the
    sum of exactly one output, whichever dims are reduced)."""
    total = 1
    for s in shape:
        total *= int(s)
    return total


def mean_divides(shape, dim=None) -> int:
    """Divides of a mean: one per output element, the product of the kept dimensions
    (dim None or [] reduces all: one divide; keepdim does not change the count)."""
    reduced = _mean_dims(tuple(shape), dim)
    total = 1
    for d, s in enumerate(shape):
        if d not in reduced:
            total *= int(s)
    return total


# --- element-wise ops (graph evaluator)
# Counts of npconv.elementwise's clamp/hardtanh, sigmoid, add, sub, mul and div, from shapes
# and arguments. Each op is one flat loop over the broadcast output: one unit of work per
# output element (per element and limit for clamp), plus one multiply per element for
# add/sub with alpha != 1. Broadcasting copies operands without arithmetic: nothing counted.

__all__ += [
    "elementwise_count",
    "clamp_compares",
    "sigmoid_exps",
    "alpha_muls",
]


def elementwise_count(out_shape) -> int:
    """Elements of the output, prod(out_shape): 1 for a 0-d result, 0 when a size is 0.

    This is the count of adds (add), subs (sub), muls (mul) and divides (div): the flat loop
    executes its one operation once per output element, whichever operand was broadcast.
    """
    total = 1
    for s in out_shape:
        total *= int(s)
    return total


def clamp_compares(numel: int, has_min: bool, has_max: bool, nan_limit: bool = False) -> int:
    """activation_compares of clamp / hardtanh: numel * (has_min + has_max), or 0 when a
    given limit is NaN (the output is NaN everywhere and nothing is compared).

    Derivation: each element is compared once with each limit that exists, whatever its
    value (no comparison is skipped when the first one already moved it); hardtanh always
    has both limits, 2 * numel.
    """
    if nan_limit:
        return 0
    return numel * (int(bool(has_min)) + int(bool(has_max)))


def sigmoid_exps(numel: int) -> int:
    """sigmoid_exps of sigmoid: one per element (each one exp, one add and one reciprocal)."""
    return numel


def alpha_muls(numel: int, alpha=1) -> int:
    """muls of add / sub: numel when alpha != 1 (b * alpha, one per output element, before the
    add or sub), 0 when alpha == 1 (nothing is multiplied)."""
    return numel if alpha != 1 else 0
