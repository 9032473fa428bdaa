"""npconv.nn layers against their torch.nn twins, and the Module protocol.

What is proved, over drawn sizes, weights, running statistics and inputs:
* Conv2d (every padding mode, groups, strides, dilations), ConvTranspose2d (stride, padding,
  output_padding or output_size, groups, dilation), BatchNorm2d (evaluation; training with
  the running statistics after the step, momentum None included; affine and
  track_running_stats off), AdaptiveAvgPool2d (any output size) and Linear: npconv's and
  torch's float32/float64 outputs are both within the derived bound of npconv's float64
  result (reference_tests/error_bounds.py states every bound's derivation); the bound is
  also checked to be small against the outputs, so the comparison can fail.
* ReLU, ReLU6 (NaN, +-Inf, -0.0 included), Flatten, ChannelShuffle, the residual add and
  Dropout in evaluation are exact moves or single correctly rounded operations: they must
  equal torch bit for bit.
* Dropout in training: every output is 0 or x * (1 / (1 - p)) rounded once, p = 0 is the
  identity, p = 1 zeroes everything, the same seed gives the same mask, and the fraction
  kept is within 6 standard deviations of 1 - p (a binomial count).
* Counted work equals the closed forms below, per op and per layer name.
* Module protocol: parameter names, state_dict keys and order, named_modules, parameter
  counts equal torch's; load_state_dict takes torch tensors, converts dtypes, and names
  every missing, unexpected or mis-shaped key; default initialisation has PyTorch's
  distributions (bounds 1/sqrt(fan_in)); train()/eval() reach every module.
"""

import math

import numpy as np
import pytest
import torch
from conftest import DEVICES
from error_bounds import (Bounded, adaptive_avg_pool2d_bound, batch_norm_eval_bound, batch_norm_train_bound,
                          conv2d_bound, conv_transpose2d_bound, linear_bound, propagate)
from hypothesis import example, given
from hypothesis import strategies as st
from twin_utils import one_torch_thread, TORCH_DTYPES, assert_bounded, assert_not_vacuous, numpy, run_torch, tensor

import npconv
from npconv import formulas, nn, ops
from npconv.strategies import conv2d_arrays, conv2d_configs

FLOATS = [np.float32, np.float64]
_ = one_torch_thread  # autouse fixture: torch single-threaded in this module


def _load_from(layer, torch_layer):
    layer.load_state_dict(torch_layer.state_dict())
    return layer


def _values(rng, shape, dtype, family="normal"):
    if family == "wide":
        return (rng.standard_normal(shape) * 2.0 ** rng.integers(-6, 7, size=shape)).astype(dtype)
    if family == "integers":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- Conv2d


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_conv2d_layer_matches_torch(device, dtype, data):
    cfg = data.draw(conv2d_configs(max_size=7, max_channels_per_group=3, max_groups=3))
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=dtype))
    twin = torch.nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=cfg.bias,
                           dtype=TORCH_DTYPES[np.dtype(dtype)], **cfg.kwargs())
    with torch.no_grad():
        twin.weight.copy_(tensor(w))
        if b is not None:
            twin.bias.copy_(tensor(b))
    layer = _load_from(nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=cfg.bias,
                                 dtype=dtype, **cfg.kwargs()), twin)
    bound = conv2d_bound(layer, Bounded.exact(x), dtype)
    assert_bounded(layer(x), bound, "npconv Conv2d")
    assert_bounded(run_torch(twin, x, device), bound, "torch Conv2d")
    assert_not_vacuous(bound, "Conv2d")


# ----------------------------------------------------------------------------- ConvTranspose2d


@st.composite
def transpose_layers(draw):
    groups = draw(st.integers(1, 3))
    in_ch = groups * draw(st.integers(1, 3))
    out_ch = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    padding, output_padding = [], []
    for d in range(2):
        full = (size[d] - 1) * stride[d] + dilation[d] * (kernel[d] - 1) + 1
        padding.append(draw(st.integers(0, (full - 1) // 2)))  # leaves at least one output row
        output_padding.append(draw(st.integers(0, max(stride[d], dilation[d]) - 1)))
    return dict(in_channels=in_ch, out_channels=out_ch, kernel_size=kernel, stride=stride,
                padding=tuple(padding), output_padding=tuple(output_padding), groups=groups,
                bias=draw(st.booleans()), dilation=dilation), size


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_conv_transpose2d_layer_matches_torch(device, dtype, data):
    args, (H, W) = data.draw(transpose_layers())
    batch = data.draw(st.integers(1, 2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    twin = torch.nn.ConvTranspose2d(**args, dtype=TORCH_DTYPES[np.dtype(dtype)])
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(tensor(_values(rng, tuple(p.shape), dtype)))
    layer = _load_from(nn.ConvTranspose2d(**args, dtype=dtype), twin)
    x = _values(rng, (batch, args["in_channels"], H, W), dtype)
    # output_size can ask only for output_padding < stride (PyTorch's rule; dilation does not widen it)
    reachable = all(op < s for op, s in zip(args["output_padding"], args["stride"]))
    if reachable and data.draw(st.booleans()):
        # ask for the size output_padding would give: forward must pick that output_padding
        size = [(s - 1) * st_ - 2 * p + d * (k - 1) + op + 1 for s, st_, p, d, k, op in
                zip((H, W), args["stride"], args["padding"], args["dilation"], args["kernel_size"],
                    args["output_padding"])]
        layer.output_padding = twin.output_padding = (0, 0)
        ours, theirs = layer(x, output_size=size), run_torch(twin, x, device, output_size=size)
        layer.output_padding = args["output_padding"]
    else:
        ours, theirs = layer(x), run_torch(twin, x, device)
    bound = conv_transpose2d_bound(layer, Bounded.exact(x), dtype)
    assert_bounded(ours, bound, "npconv ConvTranspose2d")
    assert_bounded(theirs, bound, "torch ConvTranspose2d")
    assert_not_vacuous(bound, "ConvTranspose2d")


def test_conv_transpose2d_output_size_out_of_range_is_rejected_like_torch():
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    twin = torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    x = np.zeros((1, 2, 4, 4), np.float32)
    match = r"requested an output size of .9, 9., but valid sizes range from \[7, 7\] to \[8, 8\]"
    with pytest.raises(ValueError, match=match):
        twin(tensor(x), output_size=(9, 9))
    with pytest.raises(ValueError, match=match):
        layer(x, output_size=(9, 9))
    assert layer(x, output_size=(1, 2, 8, 7)).shape == (1, 2, 8, 7)


# ----------------------------------------------------------------------------- BatchNorm2d


@st.composite
def batch_norm_cases(draw, dtype):
    N = draw(st.integers(1, 3))
    C = draw(st.integers(1, 4))
    H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    affine = draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    momentum = draw(st.sampled_from([0.1, 0.5, 1.0, 0.0, None]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    family = draw(st.sampled_from(["normal", "wide", "integers"]))
    offset = draw(st.sampled_from([0.0, 3.0, -50.0]))  # a mean far from 0 stresses the variance
    x = (_values(rng, (N, C, H, W), dtype, family) + offset).astype(dtype)
    state = dict(
        weight=rng.uniform(-2, 2, C).astype(dtype), bias=rng.normal(0, 1, C).astype(dtype),
        running_mean=rng.normal(0, 2, C).astype(dtype), running_var=rng.uniform(0.01, 4, C).astype(dtype),
        num_batches_tracked=np.array(draw(st.integers(0, 5)), np.int64),
    )
    return x, affine, eps, momentum, state


def _batch_norm_pair(dtype, C, affine, eps, momentum, track, state):
    twin = torch.nn.BatchNorm2d(C, eps=eps, momentum=momentum, affine=affine, track_running_stats=track,
                                dtype=TORCH_DTYPES[np.dtype(dtype)])
    keys = set(twin.state_dict())
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in keys})
    layer = _load_from(nn.BatchNorm2d(C, eps, momentum, affine, track, dtype=dtype), twin)
    return layer, twin


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_batch_norm_eval_matches_torch(device, dtype, data):
    x, affine, eps, momentum, state = data.draw(batch_norm_cases(dtype))
    layer, twin = _batch_norm_pair(dtype, x.shape[1], affine, eps, momentum, True, state)
    layer.eval(), twin.eval()
    bound = batch_norm_eval_bound(layer, Bounded.exact(x), dtype)
    assert_bounded(layer(x), bound, "npconv BatchNorm2d eval")
    assert_bounded(run_torch(twin, x, device), bound, "torch BatchNorm2d eval")
    assert_not_vacuous(bound, "BatchNorm2d eval")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
@example(data=None).via("a batch with two values per channel, identical: zero variance")
def test_batch_norm_train_matches_torch(device, dtype, data):
    if data is None:  # the explicit example
        x = np.full((2, 1, 1, 1), 3.0, dtype)
        affine, eps, momentum, track = True, 1e-5, 0.1, True
        state = dict(weight=np.ones(1, dtype), bias=np.zeros(1, dtype), running_mean=np.zeros(1, dtype),
                     running_var=np.ones(1, dtype), num_batches_tracked=np.array(0, np.int64))
    else:
        x, affine, eps, momentum, state = data.draw(batch_norm_cases(dtype))
        if x.shape[0] * x.shape[2] * x.shape[3] == 1:
            x = np.concatenate([x, x + 1])  # training needs two values per channel
        track = data.draw(st.booleans())
    layer, twin = _batch_norm_pair(dtype, x.shape[1], affine, eps, momentum, track, state)
    eval_mode_without_stats = data is not None and not track and data.draw(st.booleans())
    if eval_mode_without_stats:  # no running statistics: batch statistics in eval mode too
        layer.eval(), twin.eval()
    step = batch_norm_train_bound(layer, Bounded.exact(x), dtype)
    assert_bounded(layer(x), step.output, "npconv BatchNorm2d train")
    assert_bounded(run_torch(twin, x, device), step.output, "torch BatchNorm2d train")
    assert_not_vacuous(step.output, "BatchNorm2d train")
    if track:
        for key, bounded in (("running_mean", step.running_mean), ("running_var", step.running_var)):
            assert_bounded(getattr(layer, key), bounded, f"npconv {key}")
            assert_bounded(getattr(twin, key), bounded, f"torch {key}")
        assert int(layer.num_batches_tracked) == int(twin.num_batches_tracked) == int(state["num_batches_tracked"]) + 1


def test_batch_norm_needs_two_values_per_channel_in_training_like_torch():
    layer, twin = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    x = np.ones((1, 3, 1, 1), np.float32)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        twin(tensor(x))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        layer(x)
    assert int(layer.num_batches_tracked) == 0
    layer.eval()
    layer(x)  # evaluation uses the running statistics: fine


def test_batch_norm_rejects_wrong_ndim_and_channels():
    layer = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        layer(np.ones((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="3 channels"):
        layer(np.ones((2, 4, 4, 4), np.float32))


# ----------------------------------------------------------------------------- activations


SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 6.0, -6.0, 6.5, 1e-30, -6e4]


@st.composite
def arrays_with_specials(draw, dtype):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.asarray(rng.standard_normal(shape) * 5).astype(dtype)
    if x.size:
        flat = x.reshape(-1)
        for k in rng.choice(x.size, size=min(x.size, 5), replace=False):
            flat[k] = rng.choice(SPECIALS)
    return x


def _assert_identical(ours, theirs, what):
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    np.testing.assert_array_equal(ours, theirs, err_msg=what)
    assert np.array_equal(np.signbit(ours), np.signbit(theirs)), f"{what}: signs of zeros differ"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@given(data=st.data())
def test_relu_and_relu6_equal_torch_exactly(dtype, data):
    x = data.draw(arrays_with_specials(dtype))
    _assert_identical(nn.ReLU()(x), numpy(torch.nn.ReLU()(tensor(x))), "ReLU")
    _assert_identical(nn.ReLU6(inplace=True)(x), numpy(torch.nn.ReLU6()(tensor(x))), "ReLU6")


# ----------------------------------------------------------------------------- pooling, linear


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_adaptive_avg_pool2d_matches_torch(device, dtype, data):
    H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    size = data.draw(st.one_of(st.integers(0, 11), st.tuples(st.none() | st.integers(0, 11),
                                                             st.none() | st.integers(0, 11))))
    unbatched = data.draw(st.booleans())
    shape = (data.draw(st.integers(1, 3)), H, W) if unbatched else (data.draw(st.integers(0, 2)), 2, H, W)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, shape, dtype, data.draw(st.sampled_from(["normal", "wide"])))
    ours = nn.AdaptiveAvgPool2d(size)(x)
    theirs = run_torch(torch.nn.AdaptiveAvgPool2d(size), x, device)
    bound = adaptive_avg_pool2d_bound(Bounded.exact(x), size, dtype)
    assert_bounded(ours, bound, "npconv AdaptiveAvgPool2d")
    assert_bounded(theirs, bound, "torch AdaptiveAvgPool2d")
    assert_not_vacuous(bound, "AdaptiveAvgPool2d")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_linear_matches_torch(device, dtype, data):
    in_f, out_f = data.draw(st.integers(0, 9)), data.draw(st.integers(1, 9))
    lead = tuple(data.draw(st.lists(st.integers(0, 3), max_size=3)))
    bias = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    family = data.draw(st.sampled_from(["normal", "wide", "integers"]))
    twin = torch.nn.Linear(in_f, out_f, bias=bias, dtype=TORCH_DTYPES[np.dtype(dtype)])
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(tensor(_values(rng, tuple(p.shape), dtype, family)))
    layer = _load_from(nn.Linear(in_f, out_f, bias=bias, dtype=dtype), twin)
    x = _values(rng, lead + (in_f,), dtype, family)
    bound = linear_bound(layer, Bounded.exact(x), dtype)
    assert_bounded(layer(x), bound, "npconv Linear")
    assert_bounded(run_torch(twin, x, device), bound, "torch Linear")
    assert_not_vacuous(bound, "Linear")


def test_linear_with_no_input_features_is_its_bias():
    """Regression (found by test_linear_matches_torch): in_features == 0 made the row count
    impossible to infer in a reshape. An empty sum is 0, so the output is the bias."""
    twin = torch.nn.Linear(0, 3)
    layer = _load_from(nn.Linear(0, 3), twin)
    x = np.zeros((2, 0), np.float32)
    _assert_identical(layer(x), numpy(twin(tensor(x))), "Linear(0, 3)")
    np.testing.assert_array_equal(layer(np.zeros((0,), np.float32)), layer.bias)


def test_linear_rejects_wrong_features_like_torch():
    with pytest.raises(ValueError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x5 and 4x3\)"):
        nn.Linear(4, 3)(np.ones((2, 5), np.float32))


# ----------------------------------------------------------------------------- exact moves


@given(data=st.data())
def test_flatten_equals_torch(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=5)))
    ndim = len(shape)
    start = data.draw(st.integers(-ndim, ndim - 1))
    end = data.draw(st.integers(-ndim, ndim - 1))
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    try:
        theirs = numpy(torch.nn.Flatten(start, end)(tensor(x)))
    except RuntimeError:
        with pytest.raises(ValueError, match="start_dim cannot come after end_dim"):
            nn.Flatten(start, end)(x)
        return
    _assert_identical(nn.Flatten(start, end)(x), theirs, "Flatten")


@given(data=st.data())
def test_channel_shuffle_equals_torch(data):
    groups = data.draw(st.integers(1, 4))
    shape = (data.draw(st.integers(0, 2)), groups * data.draw(st.integers(1, 3))) + tuple(
        data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(shape).astype(np.float32)
    _assert_identical(nn.ChannelShuffle(groups)(x), numpy(torch.nn.ChannelShuffle(groups)(tensor(x))), "ChannelShuffle")


def test_channel_shuffle_of_an_empty_batch_is_empty():
    """Regression (found by test_channel_shuffle_equals_torch): a reshape with -1 cannot
    infer the spatial size of an empty batch."""
    x = np.zeros((0, 2, 3), np.float32)
    _assert_identical(nn.ChannelShuffle(2)(x), numpy(torch.nn.ChannelShuffle(2)(tensor(x))), "empty batch")


def test_channel_shuffle_rejects_like_torch():
    with pytest.raises(ValueError, match="Number of channels must be divisible by groups. Got 5 channels and 2 groups"):
        nn.ChannelShuffle(2)(np.ones((1, 5, 2, 2), np.float32))
    with pytest.raises(ValueError, match="expects input with > 2 dims"):
        nn.ChannelShuffle(2)(np.ones((4, 2), np.float32))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@given(data=st.data())
def test_residual_add_equals_torch(dtype, data):
    a = data.draw(arrays_with_specials(dtype))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    b = np.asarray(rng.standard_normal(a.shape) * 3).astype(dtype)
    # float16: npconv adds in float32 and rounds once; since 24 >= 2*11 + 2 that double rounding
    # is still the correctly rounded half-precision sum (Figueroa 1995), so equality is expected.
    _assert_identical(ops.add(a, b), numpy(tensor(a) + tensor(b)), "add")


def test_residual_add_rejects_mismatched_shapes_like_torch():
    with pytest.raises(ValueError, match=r"size of tensor a \(3\) must match the size of tensor b \(4\)"):
        ops.add(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32))


# ----------------------------------------------------------------------------- Dropout


@given(p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_dropout_zeroes_or_scales_and_keeps_a_binomial_fraction(p, seed, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(4000) + 10).astype(dtype).reshape(40, 100)  # no zeros in x
    layer = nn.Dropout(p, rng=seed)
    assert layer.eval()(x) is x  # evaluation: the identity
    layer.train()
    with npconv.count() as tally:
        y = layer(x)
    scale = dtype(0.0 if p == 1 else 1 / (1 - p))
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    assert tally.by_op["dropout"].other["dropout_multiplies"] == int(kept.sum())
    if p == 0:
        np.testing.assert_array_equal(y, x)
    if p == 1:
        assert not kept.any()
    # the kept count is Binomial(L, 1 - p): within 6 standard deviations
    L = x.size
    assert abs(kept.sum() - L * (1 - p)) <= 6 * math.sqrt(L * p * (1 - p))
    np.testing.assert_array_equal(nn.Dropout(p, rng=seed).train()(x), y)  # same seed, same mask


def test_dropout_rejects_probabilities_outside_unit_interval_like_torch():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


# ----------------------------------------------------------------------------- counts


def _pool_adds(N, C, H, W, OH, OW):
    """Closed form: each output cell sums its window, rows [floor(iH/OH), ceil((i+1)H/OH)),
    so the adds are N*C * (sum of the row-window lengths) * (sum of the column-window lengths).
    Written with ceil as -(-a // b) on purpose: an independent derivation of PyTorch's rule,
    which test_bounds.py also holds against npconv.formulas.adaptive_pool_ranges."""
    rows = sum(-(-(i + 1) * H // OH) - (i * H) // OH for i in range(OH))
    cols = sum(-(-(j + 1) * W // OW) - (j * W) // OW for j in range(OW))
    return N * C * rows * cols


@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 6), W=st.integers(1, 6),
       OH=st.integers(1, 7), OW=st.integers(1, 7), out_f=st.integers(1, 4), groups=st.sampled_from([1, 2]))
def test_counted_work_equals_closed_forms(N, C, H, W, OH, OW, out_f, groups):
    """Per op: conv MACs = formulas.conv2d_macs; BatchNorm2d bn_scale_shift = N*C*H*W and,
    in training, bn_mean_adds = bn_var_macs = N*C*H*W and bn_running_updates = 2C; ReLU one
    compare per element, ReLU6 two; pooling adds as _pool_adds and one divide per output;
    Linear N*in*out MACs and N*out bias adds; shuffle one copy per element; add one per element."""
    C2 = C * groups
    x = np.random.default_rng(0).standard_normal((N, C2, H, W)).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(C2, C2, 3, padding=1, groups=groups, rng=0), nn.BatchNorm2d(C2), nn.ReLU(),
                          nn.ReLU6(), nn.ChannelShuffle(groups), nn.AdaptiveAvgPool2d((OH, OW)), nn.Flatten(),
                          nn.Linear(C2 * OH * OW, out_f, rng=1))
    n = N * C2 * H * W
    if N * H * W == 1:
        model.eval()
    with npconv.count() as tally:
        y = model(x)
        ops.add(y, y)
    layer = tally.by_layer
    assert layer["0"].macs == formulas.conv2d_macs(N, C2, C2, (H, W), 3, groups)
    assert layer["0"].bias_adds == formulas.conv2d_bias_adds(N, C2, (H, W))
    assert layer["1"].other["bn_scale_shift"] == n
    if model.training:
        assert layer["1"].other["bn_mean_adds"] == layer["1"].other["bn_var_macs"] == n
        assert layer["1"].other["bn_running_updates"] == 2 * C2
    assert layer["2"].other["activation_compares"] == n
    assert layer["3"].other["activation_compares"] == 2 * n
    assert layer["4"].other["shuffle_copies"] == n
    assert layer["5"].other["pool_adds"] == _pool_adds(N, C2, H, W, OH, OW)
    assert layer["5"].other["pool_divides"] == N * C2 * OH * OW
    assert layer["7"].macs == N * C2 * OH * OW * out_f and layer["7"].bias_adds == N * out_f
    assert tally.by_op["add"].other["residual_adds"] == y.size
    assert tally.macs == sum(c.macs for c in layer.values())  # every MAC is attributed to a layer


# ----------------------------------------------------------------------------- Module protocol


def _twin_pair():
    torch.manual_seed(0)
    twin = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU6(),
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=4, bias=False), torch.nn.ReLU()),
        torch.nn.ConvTranspose2d(4, 2, 2, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Dropout(0.2), torch.nn.Linear(2, 5), torch.nn.Identity(),
    )
    ours = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Sequential(nn.Conv2d(4, 4, 3, groups=4, bias=False), nn.ReLU()),
        nn.ConvTranspose2d(4, 2, 2, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(2, 5), nn.Identity(),
    )
    return ours, twin


def test_names_keys_and_parameter_counts_equal_torch():
    ours, twin = _twin_pair()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in twin.named_modules()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in twin.named_buffers()]
    assert list(ours.state_dict()) == list(twin.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert sum(p.size for p in ours.parameters()) == sum(p.numel() for p in twin.parameters())


def test_load_state_dict_takes_torch_tensors_and_converts_to_the_parameters_dtype():
    ours, twin = _twin_pair()
    twin.double()
    ours.load_state_dict(twin.state_dict())
    for key, value in twin.state_dict().items():
        stored = ours.state_dict()[key]
        assert stored.dtype == (np.int64 if key.endswith("num_batches_tracked") else np.float32)
        np.testing.assert_array_equal(stored, numpy(value).astype(stored.dtype))
    ours.double()
    assert all(p.dtype == np.float64 for p in ours.parameters())


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    ours, twin = _twin_pair()
    state = dict(twin.state_dict())
    snapshot = ours.state_dict()
    del state["1.running_var"]
    state["9.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 3, 2, 2)
    with pytest.raises(ValueError) as error:
        ours.load_state_dict(state)
    message = str(error.value)
    assert 'Missing key(s) in state_dict: "1.running_var"' in message
    assert 'Unexpected key(s) in state_dict: "9.weight"' in message
    assert "size mismatch for 0.weight: copying a param with shape [4, 3, 2, 2]" in message
    for key, value in ours.state_dict().items():  # nothing was changed
        np.testing.assert_array_equal(value, snapshot[key])
    missing, unexpected = ours.load_state_dict({"0.bias": np.ones(4, np.float32)}, strict=False)
    assert "0.weight" in missing and unexpected == []
    np.testing.assert_array_equal(ours[0].bias, np.ones(4))


def test_train_and_eval_reach_every_module_and_outputs_match_torch_in_eval():
    ours, twin = _twin_pair()
    ours.load_state_dict(twin.state_dict())
    assert all(m.training for m in ours.modules())
    ours.eval(), twin.eval()
    assert not any(m.training for m in ours.modules())
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    bound = propagate(ours, Bounded.exact(x), np.float32)  # shallow: the a-priori bound is meaningful
    assert_not_vacuous(bound, "Sequential")
    assert_bounded(ours(x), bound, "npconv Sequential")
    assert_bounded(run_torch(twin, x), bound, "torch Sequential")


@pytest.mark.parametrize("make", [
    lambda rng: nn.Conv2d(6, 8, (3, 5), groups=2, rng=rng),
    lambda rng: nn.ConvTranspose2d(6, 8, 3, groups=2, rng=rng),
    lambda rng: nn.Linear(50, 200, rng=rng),
])
def test_default_init_has_pytorchs_distributions(make):
    """kaiming_uniform(a=sqrt(5)) and the default bias are U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    with fan_in = weight.shape[1] * kH * kW (torch.nn.init._calculate_fan_in_and_fan_out).
    Checked against torch's own layer: same shapes, and every draw of both within the same
    bound; the sample variance of the weights within 6 standard errors of bound^2 / 3."""
    layer = make(0)
    twin_type = {nn.Conv2d: torch.nn.Conv2d, nn.ConvTranspose2d: torch.nn.ConvTranspose2d, nn.Linear: torch.nn.Linear}
    w = layer.weight
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    if isinstance(layer, nn.Linear):
        twin = torch.nn.Linear(layer.in_features, layer.out_features)
    else:
        twin = twin_type[type(layer)](layer.in_channels, layer.out_channels, layer.kernel_size, groups=layer.groups)
    assert tuple(twin.weight.shape) == w.shape
    for values in (w, layer.bias, numpy(twin.weight), numpy(twin.bias)):
        assert np.all(np.abs(values) <= bound)
    n = w.size
    variance = float(np.mean(w.astype(np.float64) ** 2))
    # U(-b, b): E[w^2] = b^2/3, Var[w^2] = b^4/5 - b^4/9 = 4 b^4 / 45
    assert abs(variance - bound**2 / 3) <= 6 * math.sqrt(4 * bound**4 / 45 / n)
    np.testing.assert_array_equal(make(0).weight, w)  # same seed, same weights
    assert not np.array_equal(make(1).weight, w)


def test_default_generator_is_reset_by_manual_seed():
    nn.manual_seed(7)
    a = nn.Conv2d(2, 2, 3).weight
    nn.manual_seed(7)
    np.testing.assert_array_equal(nn.Conv2d(2, 2, 3).weight, a)


def test_batch_norm_initial_state_is_pytorchs():
    layer, twin = nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(layer.state_dict()[key], numpy(value))


def test_layer_constructors_reject_what_torch_rejects():
    for args, kwargs, match in [((3, 4, 3), dict(groups=2), "in_channels must be divisible by groups"),
                                ((4, 3, 3), dict(groups=2), "out_channels must be divisible by groups"),
                                ((4, 4, 3), dict(stride=2, padding="same"), "not supported for strided"),
                                ((4, 4, 3), dict(padding_mode="edge"), "padding_mode must be one of")]:
        with pytest.raises(ValueError, match=match):
            torch.nn.Conv2d(*args, **kwargs)
        with pytest.raises(ValueError, match=match):
            nn.Conv2d(*args, **kwargs)


def test_errors_inside_a_model_name_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()))
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\): .*expected input\[1, 5, 8, 8\] to have 3 channels"):
        model(np.ones((1, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"layer '1.0' \(BatchNorm2d\): expected 4D input"):
        model(np.ones((3, 8, 8), np.float32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        model(torch.ones(1, 3, 8, 8))
