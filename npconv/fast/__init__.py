"""The fast tier: optimised twins of the reference convolution, tested against it.

    npconv.conv2d(x, w, b, padding=1, engine="fast")          # through the functional API
    with npconv.engine.use("fast"): y = model(x)               # layers and models too
    npconv.fast.conv2d_bn_relu6(x, w, b, scale, shift, ...)   # convolution + BatchNorm + ReLU6, fused

What it covers (`covers`), everything else falls back to the reference kernel:

    depthwise   groups == C_in (any multiplier, kernel, stride, dilation, padding, padding mode)
                `depthwise.depthwise`: phase-split planes, every tap a unit-stride stream, on
                the output's own plane where zero padding allows (the narrow grid) or on a
                padded, cropped one (the wide grid); 3x3 taps in registers; parallel over
                (image, channel)
    pointwise   groups == 1, 1x1 kernel, no padding (any stride): one BLAS GEMM per image
                on NCHW memory, `pointwise.pointwise`
    standard    groups == 1, any other kernel / stride / dilation / padding / padding mode:
                row packing (KH shifted copies of the input rows, not a KH*KW im2col) and KW
                BLAS GEMMs per block of output rows, `standard.standard`
    not covered grouped convolution with 1 < groups < C_in; empty arrays; float16 (the
                functional API widens it to float32 first, as for the reference)

and, beside the convolutions, the fully connected layer (`ops.linear`, a model's classifier):
one BLAS product and the bias, `linear.linear`, within bound_from_magnitude(M, IN + 1).

Accuracy. Every output is an inner product of the same n = C_in/groups * KH * KW terms as
in the reference (+1 for a bias), summed in another order (BLAS blocks and fuses
multiply-adds); Higham's bound gamma(n) * (sum |x||w| + |b|) holds for any order, so the
fast result is within `npconv.tolerance.bound_from_magnitude(M, n, dtype)` of the exact one,
and that is what reference_tests/test_fast.py checks against the float64 reference kernel.
Accumulators are of the input's dtype (float32 stays float32).

Fused BatchNorm and ReLU6 (`conv2d_bn_relu6`): v = (conv + b) * scale + shift, then clamped to
[0, 6]. Two more roundings after the sum: with A the computed sum (|A - exact| <= gamma(n) M),
fl(fl(A*s) + t) = (A s (1+d1) + t)(1+d2), so the error is at most
|s| gamma(n) M (1+u)^2 + gamma(2) |s| M + u |t| <= gamma(n + 2) (|s| M + |t|), using
gamma(a) + gamma(b) + gamma(a) gamma(b) <= gamma(a + b); the clamp is 1-Lipschitz and does
not increase it. So the fused result is within bound_from_magnitude(|s| M + |t|, n + 2).

Counts. Each kernel returns counts made by its own loops (see each module for exactly which
loop); `conv2d` returns them, the caller records them under the reference's op names
("conv2d", "depthwise_conv2d", "pointwise_conv2d"; "batch_norm2d" / bn_scale_shift and
"relu6" / activation_compares for the fused epilogue, as npconv.ops counts them), and the
tests hold them equal to the reference's counts.

Threads: each kernel splits its work into chunks for `threads` threads, by default
`numba.get_num_threads()` (set it with `numba.set_num_threads`). The depthwise kernel, the
GEMMs' blocks (`gemm.matmul`: each block one BLAS call at one BLAS thread, then the pointwise
epilogue on it) and the standard convolution's blocks of output rows are Numba `prange`
loops. Importing npconv puts Numba's pool on the process's one OpenMP runtime, PyTorch's, on
Linux (npconv/_threads.py; the user's own choice of layer is kept): PyTorch's workers,
spinning after its last call, take npconv's next parallel loop at once instead of competing
with it for the cores. Where kernels cannot call BLAS (`gemm.on_numba()`) the blocks run on
npconv's own pool (`workers.run`). bench/README.md measures how these pools and PyTorch's
interact, configured and in a plain process (bench/plain.py).
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _threads, counting
from ..geometry import Conv2dGeometry, check_array, check_same_dtype, conv2d_geometry
from ..kernels.pad2d import MODE_CODES
from . import depthwise, pointwise, standard

__all__ = ["conv2d", "conv2d_bn_relu6", "covers"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def covers(geometry: Conv2dGeometry, dtype) -> str | None:
    """Which fast kernel computes this convolution ("depthwise", "pointwise", "standard"),
    or None when the reference kernel must (see the module docstring)."""
    g = geometry
    if np.dtype(dtype) not in _DTYPES:
        return None
    if min(g.batch, g.in_channels, g.out_channels, g.out_h, g.out_w, g.height, g.width) == 0:
        return None
    if g.groups == 1:
        pointwise_shape = g.kernel_h == 1 and g.kernel_w == 1
        unpadded = g.pad_top == g.pad_bottom == g.pad_left == g.pad_right == 0
        if pointwise_shape and unpadded:
            return "pointwise"
        return "standard"
    if g.groups == g.in_channels:
        return "depthwise"
    return None


_thread_count = None       # Numba's C getter of the calling thread's setting, once its threading layer is up


def thread_count() -> int:
    """numba.get_num_threads(): the calling thread's setting. After the first call, read with
    the threading layer's own C getter (0.1 us), which the Python function calls after taking
    two locks (0.7 us; every fast call asks, December 2026); the Python function where Numba
    has no such getter."""
    global _thread_count
    if _thread_count is not None:
        return _thread_count()
    threads = numba.get_num_threads()      # starts the threading layer if it is not yet
    from numba.np.ufunc import parallel

    getter = getattr(parallel, "_get_num_threads", None)
    _thread_count = getter if callable(getter) and getter() == threads else numba.get_num_threads
    return threads


# Per dtype: the empty array that stands for a missing bias, scale or shift, and ReLU6's bounds
# (made once: conv2d runs on every layer's every call, and these were a tenth of its Python)
_EMPTY = {dtype: np.zeros(0, dtype) for dtype in _DTYPES}
_CLAMP = {dtype: (dtype.type(0), dtype.type(6)) for dtype in _DTYPES}


def conv2d(x, w, b, geometry: Conv2dGeometry, *, scale=None, shift=None, relu6=False, threads=None, kind=None):
    """Run the fast kernel `covers(geometry, x.dtype)` names.

    x (N, C_in, H, W) batched, w (C_out, C_in/groups, KH, KW), b (C_out,) or None, all
    C-contiguous of one dtype (float32 or float64); scale, shift (C_out,) or None: an affine
    map after the bias (BatchNorm folded; a missing one is 1 or 0, both None means no affine
    step); relu6: clamp to [0, 6] last.
    Returns (y (N, C_out, OH, OW), counts) where counts maps the reference's op names to the
    counters the kernels' loops returned: {"conv": {...}, "batch_norm2d": {...}, "relu6": {...}}
    (the last two only when fused). Raises ValueError for a configuration it does not cover.
    `kind`: what `covers(geometry, x.dtype)` returned, when the caller has just asked it.
    """
    g = geometry
    if kind is None:
        kind = covers(g, x.dtype)
    if kind is None:
        raise ValueError(f"npconv.fast does not cover this convolution (groups={g.groups}, dtype={x.dtype})")
    dtype = x.dtype
    threads = thread_count() if threads is None else int(threads)
    has_bias = b is not None
    affine = scale is not None or shift is not None
    empty = _EMPTY[dtype]
    bias = b if has_bias else empty
    if affine:
        scale = np.ones(g.out_channels, dtype) if scale is None else np.ascontiguousarray(scale, dtype=dtype)
        shift = np.zeros(g.out_channels, dtype) if shift is None else np.ascontiguousarray(shift, dtype=dtype)
    else:
        scale = shift = empty
    lo, hi = _CLAMP[dtype]
    epilogue = (bias, has_bias, scale, shift, affine, lo, hi, bool(relu6))
    padded_h = g.height + g.pad_top + g.pad_bottom
    padded_w = g.width + g.pad_left + g.pad_right
    mode = MODE_CODES[g.padding_mode]
    if kind == "depthwise":
        y = np.empty((g.batch, g.out_channels, g.out_h, g.out_w), dtype)
        w3 = w.reshape(g.out_channels, g.kernel_h, g.kernel_w)
        grid = depthwise.layout(g.height, g.width, g.out_h, g.out_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
                                g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, mode)
        steps = (g.stride_h, g.stride_w, g.pad_top, g.pad_left, padded_h, padded_w, mode)
        # Numba's OpenMP pool cannot run in a forked process (npconv/_threads.py): there, None
        counts = depthwise.run(x, w3, epilogue, y, steps, grid, None if _threads.forked() else threads)
    elif kind == "pointwise":
        y, counts = pointwise.pointwise(x, w, g.stride_h, g.stride_w, *epilogue, threads)
    else:
        y, counts = standard.standard(x, w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left,
                             padded_h, padded_w, mode, g.out_h, g.out_w, *epilogue, threads)
    macs, padding_macs, bias_adds, scale_shifts, compares = (int(k) for k in counts)
    recorded = {"conv": dict(macs=macs, padding_macs=padding_macs, bias_adds=bias_adds)}
    if affine:
        recorded["batch_norm2d"] = dict(bn_scale_shift=scale_shifts)
    if relu6:
        recorded["relu6"] = dict(activation_compares=compares)
    return y, recorded


def batch_norm_scale_shift(running_mean, running_var, weight=None, bias=None, eps=1e-5, dtype=np.float32):
    """BatchNorm in evaluation as an affine map: scale = weight / sqrt(var + eps),
    shift = bias - mean * scale (weight 1, bias 0 when None), computed in float64 and
    rounded once to `dtype`. y = (x - mean) / sqrt(var + eps) * weight + bias = x * scale + shift."""
    mean = np.asarray(running_mean, np.float64)
    var = np.asarray(running_var, np.float64)
    gamma = np.ones_like(mean) if weight is None else np.asarray(weight, np.float64)
    beta = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    scale = gamma / np.sqrt(var + eps)
    return scale.astype(dtype), (beta - mean * scale).astype(dtype)


def conv2d_bn_relu6(
    input,
    weight,
    bias=None,
    scale=None,
    shift=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    relu6=True,
    op=None,
):
    """relu6((conv2d(input, weight, bias, ...) ) * scale + shift), fused in one fast kernel.

    input (N, C_in, H, W), weight (C_out, C_in/groups, KH, KW), bias, scale, shift (C_out,) or
    None (no affine step when both are None); relu6=False leaves the clamp out. float32 or
    float64. Records under the convolution's op name (`op`, by default "depthwise_conv2d"
    when groups == C_in, "pointwise_conv2d" for an unpadded 1x1, else "conv2d"), under
    "batch_norm2d" and under "relu6", each with the counts its loops made. Error bound: the
    module docstring. Raises ValueError for a configuration the fast tier does not cover.
    """
    input = check_array(input, "input")
    weight = check_array(weight, "weight")
    if bias is not None:
        bias = check_array(bias, "bias")
    check_same_dtype(input, weight, bias)
    if input.dtype not in _DTYPES:
        raise TypeError(f"conv2d_bn_relu6(): expected float32 or float64, but got {input.dtype}")
    g = conv2d_geometry(input.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups, padding_mode)
    for name, value in (("scale", scale), ("shift", shift)):
        if value is not None and np.shape(value) != (g.out_channels,):
            raise ValueError(f"{name} should contain {g.out_channels} elements, but got shape {list(np.shape(value))}")
    x = input[np.newaxis] if g.unbatched else input
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(weight)
    b = None if bias is None else np.ascontiguousarray(bias)
    y, recorded = conv2d(x, w, b, g, scale=scale, shift=shift, relu6=relu6)
    if op is None:
        op = {"depthwise": "depthwise_conv2d", "pointwise": "pointwise_conv2d"}.get(covers(g, x.dtype), "conv2d")
    for name, counters in recorded.items():
        counting.record(op if name == "conv" else name, **counters)
    return y[0] if g.unbatched else y
