"""Training from first principles: a forward pass that keeps what the backward needs, the
backward through every layer, cross-entropy, and plain SGD, all counted.

    model = npconv.models.TinyMobileNet(rng=0).train()
    with npconv.count() as tally:
        step = npconv.train.train_step(model, x, target, lr=0.1)   # forward, backward, update
    step.loss, step.grads["features.0.weight"], tally.by_layer["features.3.dw_conv.0"]

The pieces, each usable alone:

    forward_backward(model, x, target)   loss, logits and dL/dparam for every parameter
    sgd_step(model, grads, lr)           param -= lr * grad, in place, for every parameter
    cross_entropy, cross_entropy_backward   the loss (PyTorch's F.cross_entropy, mean)
    backward_cost_table(model, shape)    per layer: counted forward / grad-input / grad-weight
                                         MACs beside FlopCounterMode's for the PyTorch twin

How the backward knows the graph. The model's own `forward` runs, unchanged, with forward
hooks (`Module.register_forward_hook`) on every module recording what each one received
and returned: that record is the cache. The backward then walks the module tree in
reverse, by module type: a leaf layer (Conv2d, ConvTranspose2d, Linear, BatchNorm2d, ReLU,
ReLU6, AdaptiveAvgPool2d, Flatten, Identity, Dropout in evaluation) runs its backward
(`npconv.backward`, `npconv.layer_backward`) on its cached input; a container whose forward
applies its children in order (Sequential, the tutorial's DepthwiseSeparableConv,
MobileNetBlock and HybridBlock, MobileNetV2's Conv2dNormActivation) runs them in reverse;
the inverted residual blocks add the shortcut's gradient at the fork when their
forward adds the input back; TinyMobileNet, MobileNetV1 and MobileNetV2 undo their
forward's flatten (and V2's functional pooling). A module of any other type is refused
with a TypeError naming it: its forward's data flow is not known here. Tests hold the
gradients against torch.autograd on the PyTorch twins, which checks that these rules
mirror the forwards.

What the backward takes from the forward, as PyTorch's autograd does: each layer's input
(and BatchNorm's batch statistics, recomputed from that input by the forward's own kernel
outside the count, because npconv.nn.BatchNorm2d does not keep them: bit for bit the
values the forward normalised with). A layer whose input depends on no parameter (the
first convolution) skips its input gradient, as PyTorch does for an input that does not
require grad.

Counting: inside `npconv.count()`, the forward records as always; the loss records
"cross_entropy" and "cross_entropy_backward"; each layer's backward records its ops
(conv2d_grad_input, conv2d_grad_weight, batch_norm2d_backward, relu6_backward, ...)
under the layer's qualified name in `tally.by_layer`, the names the forward uses; the
update records "sgd" under the layer owning each parameter. `StepResult.backward_by_layer`
also keeps each layer's backward split by op.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import counting, ops
from .backward import conv2d_backward, conv_transpose2d_backward
from .geometry import check_array
from .kernels.cross_entropy import cross_entropy as _cross_entropy_kernel
from .kernels.cross_entropy_backward import cross_entropy_backward as _cross_entropy_backward_kernel
from .kernels.sgd import sgd_step as _sgd_kernel
from .layer_backward import (adaptive_avg_pool2d_backward, batch_norm2d_backward, flatten_backward, linear_backward,
                             relu6_backward, relu_backward, residual_add_backward)
from .models import mobilenet_v2, tutorial
from .models.mobilenet_v1 import MobileNetV1
from .nn import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Flatten, Identity, Linear, Module,
                 ReLU, ReLU6, Sequential)

__all__ = [
    "BackwardCostRow",
    "CrossEntropyResult",
    "StepResult",
    "backward_cost_table",
    "cross_entropy",
    "cross_entropy_backward",
    "forward_backward",
    "sgd_step",
    "train_step",
]


def _compute_dtype(dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


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
    dtype = _compute_dtype(logits.dtype)
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
# The forward's cache
# --------------------------------------------------------------------------------------


@dataclass
class _Cache:
    """What the forward left for the backward, by qualified module name."""

    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)
    # whether some parameter was used before the module ran, i.e. whether its input can
    # depend on a parameter and so needs a gradient (modules run in data-flow order)
    after_parameters: dict = field(default_factory=dict)
    parameters_seen: bool = False


def _has_parameters(module: Module) -> bool:
    """Whether the module's tree holds a parameter (after a module has run, its children
    have run too, so 'some parameter was used' holds either way)."""
    return next(iter(module.named_parameters()), None) is not None


def _run_forward(model: Module, input: np.ndarray) -> tuple[np.ndarray, _Cache]:
    cache = _Cache()
    handles = []
    for name, module in model.named_modules():
        def before(mod, args, name=name):
            cache.calls[name] = cache.calls.get(name, 0) + 1
            cache.after_parameters[name] = cache.parameters_seen

        def after(mod, args, output, name=name):
            cache.inputs[name] = args[0]
            cache.outputs[name] = output
            if _has_parameters(mod):
                cache.parameters_seen = True

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    try:
        output = model(input)
    finally:
        for handle in handles:
            handle.remove()
    repeated = [name or type(model).__name__ for name, n in cache.calls.items() if n > 1]
    if repeated:
        raise ValueError(f"forward_backward(): module(s) {repeated} ran more than once in one forward; "
                         "shared modules are not supported")
    return output, cache


# --------------------------------------------------------------------------------------
# The backward walk
# --------------------------------------------------------------------------------------

_CHAINS = (Sequential, tutorial.DepthwiseSeparableConv, tutorial.MobileNetBlock, tutorial.HybridBlock)
_LEAVES = (Conv2d, ConvTranspose2d, Linear, BatchNorm2d, ReLU, ReLU6, AdaptiveAvgPool2d, Flatten, Identity, Dropout)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Backward:
    def __init__(self, cache: _Cache, keep_layer_grads: bool = False):
        self.cache = cache
        self.grads: dict[str, np.ndarray] = {}
        self.by_layer: dict[str, dict] = {}
        self.layer_grads: dict[str, tuple] | None = {} if keep_layer_grads else None

    def run(self, module: Module, path: str, grad_output):
        """dL/d(module's input), or None when its input needs no gradient."""
        if path not in self.cache.inputs:
            raise ValueError(f"forward_backward(): module '{path or type(module).__name__}' "
                             f"({type(module).__name__}) did not run in the forward")
        if isinstance(module, _LEAVES):
            with counting.scope(path), counting.count() as tally:
                grad_input = self._leaf(module, path, grad_output)
            self.by_layer[path] = {op: counts.as_dict() for op, counts in tally.by_op.items()}
            if self.layer_grads is not None:
                self.layer_grads[path] = (grad_output, grad_input)
            return grad_input
        if isinstance(module, (tutorial.InvertedResidual, mobilenet_v2.InvertedResidual)):
            residual = (module.use_residual if isinstance(module, tutorial.InvertedResidual)
                        else module.use_res_connect)
            grad_branch = self.run(module.conv, _child(path, "conv"), grad_output)
            if not residual or grad_branch is None:
                return grad_branch
            with counting.scope(path):
                return residual_add_backward(grad_output, grad_branch)
        if isinstance(module, _CHAINS):
            for name, child in reversed(list(module.named_children())):
                if grad_output is None:
                    break
                grad_output = self.run(child, _child(path, name), grad_output)
            return grad_output
        if isinstance(module, (tutorial.TinyMobileNet, MobileNetV1, mobilenet_v2.MobileNetV2)):
            return self._network(module, path, grad_output)
        raise TypeError(
            f"forward_backward(): no backward for module '{path or type(module).__name__}' of type "
            f"{type(module).__name__}; supported: the layers {', '.join(t.__name__ for t in _LEAVES)}, "
            "Sequential, the tutorial's blocks, TinyMobileNet, MobileNetV1 and MobileNetV2"
        )

    def _network(self, module, path: str, grad_output):
        """The three networks: features, [pooling,] flatten, classifier (their forwards)."""
        features = _child(path, "features")
        grad = self.run(module.classifier, _child(path, "classifier"), grad_output)
        features_shape = self.cache.outputs[features].shape
        pooled_shape = features_shape                                    # TinyMobileNet: pooled inside features
        if isinstance(module, MobileNetV1):
            pooled_shape = self.cache.outputs[_child(path, "avgpool")].shape
        if isinstance(module, mobilenet_v2.MobileNetV2):
            pooled_shape = tuple(features_shape[:2]) + (1, 1)
        if grad is None:
            return None
        with counting.scope(path):
            grad = flatten_backward(grad, pooled_shape)
            if isinstance(module, mobilenet_v2.MobileNetV2):  # ops.adaptive_avg_pool2d(x, (1, 1))
                grad = adaptive_avg_pool2d_backward(grad, features_shape)
        if isinstance(module, MobileNetV1):
            grad = self.run(module.avgpool, _child(path, "avgpool"), grad)
        return self.run(module.features, features, grad)

    def _store(self, path: str, module: Module, name: str, grad) -> None:
        if grad is not None:
            self.grads[_child(path, name)] = grad.astype(getattr(module, name).dtype, copy=False)

    def _leaf(self, module, path: str, grad_output):
        x = self.cache.inputs[path]
        needs_input_grad = self.cache.after_parameters[path]
        cast = lambda a: None if a is None else a.astype(x.dtype, copy=False)  # noqa: E731
        if isinstance(module, Conv2d):
            grad_input, grad_weight, grad_bias = conv2d_backward(
                grad_output, x, cast(module.weight), stride=module.stride, padding=module.padding,
                dilation=module.dilation, groups=module.groups, padding_mode=module.padding_mode,
                bias=module.bias is not None, needs_input_grad=needs_input_grad)
        elif isinstance(module, ConvTranspose2d):
            grad_input, grad_weight, grad_bias = conv_transpose2d_backward(
                grad_output, x, cast(module.weight), stride=module.stride, padding=module.padding,
                output_padding=module.output_padding, groups=module.groups, dilation=module.dilation,
                bias=module.bias is not None, needs_input_grad=needs_input_grad)
        elif isinstance(module, Linear):
            grad_input, grad_weight, grad_bias = linear_backward(
                grad_output, x, cast(module.weight), bias=module.bias is not None, needs_input_grad=needs_input_grad)
        elif isinstance(module, BatchNorm2d):
            grad_input, grad_weight, grad_bias = self._batch_norm(module, x, grad_output, needs_input_grad)
        else:
            return self._parameterless(module, x, grad_output) if needs_input_grad else None
        self._store(path, module, "weight", grad_weight)
        self._store(path, module, "bias", grad_bias)
        return grad_input

    def _batch_norm(self, module: BatchNorm2d, x, grad_output, needs_input_grad):
        cast = lambda a: None if a is None else a.astype(x.dtype, copy=False)  # noqa: E731
        batch_statistics = module.training or module.running_mean is None   # as BatchNorm2d.forward
        if batch_statistics:
            with counting.paused():  # the forward's statistics, recomputed by its own kernel
                result = ops.batch_norm2d(x, None, None, None, None, training=True, eps=module.eps)
            mean, var = result.batch_mean, result.batch_var
        else:
            mean, var = cast(module.running_mean), cast(module.running_var)
        return batch_norm2d_backward(grad_output, x, cast(module.weight), mean=mean, var=var,
                                     training=batch_statistics, eps=module.eps, needs_input_grad=needs_input_grad)

    def _parameterless(self, module, x, grad_output):
        if isinstance(module, ReLU6):
            return relu6_backward(grad_output, x)
        if isinstance(module, ReLU):
            return relu_backward(grad_output, x)
        if isinstance(module, AdaptiveAvgPool2d):
            return adaptive_avg_pool2d_backward(grad_output, x.shape)
        if isinstance(module, Flatten):
            return flatten_backward(grad_output, x.shape)
        if isinstance(module, Dropout):
            if module.training and module.p > 0:
                raise ValueError(
                    "forward_backward(): Dropout in training mode with p > 0 is not supported: npconv.nn.Dropout "
                    "does not keep its keep-mask; call .eval() on it (or set p=0)")
            return grad_output
        return grad_output  # Identity


# --------------------------------------------------------------------------------------
# A training step
# --------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """loss: the batch-mean cross-entropy (0-d array, the logits' dtype; None when the
    backward started from a given grad_output); logits: the model's output;
    grads: qualified parameter name -> dL/dparam (the parameter's shape and dtype), for
    every parameter the forward used; backward_by_layer: qualified layer name -> op ->
    counts of that layer's backward (Counts.as_dict()), filled whether or not a
    `count()` block is open; layer_grads (with keep_layer_grads=True, else None):
    qualified leaf layer name -> (dL/d its output, dL/d its input or None), every
    gradient that flowed through the network."""

    loss: np.ndarray
    logits: np.ndarray
    grads: dict
    backward_by_layer: dict
    layer_grads: dict | None = None


def forward_backward(model: Module, input: np.ndarray, target: np.ndarray | None = None, *,
                     grad_output=None, keep_layer_grads: bool = False) -> StepResult:
    """Run `model` on `input` (its own forward: BatchNorm layers in training mode use and
    update their batch statistics, as in PyTorch), the cross-entropy against `target`, and
    the backward to every parameter. Parameters are not changed (see `sgd_step`).

    input: the model's input array (computed in its dtype, as the forward does); target:
    (N,) integer class indices, for a model that ends in (N, K) class scores. Instead of a
    target, `grad_output` gives dL/d(output) directly, for any model: an array of the
    output's shape and dtype, or a function output -> that array (the loss is then None).
    """
    if not isinstance(model, Module):
        raise TypeError(f"forward_backward(): model must be an npconv Module, not {type(model).__name__}")
    if (target is None) == (grad_output is None):
        raise ValueError("forward_backward(): give either a target (cross-entropy) or grad_output, not both")
    output, cache = _run_forward(model, input)
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
    walk = _Backward(cache, keep_layer_grads)
    walk.run(model, "", grad)
    return StepResult(loss, output, walk.grads, walk.by_layer, walk.layer_grads)


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
        dtype = _compute_dtype(param.dtype)
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


# --------------------------------------------------------------------------------------
# Counted backward MACs beside FlopCounterMode's
# --------------------------------------------------------------------------------------


@dataclass
class BackwardCostRow:
    """One layer of `backward_cost_table`. MACs counted by npconv's loops; fcm_* are
    torch.utils.flop_counter.FlopCounterMode's FLOPs / 2 for the twin's same layer
    (grad_input None where the layer's input needs no gradient). `factors`: "grad_input",
    "grad_weight" -> FlopCounterMode / counted where they differ."""

    layer: str
    kind: str
    forward: int
    grad_input: int | None
    grad_weight: int
    fcm_forward: int | None = None
    fcm_grad_input: int | None = None
    fcm_grad_weight: int | None = None
    factors: dict = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return not self.factors


_NETWORKS = {"tiny_mobilenet": "TinyMobileNet", "mobilenet_v1": "MobileNetV1", "mobilenet_v2": "MobileNetV2"}


def _build_named(name: str, input_shape):
    from . import models, twins

    kind = _NETWORKS.get(name, name)
    if kind not in _NETWORKS.values():
        raise ValueError(f"backward_cost_table(): unknown model {name!r}; give a Module or one of {sorted(_NETWORKS)}")
    model = getattr(models, kind)(rng=0)
    twin = twins.build(kind, seed=0, calibration_shape=(2,) + tuple(input_shape[1:]))
    return model, twin


def backward_cost_table(model, input_shape, *, torch_model=None, seed: int = 0) -> list[BackwardCostRow]:
    """Per Conv2d / ConvTranspose2d / Linear layer of a training step of `model` on an input
    of `input_shape` (N, C, H, W): the MACs npconv's forward, grad-input and grad-weight
    loops execute (counted, in float32, on a seeded standard-normal input, backpropagating
    a seeded standard-normal dL/d(output); the counts depend only on the shapes), beside
    FlopCounterMode's figures for the PyTorch twin `torch_model` (same module tree; None:
    no FlopCounterMode columns). Both run in training mode (Dropout in evaluation).

    model: an npconv Module (not changed: a copy is trained, in training mode), or
    "tiny_mobilenet" / "mobilenet_v1" / "mobilenet_v2", which builds both with default
    arguments (twin from `npconv.twins`). The last row, layer "(total)", sums the others.

    FlopCounterMode (torch 2.13) is read per module from an autograd backward of the twin
    in training mode, and split into its gradients by calling aten.convolution_backward
    (and the two mm of a Linear) once per gradient on the layer's shapes; the parts are
    checked to add up to the per-module figure. The CLI's `npconv verify --backward` prints
    these rows; docs/backward_model_table.py renders them into docs/backward.md.
    """
    if isinstance(model, str):
        model, twin = _build_named(model, input_shape)
        torch_model = twin if torch_model is None else torch_model
    if not isinstance(model, Module):
        raise TypeError(f"backward_cost_table(): model must be an npconv Module or a model name, "
                        f"not {type(model).__name__}")
    input_shape = tuple(int(s) for s in input_shape)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape).astype(np.float32)
    net = _training_copy(model).float()
    grad_output = _seeded_gradient(seed)
    with counting.count() as tally:  # forward and backward; the forward's share is the difference
        step = forward_backward(net, x, grad_output=grad_output)
    rows = []
    for path, module in net.named_modules():
        if not isinstance(module, (Conv2d, ConvTranspose2d, Linear)):
            continue
        backward = step.backward_by_layer.get(path, {})
        prefix = {Conv2d: "conv2d", ConvTranspose2d: "conv_transpose2d", Linear: "linear"}[type(module)]
        grad_input = backward.get(f"{prefix}_grad_input", {}).get("macs")
        grad_weight = backward.get(f"{prefix}_grad_weight", {}).get("macs", 0)
        forward = tally.by_layer[path].macs - sum(counts["macs"] for counts in backward.values())
        rows.append(BackwardCostRow(path, _kind(module), forward, grad_input, grad_weight))
    if torch_model is not None:
        _flop_counter_columns(rows, torch_model, x, grad_output(step.logits))
    total = BackwardCostRow(
        "(total)", "", sum(r.forward for r in rows), sum(r.grad_input or 0 for r in rows),
        sum(r.grad_weight for r in rows))
    if torch_model is not None:
        total.fcm_forward = sum(r.fcm_forward or 0 for r in rows)
        total.fcm_grad_input = sum(r.fcm_grad_input or 0 for r in rows)
        total.fcm_grad_weight = sum(r.fcm_grad_weight or 0 for r in rows)
        total.factors = _factors(total)
    rows.append(total)
    return rows


def _training_copy(model):
    """A copy in training mode, Dropout aside (evaluation: its mask is random and it has no
    MACs), so that BatchNorm runs as in training."""
    net = copy.deepcopy(model).train()
    for module in net.modules():
        if type(module).__name__ == "Dropout":
            module.eval()
    return net


def _seeded_gradient(seed: int):
    """dL/d(output) for the cost table: seeded standard normal values of the output's shape
    (the counts do not depend on them; any output shape works, blocks included)."""
    def gradient(output):
        return np.random.default_rng(seed + 1).standard_normal(output.shape).astype(output.dtype)
    return gradient


def _kind(module) -> str:
    if isinstance(module, Linear):
        return f"Linear {module.in_features}->{module.out_features}"
    kh, kw = module.kernel_size
    name = "ConvTranspose2d" if isinstance(module, ConvTranspose2d) else "Conv2d"
    if module.groups == module.in_channels == module.out_channels and module.groups > 1:
        shape = f"depthwise {kh}x{kw}, C={module.in_channels}"
    else:
        shape = f"{kh}x{kw}, {module.in_channels}->{module.out_channels}"
        shape += f", g={module.groups}" if module.groups > 1 else ""
    stride = f" s{module.stride[0]}" if module.stride != (1, 1) else ""
    return f"{name} {shape}{stride}"


def _factors(row: BackwardCostRow) -> dict:
    factors = {}
    for part, ours, theirs in (("forward", row.forward, row.fcm_forward),
                               ("grad_input", row.grad_input, row.fcm_grad_input),
                               ("grad_weight", row.grad_weight, row.fcm_grad_weight)):
        if (ours or 0) != (theirs or 0):
            factors[part] = (theirs or 0) / ours if ours else float("inf")
    return factors


def _flop_counter_columns(rows: list[BackwardCostRow], torch_model, x: np.ndarray, gy: np.ndarray) -> None:
    """Fill the fcm_* columns from FlopCounterMode on the twin (torch imported here)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    twin = _training_copy(torch_model).float()
    by_name = dict(twin.named_modules())
    missing = [r.layer for r in rows if r.layer not in by_name]
    if missing:
        raise ValueError(f"backward_cost_table(): the torch model has no module(s) {missing}: "
                         "it must have npconv's module tree")
    saved = {}
    handles = []
    for row in rows:
        def keep(mod, args, output, name=row.layer):
            saved[name] = (args[0].detach(), output.detach())
        handles.append(by_name[row.layer].register_forward_hook(keep))
    root = type(twin).__name__
    try:
        tx = torch.from_numpy(x)
        with FlopCounterMode(display=False) as counter:
            # through a scalar L = sum(output * gy): FlopCounterMode attributes a module's
            # backward by hooks on its outputs' gradients, which do not fire for a gradient
            # handed to .backward() directly; mul and sum have no FLOP formula
            (twin(tx) * torch.from_numpy(gy)).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    for row in rows:
        module = by_name[row.layer]
        per_op = counts.get(f"{root}.{row.layer}", {})
        row.fcm_forward = _half(sum(v for op, v in per_op.items() if _is_forward(op)))
        backward_total = sum(v for op, v in per_op.items() if not _is_forward(op))
        needs_input_grad = row.grad_input is not None
        gi, gw = _fcm_parts(module, *saved[row.layer], needs_input_grad)
        if gi + gw != backward_total:
            raise AssertionError(f"FlopCounterMode's parts for {row.layer} ({gi} + {gw}) do not add up to its "
                                 f"backward total {backward_total}")
        row.fcm_grad_input = _half(gi) if needs_input_grad else None
        row.fcm_grad_weight = _half(gw)
        row.factors = _factors(row)


def _half(flops: int) -> int:
    return int(flops) // 2


def _is_forward(op) -> bool:
    return str(op) in ("aten.convolution", "aten.addmm", "aten._convolution", "aten.linear")


def _fcm_parts(module, x, y, needs_input_grad: bool) -> tuple[int, int]:
    """FlopCounterMode's FLOPs for the input gradient (0 when not needed) and the weight
    gradient of one layer, each from its own call."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    gy = torch.ones_like(y)
    parts = []
    for mask in ([True, False, False], [False, True, False]):
        if mask[0] and not needs_input_grad:
            parts.append(0)
            continue
        with FlopCounterMode(display=False) as counter:
            if isinstance(module, torch.nn.Linear):
                if mask[0]:
                    torch.mm(gy.reshape(-1, gy.shape[-1]), module.weight.detach())
                else:
                    torch.mm(gy.reshape(-1, gy.shape[-1]).t(), x.reshape(-1, x.shape[-1]))
            else:
                transposed = isinstance(module, torch.nn.ConvTranspose2d)
                x_in, padding = _explicitly_padded(module, x)
                torch.ops.aten.convolution_backward(
                    gy, x_in, module.weight.detach(), [gy.shape[1]], list(module.stride), list(padding),
                    list(module.dilation), transposed, list(getattr(module, "output_padding", (0, 0))),
                    module.groups, mask)
        parts.append(counter.get_total_flops())
    return parts[0], parts[1]


def _explicitly_padded(module, x):
    """(input, symmetric padding) for aten.convolution_backward: a torch Conv2d with a
    non-zeros padding_mode, or padding="same" (possibly asymmetric), pads its input itself
    and convolves with padding 0; so does this."""
    import torch

    if isinstance(module, torch.nn.ConvTranspose2d):
        return x, module.padding
    if module.padding_mode != "zeros":
        return torch.nn.functional.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode), (0, 0)
    if module.padding == "same":
        pads = []
        for d, k in reversed(list(zip(module.dilation, module.kernel_size))):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return torch.nn.functional.pad(x, pads), (0, 0)
    if module.padding == "valid":
        return x, (0, 0)
    return x, module.padding
