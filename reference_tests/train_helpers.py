"""What the training tests share: the bounds they derive, recording one training step of
PyTorch and of npconv, and checking a recorded step operation by operation.

Derivations kept here, each once (test_layer_backward.py, test_backward.py and
test_train.py import them):
* `bn_train_backward_bound`: training-mode BatchNorm2d's backward, derived in its docstring;
* `fold_multiplicity`: how many padded positions copy one input position (a Conv2d input
  gradient's extra terms under reflect / replicate / circular padding);
* `cross_entropy_grad_bound`: the gradient of the mean cross-entropy, derived in its docstring.

Checking a step (`check_step`, the method test_train.py's docstring describes as
"shadowing"). The data flow is the model's own: the npconv model's `forward` and
`backward` run once more with every leaf layer replaced by a check of that leaf's
recorded call, so nothing here restates how a model wires its layers:

* forward, at each leaf: the input the implementation gave it must equal, bit for bit,
  what the model's own forward computes in the implementation's dtype from the recorded
  outputs of the leaves before it (data movement is exact, and a residual add is one
  correctly rounded IEEE addition of the same two numbers in PyTorch and in npconv); its
  recorded output must lie within the layer's own rounding bound at that input
  (error_bounds, with the BatchNorm running statistics); the leaf then hands on its
  recorded output, so no error is carried;
* backward, at each leaf: the gradient it received must equal, bit for bit, what the
  model's own backward computes in that dtype from the recorded input gradients of the
  leaves after it (a reshape, a split, a shuffle, a fork's single sum); its recorded input
  and parameter gradients must lie within their bounds of npconv's float64 backward at
  its recorded input (bounds below); it then hands on its recorded input gradient.
Glue that rounds more than once (MobileNetV2's functional average pooling divides in
another order than PyTorch's) would need a bound here; the models trained in the tests
have none.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from error_bounds import Bounded, Observed, _LeafBounds

from npconv import counting, nn, ops, train
from npconv.backward import conv2d_backward, conv_transpose2d_backward
from npconv.convert import from_torch
from npconv.geometry import conv2d_geometry
from npconv.kernels.pad2d import MODE_CODES, source_index
from npconv.layer_backward import (adaptive_avg_pool2d_backward, batch_norm2d_backward, linear_backward,
                                   relu6_backward, relu_backward)
from npconv.nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, Linear, ReLU, ReLU6
from npconv.nn.hooks import hooked
from npconv.tolerance import assert_within_bound, bound_from_magnitude, gamma

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
LR = 0.1


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _as64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def _per_channel(a):
    return a.reshape(1, -1, 1, 1)


# --------------------------------------------------------------------------------------
# Bounds
# --------------------------------------------------------------------------------------


def bn_train_backward_bound(gy, x, weight, eps, dtype):
    """Per-element bounds (on grad_input (N, C, H, W), grad_weight (C,), grad_bias (C,)) on
    |computed in `dtype` - exact| for training-mode BatchNorm2d's backward, the forward's
    batch statistics included. First order in the unit roundoff u of `dtype`.

    Exact quantities, per channel over its m = N*H*W values (computed here in float64 from
    the float64 inputs; their own rounding is below first order):
        mu = mean(x), d = x - mu, v = mean(d^2), t = v + eps, r = t^(-1/2), x_hat = d r,
        S1 = sum gy, S2 = sum gy x_hat, gx = weight r (gy - S1/m - x_hat S2/m).
    Magnitudes: A = mean|x|, M1 = sum|gy|, M2 = sum|gy| |x_hat|.

    1. Mean (a sum of m terms and a division): |mu^ - mu| <= D = gamma(m + 1) A.
    2. Variance, two-pass from mu^ (npconv's kernel and PyTorch's CPU kernel): the deviations
       x - mu^ = d - (mu^ - mu) have sum d^2 + m (mu^ - mu)^2 exactly (sum d = 0); each
       square carries 2 roundings after the subtraction's, the sum m - 1, the division 1,
       all on non-negative terms: |v^ - v| <= dv = D^2 + gamma(m + 3) (v + D^2).
    3. t^ = v^ + eps (1 rounding, and eps itself rounded to the dtype):
       |t^ - t| <= dt = dv + u (t + dv) + u eps.
    4. r^ = 1 / sqrt(t^): sqrt and division, and a conversion when PyTorch computes it in a
       wider type (3 roundings): r^ / r lies within 1 +- rho,
       rho = sqrt(t / (t - dt)) (1 + gamma(3)) - 1 (no bound when dt >= t).
    5. Every implementation computes gx as three terms, weight r gy, weight r S1/m and
       weight r^3 d sum(d gy)/m (npconv: x_hat = (x - mu^) r^ inside S2 and outside;
       PyTorch: k = sum((x - mu^) gy) r^2 / m, then (x - mu^) k, times invstd * weight),
       each a product of rounded factors and sums; counting the roundings of the longer of
       the two orderings (npconv's: 2 for x_hat, 1 product and m - 1 adds in S2, /m, the
       product with x_hat (2 more inside it), 2 subtractions, 2 multiplications by the
       scale): the three terms carry relative errors of at most
           R0 = (1 + rho) (1 + gamma(6)) - 1              on |weight| r |gy|
           R1 = (1 + rho) (1 + gamma(m + 6)) - 1          on |weight| r M1 / m   (S1's sum, relative
                                                           to the magnitude M1, not |S1|)
           R3 = (1 + rho)^3 (1 + gamma(m + 12)) - 1       on |weight| r |x_hat| M2 / m
       and the mean's error D moves every (x - mu^) by D: x_hat by r D and S2 by r D S1, so the
       third term by at most |weight| r * r D (M2 + |x_hat| M1) / m (first order).
           |gx^ - gx| <= |weight| r (R0 |gy| + R1 M1/m + R3 |x_hat| M2/m + r D (M2 + |x_hat| M1)/m)
    6. grad_weight = S2: |S2^ - S2| <= ((1 + rho)(1 + gamma(m + 4)) - 1) M2 + r D M1
       (x_hat 2 roundings + rho, the product 1, the sum m - 1; PyTorch's sum((x - mu^) gy) r^ the
       same count); grad_bias = S1: gamma(m) M1.
    Underflow: (m + 12) tiny on every term.

    Second-order terms (products of two of the relative errors above, D^2 aside) are
    neglected; against float64's u = 2^-53 and the float32 tests' sizes (m <= 100) they are
    below 10^-12 of the bound.
    """
    dtype = np.dtype(dtype)
    u = float(np.finfo(dtype).eps) / 2
    gy, x, weight = _as64(gy, x, weight)
    N, C, H, W = x.shape
    m = N * H * W
    axes = (0, 2, 3)
    mu = x.mean(axis=axes)
    d = x - _per_channel(mu)
    v = (d ** 2).mean(axis=axes)
    t = v + eps
    r = 1 / np.sqrt(t)
    x_hat = d * _per_channel(r)
    A = np.abs(x).mean(axis=axes)
    M1 = np.abs(gy).sum(axis=axes)
    M2 = (np.abs(gy) * np.abs(x_hat)).sum(axis=axes)
    g = lambda n: float(gamma(n, dtype))  # noqa: E731
    D = g(m + 1) * A
    dv = D ** 2 + g(m + 3) * (v + D ** 2)
    dt = dv + u * (t + dv) + u * eps
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(dt < t, np.sqrt(t / (t - dt)) * (1 + g(3)) - 1, np.inf)
    R0 = (1 + rho) * (1 + g(6)) - 1
    R1 = (1 + rho) * (1 + g(m + 6)) - 1
    R3 = (1 + rho) ** 3 * (1 + g(m + 12)) - 1
    wr = np.abs(weight) * r
    P = _per_channel
    tiny = (m + 12) * float(np.finfo(dtype).tiny)
    gx_bound = P(wr) * (P(R0) * np.abs(gy) + P(R1 * M1 / m) + P(R3 * M2 / m) * np.abs(x_hat)
                        + P(r * D / m) * (P(M2) + np.abs(x_hat) * P(M1))) + tiny
    gw_bound = ((1 + rho) * (1 + g(m + 4)) - 1) * M2 + r * D * M1 + tiny
    gb_bound = g(m) * M1 + tiny
    return gx_bound, gw_bound, gb_bound


def fold_multiplicity(size, before, after, mode) -> int:
    """The most positions of a padded axis that copy one input position (1 for zeros)."""
    copies = np.zeros(size, dtype=np.int64)
    for r in range(size + before + after):
        k = source_index(r - before, size, MODE_CODES[mode])
        if k >= 0:
            copies[k] += 1
    return int(copies.max()) if size else 1


def cross_entropy_grad_bound(z, target, dtype):
    """(value, bound) for gz = (softmax(z) - onehot(target)) / N at exact logits z (N, K),
    computed in `dtype`, plus the float64 reference's own error.

    With U = u_dtype + 2^-53, exp and log accurate to 1 ulp (2U relative; glibc's and
    LLVM's libm, and PyTorch's Sleef "u10" routines, guarantee < 1 ulp):
    * s = sum_j exp(z_j - max z): each term's argument is rounded (U |z_j - max z|), its exp
      2U, and the sum of K positive terms gamma(K - 1): relative error
      e_s <= U max|z - max z| + 2U + g(K - 1);
    * lse = max z + log s: |lse^ - lse| <= d = e_s + 2U |log s| + U |lse| (the log's own
      error, then the addition);
    * p_k = exp(z_k - lse): the argument is off by d + U |z_k - lse|, the exp by 2U:
      |p^_k - p_k| <= p_k (d + U |z_k - lse| + 2U);
    * then p - onehot, the scale 1/N rounded and the product: g(3) on |p - onehot| / N.
    PyTorch's order (log_softmax, then exp(out) * sum(g) subtracted from g) rounds the same
    quantities no more often. First order in U.
    """
    z = _f64(z)
    N, K = z.shape
    U = float(np.finfo(dtype).eps) / 2 + 2.0**-53
    g = lambda n: float(gamma(n, dtype) + gamma(n, np.float64))  # noqa: E731
    largest = z.max(axis=1, keepdims=True)
    s = np.exp(z - largest).sum(axis=1, keepdims=True)
    lse = largest + np.log(s)
    p = np.exp(z - lse)
    onehot = np.zeros_like(p)
    onehot[np.arange(N), target] = 1
    value = (p - onehot) / N
    e_s = U * np.abs(z - largest).max(axis=1, keepdims=True) + 2 * U + g(max(K - 1, 0))
    d = e_s + 2 * U * np.abs(np.log(s)) + U * np.abs(lse)
    propagated = p * (d + U * np.abs(z - lse) + 2 * U) / N
    bound = propagated + g(3) * (np.abs(value) + propagated) + 3 * float(np.finfo(dtype).tiny)
    return value, bound


# --------------------------------------------------------------------------------------
# Recording one training step of each implementation
# --------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """What one training step of an implementation did, as NumPy arrays in its dtype:
    io: leaf -> (input, output) of the forward; grad_logits: dL/d(model output) (the loss
    gradient, or the given one); layer_grads: leaf -> (grad_output, grad_input or None);
    param_grads: parameter -> gradient; the state_dict before and after the step (after
    the update); the logits."""

    x: np.ndarray
    target: np.ndarray
    io: dict
    grad_logits: np.ndarray
    layer_grads: dict
    param_grads: dict
    state_before: dict
    state_after: dict
    logits: np.ndarray


def leaves(module):
    """(name, module) of every module without children (npconv's or torch's)."""
    return [(name, m) for name, m in module.named_modules() if next(iter(m.children()), None) is None]


def torch_twin(twin, dtype):
    """The twin in `dtype` and training mode, its activations not in place (the same
    arithmetic; in-place activations cannot carry module backward hooks)."""
    twin = twin.to(TORCH_DTYPES[np.dtype(dtype)]).train()
    for m in twin.modules():
        if isinstance(m, (torch.nn.ReLU6, torch.nn.ReLU)):
            m.inplace = False
    return twin


def _record_io(io):
    """A `hooked` post callback keeping each leaf's (input, output) as NumPy copies."""
    as_np = lambda t: t.detach().cpu().numpy().copy() if hasattr(t, "detach") else np.array(t)  # noqa: E731
    return lambda name, module, args, output: io.__setitem__(name, (as_np(args[0]), as_np(output)))


def torch_step(twin, optimizer, x, target) -> StepRecord:
    """One step of torch.optim.SGD; `target` is class indices (cross-entropy) or, for a
    block, the gradient dL/d(output) to backpropagate."""
    np_ = lambda t: None if t is None else t.detach().cpu().numpy().copy()  # noqa: E731
    state_before = {k: np_(v) for k, v in twin.state_dict().items()}
    io, layer_grads = {}, {}
    handles = [m.register_full_backward_hook(
        lambda mod, gin, gout, name=name: layer_grads.__setitem__(name, (np_(gout[0]), np_(gin[0]))))
        for name, m in leaves(twin)]
    try:
        optimizer.zero_grad()
        with hooked(twin, post=_record_io(io), leaves_only=True):
            logits = twin(torch.from_numpy(x))
        logits.retain_grad()
        if np.issubdtype(target.dtype, np.integer):
            torch.nn.functional.cross_entropy(logits, torch.from_numpy(target)).backward()
        else:
            logits.backward(torch.from_numpy(target))
    finally:
        for h in handles:
            h.remove()
    param_grads = {name: np_(p.grad) for name, p in twin.named_parameters()}
    optimizer.step()
    state_after = {k: np_(v) for k, v in twin.state_dict().items()}
    return StepRecord(x, target, io, np_(logits.grad), layer_grads, param_grads, state_before, state_after,
                      np_(logits))


def npconv_step(net, x, target) -> StepRecord:
    state_before = dict(net.state_dict())
    io = {}
    with hooked(net, post=_record_io(io), leaves_only=True):
        if np.issubdtype(target.dtype, np.integer):
            step = train.train_step(net, x, target, LR, keep_layer_grads=True)
        else:
            step = train.forward_backward(net, x, grad_output=target, keep_layer_grads=True)
            train.sgd_step(net, step.grads, LR)
    grad_logits = target
    if np.issubdtype(target.dtype, np.integer):  # what forward_backward handed to the model's backward
        with counting.paused():
            grad_logits = train.cross_entropy_backward(step.logits, target,
                                                       train.cross_entropy(step.logits, target).log_sum_exp)
    return StepRecord(x, target, io, grad_logits, step.layer_grads, step.grads, state_before,
                      dict(net.state_dict()), step.logits)


def run_both(twin, batches, dtype, net=None):
    """len(batches) steps of PyTorch and of npconv from the twin's weights. `net`: the npconv
    model (with the twin's state_dict keys) when `from_torch` does not know the twin."""
    net = (from_torch(twin) if net is None else net).to(dtype).train()
    net.load_state_dict(twin.state_dict())
    twin = torch_twin(twin, dtype)
    optimizer = torch.optim.SGD(twin.parameters(), lr=LR)
    as_target = lambda t: t if np.issubdtype(t.dtype, np.integer) else t.astype(dtype)  # noqa: E731
    theirs = [torch_step(twin, optimizer, x.astype(dtype), as_target(t)) for x, t in batches]
    ours = [npconv_step(net, x.astype(dtype), as_target(t)) for x, t in batches]
    return theirs, ours


# --------------------------------------------------------------------------------------
# Checking one recorded step, operation by operation
# --------------------------------------------------------------------------------------


class _LeafBackwardCheck:
    """Each leaf's recorded backward against npconv's float64 backward at the leaf's
    recorded input, within its local bound (test_train.py's docstring lists the bounds)."""

    def __init__(self, record: StepRecord, dtype, who):
        self.record = record
        self.dtype = np.dtype(dtype)
        self.who = who
        self.checked: list[str] = []

    def g(self, n):
        return float(gamma(n, self.dtype) + gamma(n, np.float64))

    def _param(self, path, name):
        return _f64(self.record.state_before[f"{path}.{name}"]) if f"{path}.{name}" in self.record.state_before \
            else None

    def leaf(self, module, path, received):
        """Check the leaf at `path`, which the model's own backward handed `received`;
        returns its recorded input gradient (or None)."""
        where = f"{self.who} '{path}' ({type(module).__name__})"
        gy_seen, gx_seen = self.record.layer_grads[path]
        assert received is not None and received.dtype == gy_seen.dtype, f"{where} gradient received: {received!r}"
        np.testing.assert_array_equal(gy_seen, received, err_msg=f"{where} gradient received")
        x = _f64(self.record.io[path][0])
        gy = _f64(gy_seen)
        needs_input_grad = gx_seen is not None
        grads = {}
        with counting.paused():
            if isinstance(module, (Conv2d, Linear)):
                w, b = self._param(path, "weight"), self._param(path, "bias")
                if isinstance(module, Conv2d):
                    kwargs = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
                                  groups=module.groups, padding_mode=module.padding_mode, bias=b is not None,
                                  needs_input_grad=needs_input_grad)
                    reference = conv2d_backward(gy, x, w, **kwargs)
                    magnitude = conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), **kwargs)
                    g = conv2d_geometry(x.shape, w.shape, None, module.stride, module.padding,
                                               module.dilation, module.groups, module.padding_mode)
                    fold = (fold_multiplicity(g.height, g.pad_top, g.pad_bottom, g.padding_mode)
                            * fold_multiplicity(g.width, g.pad_left, g.pad_right, g.padding_mode))
                    n_in = g.out_per_group * g.kernel_h * g.kernel_w * fold
                    n_w = g.batch * g.out_h * g.out_w
                else:
                    reference = linear_backward(gy, x, w, bias=b is not None, needs_input_grad=needs_input_grad)
                    magnitude = linear_backward(np.abs(gy), np.abs(x), np.abs(w), bias=b is not None,
                                                needs_input_grad=needs_input_grad)
                    n_in, n_w = w.shape[0], int(np.prod(gy.shape[:-1]))
                gx_ref = reference[0]
                gx_bound = None if gx_ref is None else bound_from_magnitude(magnitude[0], n_in, self.dtype)
                grads["weight"] = (reference[1], bound_from_magnitude(magnitude[1], n_w, self.dtype))
                if b is not None:
                    grads["bias"] = (reference[2], bound_from_magnitude(magnitude[2], n_w, self.dtype))
            elif isinstance(module, ConvTranspose2d):
                w, b = self._param(path, "weight"), self._param(path, "bias")
                kwargs = dict(stride=module.stride, padding=module.padding, output_padding=module.output_padding,
                              groups=module.groups, dilation=module.dilation, bias=b is not None,
                              needs_input_grad=needs_input_grad)
                reference = conv_transpose2d_backward(gy, x, w, **kwargs)
                magnitude = conv_transpose2d_backward(np.abs(gy), np.abs(x), np.abs(w), **kwargs)
                n_in = (module.out_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
                n_w = x.shape[0] * x.shape[2] * x.shape[3]
                n_b = gy.shape[0] * gy.shape[2] * gy.shape[3]
                gx_ref = reference[0]
                gx_bound = None if gx_ref is None else bound_from_magnitude(magnitude[0], n_in, self.dtype)
                grads["weight"] = (reference[1], bound_from_magnitude(magnitude[1], n_w, self.dtype))
                if b is not None:
                    grads["bias"] = (reference[2], bound_from_magnitude(magnitude[2], n_b, self.dtype))
            elif isinstance(module, BatchNorm2d):
                assert module.training
                weight = self._param(path, "weight")
                mean_var = ops.batch_norm2d(x, None, None, training=True, eps=module.eps)
                gx_ref, gw_ref, gb_ref = batch_norm2d_backward(gy, x, weight, mean=mean_var.batch_mean,
                                                               var=mean_var.batch_var, training=True, eps=module.eps)
                bounds = [a + b for a, b in zip(bn_train_backward_bound(gy, x, weight, module.eps, self.dtype),
                                                bn_train_backward_bound(gy, x, weight, module.eps, np.float64))]
                gx_bound = bounds[0]
                grads["weight"], grads["bias"] = (gw_ref, bounds[1]), (gb_ref, bounds[2])
            elif isinstance(module, ReLU6):
                gx_ref, gx_bound = relu6_backward(gy, x), np.zeros_like(x)
            elif isinstance(module, ReLU):
                gx_ref, gx_bound = relu_backward(gy, x), np.zeros_like(x)
            elif isinstance(module, AdaptiveAvgPool2d):
                H, W = x.shape[-2:]
                OH, OW = gy.shape[-2:]
                n = _covering(H, OH) * _covering(W, OW) + 1
                gx_ref = adaptive_avg_pool2d_backward(gy, x.shape)
                gx_bound = bound_from_magnitude(adaptive_avg_pool2d_backward(np.abs(gy), x.shape), n, self.dtype)
            elif isinstance(module, Flatten):
                gx_ref, gx_bound = gy.reshape(x.shape), np.zeros(x.shape)
            else:
                raise TypeError(f"no backward check for {type(module).__name__}")
        for name, (value, bound) in grads.items():
            assert_within_bound(self.record.param_grads[f"{path}.{name}"], value, bound,
                                what=f"{where} grad of {name}")
        self.checked.append(path)
        if not needs_input_grad:
            return None
        assert_within_bound(gx_seen, gx_ref, gx_bound, what=f"{where} grad_input")
        return gx_seen


def _covering(size: int, out: int) -> int:
    """The most adaptive windows of an axis that contain one position."""
    cover = np.zeros(size, dtype=np.int64)
    for i in range(out):
        cover[(i * size) // out:((i + 1) * size + out - 1) // out] += 1
    return int(cover.max())


def check_step(skeleton, record: StepRecord, dtype, who):
    """Every operation of one recorded training step against npconv's float64 operation on
    the recorded inputs (module docstring). `skeleton`: an npconv model of the same tree
    (not changed)."""
    dtype = np.dtype(dtype)
    model64 = copy.deepcopy(skeleton).double().train()
    model64.load_state_dict(record.state_before)
    names = [name for name, _ in leaves(model64)]
    forward = _LeafBounds(dtype, True, Observed(record.io, record.state_after), who, record.state_before, 0.1)
    backward = _LeafBackwardCheck(record, dtype, who)
    for path, leaf in leaves(model64):
        def shadow_forward(x, *args, path=path, leaf=leaf, **kwargs):
            forward.leaf(leaf, Bounded.exact(x), path, True)
            return record.io[path][1]

        def shadow_backward(grad, path=path, leaf=leaf):
            return backward.leaf(leaf, path, grad)

        object.__setattr__(leaf, "forward", shadow_forward)
        object.__setattr__(leaf, "backward", shadow_backward)
    # forward, leaf by leaf (and the BatchNorm running statistics), through the model's own forward
    with counting.paused(), nn.enable_grad():
        output = model64(record.x)
    assert forward.checked == names, (forward.checked, names)
    np.testing.assert_array_equal(record.logits, output, err_msg=f"{who} final output")
    # the loss gradient at the recorded logits (or the given gradient), then the model's own backward
    if np.issubdtype(record.target.dtype, np.integer):
        value, bound = cross_entropy_grad_bound(record.logits, record.target, dtype)
    else:
        value, bound = _f64(record.target), np.zeros(record.target.shape)
    assert_within_bound(record.grad_logits, value, bound, what=f"{who} loss gradient")
    with counting.paused():
        assert model64.backward(record.grad_logits) is None  # the network's input needs no gradient
    assert sorted(backward.checked) == sorted(names)
    # the update: every parameter, from the recorded gradient
    for name, p_before in record.state_before.items():
        if name.endswith("num_batches_tracked"):
            assert int(record.state_after[name]) == int(p_before) + 1, f"{who} {name}"
            continue
        if name not in record.param_grads:
            continue
        p, grad = _f64(p_before), _f64(record.param_grads[name])
        assert_within_bound(record.state_after[name], p - LR * grad,
                            bound_from_magnitude(np.abs(p) + LR * np.abs(grad), 3, dtype), what=f"{who} SGD {name}")
    assert set(record.param_grads) == {name for name, _ in model64.named_parameters()}
