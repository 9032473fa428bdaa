"""Functional forms of MobileNet's non-convolution layers, mirroring `torch.nn.functional`.

    batch_norm            normalise each channel (axis 1) by running or batch statistics,
                          any (N, C, *) input: F.batch_norm (BatchNorm1d/2d/3d's inputs)
    batch_norm2d          the same for an (N, C, H, W) input only
    relu, relu6           max(x, 0) and min(max(x, 0), 6)
    adaptive_avg_pool2d   average pooling to a given output size (PyTorch's window rule)
    adaptive_avg_pool1d/3d  the same over one and three axes
    linear                y = x W^T + b
    flatten               merge a range of dimensions (a reshape: moves and counts nothing)
    channel_shuffle       ShuffleNet's channel permutation
    dropout               inverted dropout (training) or the identity
    add                   element-wise sum, the residual connection

NumPy arrays in and out. Each function checks its arguments, raises ValueError/TypeError
with PyTorch's wording where PyTorch rejects the same call, and hands C-contiguous float32
or float64 arrays to its reference kernel in `npconv.kernels`, recording the counts the
kernel's loops returned with `npconv.counting.record` under the op's name.

Precision: float32 and float64 are computed in their own precision; float16 and bfloat16
are widened to float32, computed, and rounded back once. Parameters (weights, statistics) are
converted to the input's dtype.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import counting
from .. import engine as engines
from .. import memory
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import check_array, int_pair, int_tuple
from ..kernels import adaptive_avg_pool2d as pool_kernel
from ..kernels import adaptive_avg_pool3d as pool3d_kernel
from ..kernels import add as add_kernel
from ..kernels import batch_norm2d as bn_kernel
from ..kernels import channel_shuffle as shuffle_kernel
from ..kernels import dropout as dropout_kernel
from ..kernels import linear as linear_kernel
from ..kernels import relu as relu_kernel
from ..kernels import relu6 as relu6_kernel

__all__ = [
    "BatchNormTrainResult",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "add",
    "batch_norm",
    "batch_norm2d",
    "channel_shuffle",
    "dropout",
    "flatten",
    "linear",
    "relu",
    "relu6",
]


def _parameter(value, name: str, op: str, channels: int, dtype: np.dtype, default: float | None = None):
    """A per-channel vector in `dtype`: `value`, or `default` everywhere when value is None."""
    if value is None:
        if default is None:
            return None
        return np.full(channels, default, dtype=dtype)
    value = check_array(value, name, op)
    if value.shape != (channels,):
        raise ValueError(f"{name} should contain {channels} elements not {value.size}")
    return as_kernel_array(value, dtype)


# --------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------


class BatchNormTrainResult(NamedTuple):
    """What a training-mode `batch_norm2d` returns.

    output: (N, C, H, W) normalised with the batch statistics (biased variance);
    running_mean, running_var: (C,) the updated running statistics (new arrays; None when
    none were given); batch_mean, batch_var: (C,) the batch's mean and biased variance.
    """

    output: np.ndarray
    running_mean: np.ndarray | None
    running_var: np.ndarray | None
    batch_mean: np.ndarray
    batch_var: np.ndarray


def batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Batch normalisation of an (N, C, *) input over every axis but the channels' (axis 1),
    `torch.nn.functional.batch_norm` with its arguments: (N, C) and (N, C, L) are
    BatchNorm1d's inputs, (N, C, H, W) BatchNorm2d's, (N, C, D, H, W) BatchNorm3d's, and any
    other rank >= 2 is normalised the same way.

        y[n, c, *s] = (x[n, c, *s] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

    with, in training, the m = N * prod(*) values of channel c giving its batch mean and
    variance. Computed as `batch_norm2d` on the input viewed as (N, C, 1, prod(*)) (the same
    values per channel, summed in the same order as a loop over n and then the trailing
    axes): the same kernel, semantics, errors and results, for which see `batch_norm2d`.

    A rank-1 input has no channel axis: PyTorch reads its size 1, out of range. An empty one
    is read as an empty batch without channels ((0,) as (0, 0): statistics of 0 elements, an
    empty output, the running statistics kept), which is what PyTorch returns for it; a
    non-empty one, and a 0-d input, raise IndexError with PyTorch's message.

    Counts under op "batch_norm1d" (ranks 2 and 3), "batch_norm2d" (4), "batch_norm3d" (5)
    or "batch_norm" (higher ranks): as `batch_norm2d`'s.
    """
    input = check_array(input, "input", "batch_norm")
    if input.ndim < 2 and not (input.ndim == 1 and input.size == 0):
        raise IndexError(f"Dimension out of range (expected to be in range of [-{max(input.ndim, 1)}, "
                         f"{max(input.ndim, 1) - 1}], but got 1)")
    op = {2: "batch_norm1d", 3: "batch_norm1d", 4: "batch_norm2d", 5: "batch_norm3d"}.get(input.ndim, "batch_norm")
    N, C = (input.shape[0], input.shape[1]) if input.ndim >= 2 else (0, 0)
    plane = input if input.ndim == 4 else input.reshape(N, C, 1, int(np.prod(input.shape[2:], dtype=np.int64)))
    result = _batch_norm(plane, running_mean, running_var, weight, bias, training, momentum, eps, op,
                         shape=list(input.shape))
    if not training:
        return result.reshape(input.shape)
    return result._replace(output=result.output.reshape(input.shape))


def batch_norm2d(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Batch normalisation of an (N, C, H, W) input, with `torch.nn.functional.batch_norm`'s
    arguments.

    y[n, c, i, j] = (x[n, c, i, j] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
    (weight 1 and bias 0 when None).

    Evaluation (training=False): mean and var are running_mean and running_var, which must
    be given. Returns the output array.

    Training (training=True): mean and var are the batch's, over the m = N*H*W values of each
    channel; the output is normalised with the biased variance. When running statistics are
    given, they are blended with the batch's (the unbiased variance, var * m / (m - 1)):
    running = (1 - momentum) * running + momentum * batch, for any momentum (PyTorch takes
    values outside [0, 1], NaN and infinities too). Unlike PyTorch, which updates them in
    place, this function leaves its arguments alone and returns a `BatchNormTrainResult`
    holding the output and the new running statistics. momentum must be a number, as in
    F.batch_norm; nn.BatchNorm2d's momentum=None (a cumulative average) is the caller's:
    pass 1 / num_batches_tracked. An empty batch (m = 0) gives an empty output and leaves the
    running statistics as they are (PyTorch's result; its batch statistics are NaN).

    Raises ValueError, as PyTorch does: for a non-4D input, statistics of the wrong length;
    in training for a batch with a single value per channel (the unbiased variance would
    divide by zero) and for eps <= 0; in evaluation for eps < 0 (eps = 0 is accepted: a
    zero variance then gives PyTorch's infinities and NaNs, y = x * a + (bias - mean * a)
    with a = weight / sqrt(0)). TypeError for a momentum that is not a number.

    Counts (op "batch_norm2d"): bn_scale_shift per output element; in training also
    bn_mean_adds and bn_var_macs per input element and bn_running_updates per running
    statistic updated.
    """
    op = "batch_norm2d"
    input = check_array(input, "input", op)
    if input.ndim != 4:
        raise ValueError(f"expected 4D input (got {input.ndim}D input)")
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, op)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, op: str, shape=None):
    """batch_norm2d after its rank check, on an (N, C, H, W) array; `op` names the counts and
    `shape` is the caller's input shape, for the messages (the array's own by default)."""
    shape = list(input.shape) if shape is None else shape
    if not isinstance(momentum, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"batch_norm(): argument 'momentum' (position 7) must be float, not {type(momentum).__name__}")
    if not isinstance(eps, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"batch_norm(): argument 'eps' (position 8) must be float, not {type(eps).__name__}")
    N, C, H, W = input.shape
    m = N * H * W
    # F.batch_norm's own checks, in its order
    if training and m == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {shape}"
        )
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype)
    weight = _parameter(weight, "weight", op, C, dtype, default=1.0)
    bias = _parameter(bias, "bias", op, C, dtype, default=0.0)
    running_mean = _parameter(running_mean, "running_mean", op, C, dtype)
    running_var = _parameter(running_var, "running_var", op, C, dtype)
    y = np.empty_like(x)

    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}(): running_mean and running_var must be given when training=False")
        scale_shifts = _normalize(x, running_mean, running_var, weight, bias, float(eps), y)
        counting.record(op, bn_scale_shift=scale_shifts)
        return finish(y, input.dtype)

    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}(): give both running_mean and running_var, or neither")
    mean = np.empty(C, dtype=dtype)
    var = np.empty(C, dtype=dtype)
    var_sum = np.empty(C, dtype=dtype)
    updates = 0
    if m == 0:  # nothing to normalise and no statistics: the running ones stay (PyTorch)
        mean_adds = var_macs = scale_shifts = 0
        mean.fill(np.nan)
        var.fill(np.nan)
        if running_mean is not None:
            running_mean, running_var = running_mean.copy(), running_var.copy()
    else:
        mean_adds, var_macs = bn_kernel.batch_statistics(x, mean, var, var_sum)
        scale_shifts = _normalize(x, mean, var, weight, bias, float(eps), y)
        if running_mean is not None:
            running_mean = running_mean.copy()
            running_var = running_var.copy()
            with np.errstate(all="ignore"):
                factor = dtype.type(momentum)
            updates = bn_kernel.update_running_stats(running_mean, running_var, mean, var_sum, m, factor)
    counting.record(
        op, bn_mean_adds=mean_adds, bn_var_macs=var_macs, bn_scale_shift=scale_shifts, bn_running_updates=updates
    )
    return BatchNormTrainResult(*(finish(a, input.dtype) for a in (y, running_mean, running_var, mean, var)))


def _normalize(x, mean, var, weight, bias, eps: float, y) -> int:
    """The normalisation kernel, except for channels with var + eps == 0 in the kernel's dtype
    (eps = 0 in evaluation with a zero running variance, or a positive eps too small for the
    dtype with a constant channel in training), where the kernel's 1 / sqrt(0) would raise
    ZeroDivisionError (Numba). PyTorch's CPU kernel computes y = x * a + (bias - mean * a)
    with a = weight / sqrt(var + eps), the square root taken in double: infinite (IEEE
    arithmetic then gives its mix of infinities and NaNs) or merely huge; npconv does the
    same in NumPy for those channels ((x - mean) * a + bias would differ)."""
    dtype = x.dtype.type
    zero = (var + dtype(eps)) == 0
    if not zero.any():
        return bn_kernel.normalize(x, mean, var, weight, bias, dtype(eps), y)
    scale_shifts = bn_kernel.normalize(x, mean, np.where(zero, dtype(1), var), weight, bias, dtype(eps), y)
    with np.errstate(all="ignore"):
        inverse = (1 / np.sqrt(var[zero].astype(np.float64) + eps)).astype(x.dtype)
        a = weight[zero] * inverse
        b = bias[zero] - mean[zero] * a
        y[:, zero] = x[:, zero] * a[:, None, None] + b[:, None, None]
    return scale_shifts


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------


def _elementwise(kernel, input: np.ndarray, op: str, kind: str) -> np.ndarray:
    input = check_array(input, "input", op)
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype).reshape(-1)
    y = np.empty_like(x)
    n = kernel(x, y)
    counting.record(op, **{kind: n})
    return finish(y.reshape(input.shape), input.dtype)


def relu(input: np.ndarray) -> np.ndarray:
    """max(x, 0) element-wise, any shape. Counts activation_compares (one per element)."""
    return _elementwise(relu_kernel.relu, input, "relu", "activation_compares")


def relu6(input: np.ndarray) -> np.ndarray:
    """min(max(x, 0), 6) element-wise, any shape. Counts activation_compares (two per element)."""
    return _elementwise(relu6_kernel.relu6, input, "relu6", "activation_compares")


# --------------------------------------------------------------------------------------
# Pooling, linear, reshaping
# --------------------------------------------------------------------------------------


def _output_size_pair(output_size, height: int, width: int) -> tuple[int, int]:
    """PyTorch's AdaptiveAvgPool2d output_size: an int, or a pair whose None keeps the input size."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be 2, but got {len(output_size)}")
        oh, ow = output_size
        oh = height if oh is None else oh
        ow = width if ow is None else ow
        oh, ow = int_pair((oh, ow), "output_size", "adaptive_avg_pool2d")
    else:
        oh, ow = int_pair(output_size, "output_size", "adaptive_avg_pool2d")
    if oh < 0 or ow < 0:
        raise ValueError(f"adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 "
                         f"but received {[oh, ow]}")
    return oh, ow


def adaptive_avg_pool2d(input: np.ndarray, output_size) -> np.ndarray:
    """Average pooling of (N, C, H, W) or (C, H, W) to (…, OH, OW), any output size.

    Output cell (i, j) averages rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1 and the same for
    columns (PyTorch's rule; windows overlap when OH does not divide H). output_size: an int,
    or (OH, OW) with None meaning "the input's size". Counts pool_adds and pool_divides.
    """
    op = "adaptive_avg_pool2d"
    input = check_array(input, "input", op)
    if input.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(input.shape)}")
    _check_pooled_sizes(input, 2, op)
    unbatched = input.ndim == 3
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    N, C, H, W = x.shape
    oh, ow = _output_size_pair(output_size, H, W)
    y = np.empty((N, C, oh, ow), dtype=x.dtype)
    adds, divides = pool_kernel.adaptive_avg_pool2d(x, y)
    counting.record(op, pool_adds=adds, pool_divides=divides)
    return finish(y, input.dtype, unbatched)


def _check_pooled_sizes(input: np.ndarray, dims: int, op: str) -> None:
    """PyTorch's check of the pooled axes (the last `dims`): none may be empty. (Its message
    says "non-batch dimensions" but it checks the pooled ones only: a batch or channel axis
    of size 0 gives an empty output.)"""
    for d in range(input.ndim - dims, input.ndim):
        if input.shape[d] == 0:
            raise ValueError(
                f"{op}(): Expected input to have non-zero size for non-batch dimensions, "
                f"but input has sizes {list(input.shape)} with dimension {d} being empty"
            )


def adaptive_avg_pool1d(input: np.ndarray, output_size) -> np.ndarray:
    """Average pooling of (N, C, L) or (C, L) to (..., OL), `F.adaptive_avg_pool1d`: output cell
    i averages positions floor(i*L/OL) .. ceil((i+1)*L/OL) - 1. output_size: an int or a
    1-tuple. Computed as `adaptive_avg_pool2d` on the plane of height 1 (as PyTorch computes
    it): the same kernel, windows and counts, recorded under op "adaptive_avg_pool1d".
    """
    op = "adaptive_avg_pool1d"
    input = check_array(input, "input", op)
    if input.ndim not in (2, 3):
        raise ValueError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for argument #1 "
                         f"'self' (while checking arguments for adaptive_avg_pool1d)")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 1:
            raise ValueError(f"adaptive_avg_pool1d() argument 'output_size' should contain one int "
                             f"(got {len(output_size)})")
        (output_size,) = output_size
    if isinstance(output_size, bool) or not isinstance(output_size, (int, np.integer)):
        raise TypeError(f"adaptive_avg_pool1d(): argument 'output_size' (position 2) must be tuple of ints, "
                        f"not {type(output_size).__name__}")
    with counting.paused(), counting.count() as inner:  # the plane's counts, recorded under the 1-D name
        y = adaptive_avg_pool2d(input[..., np.newaxis, :], (1, int(output_size)))
    for counts in inner.by_op.values():
        counting.record(op, **{kind: n for kind, n in counts.as_dict().items() if kind != "calls"})
    return y[..., 0, :]


def adaptive_avg_pool3d(input: np.ndarray, output_size) -> np.ndarray:
    """Average pooling of (N, C, D, H, W) or (C, D, H, W) to (..., OD, OH, OW),
    `F.adaptive_avg_pool3d`: PyTorch's window rule on each axis (npconv/kernels/
    adaptive_avg_pool3d.py). output_size: an int, or a triple whose None keeps the input's
    size. Counts pool_adds and pool_divides under op "adaptive_avg_pool3d".
    """
    op = "adaptive_avg_pool3d"
    input = check_array(input, "input", op)
    if input.ndim not in (4, 5):
        raise ValueError(f"adaptive_avg_pool3d(): Expected 4D or 5D tensor, but got {list(input.shape)}")
    _check_pooled_sizes(input, 3, op)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 3:
            raise ValueError("adaptive_avg_pool3d: output_size must be 3")
        sizes = tuple(input.shape[-3 + k] if s is None else s for k, s in enumerate(output_size))
    else:
        sizes = (output_size,) * 3
    sizes = int_tuple(sizes, "output_size", 3, op)
    if min(sizes) < 0:
        raise ValueError(f"adaptive_avg_pool3d: elements of output_size must be greater than or equal to 0 "
                         f"but received {{{sizes[0]}, {sizes[1]},{sizes[2]}}}")
    unbatched = input.ndim == 4
    x = as_kernel_array(input, compute_dtype(input.dtype), unbatched)
    y = np.empty(x.shape[:2] + sizes, dtype=x.dtype)
    adds, divides = pool3d_kernel.adaptive_avg_pool3d(x, y)
    counting.record(op, pool_adds=adds, pool_divides=divides)
    return finish(y, input.dtype, unbatched)


def linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
           engine: str | None = None) -> np.ndarray:
    """y = x W^T + b over the last dimension.

    Shapes: input (*, IN) with at least one dimension, weight (OUT, IN), bias (OUT,) or None;
    returns (*, OUT). Counts macs (N*OUT*IN for N rows) and bias_adds (N*OUT). engine: as for
    conv2d ("fast": one BLAS product, `npconv/fast/linear.py`; empty arrays stay on the
    reference kernel).
    """
    op = "linear"
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    if weight.ndim != 2:
        raise ValueError(f"linear(): weight must be 2-D (out_features, in_features), but got {list(weight.shape)}")
    if input.ndim == 0:
        raise ValueError("linear(): input must have at least 1 dimension, but got a 0-d array")
    out_features, in_features = weight.shape
    if input.shape[-1] != in_features:
        rows = int(np.prod(input.shape[:-1], dtype=np.int64))
        raise ValueError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and {in_features}x{out_features})"
        )
    if bias is not None:
        bias = check_array(bias, "bias", op)
        if bias.shape != (out_features,):
            raise ValueError(f"linear(): bias must have shape ({out_features},), but got {list(bias.shape)}")
    dtype = compute_dtype(input.dtype)
    rows = int(np.prod(input.shape[:-1], dtype=np.int64))
    x = as_kernel_array(input, dtype).reshape(rows, in_features)  # (-1 cannot be inferred when in_features == 0)
    w = as_kernel_array(weight, dtype)
    b = np.zeros(0, dtype) if bias is None else as_kernel_array(bias, dtype)
    memory.check_output(op, (x.shape[0], out_features), dtype)
    if engines.resolve(engine) == "fast":
        from ..fast import linear as fast_linear  # imported on first use: the reference path never loads it

        if fast_linear.covers(x, w):
            y, (macs, bias_adds) = fast_linear.linear(x, w, None if bias is None else b)
            counting.record(op, macs=macs, bias_adds=bias_adds)
            return finish(y.reshape(input.shape[:-1] + (out_features,)), input.dtype)
    y = np.empty((x.shape[0], out_features), dtype=dtype)
    macs, bias_adds = linear_kernel.linear(x, w, b, bias is not None, y)
    counting.record(op, macs=macs, bias_adds=bias_adds)
    return finish(y.reshape(input.shape[:-1] + (out_features,)), input.dtype)


def _normalize_dim(dim: int, ndim: int) -> int:
    low, high = (-ndim, ndim - 1) if ndim > 0 else (-1, 0)
    if not low <= dim <= high:
        raise IndexError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {dim})")
    return dim % max(ndim, 1)


def flatten(input: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge dimensions start_dim..end_dim into one, as `torch.flatten`. A reshape: no
    arithmetic, so it records only a call (op "flatten")."""
    input = check_array(input, "input", "flatten")
    start = _normalize_dim(start_dim, input.ndim)
    end = _normalize_dim(end_dim, input.ndim)
    if start > end:
        raise ValueError("flatten() has invalid args: start_dim cannot come after end_dim")
    counting.record("flatten")
    if input.ndim == 0:
        return input.reshape(1)
    merged = int(np.prod(input.shape[start:end + 1], dtype=np.int64))
    return input.reshape(input.shape[:start] + (merged,) + input.shape[end + 1:])


def channel_shuffle(input: np.ndarray, groups: int) -> np.ndarray:
    """ShuffleNet's channel shuffle of an (N, C, *) input: output channel j*g + i is input
    channel i*(C/g) + j. Counts shuffle_copies (one per element)."""
    op = "channel_shuffle"
    input = check_array(input, "input", op)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"channel_shuffle(): groups must be an int, not {type(groups).__name__}")
    if groups <= 0:
        raise ValueError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    if input.ndim <= 2:
        raise ValueError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    channels = input.shape[1]
    if channels % groups != 0:
        raise ValueError(
            f"Number of channels must be divisible by groups. Got {channels} channels and {groups} groups."
        )
    dtype = compute_dtype(input.dtype)
    spatial = int(np.prod(input.shape[2:], dtype=np.int64))
    x = as_kernel_array(input, dtype).reshape(input.shape[0], channels, spatial)  # (-1 fails on an empty batch)
    y = np.empty_like(x)
    copies = shuffle_kernel.channel_shuffle(x, y, int(groups))
    counting.record(op, shuffle_copies=copies)
    return finish(y.reshape(input.shape), input.dtype)


def dropout(input: np.ndarray, p: float = 0.5, training: bool = True, rng=None) -> np.ndarray:
    """Inverted dropout: in training, each element is zeroed with probability p and the kept
    ones are scaled by 1 / (1 - p); otherwise the input is returned unchanged (no copy).

    rng: a `numpy.random.Generator` or a seed, used for the keep mask (kept where a uniform
    draw in [0, 1) is >= p); None draws fresh entropy, so the mask is not reproducible.
    PyTorch's random stream is not reproduced; same seed, same mask.
    p = 1 zeroes everything. Counts dropout_multiplies (one per kept element) in training.
    """
    op = "dropout"
    input = check_array(input, "input", op)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training:
        return input
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    dtype = compute_dtype(input.dtype)
    x = as_kernel_array(input, dtype).reshape(-1)
    keep = rng.random(x.shape[0]) >= p
    scale = dtype.type(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    y = np.empty_like(x)
    multiplies = dropout_kernel.dropout(x, keep, scale, y)
    counting.record(op, dropout_multiplies=multiplies)
    return finish(y.reshape(input.shape), input.dtype)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b element-wise, for two arrays of one shape and dtype (a residual connection;
    no broadcasting). Counts residual_adds (one per element)."""
    op = "add"
    a = check_array(a, "a", op)
    b = check_array(b, "b", op)
    if a.dtype != b.dtype:
        raise TypeError(f"add(): both operands must have one dtype, but got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        if a.ndim != b.ndim:
            raise ValueError(f"add(): shapes {list(a.shape)} and {list(b.shape)} differ in their number of dimensions")
        dim = next(d for d in range(a.ndim) if a.shape[d] != b.shape[d])
        raise ValueError(
            f"The size of tensor a ({a.shape[dim]}) must match the size of tensor b ({b.shape[dim]}) "
            f"at non-singleton dimension {dim}"
        )
    dtype = compute_dtype(a.dtype)
    x = as_kernel_array(a, dtype).reshape(-1)
    z = as_kernel_array(b, dtype).reshape(-1)
    y = np.empty_like(x)
    adds = add_kernel.add(x, z, y)
    counting.record(op, residual_adds=adds)
    return finish(y.reshape(a.shape), a.dtype)
