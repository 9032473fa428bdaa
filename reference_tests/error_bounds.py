"""Error bounds for npconv's layers and for whole networks, propagated layer by layer.

`propagate(module, x, dtype)` runs the npconv module's own forward on a bounded input and
returns a `Bounded(value, error)`: `value` is npconv's float64 result (every parameter
widened exactly from its stored values; the convolutions on the fast tier where it covers
them, `_conv2d64`, the rest on the reference kernels), `error` an element-wise bound on

    |result of any implementation computing in `dtype` - value|

for implementations whose every layer satisfies the per-layer rounding models below. Both
npconv in `dtype` and PyTorch in `dtype` are then checked against `value` with that bound.
`x.error` is the bound on the input's own error (0 for an exactly representable input).

Relation to npconv.bounds (said here once for the whole module). npconv.bounds is the
package's one home of u, gamma(n) and tiny, and of the per-op bounds the graph verifier
uses; this module takes gamma and the BatchNorm constant from it
(`BATCH_NORM_EVAL_ROUNDINGS`, derived in `npconv.bounds.batch_norm_eval_bound`). The
per-layer bounds below are nonetheless derived again, on purpose: they carry an input
error E through each layer (the Lipschitz terms), compare with a float64 reference (g(n)
adds that reference's own gamma), and are evaluated by npconv's layer modules rather than
the graph's ATen ops, so a slip in either derivation shows as a disagreement. At E = 0
both exist for Conv2d, Linear, BatchNorm2d (evaluation) and AdaptiveAvgPool2d, and
reference_tests/test_bounds.py holds them against each other (equal up to the float64
reference's share and the tiny terms). The training-mode BatchNorm2d bound has no
counterpart in npconv.bounds (the verifier checks evaluation graphs): it lives here only.

Notation: u the unit roundoff of `dtype`; g(n) = gamma(n, dtype) + gamma(n, float64) with
gamma(n) = n u / (1 - n u) (Higham, eq. 3.5): one gamma for the implementation under test,
one for the float64 reference it is compared with; `bound_from_magnitude(M, n, dtype)` is
g(n) * M + n * tiny (npconv.tolerance). x is the reference input, E its error bound, x^ the
computed input (|x^| <= |x| + E).

Propagation: a computed layer output differs from the exact output of the exact input by
(the exact layer applied to x^ minus applied to x) + (the rounding of the layer on x^).
The first term is bounded through the layer's Lipschitz structure, the second by its
rounding model on magnitudes taken at |x| + E.

* Conv2d / ConvTranspose2d / Linear (inner products of n = fan_in + bias terms, any order):
      error = op(E, |w|) + g(n) * (op(|x| + E, |w|) + |b|)
  ConvTranspose2d uses n = (C_in/groups) * kH * kW + bias, an upper bound on the number of
  terms reaching any output.
* BatchNorm2d, evaluation: y = (x - mu) * a + beta with a = gamma / sqrt(var + eps). Every
  ordering used (npconv's (x - mu) * a + beta; PyTorch's x * a + (beta - mu * a), with a
  computed in 4 roundings: + eps, sqrt, divide, * gamma) gives each of the three terms at
  most 7 = BATCH_NORM_EVAL_ROUNDINGS roundings (counted in npconv.bounds), so
      error = |a| E + g(7) * ((|x| + E + |mu|) |a| + |beta|)
* BatchNorm2d, training, over the m = N*H*W values of a channel, with mu, v the exact batch
  mean and biased variance of x, s = v + eps, r = 1/sqrt(s), Ebar = mean(E),
  R = sqrt(mean(E^2)):
    - mean: sum and divide, m roundings: rho = g(m) * (mean|x| + Ebar); dmu = Ebar + rho.
    - variance, two-pass (both npconv and PyTorch's CPU kernel): the exact variance v' of x^
      satisfies |v' - v| <= 2 sqrt(v) R + R^2 (expand mean((d + f)^2) with d = x - mu,
      f = e - mean(e), and Cauchy-Schwarz; mean(f^2) <= R^2); deviations taken from the
      computed mean add (mu' - mu^)^2 <= rho^2; each term (x^ - mu^)^2 has 3 roundings, the
      sum m - 1 more and the division 1, all on non-negative terms:
          dv = (2 sqrt(v) R + R^2 + rho^2) + g(m + 3) * (v + 2 sqrt(v) R + R^2 + rho^2)
    - s^ = (v^ + eps)(1 + d), eps itself possibly rounded: ds = dv + g(1) (s + dv) + g(1) eps;
      1/sqrt(s^) lies within a factor sqrt(s / (s - ds)) of r, and sqrt and divide add 2
      roundings: eps_r = sqrt(s / (s - ds)) (1 + g(2)) - 1 (no bound when ds >= s).
    - output: |gamma| |r^ (x^ - mu^) - r (x - mu)| <= |gamma| r ((1 + eps_r)(E + dmu) + eps_r |x - mu|),
      plus the evaluation rounding model at the computed statistics:
          error = |gamma| r ((1 + eps_r)(E + dmu) + eps_r |x - mu|)
                  + g(7) ((|x| + E + |mu| + dmu) |gamma| r (1 + eps_r) + |beta|)
      (7 = BATCH_NORM_EVAL_ROUNDINGS, the evaluation formula's count, an upper bound here:
      the statistics' own roundings are in eps_r and dmu)
    - running statistics, f the momentum (itself rounded, 1 - f rounded, two products and a
      sum: 5 roundings):
          running_mean error = f dmu + g(5) ((1 - f) |rm| + f (|mu| + dmu))
          running_var  error = f dv m/(m-1) + g(5) ((1 - f) rv + f (v + dv) m/(m-1))
      (the unbiased variance var_sum / (m - 1) has the same relative error as var_sum / m).
* ReLU, ReLU6: 1-Lipschitz and exact: error = E.
* AdaptiveAvgPool2d: k - 1 additions and at most 2 divisions per window of k values
  (PyTorch divides by kh then kw; npconv once by kh*kw):
      error = pool(E) + g(k + 1) * pool(|x| + E)
* Residual add: one rounding: error = E_a + E_b + g(1) (|a| + |b| + E_a + E_b).
* Flatten, Identity, ChannelShuffle, Dropout in evaluation, a channel split or
  concatenation: exact moves: error moves along.

Whose data flow. Nothing here restates how a model wires its layers: `propagate` and
`check_layer_by_layer` call the model itself, `module(x)` with x a `Bounded`, so its own
`forward` (and its containers' forwards) decide which layer sees what. For the duration of
that call (`_LeafBounds.run`):
* every module without children has its `forward` replaced (an instance attribute,
  removed afterwards) by its bound above: it receives the Bounded the model's code hands
  it and returns a Bounded (`_leaves_replaced`);
* the functions containers call themselves between their children take Bounded values:
  npconv.ops.add (residual add), ops.adaptive_avg_pool2d and ops.flatten (network heads),
  ops.channel_shuffle, npconv.channels.split_channels / cat_channels (ShuffleNetV2's unit).
  Each name bound to one of them in npconv.ops, npconv.channels and the modules defining
  the tree's classes is rebound, for the call, to a function that applies the bound above
  to Bounded arguments and the original function to anything else (`_glue_bounded`,
  table `_GLUE`).
A container computing anything else on its input (`x * 2`, `x[:, :3]`) gets a Bounded,
which is no array, and fails: an op is never passed over without its bound. Adding a
model needs nothing here unless its forward calls an op outside `_GLUE`; adding that op
means one entry there, its bound derived above.

Everything here is computed in float64 by npconv's own kernels, with counting paused.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass

import numpy as np

from npconv import bounds, channels, counting, ops
from npconv.bounds import BATCH_NORM_EVAL_ROUNDINGS, gamma
from npconv.formulas import adaptive_pool_windows
from npconv.functional import conv2d
from npconv.nn import (AdaptiveAvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, ConvTranspose2d, Dropout, Flatten,
                       Identity, Linear, ReLU, ReLU6, Sequential)
from npconv.tolerance import assert_within_bound, bound_from_magnitude
from npconv.transpose import conv_transpose2d


@dataclass
class Bounded:
    """A float64 reference value and an element-wise bound on the error of a computed one."""

    value: np.ndarray
    error: np.ndarray

    @property
    def shape(self) -> tuple:
        """The value's shape (a model's forward may keep it for its backward)."""
        return self.value.shape

    @staticmethod
    def exact(x: np.ndarray) -> "Bounded":
        x = np.asarray(x, dtype=np.float64)
        return Bounded(x, np.zeros_like(x))


def g(n, dtype):
    """gamma(n) of the dtype under test plus gamma(n) of the float64 reference."""
    return gamma(n, dtype) + gamma(n, np.float64)


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _abs64(a):
    return None if a is None else np.abs(np.asarray(a, dtype=np.float64))


def _amplified(op, error, abs_weight, *args):
    """op(error, |W|): how the input's error bound grows through a linear op. An exact input
    (zero error, as every layer-by-layer check feeds) with finite weights gives zeros; that
    case skips the float64 reference kernel, which for a convolution is a third of the
    bound's time (with a non-finite weight, 0 * inf is NaN, so the op runs)."""
    if not error.any() and np.isfinite(abs_weight).all():
        return np.zeros((), np.float64)
    return op(error, abs_weight, None, *args)


# ------------------------------------------------------------------------------- leaves


def _conv2d64(x, w, b, *args):
    """npconv.functional.conv2d on float64 arrays, on the fast tier where it covers the
    layer (else the reference kernel). Any summation order is within the float64 gamma that
    g(n) adds for the reference, and the fast tier computes a 224x224 network's convolutions
    in a fraction of the loop nest's time (test_fast.py holds it to the reference kernel)."""
    return conv2d(x, w, b, *args, engine="fast")


def _conv2d_terms(layer, magnitude_in):
    return _conv2d64(magnitude_in, _abs64(layer.weight), _abs64(layer.bias), layer.stride, layer.padding,
                     layer.dilation, layer.groups, layer.padding_mode)


def _conv_transpose2d_terms(layer, magnitude_in, output_padding):
    return conv_transpose2d(magnitude_in, _abs64(layer.weight), _abs64(layer.bias), layer.stride, layer.padding,
                            output_padding, layer.groups, layer.dilation)


def _linear_terms(layer, magnitude_in):
    return ops.linear(magnitude_in, _abs64(layer.weight), _abs64(layer.bias))


def terms_magnitude(layer, magnitude_in, output_padding=None):
    """op(|x|, |w|, |b|) of an inner-product layer (Conv2d, ConvTranspose2d, Linear) at input
    magnitudes `magnitude_in`: what each output's n products and bias add up to in absolute
    value, the scale its rounding bound is a multiple of. None for another layer. (The bounds
    below call the op's own helper: they also take duck-typed layers, opinfo_corpus.py.)"""
    if isinstance(layer, Linear):
        return _linear_terms(layer, magnitude_in)
    if isinstance(layer, ConvTranspose2d):
        output_padding = layer.output_padding if output_padding is None else output_padding
        return _conv_transpose2d_terms(layer, magnitude_in, output_padding)
    if isinstance(layer, Conv2d):
        return _conv2d_terms(layer, magnitude_in)
    return None


def conv2d_bound(layer: Conv2d, x: Bounded, dtype) -> Bounded:
    args = (layer.stride, layer.padding, layer.dilation, layer.groups, layer.padding_mode)
    value = _conv2d64(x.value, _f64(layer.weight), _f64(layer.bias), *args)
    amplified = _amplified(_conv2d64, x.error, _abs64(layer.weight), *args)
    magnitude = _conv2d_terms(layer, np.abs(x.value) + x.error)
    n = layer.weight.shape[1] * layer.weight.shape[2] * layer.weight.shape[3] + (layer.bias is not None)
    return Bounded(value, amplified + bound_from_magnitude(magnitude, n, dtype))


def conv_transpose2d_bound(layer: ConvTranspose2d, x: Bounded, dtype, output_padding=None) -> Bounded:
    output_padding = layer.output_padding if output_padding is None else output_padding
    args = (layer.stride, layer.padding, output_padding, layer.groups, layer.dilation)
    value = conv_transpose2d(x.value, _f64(layer.weight), _f64(layer.bias), *args)
    amplified = _amplified(conv_transpose2d, x.error, _abs64(layer.weight), *args)
    magnitude = _conv_transpose2d_terms(layer, np.abs(x.value) + x.error, output_padding)
    in_per_group = layer.in_channels // layer.groups
    n = in_per_group * layer.weight.shape[2] * layer.weight.shape[3] + (layer.bias is not None)
    return Bounded(value, amplified + bound_from_magnitude(magnitude, n, dtype))


def linear_bound(layer: Linear, x: Bounded, dtype) -> Bounded:
    value = ops.linear(x.value, _f64(layer.weight), _f64(layer.bias))
    amplified = _amplified(ops.linear, x.error, _abs64(layer.weight))
    magnitude = _linear_terms(layer, np.abs(x.value) + x.error)
    n = layer.in_features + (layer.bias is not None)
    return Bounded(value, amplified + bound_from_magnitude(magnitude, n, dtype))


def _channel(a, C):
    """A (C,) vector shaped to broadcast over (N, C, H, W)."""
    return np.asarray(a, dtype=np.float64).reshape(1, C, 1, 1)


def _affine(layer: BatchNorm2d):
    C = layer.num_features
    weight = np.ones(C) if layer.weight is None else _f64(layer.weight)
    bias = np.zeros(C) if layer.bias is None else _f64(layer.bias)
    return weight, bias


def batch_norm_eval_bound(layer: BatchNorm2d, x: Bounded, dtype) -> Bounded:
    C = layer.num_features
    weight, bias = _affine(layer)
    mean, var = _f64(layer.running_mean), _f64(layer.running_var)
    value = ops.batch_norm2d(x.value, mean, var, weight, bias, training=False, eps=layer.eps)
    a = np.abs(_channel(weight / np.sqrt(var + layer.eps), C))
    magnitude = (np.abs(x.value) + x.error + np.abs(_channel(mean, C))) * a + np.abs(_channel(bias, C))
    return Bounded(value, a * x.error + bound_from_magnitude(magnitude, BATCH_NORM_EVAL_ROUNDINGS, dtype))


@dataclass
class BatchNormTrainBound:
    """A training-mode BatchNorm2d step: the output, and the running statistics after it
    (None when the layer does not track them), each a Bounded."""

    output: Bounded
    running_mean: Bounded | None
    running_var: Bounded | None


def _scaled(a, factor):
    """a * factor for a >= 0 and a factor in [0, inf]: 0 where a is 0. eps_r is inf where the
    variance is not bounded away from 0; an exactly zero term (an element equal to the mean)
    stays zero under any relative error of 1/std, where inf * 0 would make the bound NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(a == 0, 0.0, a * factor)


def batch_norm_train_bound(layer: BatchNorm2d, x: Bounded, dtype, stats=None) -> BatchNormTrainBound:
    """The training-mode bound of the module docstring. Does not change `layer`. stats:
    (running_mean, running_var, num_batches_tracked) to use instead of the layer's own."""
    C = layer.num_features
    N, _, H, W = x.value.shape
    m = N * H * W
    weight, bias = _affine(layer)
    tracking = layer.track_running_stats
    if stats is None and tracking:
        stats = (layer.running_mean, layer.running_var, layer.num_batches_tracked)
    momentum = layer.momentum
    if tracking and momentum is None:
        momentum = 1.0 / (int(stats[2]) + 1)
    rm = _f64(stats[0]) if tracking else None
    rv = _f64(stats[1]) if tracking else None
    result = ops.batch_norm2d(x.value, rm, rv, weight, bias, training=True,
                              momentum=0.1 if momentum is None else momentum, eps=layer.eps)

    axes = (0, 2, 3)
    mu = x.value.mean(axis=axes)
    v = ((x.value - _channel(mu, C)) ** 2).mean(axis=axes)
    E = x.error
    E_bar = E.mean(axis=axes)
    R = np.sqrt((E ** 2).mean(axis=axes))
    rho = g(m, dtype) * (np.abs(x.value).mean(axis=axes) + E_bar)
    d_mu = E_bar + rho
    shift = 2 * np.sqrt(v) * R + R ** 2 + rho ** 2
    d_v = shift + g(m + 3, dtype) * (v + shift)
    s = v + layer.eps
    d_s = d_v + g(1, dtype) * (s + d_v) + g(1, dtype) * layer.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        eps_r = np.where(d_s < s, np.sqrt(s / (s - d_s)) * (1 + g(2, dtype)) - 1, np.inf)
    r = 1 / np.sqrt(s)
    gr = np.abs(weight) * r
    deviation = np.abs(x.value - _channel(mu, C))
    output_error = _channel(gr, C) * (_scaled(E + _channel(d_mu, C), 1 + _channel(eps_r, C))
                                      + _scaled(deviation, _channel(eps_r, C)))
    magnitude = (_scaled(np.abs(x.value) + E + _channel(np.abs(mu) + d_mu, C), _channel(gr * (1 + eps_r), C))
                 + np.abs(_channel(bias, C)))
    output_error = output_error + bound_from_magnitude(magnitude, BATCH_NORM_EVAL_ROUNDINGS, dtype)
    output = Bounded(result.output, output_error)
    if not tracking:
        return BatchNormTrainBound(output, None, None)
    f = momentum
    unbias = m / (m - 1)
    # PyTorch takes any momentum (negative, above 1): the weights enter by their magnitudes
    mean_error = abs(f) * d_mu + g(5, dtype) * (abs(1 - f) * np.abs(rm) + abs(f) * (np.abs(mu) + d_mu))
    var_error = abs(f) * d_v * unbias + g(5, dtype) * (abs(1 - f) * rv + abs(f) * (v + d_v) * unbias)
    tiny = 5 * bounds.tiny(dtype)
    return BatchNormTrainBound(output, Bounded(result.running_mean, mean_error + tiny),
                               Bounded(result.running_var, var_error + tiny))


def adaptive_avg_pool2d_bound(x: Bounded, output_size, dtype) -> Bounded:
    value = ops.adaptive_avg_pool2d(x.value, output_size)
    pooled_error = ops.adaptive_avg_pool2d(x.error, output_size)
    magnitude = ops.adaptive_avg_pool2d(np.abs(x.value) + x.error, output_size)
    H, W = x.value.shape[-2:]
    OH, OW = value.shape[-2:]
    # the largest window: ceil(H/OH) + 1 rows at most when OH does not divide H
    k = max(adaptive_pool_windows(H, OH), default=0) * max(adaptive_pool_windows(W, OW), default=0)
    return Bounded(value, pooled_error + bound_from_magnitude(magnitude, k + 1, dtype))


def add_bound(a: Bounded, b: Bounded, dtype) -> Bounded:
    magnitude = np.abs(a.value) + np.abs(b.value) + a.error + b.error
    return Bounded(a.value + b.value, a.error + b.error + bound_from_magnitude(magnitude, 1, dtype))


def _map(x: Bounded, f) -> Bounded:
    return Bounded(f(x.value), f(x.error))


# ------------------------------------------------------------------------------- networks


def _leaf_bound(module, x: Bounded, dtype, mode: bool, stats=None, **kwargs) -> Bounded:
    """The bound of one leaf layer called on x (its forward's keyword arguments in kwargs:
    only ConvTranspose2d's output_size exists)."""
    if isinstance(module, ConvTranspose2d):
        output_size = kwargs.pop("output_size", None)
        output_padding = None if output_size is None else module._output_padding(x.value, output_size)
    if kwargs:
        raise TypeError(f"no error bound for {type(module).__name__} called with {sorted(kwargs)}")
    if isinstance(module, Conv2d):
        return conv2d_bound(module, x, dtype)
    if isinstance(module, ConvTranspose2d):
        return conv_transpose2d_bound(module, x, dtype, output_padding)
    if isinstance(module, Linear):
        return linear_bound(module, x, dtype)
    if isinstance(module, BatchNorm2d):
        if mode or module.running_mean is None:
            return batch_norm_train_bound(module, x, dtype, stats).output
        return batch_norm_eval_bound(module, x, dtype)
    if isinstance(module, ReLU):
        return Bounded(ops.relu(x.value), x.error)
    if isinstance(module, ReLU6):
        return Bounded(ops.relu6(x.value), x.error)
    if isinstance(module, AdaptiveAvgPool2d):
        return adaptive_avg_pool2d_bound(x, module.output_size, dtype)
    if isinstance(module, Flatten):
        return _map(x, lambda a: ops.flatten(a, module.start_dim, module.end_dim))
    if isinstance(module, ChannelShuffle):
        return _map(x, lambda a: ops.channel_shuffle(a, module.groups))
    if isinstance(module, (Identity, Sequential)):  # a Sequential without children is the identity
        return x
    if isinstance(module, Dropout):
        if mode and module.p > 0:
            raise ValueError("no deterministic bound for Dropout in training mode")
        return x
    raise TypeError(f"no error bound for {type(module).__name__}")


def _is_leaf(module) -> bool:
    return next(iter(module.children()), None) is None


@contextlib.contextmanager
def _leaves_replaced(model, replacement):
    """While the block runs, every module of `model` without children has its forward
    replaced by `replacement(module, path, *args, **kwargs)` (path: its qualified name);
    restored on exit, also on an exception. Module.__call__ still runs around it (counting
    scope, errors named after the layer)."""
    replaced = []
    try:
        for path, module in model.named_modules():
            if _is_leaf(module):
                replaced.append((module, module.__dict__.get("forward")))
                object.__setattr__(module, "forward", functools.partial(replacement, module, path))
        yield
    finally:
        for module, own in reversed(replaced):
            if own is None:
                module.__dict__.pop("forward", None)
            else:
                object.__setattr__(module, "forward", own)


def _split_bound(x: Bounded, first: int):
    return Bounded(x.value[:, :first], x.error[:, :first]), Bounded(x.value[:, first:], x.error[:, first:])


def _cat_bound(a: Bounded, b: Bounded) -> Bounded:
    return Bounded(np.concatenate([a.value, b.value], axis=1), np.concatenate([a.error, b.error], axis=1))


# The glue: what containers compute themselves between their children, on Bounded values:
# original function -> its bound, called with the dtype and then the original's arguments.
# (Inside these, ops.* on arrays reach the originals: see _glue_bounded.)
_GLUE = {
    ops.add: lambda dtype, a, b: add_bound(a, b, dtype),
    ops.adaptive_avg_pool2d: lambda dtype, x, output_size: adaptive_avg_pool2d_bound(x, output_size, dtype),
    ops.flatten: lambda dtype, x, start_dim=1, end_dim=-1: _map(x, lambda a: ops.flatten(a, start_dim, end_dim)),
    ops.channel_shuffle: lambda dtype, x, groups: _map(x, lambda a: ops.channel_shuffle(a, groups)),
    channels.split_channels: lambda dtype, x, first: _split_bound(x, first),
    channels.cat_channels: lambda dtype, a, b: _cat_bound(a, b),
}


@contextlib.contextmanager
def _glue_bounded(model, dtype):
    """While the block runs, the functions in _GLUE take Bounded values: wherever npconv.ops,
    npconv.channels or the module defining any class in `model`'s tree holds one of them
    under some name (the models call `ops.add`, `ops.flatten`, `ops.adaptive_avg_pool2d`,
    `ops.channel_shuffle`; ShuffleNetV2Unit imports `split_channels` and `cat_channels`),
    that name is rebound to a function that applies the bound when an argument is Bounded
    and the original otherwise (the bounds themselves call some of these on arrays).
    Restored on exit. A container computing anything else on a Bounded value fails (a
    Bounded is not an array), so nothing is passed on without its bound."""
    def carrying(original, bound):
        @functools.wraps(original)
        def call(*args, **kwargs):
            if any(isinstance(a, Bounded) for a in (*args, *kwargs.values())):
                return bound(dtype, *args, **kwargs)
            return original(*args, **kwargs)
        return call

    by_id = {id(f): (f, bound) for f, bound in _GLUE.items()}
    defining = [sys.modules.get(type(m).__module__) for m in model.modules()]
    namespaces = {id(ns): ns for ns in [ops, channels, *defining] if ns is not None}
    rebound = []
    try:
        for ns in namespaces.values():
            for name, value in list(vars(ns).items()):
                if id(value) in by_id and by_id[id(value)][0] is value:
                    rebound.append((ns, name, value))
                    setattr(ns, name, carrying(*by_id[id(value)]))
        yield
    finally:
        for ns, name, value in reversed(rebound):
            setattr(ns, name, value)


@dataclass
class Observed:
    """One implementation's run of a network: qualified leaf name -> (input, output) as that
    implementation computed them, and (training mode) its state_dict after the run."""

    io: dict
    state_after: dict | None = None


class _LeafBounds:
    """Runs an npconv model's own forward on a `Bounded` input, with every leaf layer's
    forward replaced by `leaf` and the containers' own ops carrying bounds (`_glue_bounded`),
    so the data flow followed is the model's, wherever it is written.

    A priori (observed=None): every layer's bound is applied to the bound carried in.
    Layer by layer (observed given): at every leaf, the input the implementation actually
    used must lie within the carried bound (exactly equal when it is exact); the leaf's
    output is then checked against the layer's own bound at that actual input, and the
    run continues from the actual output, exact. Only the glue between leaves (residual
    adds, the functional pooling of MobileNetV2) carries a bound from one leaf to the next.
    """

    def __init__(self, dtype, training, observed: Observed | None = None, who: str = "",
                 state_before: dict | None = None, meaningful: float | None = None):
        self.dtype = np.dtype(dtype)
        self.training = training
        self.observed = observed
        self.who = who
        self.state_before = state_before
        self.meaningful = meaningful
        self.checked: list[str] = []

    def leaf(self, module, x: Bounded, path: str, mode: bool, **kwargs) -> Bounded:
        stats = None
        if isinstance(module, BatchNorm2d) and module.track_running_stats and self.state_before is not None:
            stats = tuple(self.state_before[f"{path}.{key}" if path else key] for key in
                          ("running_mean", "running_var", "num_batches_tracked"))
        if self.observed is None:
            return _leaf_bound(module, x, self.dtype, mode, stats, **kwargs)
        inp, out = self.observed.io[path]
        where = f"{self.who} '{path}' ({type(module).__name__})"
        assert_within_bound(inp, x.value, x.error, what=f"{where} input")
        local = _leaf_bound(module, Bounded.exact(inp), self.dtype, mode, stats, **kwargs)
        assert_within_bound(out, local.value, local.error, what=f"{where} output")
        if self.meaningful is not None:
            # at most a tenth (meaningful) of the largest output; for a sum that cancels (a
            # lone logit far smaller than its terms) no a-priori bound can be, and a tenth of
            # the terms' magnitude is asked instead (computed only then: it costs a float64 op)
            scale = float(np.max(np.abs(local.value), initial=0.0))
            worst = float(np.max(local.error, initial=0.0))
            if not (worst <= self.meaningful * scale or scale == 0):
                terms = terms_magnitude(module, np.abs(np.asarray(inp, np.float64)), kwargs.get("output_padding"))
                terms = 0.0 if terms is None else float(np.max(terms, initial=0.0))
                assert worst <= self.meaningful * terms, \
                    f"{where}: bound {worst:.3g} vs |values| {scale:.3g} and |terms| {terms:.3g}"
        if (isinstance(module, BatchNorm2d) and mode and module.track_running_stats
                and self.observed.state_after is not None):
            step = batch_norm_train_bound(module, Bounded.exact(inp), self.dtype, stats)
            for key, bounded in (("running_mean", step.running_mean), ("running_var", step.running_var)):
                qualified = f"{path}.{key}" if path else key
                assert_within_bound(self.observed.state_after[qualified], bounded.value, bounded.error,
                                    what=f"{where} {key}")
        self.checked.append(path)
        return Bounded.exact(out)

    def run(self, model, x: Bounded) -> Bounded:
        """`model`'s own forward on x, carrying the bound (class docstring). `model` is
        unchanged afterwards."""
        def leaf_forward(module, path, x, **kwargs):
            if not isinstance(x, Bounded):
                raise TypeError(f"'{path}' ({type(module).__name__}) was called on a {type(x).__name__}, not on a "
                                "value the forward carried a bound for")
            mode = module.training if self.training is None else self.training
            return self.leaf(module, x, path, mode, **kwargs)

        with _leaves_replaced(model, leaf_forward), _glue_bounded(model, self.dtype):
            result = model(x)
        if not isinstance(result, Bounded):
            raise TypeError(f"{type(model).__name__}'s forward returned a {type(result).__name__}, not a bounded value")
        return result


def propagate(module, x: Bounded, dtype, training: bool | None = None, state_before: dict | None = None) -> Bounded:
    """The a-priori bound on `module(x)` computed in `dtype` (module docstring), through
    `module`'s own forward. `training` defaults to each module's own mode; nothing in
    `module` is changed."""
    with counting.paused():
        return _LeafBounds(dtype, training, state_before=state_before).run(module, x)


def check_layer_by_layer(module, x: np.ndarray, output: np.ndarray, observed: Observed, dtype, who: str,
                         training: bool | None = None, state_before: dict | None = None,
                         meaningful: float | None = 0.1) -> list[str]:
    """Check one implementation's run of `module` on input x, leaf by leaf, through
    `module`'s own forward (see `_LeafBounds`): each leaf's output within that layer's bound
    at the input it actually received, each input where the previous leaves' outputs (and
    the glue between them) put it, the final output where the last leaf put it, and, in
    training, each BatchNorm2d's running statistics within their bound. `state_before`: the
    state_dict before the run (training). meaningful: also require each leaf's bound to be
    at most this fraction of its largest output. Returns the qualified names of the leaves
    checked, in the order the forward called them."""
    with counting.paused():
        run = _LeafBounds(dtype, training, observed, who, state_before, meaningful)
        final = run.run(module, Bounded.exact(x))
    assert_within_bound(output, final.value, final.error, what=f"{who} final output")
    return run.checked
