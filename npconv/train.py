"""Training from first principles: cross-entropy, a forward and backward pass, plain SGD,
all counted.

    model = npconv.models.TinyMobileNet(rng=0).train()
    with npconv.count() as tally:
        step = npconv.train.train_step(model, x, target, lr=0.1)   # forward, backward, update
    step.loss, step.grads["features.0.weight"], tally.by_layer["features.3.dw_conv.0"]

The pieces, each usable alone:

    forward_backward(model, x, target)   loss, logits and dL/dparam for every parameter
    sgd_step(model, grads, lr)           param -= lr * grad, in place, for every parameter
    cross_entropy, cross_entropy_backward   the loss (PyTorch's F.cross_entropy, mean)

The data flow is the model's own: `forward_backward` runs `model(x)` inside
`npconv.nn.enable_grad()`, so each layer keeps what its backward needs (its input,
BatchNorm's batch statistics, Dropout's mask), then `model.backward(dL/dlogits)`, which
every npconv module writes under its forward (npconv.nn.Module). Nothing here knows a
model's structure. A layer whose input depends on no parameter (the first convolution)
skips its input gradient, as PyTorch does for an input that does not require grad.

Counting: inside `npconv.count()`, the forward records as always; the loss records
"cross_entropy" and "cross_entropy_backward"; each layer's backward records its ops
(conv2d_grad_input, conv2d_grad_weight, batch_norm2d_backward, relu6_backward, ...)
under the layer's qualified name in `tally.by_layer`, the names the forward uses; the
update records "sgd" under the layer owning each parameter. `StepResult.backward_by_layer`
also keeps each leaf layer's backward split by op. The per-layer cost table beside
FlopCounterMode's figures is `npconv.cost_backward.backward_cost_table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import counting
from .dtypes import compute_dtype
from .geometry import check_array
from .kernels.cross_entropy import cross_entropy as _cross_entropy_kernel
from .kernels.cross_entropy_backward import cross_entropy_backward as _cross_entropy_backward_kernel
from .kernels.sgd import sgd_step as _sgd_kernel
from .nn.module import Module, enable_grad, log_backward

__all__ = [
    "CrossEntropyResult",
    "StepResult",
    "cross_entropy",
    "cross_entropy_backward",
    "enable_grad",
    "forward_backward",
    "sgd_step",
    "train_step",
]


# --------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------


class CrossEntropyResult(NamedTuple):
    """loss: the batch-mean cross-entropy, a 0-d array of the logits' dtype; log_sum_exp:
    (N,) logsumexp of each row, which `cross_entropy_backward` reuses."""

    loss: np.ndarray
    log_sum_exp: np.ndarray


def _check_loss_arguments(logits, target, op: str):
    logits = check_array(logits, "input", op)
    if logits.ndim != 2:
        raise ValueError(f"{op}(): expected input of shape (N, C) with class scores, got {list(logits.shape)}")
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{op}(): argument 'target' must be a numpy.ndarray, not {type(target).__name__}")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"{op}(): expected target of integer class indices (scalar type Long), but got {target.dtype}")
    N, K = logits.shape
    if target.shape != (N,):
        raise ValueError(f"Expected input batch_size ({N}) to match target batch_size "
                         f"({target.shape[0] if target.ndim else 0}); target must have shape ({N},), "
                         f"got {list(target.shape)}")
    bad = (target < 0) | (target >= K)
    if bad.any():
        raise ValueError(f"Target {int(target[bad][0])} is out of bounds (classes 0..{K - 1}).")
    dtype = compute_dtype(logits.dtype)
    return logits, np.ascontiguousarray(logits, dtype=dtype), np.ascontiguousarray(target, dtype=np.int64)


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> CrossEntropyResult:
    """PyTorch's `F.cross_entropy(logits, target)` (reduction='mean'):
    (1/N) sum_n (logsumexp(z[n, :]) - z[n, target[n]]).

    logits (N, K) float; target (N,) integer class indices in [0, K). Records op
    "cross_entropy" (loss_compares, loss_exps, loss_logs, loss_adds). An empty batch gives
    NaN, as PyTorch does.
    """
    logits, z, t = _check_loss_arguments(logits, target, "cross_entropy")
    N, K = z.shape
    if K == 0:
        raise ValueError("cross_entropy(): input has 0 classes")
    log_sum_exp = np.empty(N, z.dtype)
    losses = np.empty(N, z.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss, compares, exps, logs, adds = _cross_entropy_kernel(z, t, log_sum_exp, losses)
    counting.record("cross_entropy", loss_compares=compares, loss_exps=exps, loss_logs=logs, loss_adds=adds)
    return CrossEntropyResult(np.asarray(loss, dtype=logits.dtype), log_sum_exp)


def cross_entropy_backward(logits: np.ndarray, target: np.ndarray, log_sum_exp: np.ndarray,
                           grad_loss: float = 1.0) -> np.ndarray:
    """dL/dlogits of the mean cross-entropy: (grad_loss / N) (softmax(z) - onehot(target)).

    log_sum_exp is `cross_entropy(...).log_sum_exp`. Returns an array of the logits' shape
    and dtype. Records op "cross_entropy_backward" (loss_grad_exps, one per logit).
    """
    logits, z, t = _check_loss_arguments(logits, target, "cross_entropy_backward")
    lse = check_array(log_sum_exp, "log_sum_exp", "cross_entropy_backward")
    if lse.shape != (z.shape[0],):
        raise ValueError(f"cross_entropy_backward(): log_sum_exp must have shape ({z.shape[0]},), "
                         f"got {list(lse.shape)}")
    gz = np.empty_like(z)
    exps = _cross_entropy_backward_kernel(z, t, np.ascontiguousarray(lse, z.dtype), z.dtype.type(grad_loss), gz)
    counting.record("cross_entropy_backward", loss_grad_exps=exps)
    return gz.astype(logits.dtype, copy=False)


# --------------------------------------------------------------------------------------
# A training step
# --------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """loss: the batch-mean cross-entropy (0-d array, the logits' dtype; None when the
    backward started from a given grad_output); logits: the model's output;
    grads: qualified parameter name -> dL/dparam (the parameter's shape and dtype), for
    every parameter the forward used; backward_by_layer: qualified leaf layer name -> op ->
    counts of that layer's backward (Counts.as_dict()), filled whether or not a `count()`
    block is open; layer_grads (with keep_layer_grads=True, else None): qualified leaf
    layer name -> (dL/d its output, dL/d its input or None), every gradient that flowed
    through the network."""

    loss: np.ndarray
    logits: np.ndarray
    grads: dict
    backward_by_layer: dict
    layer_grads: dict | None = None


def forward_backward(model: Module, input: np.ndarray, target: np.ndarray | None = None, *,
                     grad_output=None, keep_layer_grads: bool = False) -> StepResult:
    """Run `model` on `input` (its own forward: BatchNorm layers in training mode use and
    update their batch statistics, as in PyTorch), the cross-entropy against `target`, and
    the model's own backward to every parameter. Parameters are not changed (see `sgd_step`).

    input: the model's input array (computed in its dtype, as the forward does); target:
    (N,) integer class indices, for a model that ends in (N, K) class scores. Instead of a
    target, `grad_output` gives dL/d(output) directly, for any model: an array of the
    output's shape and dtype, or a function output -> that array (the loss is then None).
    """
    if not isinstance(model, Module):
        raise TypeError(f"forward_backward(): model must be an npconv Module, not {type(model).__name__}")
    if (target is None) == (grad_output is None):
        raise ValueError("forward_backward(): give either a target (cross-entropy) or grad_output, not both")
    with enable_grad():
        output = model(input)
    if target is not None:
        loss = cross_entropy(output, target)
        grad = cross_entropy_backward(output, target, loss.log_sum_exp)
        loss = loss.loss
    else:
        loss = None
        grad = grad_output(output) if callable(grad_output) else grad_output
        grad = check_array(grad, "grad_output", "forward_backward")
        if grad.shape != output.shape or grad.dtype != output.dtype:
            raise ValueError(f"forward_backward(): grad_output must have the output's shape {list(output.shape)} "
                             f"and dtype {output.dtype}, got {list(grad.shape)} {grad.dtype}")
    with log_backward(keep_layer_grads) as log:
        model.backward(grad)
    grads = {f"{path}.{name}" if path else name: g
             for path, module in model.named_modules() for name, g in module.grads.items()}
    return StepResult(loss, output, grads, log.counts, log.layer_grads)


def sgd_step(model: Module, grads: dict, lr: float) -> None:
    """param -= lr * grad for every parameter of `model` that has a gradient in `grads`
    (qualified names, as `forward_backward` returns them), in place, in the parameter's
    dtype (float16 in float32, rounded once): `torch.optim.SGD(model.parameters(), lr)`'s
    step without momentum, dampening or weight decay. Records op "sgd" (sgd_updates, one
    per element) under the layer owning each parameter."""
    if not isinstance(lr, (int, float, np.floating, np.integer)) or isinstance(lr, bool) or not lr >= 0:
        raise ValueError(f"Invalid learning rate: {lr}")
    parameters = dict(model.named_parameters())
    unknown = [name for name in grads if name not in parameters]
    if unknown:
        raise ValueError(f"sgd_step(): the model has no parameter called {unknown[0]!r}")
    for name, param in parameters.items():
        grad = grads.get(name)
        if grad is None:
            continue
        if grad.shape != param.shape:
            raise ValueError(f"sgd_step(): gradient of {name!r} has shape {list(grad.shape)}, "
                             f"the parameter {list(param.shape)}")
        dtype = compute_dtype(param.dtype)
        updated = np.ascontiguousarray(param, dtype=dtype).reshape(-1).copy()
        owner = name.rpartition(".")[0]
        with counting.scope(owner):
            updates = _sgd_kernel(updated, np.ascontiguousarray(grad, dtype=dtype).reshape(-1), dtype.type(lr))
            counting.record("sgd", sgd_updates=updates)
        param[...] = updated.reshape(param.shape).astype(param.dtype, copy=False)


def train_step(model: Module, input: np.ndarray, target: np.ndarray, lr: float, *,
               keep_layer_grads: bool = False) -> StepResult:
    """One step of training: `forward_backward`, then `sgd_step` with learning rate lr.
    Returns the step's loss, logits and gradients (taken before the update)."""
    step = forward_backward(model, input, target, keep_layer_grads=keep_layer_grads)
    sgd_step(model, step.grads, lr)
    return step


def __getattr__(name: str):
    """`backward_cost_table` and `BackwardCostRow` moved to npconv.cost_backward; still
    importable from here."""
    if name in ("backward_cost_table", "BackwardCostRow"):
        from .cost import backward as cost_backward

        return getattr(cost_backward, name)
    raise AttributeError(f"module 'npconv.train' has no attribute {name!r}")
