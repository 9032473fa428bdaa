"""Training TinyMobileNet (and small networks of the supported layers) with npconv.train,
against PyTorch's autograd and torch.optim.SGD on the twins.

What is proved:
* Three SGD steps of TinyMobileNet (lr 0.1, three different batches of 2 at 32 x 32, from
  the twin's weights), in float64 and in float32, for PyTorch and for npconv.train alike:
  every operation of every step lies within its own derived rounding bound of npconv's
  float64 reference operation applied to that implementation's own inputs ("shadowing",
  below): each layer's forward output and BatchNorm running statistics, the loss
  gradient, each layer's input gradient and parameter gradients, and each SGD update;
  and the input and the gradient reaching each layer are, bit for bit, what the model's
  own forward and backward make of its neighbours' recorded results (data movement, and
  one correctly rounded add at a residual fork). num_batches_tracked are equal.
* npconv's and PyTorch's parameters and running statistics after the three steps,
  compared directly: `test_three_steps_end_to_end_differences` states what is asserted
  there and why no a-priori end-to-end bound is (the worst-case bound propagated through
  17 layers, forward and back, three times, is astronomically loose).
* The same shadowing for one step of small networks drawn by Hypothesis (stem,
  MobileNetBlocks, InvertedResidual blocks with and without the residual add, pooling,
  Flatten, Linear).
* The loss and its gradient match F.cross_entropy and autograd within their bound.
* Counts: per layer, grad-input MACs = grad-weight MACs = forward MACs for every Conv2d
  and Linear (the first layer has no input gradient), equal to the closed forms; every
  other backward op equals its closed form; SGD counts one update per parameter.
* The module protocol (npconv.nn.Module.backward): only a forward inside enable_grad()
  keeps arrays, the backward releases them; BatchNorm2d's backward uses the statistics its
  forward kept; a module without a backward, or one run twice in a recorded forward, is
  refused by name; ChannelShuffle's backward is the inverse permutation and Dropout's
  (training) goes through the forward's own mask, both counted.
* `backward_cost_table`: its FlopCounterMode columns are FlopCounterMode's own per-module
  figures; pinned for TinyMobileNet on torch 2.13: the depthwise layers' weight gradients
  are counted `groups` times too high, everything else agrees.

Shadowing. Running the same training step, two implementations differ by rounding, and
how far rounding at layer 3 moves the parameters after three steps depends on the
conditioning of everything after it. A worst-case bound propagated through the network
(|W| * E for each convolution, the Jacobian bound of each BatchNorm) grows 11-27x per
BatchNorm: on TinyMobileNet in float64 it reaches 0.8 after the 31st of the 32 leaf
layers of the first forward pass and is infinite at the last BatchNorm
(error_bounds.propagate; npconv.verify's docstring reports the same for forward passes).
So the step is checked the way npconv.verify checks a forward pass, operation by operation
(train_helpers.check_step, through the model's own forward and backward): every result R = op(inputs) an implementation
produced is compared with npconv's float64 op applied to *that implementation's own*
inputs (exactly widened), within the op's own rounding bound, and the next operation is
checked from the implementation's actual result, so no error is carried and every bound
stays as sharp as one layer's. Passing says: the implementation's whole trajectory is
npconv's algorithm with, at every operation, a perturbation no larger than that
operation's rounding (a backward-error statement about the training run).

The bounds (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5: a sum of n
terms in any order is within gamma(n) sum|terms|; `bound_from_magnitude` adds the
float64 reference's own gamma(n, 2^-53) and n * tiny):
* forward of every layer and the BatchNorm running statistics: error_bounds.py (the
  per-layer bounds of `check_layer_by_layer`), derivations there;
* Conv2d backward: grad_input n = (C_out/g) kH kW R (R the padding fold,
  `train_helpers.fold_multiplicity`), grad_weight and grad_bias n = N OH OW, magnitudes
  from the same kernels on |gy|, |x|, |w| (as test_backward.py); Linear: n = OUT, rows,
  rows (as test_layer_backward.py);
* BatchNorm2d (training) backward: `train_helpers.bn_train_backward_bound` (derived there),
  the forward statistics' rounding included;
* ReLU and ReLU6 backward: a selection, so equal bit for bit; AdaptiveAvgPool2d backward:
  n = R + 1 on pool_backward(|gy|); Flatten: a reshape, exact;
* between layers (the residual fork's gy + g_branch, reshapes): exact given the recorded
  neighbours, as said above;
* cross-entropy gradient: `train_helpers.cross_entropy_grad_bound`;
* SGD, p - lr g: lr rounded to the dtype, a product and a difference: n = 3 on |p| + lr |g|.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from train_helpers import LR, check_step, cross_entropy_grad_bound, leaves, run_both, torch_twin
from twin_utils import one_torch_thread

import npconv
from npconv import cost_backward, formulas_backward, formulas_layer_backward, ops, train, twins
from npconv.convert import from_torch
from npconv.nn import (AdaptiveAvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, Dropout, Flatten, Linear, Module,
                       ReLU6, Sequential)
from npconv.nn.hooks import hooked
from npconv.tolerance import assert_within_bound, gamma

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _batches(seed, steps, shape, classes):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape), rng.integers(0, classes, shape[0])) for _ in range(steps)]


def _tiny_mobilenet(seed=0, shape=(2, 3, 32, 32)):
    return twins.build("TinyMobileNet", seed=seed, calibration_shape=shape)


# --------------------------------------------------------------------------------------
# TinyMobileNet: three SGD steps
# --------------------------------------------------------------------------------------


pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")


@pytest.fixture(scope="module", params=[np.float64, np.float32], ids=["float64", "float32"])
def three_steps(request):
    dtype = request.param
    twin = _tiny_mobilenet()
    batches = _batches(1, 3, (2, 3, 32, 32), 10)
    theirs, ours = run_both(twin, batches, dtype)
    return dtype, twin, theirs, ours


def test_three_sgd_steps_are_npconvs_steps_operation_by_operation(three_steps):
    """Every operation of three training steps of PyTorch and of npconv.train lies within its
    rounding bound of npconv's float64 operation on that implementation's own inputs."""
    dtype, twin, theirs, ours = three_steps
    skeleton = from_torch(twins.build("TinyMobileNet", seed=0, calibration_shape=(2, 3, 32, 32)))
    for k, (record_theirs, record_ours) in enumerate(zip(theirs, ours), 1):
        check_step(skeleton, record_theirs, dtype, f"torch step {k}")
        check_step(skeleton, record_ours, dtype, f"npconv step {k}")


def test_three_steps_end_to_end_differences(three_steps):
    """npconv's and PyTorch's states after three steps, compared directly.

    Asserted: both started from the same weights (bit for bit) and saw the same data; the
    step-by-step agreement is proved above; num_batches_tracked are equal. Measured (not
    asserted against a bound: none derivable a priori is informative, see the module
    docstring): the largest difference relative to the largest change training made in
    that tensor, recorded in docs/backward.md, is 1e-13 in float64 and 1.3e-4 in float32.
    This is a detection threshold, not a rounding bound: a gradient off by a factor, a sign
    or a missing term makes the difference comparable to the change itself, so asserted
    here is that every difference is below 1% of its tensor's change over the three steps
    in float32 and below 1e-8 of it in float64.
    """
    dtype, twin, theirs, ours = three_steps
    start_theirs, start_ours = theirs[0].state_before, ours[0].state_before
    for key in start_theirs:
        np.testing.assert_array_equal(start_ours[key], start_theirs[key].astype(start_ours[key].dtype))
    end_theirs, end_ours = theirs[-1].state_after, ours[-1].state_after
    limit = 1e-8 if dtype == np.float64 else 1e-2
    for key, start in start_theirs.items():
        a, b = _f64(end_ours[key]), _f64(end_theirs[key])
        if key.endswith("num_batches_tracked"):
            assert a == b == int(start) + 3
            continue
        change = np.max(np.abs(b - _f64(start)))
        assert change > 0, key
        assert np.max(np.abs(a - b)) <= limit * change, (key, np.max(np.abs(a - b)), change)


# --------------------------------------------------------------------------------------
# Small networks drawn by Hypothesis: one step each
# --------------------------------------------------------------------------------------


@st.composite
def small_networks(draw):
    """A torch network of the supported layers and the tutorial's blocks: stem conv (+ BN
    + ReLU6), one or two blocks (MobileNetBlock, or InvertedResidual with its residual add
    (stride 1, as many channels out as in) or any other), AdaptiveAvgPool2d, Flatten,
    Linear; BatchNorm affine parameters drawn
    so that they are not the trivial 1 and 0."""
    T = twins.classes()
    nn = torch.nn
    c0 = draw(st.integers(1, 4), label="stem channels")
    layers = [nn.Conv2d(3, c0, 3, draw(st.integers(1, 2), label="stem stride"), 1,
                        bias=draw(st.booleans(), label="stem bias")),
              nn.BatchNorm2d(c0), nn.ReLU6()]
    c = c0
    for i in range(draw(st.integers(1, 2), label="blocks")):
        kind = draw(st.sampled_from(["residual", "MobileNetBlock", "InvertedResidual"]), label=f"block {i}")
        stride = 1 if kind == "residual" else draw(st.integers(1, 2), label=f"stride {i}")
        out = c if kind == "residual" or draw(st.booleans(), label=f"keep channels {i}") else \
            draw(st.integers(1, 5), label=f"out {i}")
        if kind == "MobileNetBlock":
            layers.append(T.MobileNetBlock(c, out, stride))
        else:
            layers.append(T.InvertedResidual(c, out, stride, draw(st.sampled_from([1, 2]), label=f"expand {i}")))
        c = out
    pooled = draw(st.integers(1, 2), label="pool size")
    layers += [nn.AdaptiveAvgPool2d(pooled), nn.Flatten(), nn.Linear(c * pooled * pooled,
                                                                     draw(st.integers(2, 5), label="classes"))]
    net = nn.Sequential(*layers)
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="weights seed"))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, tuple(p.shape))))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.num_features)))
    return net.double()


@settings(max_examples=max(3, settings().max_examples // 3))
@given(data=st.data())
def test_one_step_of_small_networks_is_npconvs_step(data):
    twin = data.draw(small_networks(), label="network")
    N = data.draw(st.integers(2, 3), label="N")
    size = data.draw(st.integers(4, 9), label="H=W")
    classes = twin[-1].out_features
    batches = _batches(data.draw(st.integers(0, 2**16), label="data seed"), 1, (N, 3, size, size), classes)
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    skeleton = from_torch(twin)
    theirs, ours = run_both(twin, batches, dtype)
    check_step(skeleton, theirs[0], dtype, "torch")
    check_step(skeleton, ours[0], dtype, "npconv")


BLOCKS = {
    "HybridBlock": ((3, 4), {}),                       # conv s2, depthwise separable, conv-transpose s2
    "DepthwiseSeparableConv": ((3, 5, 3), {"stride": 2, "padding": 1}),
    "MobileNetBlock": ((3, 4), {"stride": 2}),
    "InvertedResidual": ((4, 4, 1), {"expand_ratio": 2}),   # with its residual add
}


@settings(max_examples=max(4, settings().max_examples // 5))
@given(data=st.data())
def test_one_step_of_each_tutorial_block_is_npconvs_step(data):
    """The blocks (HybridBlock's ConvTranspose2d included) as whole models: a seeded
    dL/d(output) backpropagated, then an SGD step, shadowed as above. A block's input needs
    no gradient, so its first layer skips grad_input in both."""
    kind = data.draw(st.sampled_from(sorted(BLOCKS)), label="block")
    args, kwargs = BLOCKS[kind]
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    size = data.draw(st.integers(3, 8), label="H=W")
    shape = (2, args[0], size, size)
    twin = twins.build(kind, *args, seed=seed, calibration_shape=shape, **kwargs).double()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    with torch.no_grad():
        out_shape = tuple(torch_twin(twins.build(kind, *args, seed=seed, calibration_shape=shape, **kwargs),
                                     np.float64)(torch.from_numpy(x)).shape)
    batches = [(x, rng.standard_normal(out_shape))]
    theirs, ours = run_both(twin, batches, dtype)
    skeleton = from_torch(twin)
    check_step(skeleton, theirs[0], dtype, f"torch {kind}")
    check_step(skeleton, ours[0], dtype, f"npconv {kind}")


# --------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_cross_entropy_and_its_gradient_match_pytorch(dtype, data):
    """The gradient within `cross_entropy_grad_bound`; the loss, mean_n(lse_n - z[n, t_n]),
    within the same logsumexp analysis plus the subtraction and the mean's N - 1 adds and
    one division (g(N + 2) on mean(|lse| + |z_t|))."""
    N = data.draw(st.integers(1, 5), label="N")
    K = data.draw(st.integers(1, 12), label="K")
    scale = data.draw(st.sampled_from([0.1, 1.0, 30.0]), label="logit scale")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    z = (rng.standard_normal((N, K)) * scale).astype(dtype)
    t = rng.integers(0, K, N)
    value, bound = cross_entropy_grad_bound(z, t, dtype)
    tz = torch.from_numpy(z).requires_grad_()
    loss = torch.nn.functional.cross_entropy(tz, torch.from_numpy(t))
    (their_grad,) = torch.autograd.grad(loss, tz)
    with npconv.count() as tally:
        ours = train.cross_entropy(z, t)
        our_grad = train.cross_entropy_backward(z, t, ours.log_sum_exp)
    assert ours.loss.dtype == dtype and our_grad.dtype == dtype and our_grad.shape == z.shape
    assert_within_bound(their_grad.numpy(), value, bound, what="torch cross_entropy gradient")
    assert_within_bound(our_grad, value, bound, what="npconv cross_entropy gradient")
    z64 = z.astype(np.float64)
    U = float(np.finfo(dtype).eps) / 2 + 2.0**-53
    g = lambda n: float(gamma(n, dtype) + gamma(n, np.float64))  # noqa: E731
    largest = z64.max(axis=1)
    s = np.exp(z64 - largest[:, None]).sum(axis=1)
    lse = largest + np.log(s)
    z_t = z64[np.arange(N), t]
    d = U * np.abs(z64 - largest[:, None]).max(axis=1) + 2 * U + g(max(K - 1, 0)) + 2 * U * np.abs(np.log(s)) \
        + U * np.abs(lse)
    exact = np.mean(lse - z_t)
    loss_bound = np.mean(d) + g(N + 2) * np.mean(np.abs(lse) + np.abs(z_t) + d)
    assert abs(loss.item() - exact) <= loss_bound, (loss.item(), exact, loss_bound)
    assert abs(float(ours.loss) - exact) <= loss_bound, (float(ours.loss), exact, loss_bound)
    assert dict(tally.by_op["cross_entropy"].other) == formulas_layer_backward.cross_entropy_counts(N, K)
    assert tally.by_op["cross_entropy_backward"].other["loss_grad_exps"] == \
        formulas_layer_backward.cross_entropy_backward_exps(N, K)


def test_cross_entropy_rejects_bad_targets():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="Target 3 is out of bounds"):
        train.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="Target -1 is out of bounds"):
        train.cross_entropy(z, np.array([-1, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        train.cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(2\) to match target batch_size \(3\)"):
        train.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C\)"):
        train.cross_entropy(np.zeros(3), np.array([0]))


# --------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------


def test_training_step_counts_per_layer():
    """Each layer's backward is counted under its own qualified name: grad-weight MACs =
    forward MACs, grad-input MACs = forward MACs except for the first layer (its input
    needs no gradient), each equal to the closed forms; every other backward op equals its
    closed form; SGD counts one update per parameter, under the layer owning it."""
    twin = _tiny_mobilenet()
    net = from_torch(twin).train()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    shapes = {}
    with hooked(net, post=lambda name, mod, args, out: shapes.__setitem__(name, args[0].shape), leaves_only=True), \
            npconv.count() as tally:
        step = train.train_step(net, x, np.array([3, 7]), LR)
    for path, module in leaves(net):
        backward = step.backward_by_layer[path]
        forward_macs = tally.by_layer[path].macs - sum(c["macs"] for c in backward.values())
        if isinstance(module, Conv2d):
            g = npconv.conv2d_geometry(shapes[path], module.weight.shape, None, module.stride, module.padding,
                                       module.dilation, module.groups, module.padding_mode)
            assert backward["conv2d_grad_weight"]["macs"] == forward_macs == \
                formulas_backward.conv2d_grad_weight_macs(g)
            if path == "features.0":
                assert "conv2d_grad_input" not in backward
            else:
                assert backward["conv2d_grad_input"]["macs"] == formulas_backward.conv2d_grad_input_macs(g)
        elif isinstance(module, Linear):
            assert backward["linear_grad_input"]["macs"] == backward["linear_grad_weight"]["macs"] == \
                forward_macs == formulas_layer_backward.linear_grad_input_macs(2, 256, 10)
            assert backward["linear_grad_bias"]["adds"] == formulas_layer_backward.linear_grad_bias_adds(2, 10)
        elif isinstance(module, BatchNorm2d):
            counts = {k: v for k, v in backward["batch_norm2d_backward"].items() if k.startswith("bn_")}
            assert counts == formulas_layer_backward.batch_norm2d_backward_counts(*shapes[path], training=True)
        elif isinstance(module, ReLU6):
            assert backward["relu6_backward"]["activation_compares"] == \
                formulas_layer_backward.relu6_backward_compares(int(np.prod(shapes[path])))
        else:
            N, C, H, W = shapes[path]
            assert backward["adaptive_avg_pool2d_backward"]["pool_grad_adds"] == \
                formulas_layer_backward.adaptive_avg_pool2d_backward_adds(N, C, (H, W), (1, 1))
    assert tally.by_layer["features.3.dw_conv.0"].macs == 3 * (tally.by_layer["features.3.dw_conv.0"].macs // 3)
    assert tally.by_op["sgd"].other["sgd_updates"] == formulas_layer_backward.sgd_updates(
        sum(p.size for p in net.parameters()))
    assert tally.by_layer["features.3.dw_conv.1"].other["sgd_updates"] == 2 * 32
    assert tally.by_op["flatten_backward"].calls == 1
    assert tally.by_op["cross_entropy_backward"].calls == 1


def test_sgd_step_rejects_unknown_parameters_and_bad_lr():
    net = Sequential(Linear(2, 3, rng=0))
    with pytest.raises(ValueError, match="no parameter called 'x.weight'"):
        train.sgd_step(net, {"x.weight": np.zeros((3, 2), np.float32)}, 0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        train.sgd_step(net, {}, -1.0)
    with pytest.raises(ValueError, match="has shape"):
        train.sgd_step(net, {"0.weight": np.zeros((2, 3), np.float32)}, 0.1)


def test_unsupported_modules_are_refused_by_name():
    class Doubled(Module):  # a forward without a backward
        def forward(self, x):
            return ops.add(x, x)

    net = Sequential(Conv2d(3, 4, 1, rng=0), Doubled(), AdaptiveAvgPool2d(1), Flatten(), Linear(4, 2, rng=0))
    with pytest.raises(TypeError, match="no backward for module '1' of type Doubled"):
        train.forward_backward(net, np.ones((2, 3, 4, 4), np.float32), np.array([0, 1]))


def test_a_module_shared_within_one_forward_is_refused():
    relu = ReLU6()
    net = Sequential(Conv2d(3, 4, 1, rng=0), relu, Conv2d(4, 4, 1, rng=1), relu)
    with pytest.raises(ValueError, match=r"layer '1' \(ReLU6\): ran more than once in one recorded forward"):
        train.forward_backward(net, np.ones((2, 3, 4, 4), np.float32), grad_output=lambda y: np.ones_like(y))
    net(np.ones((2, 3, 4, 4), np.float32))  # outside a recorded forward, sharing is fine


# --------------------------------------------------------------------------------------
# The module protocol: what a forward keeps, and the leaves without a PyTorch twin here
# --------------------------------------------------------------------------------------


def _kept(model):
    return [name for name, m in model.named_modules() if m.__dict__.get("_saved") is not None]


def test_only_a_recorded_forward_keeps_arrays_and_the_backward_releases_them():
    net = npconv.models.TinyMobileNet(rng=0).train()
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    net(x)
    assert _kept(net) == []  # inference keeps nothing
    with npconv.nn.enable_grad():
        net(x)
    kept = _kept(net)
    assert "features.0" in kept and "features.3.dw_conv.1" in kept and "" in kept  # TinyMobileNet keeps a shape
    assert isinstance(net.features[1].__dict__["_saved"][1], np.ndarray)  # BatchNorm2d: input, mean, var, flag
    assert net.features[0].needs_input_grad is False and net.features[1].needs_input_grad is True
    net.backward(np.ones((2, 10), np.float32))
    assert _kept(net) == []
    with pytest.raises(ValueError, match="backward without a recorded forward"):
        net.backward(np.ones((2, 10), np.float32))


def test_a_batch_norm_backward_uses_the_statistics_its_forward_kept():
    """Bit for bit the gradients of batch_norm2d_backward at the batch statistics the forward
    normalised with (which the old trainer recomputed from the input)."""
    layer = BatchNorm2d(3).train()
    layer.weight = np.array([0.5, 1.5, -1.0], np.float32)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 3 + 1
    gy = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    with npconv.nn.enable_grad():
        layer(x)
    layer.needs_input_grad = True
    gx = layer.backward(gy)
    stats = ops.batch_norm2d(x, None, None, training=True, eps=layer.eps)
    expected = npconv.layer_backward.batch_norm2d_backward(gy, x, layer.weight, mean=stats.batch_mean,
                                                           var=stats.batch_var, training=True, eps=layer.eps)
    np.testing.assert_array_equal(gx, expected[0])
    np.testing.assert_array_equal(layer.grads["weight"], expected[1])
    np.testing.assert_array_equal(layer.grads["bias"], expected[2])


@given(data=st.data())
def test_channel_shuffle_backward_is_the_inverse_permutation(data):
    groups = data.draw(st.integers(1, 4), label="groups")
    C = groups * data.draw(st.integers(1, 4), label="channels per group")
    shape = (data.draw(st.integers(1, 2), label="N"), C, data.draw(st.integers(1, 3), label="H"), 2)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    x = rng.standard_normal(shape)
    layer = ChannelShuffle(groups)
    net = Sequential(Conv2d(C, C, 1, bias=False, rng=0), layer)
    step = train.forward_backward(net, x, grad_output=lambda y: np.arange(y.size, dtype=y.dtype).reshape(y.shape),
                                  keep_layer_grads=True)
    gy, gx = step.layer_grads["1"]
    # the gradient of each input channel is the gradient of the output channel it went to
    moved = ops.channel_shuffle(np.arange(C, dtype=np.float64).reshape(1, C, 1, 1), groups).reshape(C)
    for out_channel, in_channel in enumerate(moved.astype(int)):
        np.testing.assert_array_equal(gx[:, in_channel], gy[:, out_channel])
    assert step.backward_by_layer["1"]["channel_shuffle_backward"]["shuffle_grad_copies"] == x.size


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_in_training_backpropagates_through_its_own_mask(p):
    """gx = gy / (1 - p) where the forward kept an element, 0 where it dropped it (the mask
    the forward drew, kept by it), one counted multiply per kept element."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 40)).astype(np.float32) + 5  # no zeros: kept elements are the nonzero outputs
    net = Sequential(Linear(40, 40, rng=0), Dropout(p, rng=1), Linear(40, 2, rng=2)).train()
    net.load_state_dict({**net.state_dict(), "0.weight": np.eye(40, dtype=np.float32),
                         "0.bias": np.zeros(40, np.float32)})
    seen = {}
    with hooked(net, post=lambda name, m, args, out: seen.__setitem__(name, out)):
        step = train.forward_backward(net, x, grad_output=lambda y: np.ones_like(y), keep_layer_grads=True)
    gy, gx = step.layer_grads["1"]
    keep = seen["1"] != 0
    scale = np.float32(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    np.testing.assert_array_equal(gx, np.where(keep, gy * scale, np.float32(0)))
    assert step.backward_by_layer["1"]["dropout_backward"]["dropout_grad_multiplies"] == int(keep.sum())
    assert (0 < keep.sum() < keep.size) or p in (0.0, 1.0)


# --------------------------------------------------------------------------------------
# FlopCounterMode beside the counts
# --------------------------------------------------------------------------------------


def test_backward_cost_table_for_tiny_mobilenet():
    """The table's FlopCounterMode columns are FlopCounterMode's per-module figures (halved)
    for a training step of the twin; its counted columns npconv's per-layer counts. On
    torch 2.13: everything agrees except the depthwise layers' weight gradients, which
    FlopCounterMode counts `groups` = C times too high."""
    rows = cost_backward.backward_cost_table("tiny_mobilenet", (2, 3, 32, 32))
    by_layer = {r.layer: r for r in rows}
    twin = _tiny_mobilenet().train()
    x = torch.randn(2, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.cross_entropy(twin(x), torch.zeros(2, dtype=torch.long))
        loss.backward()
    counts = counter.get_flop_counts()
    layers = [r for r in rows if r.layer != "(total)"]
    assert len(layers) == 12  # 11 convolutions and the classifier
    for r in layers:
        per_op = {str(k): v for k, v in counts[f"TinyMobileNet.{r.layer}"].items()}
        forward = per_op.get("aten.convolution", 0) + per_op.get("aten.addmm", 0)
        backward = per_op.get("aten.convolution_backward", 0) + per_op.get("aten.mm", 0)
        assert 2 * r.fcm_forward == forward
        assert 2 * ((r.fcm_grad_input or 0) + r.fcm_grad_weight) == backward
        assert r.forward == r.grad_weight and r.grad_input in (None, r.forward)
        assert r.fcm_forward == r.forward and r.fcm_grad_input == r.grad_input
        groups = getattr(dict(twin.named_modules())[r.layer], "groups", 1)
        assert r.fcm_grad_weight == groups * r.grad_weight
        assert r.factors == ({} if groups == 1 else {"grad_weight": float(groups)})
    assert by_layer["features.0"].grad_input is None
    total = by_layer["(total)"]
    assert total.forward == sum(r.forward for r in layers)
    assert total.fcm_grad_weight > total.grad_weight


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_backward_cost_table_for_the_blocks(kind):
    """Any model of the supported layers, ConvTranspose2d included, gets the same columns:
    FlopCounterMode's figures per module, grad_weight `groups` times too high for a grouped
    convolution, equal otherwise; the first layer has no input gradient."""
    args, kwargs = BLOCKS[kind]
    shape = (2, args[0], 8, 8)
    twin = twins.build(kind, *args, seed=0, calibration_shape=shape, **kwargs)
    rows = cost_backward.backward_cost_table(from_torch(twin), shape, torch_model=twin)
    layers = rows[:-1]
    assert layers[0].grad_input is None and all(r.grad_input == r.forward for r in layers[1:])
    for r in layers:
        groups = dict(twin.named_modules())[r.layer].groups
        assert r.forward == r.grad_weight == r.fcm_forward
        assert r.fcm_grad_input == r.grad_input and r.fcm_grad_weight == groups * r.grad_weight
    assert rows[-1].forward == sum(r.forward for r in layers)


def test_forward_backward_takes_a_target_or_a_gradient():
    net = Sequential(Linear(2, 3, rng=0))
    x = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match="either a target"):
        train.forward_backward(net, x)
    with pytest.raises(ValueError, match="either a target"):
        train.forward_backward(net, x, np.zeros(4, np.int64), grad_output=np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="must have the output's shape"):
        train.forward_backward(net, x, grad_output=np.ones((4, 2), np.float32))
    step = train.forward_backward(net, x, grad_output=lambda y: np.ones_like(y))
    assert step.loss is None
    np.testing.assert_array_equal(step.grads["0.bias"], np.full(3, 4.0, np.float32))
