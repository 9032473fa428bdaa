"""Closed-form counts of the pooling ops and means: npconv.pooling's max_pool1d/2d/3d,
avg_pool1d/2d/3d and mean (the graph evaluator's), and the windows of adaptive average pooling
(npconv.ops.adaptive_avg_pool2d, its backward, and the bounds and summaries built on them).

A pooling window is separable: its in-input taps are (rows inside) x (columns inside), so
the total over all output cells is the product of one-dimensional sums over output
positions (two for 2-D, three for 3-D; the 1-D ops are the 2-D ones on a plane of height 1),
written out here as explicit sums. As in `npconv.formulas.conv`, these predict
what the kernels count; the tests hold them against the counters.
"""

from __future__ import annotations

from ._common import _numel, _pair

__all__ = [
    "adaptive_pool_ranges",
    "adaptive_pool_windows",
    "adaptive_pool_window_total",
    "adaptive_avg_pool2d_adds",
    "adaptive_avg_pool2d_divides",
    "adaptive_avg_pool3d_adds",
    "adaptive_avg_pool3d_divides",
    "pool_output_size",
    "max_pool_taps_inside",
    "avg_pool_taps_inside",
    "max_pool2d_compares",
    "avg_pool2d_adds",
    "avg_pool2d_divides",
    "max_pool1d_compares",
    "avg_pool1d_adds",
    "avg_pool1d_divides",
    "max_pool3d_compares",
    "avg_pool3d_adds",
    "avg_pool3d_divides",
    "mean_adds",
    "mean_divides",
]


def adaptive_pool_ranges(size: int, out: int) -> list[tuple[int, int]]:
    """The windows of adaptive pooling from `size` to `out` cells along one dimension, as
    half-open ranges [start, end): cell i spans start = floor(i*size/out) .. end =
    ceil((i+1)*size/out), excluded (PyTorch's start_index / end_index in
    aten/src/ATen/native/AdaptiveAveragePooling.cpp). Windows overlap when `out` does not
    divide `size`. The Numba kernels compute the same bounds in their loops."""
    return [((i * size) // out, ((i + 1) * size + out - 1) // out) for i in range(out)]


def adaptive_pool_windows(size: int, out: int) -> list[int]:
    """Window lengths end - start of `adaptive_pool_ranges(size, out)`, one per output cell."""
    return [end - start for start, end in adaptive_pool_ranges(size, out)]


def adaptive_pool_window_total(size: int, out: int) -> int:
    """Sum of the window lengths along one dimension: the values each output row adds up."""
    return sum(adaptive_pool_windows(size, out))


def adaptive_avg_pool2d_adds(batch: int, channels: int, in_size, out_size) -> int:
    """Adds of adaptive average pooling: N * C * (sum_i |rows(i)|) * (sum_j |cols(j)|).

    Derivation: output (i, j) adds up the |rows(i)| * |cols(j)| values of its window; the
    window's rows depend on i alone and its columns on j alone, so the sum over (i, j)
    factorises into the two `adaptive_pool_window_total`s. It is N * C * H * W when OH
    divides H and OW divides W (the windows tile the input), more when windows overlap.
    """
    (h, w), (oh, ow) = _pair(in_size), _pair(out_size)
    return batch * channels * adaptive_pool_window_total(h, oh) * adaptive_pool_window_total(w, ow)


def adaptive_avg_pool2d_divides(batch: int, channels: int, out_size) -> int:
    """One division by the window size per output element: N * C * OH * OW."""
    oh, ow = _pair(out_size)
    return batch * channels * oh * ow


def adaptive_avg_pool3d_adds(batch: int, channels: int, in_size, out_size) -> int:
    """Adds of 3-D adaptive average pooling: N * C * the product over the three axes of
    `adaptive_pool_window_total` (adaptive_avg_pool2d_adds's derivation, with one more axis)."""
    totals = [adaptive_pool_window_total(n, o) for n, o in zip(in_size, out_size)]
    return batch * channels * totals[0] * totals[1] * totals[2]


def adaptive_avg_pool3d_divides(batch: int, channels: int, out_size) -> int:
    """One division by the window size per output element: N * C * OD * OH * OW."""
    od, oh, ow = out_size
    return batch * channels * od * oh * ow


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


def _pool_geometry(in_size, kernel_size, stride, padding, dilation, ceil_mode):
    size = _pair(in_size)
    kernel = _pair(kernel_size)
    omitted = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel if omitted else _pair(stride)
    pad = _pair(padding)
    dil = _pair(dilation)
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


# ----------------------------------------------------------------------------- one and three axes


def _axes(value, n: int) -> tuple[int, ...]:
    """An int, or a list of 1 or n ints, as n ints (per axis, outermost first)."""
    if isinstance(value, int):
        return (value,) * n
    values = [int(v) for v in value]
    return tuple(values) if len(values) == n else (values[0],) * n


def _pool_geometry_nd(n: int, in_size, kernel_size, stride, padding, dilation, ceil_mode):
    size, kernel = _axes(in_size, n), _axes(kernel_size, n)
    omitted = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel if omitted else _axes(stride, n)
    pad, dil = _axes(padding, n), _axes(dilation, n)
    out = tuple(pool_output_size(size[a], kernel[a], stride[a], pad[a], dil[a], ceil_mode) for a in range(n))
    return size, kernel, stride, pad, dil, out


def _max_pool_compares_nd(n, batch, channels, in_size, kernel_size, stride, padding, dilation, ceil_mode) -> int:
    size, kernel, stride, pad, dil, out = _pool_geometry_nd(n, in_size, kernel_size, stride, padding, dilation,
                                                            ceil_mode)
    total = batch * channels
    for a in range(n):
        total *= max_pool_taps_inside(size[a], out[a], kernel[a], stride[a], pad[a], dil[a])
    return total


def _avg_pool_lengths_nd(n, in_size, kernel_size, stride, padding, ceil_mode) -> list[list[int]]:
    size, kernel, stride, pad, _, out = _pool_geometry_nd(n, in_size, kernel_size, stride, padding, 1, ceil_mode)
    return [avg_pool_taps_inside(size[a], out[a], kernel[a], stride[a], pad[a]) for a in range(n)]


def max_pool1d_compares(batch: int, channels: int, length, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode: bool = False) -> int:
    """Compares of 1-D max pooling: N * C * sum_j taps_inside(j), max_pool2d_compares on a
    plane of height 1 (kernel, stride and dilation 1 and no padding across it: one row, one
    tap), which is how npconv.pooling.max_pool1d computes."""
    return _max_pool_compares_nd(1, batch, channels, length, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool1d_adds(batch: int, channels: int, length, kernel_size, stride=None, padding=0,
                    ceil_mode: bool = False) -> int:
    """Adds of 1-D average pooling: N * C * sum_j len(j), avg_pool2d_adds on a plane of height 1."""
    (lengths,) = _avg_pool_lengths_nd(1, length, kernel_size, stride, padding, ceil_mode)
    return batch * channels * sum(lengths)


def avg_pool1d_divides(batch: int, channels: int, length, kernel_size, stride=None, padding=0,
                       ceil_mode: bool = False) -> int:
    """Divides of 1-D average pooling: N * C * #{j : len(j) > 0}, which PyTorch's argument
    rules make N * C * OL."""
    (lengths,) = _avg_pool_lengths_nd(1, length, kernel_size, stride, padding, ceil_mode)
    return batch * channels * sum(1 for n in lengths if n > 0)


def max_pool3d_compares(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode: bool = False) -> int:
    """Compares of 3-D max pooling: N * C * (sum_k taps_d(k)) * (sum_i taps_h(i)) * (sum_j taps_w(j)).

    Derivation as max_pool2d_compares: a window's in-input taps are the product of its
    in-input positions along each axis, so the sum over output cells (k, i, j) factorises
    into three one-dimensional sums of `max_pool_taps_inside`.
    """
    return _max_pool_compares_nd(3, batch, channels, in_size, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool3d_adds(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0,
                    ceil_mode: bool = False) -> int:
    """Adds of 3-D average pooling: N * C * (sum len_d) * (sum len_h) * (sum len_w), the
    in-input window lengths of `avg_pool_taps_inside` along each axis."""
    total = batch * channels
    for lengths in _avg_pool_lengths_nd(3, in_size, kernel_size, stride, padding, ceil_mode):
        total *= sum(lengths)
    return total


def avg_pool3d_divides(batch: int, channels: int, in_size, kernel_size, stride=None, padding=0,
                       ceil_mode: bool = False) -> int:
    """Divides of 3-D average pooling: one per output cell whose window holds an input value,
    the product over the axes of #{positions with len > 0}; N * C * OD * OH * OW under
    PyTorch's argument rules."""
    total = batch * channels
    for lengths in _avg_pool_lengths_nd(3, in_size, kernel_size, stride, padding, ceil_mode):
        total *= sum(1 for n in lengths if n > 0)
    return total


def _mean_dims(shape, dim) -> set[int]:
    ndim = len(shape)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return set(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return {d % ndim for d in dims} if ndim else set()


def mean_adds(shape, dim=None) -> int:
    """Adds of a mean: one per input element, prod(shape) (every element is added into the
    sum of exactly one output, whichever dims are reduced)."""
    return _numel(shape)


def mean_divides(shape, dim=None) -> int:
    """Divides of a mean: one per output element, the product of the kept dimensions
    (dim None or [] reduces all: one divide; keepdim does not change the count)."""
    reduced = _mean_dims(tuple(shape), dim)
    return _numel(s for d, s in enumerate(shape) if d not in reduced)
