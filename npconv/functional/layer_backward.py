"""Backward passes of MobileNet's non-convolution layers, the partners of `npconv.ops`.

    grad_input, grad_weight, grad_bias = batch_norm2d_backward(gy, x, weight, mean=m, var=v, training=True)
    grad_input = relu6_backward(gy, x)

Each function takes dL/dy (`grad_output`) and what the forward saw, checks them, hands
C-contiguous float32/float64 arrays to its reference kernel in `npconv.kernels`
(`<layer>_backward.py`) and records the counts the kernel's loops returned under its own
op, apart from the forward's:

    batch_norm2d_backward         bn_normalize, bn_grad_sum_adds, bn_grad_dot_macs, bn_grad_input
    relu_backward, relu6_backward activation_compares
    adaptive_avg_pool2d_backward  pool_grad_adds, pool_grad_divides
    linear_grad_input             macs
    linear_grad_weight            macs
    linear_grad_bias              adds
    add_backward                  residual_grad_adds (the sum at a residual connection's fork)
    flatten_backward              nothing (a reshape), one call
    dropout_backward              dropout_grad_multiplies
    channel_shuffle_backward      shuffle_grad_copies

The formulas, derivations and closed-form counts are in the kernels' docstrings,
`npconv.formulas.layers` and docs/backward.md ("Training a network").

Precision: as the forward, float32 and float64 in their own precision, float16 widened to
float32 and each gradient rounded once to float16. grad_output must have the forward
output's shape and the input's dtype; weights and statistics are converted to the
input's dtype.
"""

from __future__ import annotations

import numpy as np

from .. import counting
from .backward import _check_grad_output
from ..dtypes import check_flag, compute_dtype, finish
from ..geometry import check_array
from ..kernels.adaptive_avg_pool2d_backward import adaptive_avg_pool2d_backward as _pool_backward
from ..kernels.add_backward import residual_add_backward as _residual_add_backward
from ..kernels.batch_norm2d_backward import batch_norm2d_backward_eval, batch_norm2d_backward_train
from ..kernels.channel_shuffle_backward import channel_shuffle_backward as _shuffle_backward
from ..kernels.dropout_backward import dropout_backward as _dropout_backward
from ..kernels.linear_backward import linear_grad_bias, linear_grad_input, linear_grad_weight
from ..kernels.relu6_backward import relu6_backward as _relu6_backward
from ..kernels.relu_backward import relu_backward as _relu_backward

__all__ = [
    "adaptive_avg_pool2d_backward",
    "batch_norm2d_backward",
    "channel_shuffle_backward",
    "dropout_backward",
    "flatten_backward",
    "linear_backward",
    "relu6_backward",
    "relu_backward",
    "residual_add_backward",
]


def _channel_vector(value, name: str, op: str, channels: int, dtype) -> np.ndarray:
    value = check_array(value, name, op)
    if value.shape != (channels,):
        raise ValueError(f"{op}(): {name} should contain {channels} elements, but got shape {list(value.shape)}")
    return np.ascontiguousarray(value, dtype=dtype)


# --------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------


def batch_norm2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    mean: np.ndarray,
    var: np.ndarray,
    training: bool,
    eps: float = 1e-5,
    needs_input_grad: bool = True,
):
    """Gradients of y = batch_norm2d(input, ..., weight, bias, training, eps) (npconv.ops).

    Shapes: grad_output and input (N, C, H, W); weight, mean, var (C,). `mean` and `var`
    are the statistics the forward normalised with: in training the batch's mean and
    *biased* variance (`BatchNormTrainResult.batch_mean`, `.batch_var`; PyTorch's
    save_mean and 1 / save_invstd^2 - eps), in evaluation the running statistics. With
    x_hat = (x - mean) / sqrt(var + eps):

        grad_bias[c]   = sum_{n,i,j} gy
        grad_weight[c] = sum_{n,i,j} gy * x_hat
        training:   grad_input = weight / sqrt(var + eps) * (gy - mean(gy) - x_hat * mean(gy * x_hat))
        evaluation: grad_input = weight / sqrt(var + eps) * gy

    (means over each channel's N*H*W values; derivation in
    npconv/kernels/batch_norm2d_backward.py). weight=None is a layer without affine
    parameters: weight 1, and grad_weight, grad_bias are None. grad_input is None when
    needs_input_grad=False. Returns (grad_input, grad_weight, grad_bias).

    Records op "batch_norm2d_backward": bn_normalize, bn_grad_sum_adds, bn_grad_dot_macs
    (N*C*H*W each pass), bn_grad_input (N*C*H*W).
    """
    op = "batch_norm2d_backward"
    training = check_flag(training, "training", op)
    needs_input_grad = check_flag(needs_input_grad, "needs_input_grad", op)
    input = check_array(input, "input", op)
    if input.ndim != 4:
        raise ValueError(f"{op}(): expected 4D input (got {input.ndim}D input)")
    grad_output = _check_grad_output(grad_output, input, input.shape, op)
    N, C, H, W = input.shape
    if training and N * H * W <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(input.shape)}")
    out_dtype = input.dtype
    dtype = compute_dtype(out_dtype)
    affine = weight is not None
    gamma = np.ones(C, dtype) if not affine else _channel_vector(weight, "weight", op, C, dtype)
    mean = _channel_vector(mean, "mean", op, C, dtype)
    var = _channel_vector(var, "var", op, C, dtype)
    x = np.ascontiguousarray(input, dtype=dtype)
    gy = np.ascontiguousarray(grad_output, dtype=dtype)
    gx = np.empty_like(x) if needs_input_grad else np.empty((0, 0, 0, 0), dtype)
    grad_weight = np.empty(C, dtype)
    grad_bias = np.empty(C, dtype)
    kernel = batch_norm2d_backward_train if training else batch_norm2d_backward_eval
    normalize, sum_adds, dot_macs, input_grads = kernel(
        gy, x, mean, var, gamma, dtype.type(eps), needs_input_grad, gx, grad_weight, grad_bias)
    counting.record(op, bn_normalize=normalize, bn_grad_sum_adds=sum_adds, bn_grad_dot_macs=dot_macs,
                    bn_grad_input=input_grads)
    return (finish(gx if needs_input_grad else None, out_dtype),
            finish(grad_weight if affine else None, out_dtype),
            finish(grad_bias if affine else None, out_dtype))


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------


def _activation_backward(kernel, grad_output, input, op: str) -> np.ndarray:
    input = check_array(input, "input", op)
    grad_output = _check_grad_output(grad_output, input, input.shape, op)
    dtype = compute_dtype(input.dtype)
    x = np.ascontiguousarray(input, dtype=dtype).reshape(-1)
    gy = np.ascontiguousarray(grad_output, dtype=dtype).reshape(-1)
    gx = np.empty_like(x)
    compares = kernel(x, gy, gx)
    counting.record(op, activation_compares=compares)
    return gx.reshape(input.shape).astype(input.dtype, copy=False)


def relu_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    """dL/dx of y = relu(x): gy where x > 0, else 0 (0 at x = 0, as PyTorch). Any shape.
    Records op "relu_backward": activation_compares, one per element."""
    return _activation_backward(_relu_backward, grad_output, input, "relu_backward")


def relu6_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    """dL/dx of y = relu6(x): gy where 0 < x < 6, else 0 (0 at both corners, as PyTorch's
    hardtanh_backward; NaN inputs pass gy). Any shape. Records op "relu6_backward":
    activation_compares, two per element."""
    return _activation_backward(_relu6_backward, grad_output, input, "relu6_backward")


# --------------------------------------------------------------------------------------
# Pooling, linear, reshaping, residual connections
# --------------------------------------------------------------------------------------


def adaptive_avg_pool2d_backward(grad_output: np.ndarray, input_shape) -> np.ndarray:
    """dL/dx of y = adaptive_avg_pool2d(x, (OH, OW)) for x of shape `input_shape`
    ((N, C, H, W) or (C, H, W)); grad_output is (..., OH, OW), the output size read from it.

        gx[n, c, h, w] = sum over the windows (i, j) containing (h, w) of gy[n, c, i, j] / |window(i, j)|

    Records op "adaptive_avg_pool2d_backward": pool_grad_divides (one per output element)
    and pool_grad_adds (one per (window, position) pair, = the forward's pool_adds).
    """
    op = "adaptive_avg_pool2d_backward"
    grad_output = check_array(grad_output, "grad_output", op)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) not in (3, 4):
        raise ValueError(f"{op}(): Expected 3D or 4D input shape, but got {list(input_shape)}")
    if any(s <= 0 for s in input_shape[1:]):
        raise ValueError(f"{op}(): Expected an input with non-zero size for non-batch dimensions, "
                         f"but got {list(input_shape)}")
    if grad_output.ndim != len(input_shape) or grad_output.shape[:-2] != input_shape[:-2]:
        raise ValueError(
            f"{op}(): grad_output of shape {list(grad_output.shape)} does not belong to an input of shape "
            f"{list(input_shape)} (expected {list(input_shape[:-2])} + [OH, OW])"
        )
    unbatched = len(input_shape) == 3
    dtype = compute_dtype(grad_output.dtype)
    gy = np.ascontiguousarray(grad_output[np.newaxis] if unbatched else grad_output, dtype=dtype)
    shape4 = (1,) + input_shape if unbatched else input_shape
    gx = np.empty(shape4, dtype=dtype)
    adds, divides = _pool_backward(gy, gx)
    counting.record(op, pool_grad_adds=adds, pool_grad_divides=divides)
    gx = gx.astype(grad_output.dtype, copy=False)
    return gx[0] if unbatched else gx


def linear_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    *,
    bias: bool = True,
    needs_input_grad: bool = True,
):
    """Gradients of y = linear(x, W, b) = x W^T + b.

    Shapes: input (*, IN), weight (OUT, IN), grad_output (*, OUT). Returns
    (grad_input (*, IN), grad_weight (OUT, IN), grad_bias (OUT,)):

        grad_input  = gy W        grad_weight = gy^T x        grad_bias = sum of gy over the rows

    grad_bias is None when bias=False, grad_input None when needs_input_grad=False.
    Records ops "linear_grad_input" and "linear_grad_weight" (macs: rows * OUT * IN each,
    the forward's MACs) and "linear_grad_bias" (adds: rows * OUT).
    """
    op = "linear_backward"
    bias = check_flag(bias, "bias", op)
    needs_input_grad = check_flag(needs_input_grad, "needs_input_grad", op)
    input = check_array(input, "input", op)
    weight = check_array(weight, "weight", op)
    if weight.ndim != 2:
        raise ValueError(f"{op}(): weight must be 2-D (out_features, in_features), but got {list(weight.shape)}")
    if input.ndim == 0:
        raise ValueError(f"{op}(): input must have at least 1 dimension, but got a 0-d array")
    out_features, in_features = weight.shape
    if input.shape[-1] != in_features:
        rows = int(np.prod(input.shape[:-1], dtype=np.int64))
        raise ValueError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and {in_features}x{out_features})"
        )
    grad_output = _check_grad_output(grad_output, input, input.shape[:-1] + (out_features,), op)
    out_dtype = input.dtype
    dtype = compute_dtype(out_dtype)
    rows = int(np.prod(input.shape[:-1], dtype=np.int64))
    x = np.ascontiguousarray(input, dtype=dtype).reshape(rows, in_features)
    gy = np.ascontiguousarray(grad_output, dtype=dtype).reshape(rows, out_features)
    w = np.ascontiguousarray(weight, dtype=dtype)

    grad_input = None
    if needs_input_grad:
        grad_input = np.empty((rows, in_features), dtype)
        macs = linear_grad_input(gy, w, grad_input)
        counting.record("linear_grad_input", macs=macs)
        grad_input = grad_input.reshape(input.shape)
    grad_weight = np.empty((out_features, in_features), dtype)
    macs = linear_grad_weight(gy, x, grad_weight)
    counting.record("linear_grad_weight", macs=macs)
    grad_bias = None
    if bias:
        grad_bias = np.empty(out_features, dtype)
        adds = linear_grad_bias(gy, grad_bias)
        counting.record("linear_grad_bias", adds=adds)
    return finish(grad_input, out_dtype), finish(grad_weight, out_dtype), finish(grad_bias, out_dtype)


def flatten_backward(grad_output: np.ndarray, input_shape) -> np.ndarray:
    """dL/dx of y = flatten(x, ...): grad_output reshaped back to `input_shape`. A reshape
    moves and computes nothing; records op "flatten_backward" (a call, no counts)."""
    op = "flatten_backward"
    grad_output = check_array(grad_output, "grad_output", op)
    input_shape = tuple(int(s) for s in input_shape)
    if int(np.prod(input_shape, dtype=np.int64)) != grad_output.size:
        raise ValueError(f"{op}(): grad_output of shape {list(grad_output.shape)} cannot be the gradient of a "
                         f"flattened input of shape {list(input_shape)}")
    counting.record(op)
    return grad_output.reshape(input_shape)


def residual_add_backward(grad_output: np.ndarray, grad_branch: np.ndarray) -> np.ndarray:
    """dL/dx of a residual block y = x + F(x): the add hands gy to both operands unchanged,
    and x, which feeds both the shortcut and F, collects the sum of the two gradients,

        grad_input = grad_output + grad_branch      grad_branch = dL/dx through F

    Both arrays of one shape and dtype. Records op "add_backward": residual_grad_adds, one
    per element.
    """
    op = "add_backward"
    grad_output = check_array(grad_output, "grad_output", op)
    grad_branch = check_array(grad_branch, "grad_branch", op)
    if grad_branch.dtype != grad_output.dtype:
        raise TypeError(f"{op}(): grad_output and grad_branch must have one dtype, but got "
                        f"{grad_output.dtype} and {grad_branch.dtype}")
    if grad_branch.shape != grad_output.shape:
        raise ValueError(f"{op}(): grad_output of shape {list(grad_output.shape)} and grad_branch of shape "
                         f"{list(grad_branch.shape)} differ")
    dtype = compute_dtype(grad_output.dtype)
    gy = np.ascontiguousarray(grad_output, dtype=dtype).reshape(-1)
    gb = np.ascontiguousarray(grad_branch, dtype=dtype).reshape(-1)
    gx = np.empty_like(gy)
    adds = _residual_add_backward(gy, gb, gx)
    counting.record(op, residual_grad_adds=adds)
    return gx.reshape(grad_output.shape).astype(grad_output.dtype, copy=False)


# --------------------------------------------------------------------------------------
# Dropout, channel shuffle
# --------------------------------------------------------------------------------------


def dropout_backward(grad_output: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
    """dL/dx of y = dropout(x, p) in training, from the forward's keep-mask (same shape as
    grad_output, booleans): gy / (1 - p) where kept, 0 where dropped (0 everywhere for
    p = 1). Records op "dropout_backward": dropout_grad_multiplies, one per kept element."""
    op = "dropout_backward"
    grad_output = check_array(grad_output, "grad_output", op)
    keep = np.asarray(keep)
    if keep.dtype != np.bool_ or keep.shape != grad_output.shape:
        raise ValueError(f"{op}(): keep must be a boolean mask of grad_output's shape {list(grad_output.shape)}, "
                         f"got {keep.dtype} {list(keep.shape)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    dtype = compute_dtype(grad_output.dtype)
    gy = np.ascontiguousarray(grad_output, dtype=dtype).reshape(-1)
    gx = np.empty_like(gy)
    scale = dtype.type(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    multiplies = _dropout_backward(gy, np.ascontiguousarray(keep).reshape(-1), scale, gx)
    counting.record(op, dropout_grad_multiplies=multiplies)
    return gx.reshape(grad_output.shape).astype(grad_output.dtype, copy=False)


def channel_shuffle_backward(grad_output: np.ndarray, groups: int) -> np.ndarray:
    """dL/dx of y = channel_shuffle(x, groups) for (N, C, *) arrays: the inverse permutation,
    gx[:, i*(C/g) + j] = gy[:, j*g + i]. Records op "channel_shuffle_backward":
    shuffle_grad_copies, one per element."""
    op = "channel_shuffle_backward"
    grad_output = check_array(grad_output, "grad_output", op)
    if grad_output.ndim <= 2 or groups <= 0 or grad_output.shape[1] % groups != 0:
        raise ValueError(f"{op}(): grad_output of shape {list(grad_output.shape)} cannot come from a channel "
                         f"shuffle with {groups} groups")
    dtype = compute_dtype(grad_output.dtype)
    N, C = grad_output.shape[:2]
    spatial = int(np.prod(grad_output.shape[2:], dtype=np.int64))
    gy = np.ascontiguousarray(grad_output, dtype=dtype).reshape(N, C, spatial)
    gx = np.empty_like(gy)
    copies = _shuffle_backward(gy, gx, int(groups))
    counting.record(op, shuffle_grad_copies=copies)
    return gx.reshape(grad_output.shape).astype(grad_output.dtype, copy=False)
