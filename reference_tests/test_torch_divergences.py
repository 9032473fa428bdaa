"""Where npconv and PyTorch (2.13) used to disagree, and the few places they still do on purpose.

Properties:
* conv2d with nn.Conv2d's semantics over configurations drawn with every padding mode, the
  string paddings, dilation, groups and empty sizes (batch, channels in and out, height,
  width), mixed with the valid ones of `npconv.strategies.conv2d_configs`: npconv raises
  exactly when PyTorch raises, and otherwise has the same output shape and is within the
  rigorous error bound of `npconv.assert_close_to_reference`, as is PyTorch's output;
* BatchNorm's running statistics for any momentum (outside [0, 1], NaN, infinite), against
  a float64 reference, npconv's and PyTorch's alike.

Regression tests, one per divergence fixed (each fails on the code before the fix): C_in = 0
gives an output with 0 channels; a negative padding with a padding_mode other than zeros
crops the input (nn.Conv2d's F.pad) and is accepted; C_out < groups and an input with an empty H or W (N, C_in >= 1)
are errors; conv_transpose2d with an empty batch accepts an empty input and an empty output;
BatchNorm accepts momentum outside [0, 1], trains on an empty batch (the running statistics
stay, num_batches_tracked counts it), rejects eps <= 0 in training and eps < 0 in evaluation
(eps = 0 in evaluation gives PyTorch's infinities and NaNs), and from_torch converts
BatchNorm2d(bias=False), affine=False, track_running_stats=False and a module whose
track_running_stats was switched off after construction.

Pinned PyTorch behaviours that npconv does not copy (if one of these tests fails, PyTorch
changed; the special case can then go): circular padding filled from uninitialised memory,
reflect padding that returns a tensor of negative size, argument checks skipped on empty
inputs, num_batches_tracked incremented by a forward that then fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from error_bounds import Bounded, batch_norm_eval_bound, batch_norm_train_bound
from hypothesis import example, given
from hypothesis import strategies as st
from twin_utils import TORCH_DTYPES, assert_bounded, one_torch_thread, run_torch, tensor

import npconv
from npconv import nn, ops
from npconv.oracle.bounds import gamma
from npconv.strategies import Conv2dConfig, conv2d_arrays, conv2d_configs

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module
MODES = ("zeros", "reflect", "replicate", "circular")


# ----------------------------------------------------------------------------- conv2d


@st.composite
def any_conv2d_configs(draw) -> Conv2dConfig:
    """conv2d calls with no validity constraint but positive stride, dilation and kernel:
    empty sizes everywhere, channels that may not fit the groups, any padding for any mode
    (negative too: nn.Conv2d crops with F.pad then, in every mode but zeros)."""
    groups = draw(st.integers(1, 3))
    in_channels = draw(st.integers(0, 3)) * groups + draw(st.sampled_from([0] * 5 + [1]))
    out_channels = draw(st.integers(0, 3)) * groups + draw(st.sampled_from([0] * 5 + [1]))
    padding = draw(st.one_of(st.tuples(st.integers(-2, 4), st.integers(-2, 4)), st.sampled_from(["same", "valid"])))
    same = padding == "same" and draw(st.integers(0, 4)) > 0
    batch = draw(st.integers(0, 2))
    return Conv2dConfig(
        batch=batch, in_channels=in_channels, out_channels=out_channels, groups=groups,
        height=draw(st.integers(0, 5)), width=draw(st.integers(0, 5)),
        kernel_size=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        stride=(1, 1) if same else (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=padding, dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding_mode=draw(st.sampled_from(MODES)), bias=draw(st.booleans()),
        unbatched=batch == 1 and draw(st.booleans()),
    )


def _torch_conv2d(cfg: Conv2dConfig, x, w, b):
    """nn.Conv2d(cfg) with weight w and bias b on x: (output as NumPy, None) or (None, error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
            layer = torch.nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=b is not None,
                                    dtype=TORCH_DTYPES[x.dtype], **cfg.kwargs())
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            if b is not None:
                layer.bias.copy_(torch.from_numpy(b))
            return layer(torch.from_numpy(x)).numpy(), None
    except Exception as error:  # noqa: BLE001 - any rejection counts
        return None, error


def _config(batch, in_channels, out_channels, size, kernel, **kwargs) -> Conv2dConfig:
    defaults = dict(groups=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1), padding_mode="zeros", bias=True)
    return Conv2dConfig(batch=batch, in_channels=in_channels, out_channels=out_channels, height=size[0],
                        width=size[1], kernel_size=kernel, **{**defaults, **kwargs})


@given(data=st.data())
@example(data=_config(1, 0, 3, (2, 2), (1, 1))).via("C_in = 0: an output with 0 channels")
@example(data=_config(2, 0, 4, (5, 5), (3, 3), groups=2, padding=(1, 1), padding_mode="circular"))
@example(data=_config(1, 0, 2, (0, 3), (1, 1), padding=(1, 0))).via("C_in = 0, H = 0: fine")
@example(data=_config(1, 2, 0, (3, 3), (1, 1))).via("C_out = 0: an error")
@example(data=_config(1, 3, 2, (3, 3), (1, 1), groups=3)).via("C_out < groups: 'at least' (not 'divisible')")
@example(data=_config(1, 2, 3, (0, 2), (1, 1), padding=(1, 1))).via("H = 0 with N, C_in >= 1: an error")
@example(data=_config(0, 2, 3, (0, 0), (1, 1), padding=(1, 1))).via("... not with N = 0")
@example(data=_config(1, 2, 3, (1, 1), (1, 1), padding=(0, 0), padding_mode="reflect")).via("reflect pads 0")
@example(data=_config(1, 2, 3, (3, 4), (4, 2), padding="same", padding_mode="reflect")).via("'same', odd pixel")
@example(data=_config(1, 2, 3, (2, 3), (5, 3), padding="same", padding_mode="circular")).via("wraps all of H")
@example(data=_config(1, 2, 3, (2, 3), (3, 3), padding="same", dilation=(2, 1), padding_mode="replicate"))
@example(data=_config(1, 2, 3, (2, 2), (1, 1), padding=(2, 2), padding_mode="circular")).via("pad = size")
@example(data=_config(1, 2, 3, (2, 2), (1, 1), padding=(2, 2), padding_mode="reflect")).via("pad = size: no")
@example(data=_config(1, 0, 3, (2, 2), (1, 1), padding=(1, 1), padding_mode="replicate")).via("C = 0: F.pad no")
@example(data=_config(1, 2, 3, (5, 5), (1, 1), padding=(-1, 2), padding_mode="reflect")).via(
    "a negative padding crops with F.pad: accepted in every mode but zeros")
@example(data=_config(1, 2, 3, (5, 4), (2, 2), padding=(-1, -1), padding_mode="circular"))
@example(data=_config(1, 2, 3, (5, 4), (1, 1), padding=(0, -2), padding_mode="replicate"))
@example(data=_config(1, 2, 3, (3, 4), (1, 1), padding=(-2, 0), padding_mode="reflect")).via("cropped away")
@example(data=_config(1, 2, 3, (5, 5), (1, 1), padding=(-1, 0))).via("zeros: no")
def test_conv2d_raises_and_matches_exactly_like_torch(data):
    if isinstance(data, Conv2dConfig):  # an explicit example
        cfg, dtype, rng = data, np.float32, np.random.default_rng(0)
        x = rng.standard_normal(cfg.input_shape).astype(dtype)
        w = rng.standard_normal(cfg.weight_shape).astype(dtype)
        b = rng.standard_normal(cfg.out_channels).astype(dtype) if cfg.bias else None
    else:
        cfg = data.draw(st.one_of(conv2d_configs(), any_conv2d_configs()), label="config")
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        x, w, b = data.draw(conv2d_arrays(cfg, dtype), label="arrays")
    theirs, torch_error = _torch_conv2d(cfg, x, w, b)
    try:
        ours, our_error = npconv.conv2d(x, w, b, **cfg.kwargs()), None
    except (ValueError, TypeError) as error:
        ours, our_error = None, error
    if torch_error is not None:
        assert our_error is not None, f"torch raised {torch_error!r}, npconv returned {ours.shape}"
        return
    assert our_error is None, f"torch returned {theirs.shape}, npconv raised {our_error!r}"
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    x, kwargs = _cropped(x, cfg)  # the bound's geometry takes no negative padding: crop first
    npconv.assert_close_to_reference(theirs, x, w, b, **kwargs)
    npconv.assert_close_to_reference(ours, x, w, b, **kwargs)


def _cropped(x, cfg: Conv2dConfig):
    """The same call with the crop of a negative padding done on the input (its F.pad)."""
    kwargs = cfg.kwargs()
    if isinstance(cfg.padding, str) or min(cfg.padding) >= 0:
        return x, kwargs
    ph, pw = cfg.padding
    pads = (min(pw, 0), min(pw, 0), min(ph, 0), min(ph, 0))
    return npconv.pad(x, pads, "constant"), {**kwargs, "padding": (max(ph, 0), max(pw, 0))}


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_negative_padding_crops_like_nn_conv2d(mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    twin = torch.nn.Conv2d(4, 4, 3, padding=(-1, 2), padding_mode=mode, groups=4)
    layer = npconv.from_torch(twin)
    ours, theirs = layer(x), run_torch(twin, x)
    assert ours.shape == theirs.shape == (2, 4, 2, 7)
    weight, bias = twin.weight.detach().numpy(), twin.bias.detach().numpy()
    npconv.assert_close_to_reference(theirs, x[:, :, 1:-1], weight, bias, padding=(0, 2), padding_mode=mode,
                                     groups=4)
    np.testing.assert_array_equal(ours, npconv.depthwise_conv2d(x, weight, bias, padding=(-1, 2), padding_mode=mode))
    with pytest.raises(ValueError, match="negative padding is not supported"):
        npconv.conv2d(x, weight, bias, padding=(-1, 2), groups=4)  # zeros: F.conv2d's own padding


def test_conv2d_without_input_channels_has_no_output_channels():
    x = np.zeros((2, 0, 5, 5), np.float32)
    w = np.zeros((6, 0, 3, 3), np.float32)
    assert F.conv2d(torch.from_numpy(x), torch.from_numpy(w)).shape == (2, 0, 3, 3)
    assert npconv.conv2d(x, w, np.ones(6, np.float32)).shape == (2, 0, 3, 3)
    assert npconv.conv2d(x[0], w, padding=1).shape == (0, 5, 5)
    assert nn.Conv2d(0, 6, 3, padding=1, padding_mode="circular")(x).shape == (2, 0, 5, 5)
    with npconv.count() as tally:
        npconv.conv2d(x, w)
    assert tally.macs == tally.bias_adds == 0


def test_conv2d_empty_sizes_that_torch_rejects():
    x = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="expected weight to be at least 1 at dimension 0"):
        npconv.conv2d(x, np.zeros((0, 2, 1, 1), np.float32))
    with pytest.raises(ValueError, match="expected weight to be at least 3 at dimension 0"):
        npconv.conv2d(np.zeros((1, 3, 3, 3), np.float32), np.zeros((2, 1, 1, 1), np.float32), groups=3)
    with pytest.raises(ValueError, match=r"Only zero batch or zero channel inputs are supported, .* \[1, 2, 0, 3\]"):
        npconv.conv2d(np.zeros((2, 0, 3), np.float32), np.zeros((4, 2, 1, 1), np.float32), padding=1)
    # an empty batch is fine, as in PyTorch
    assert npconv.conv2d(np.zeros((0, 2, 0, 3), np.float32), np.zeros((4, 2, 1, 1), np.float32),
                         padding=1).shape == (0, 4, 2, 5)


def test_conv_transpose2d_with_an_empty_batch_accepts_empty_sizes_like_torch():
    for shape, weight, kwargs, expected in [
        ((0, 2, 0, 2), (2, 3, 1, 1), {}, (0, 3, 0, 2)),
        ((0, 2, 0, 2), (2, 3, 3, 3), {}, (0, 3, 2, 4)),
        ((0, 2, 0, 0), (2, 3, 2, 2), {}, (0, 3, 1, 1)),
        ((0, 2, 2, 2), (2, 3, 1, 1), dict(padding=1), (0, 3, 0, 0)),
    ]:
        x, w = np.zeros(shape, np.float32), np.zeros(weight, np.float32)
        assert tuple(F.conv_transpose2d(tensor(x), tensor(w), **kwargs).shape) == expected
        assert npconv.conv_transpose2d(x, w, **kwargs).shape == expected
    for shape, kwargs in (((0, 2, 2, 2), dict(padding=3)), ((0, 2, 0, 0), dict(stride=3))):  # negative: no
        with pytest.raises(RuntimeError, match="invalid shape dimension -"):
            F.conv_transpose2d(torch.zeros(shape), torch.zeros(2, 3, 1, 1), **kwargs)
        with pytest.raises(ValueError, match="Output size is too small"):
            npconv.conv_transpose2d(np.zeros(shape, np.float32), np.zeros((2, 3, 1, 1), np.float32), **kwargs)
    with pytest.raises(ValueError, match=r"Only zero batch .* \[1, 2, 0, 2\]"):
        npconv.conv_transpose2d(np.zeros((1, 2, 0, 2), np.float32), np.zeros((2, 3, 1, 1), np.float32))


# ----------------------------------------------------------------------------- BatchNorm


def _running_reference(x, rm, rv, f):
    """The running statistics after one training step with momentum f, in float64, and a
    bound on what a float32/float64 implementation may differ from them: the batch mean and
    unbiased variance (any summation order, two passes) plus the blend's few roundings."""
    x64 = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    m = N * H * W
    axes = (0, 2, 3)
    mu = x64.mean(axis=axes)
    spread = ((x64 - mu[None, :, None, None]) ** 2).sum(axis=axes) / (m - 1)
    u = lambda n: gamma(n, x.dtype)  # noqa: E731
    err_mu = u(m + 2) * np.abs(x64).mean(axis=axes)
    err_spread = (u(m + 4) * (np.abs(x64) + np.abs(mu[None, :, None, None]) + err_mu[None, :, None, None]) ** 2
                  ).sum(axis=axes) * 2 / (m - 1)
    rm, rv = np.asarray(rm, np.float64), np.asarray(rv, np.float64)
    with np.errstate(all="ignore"):
        mean = (1 - f) * rm + f * mu
        var = (1 - f) * rv + f * spread
        tiny = 4 * float(np.finfo(x.dtype).tiny)
        mean_error = 2 * (abs(f) * err_mu + u(4) * (abs(1 - f) * np.abs(rm) + abs(f) * (np.abs(mu) + err_mu))) + tiny
        var_error = 2 * (abs(f) * err_spread + u(4) * (abs(1 - f) * rv + abs(f) * (spread + err_spread))) + tiny
    return (mean, mean_error), (var, var_error)


def _assert_running(actual, reference, what):
    value, error = reference
    actual = np.asarray(actual, np.float64)
    if not np.all(np.isfinite(value)):  # NaN or infinite momentum: the same non-finite values
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(value), err_msg=what)
        np.testing.assert_array_equal(np.isinf(actual) * np.sign(actual), np.isinf(value) * np.sign(value),
                                      err_msg=what)
        return
    assert np.all(np.abs(actual - value) <= error), (what, actual, value, error)


@given(momentum=st.one_of(st.floats(-4, 4), st.sampled_from([-1.0, 2.0, 10.0, np.nan, np.inf, -np.inf])),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
@example(momentum=2.0, dtype=np.float32, seed=0).via("beyond 1: extrapolates")
@example(momentum=-0.5, dtype=np.float64, seed=0)
def test_batch_norm_running_statistics_for_any_momentum_like_torch(momentum, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 3, 2, 3)) * 2 + 1).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.1, 3, 3).astype(dtype)
    result = ops.batch_norm2d(x, rm, rv, training=True, momentum=momentum)
    trm, trv = tensor(rm), tensor(rv)
    torch_out = F.batch_norm(tensor(x), trm, trv, training=True, momentum=momentum)
    mean, var = _running_reference(x, rm, rv, momentum)
    for who, (m, v) in (("npconv", (result.running_mean, result.running_var)), ("torch", (trm, trv))):
        _assert_running(np.asarray(m), mean, f"{who} running_mean")
        _assert_running(np.asarray(v), var, f"{who} running_var")
    # the output does not depend on the momentum
    np.testing.assert_allclose(result.output, torch_out.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_batch_norm_layer_with_momentum_outside_unit_interval_like_torch():
    twin = torch.nn.BatchNorm2d(3, momentum=3.0).train()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer = npconv.from_torch(twin)
    reference = _running_reference(x, twin.running_mean.numpy().copy(), twin.running_var.numpy().copy(), 3.0)
    run_torch(twin, x), layer(x)
    for who, module in (("npconv", layer), ("torch", twin)):
        _assert_running(np.asarray(module.running_mean), reference[0], f"{who} running_mean")
        _assert_running(np.asarray(module.running_var), reference[1], f"{who} running_var")
    assert int(layer.num_batches_tracked) == int(twin.num_batches_tracked) == 1
    with pytest.raises(TypeError, match="momentum"):  # F.batch_norm wants a number; None is nn's business
        F.batch_norm(tensor(x), torch.zeros(3), torch.ones(3), training=True, momentum=None)
    with pytest.raises(TypeError, match="momentum"):
        ops.batch_norm2d(x, np.zeros(3, np.float32), np.ones(3, np.float32), training=True, momentum=None)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_trains_on_an_empty_batch_like_torch(shape, momentum):
    x = np.zeros(shape, np.float32)
    twin = torch.nn.BatchNorm2d(3, momentum=momentum).train()
    with torch.no_grad():
        twin.running_mean.fill_(0.5), twin.running_var.fill_(2.0), twin.num_batches_tracked.fill_(4)
    layer = npconv.from_torch(twin)
    ours, theirs = layer(x), run_torch(twin, x)
    assert ours.shape == theirs.shape == shape
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(np.asarray(getattr(layer, name)), getattr(twin, name).numpy())
    assert int(layer.num_batches_tracked) == 5
    result = ops.batch_norm2d(x, np.full(3, 0.5, np.float32), np.full(3, 2.0, np.float32), training=True)
    assert result.output.shape == shape
    np.testing.assert_array_equal(result.running_var, np.full(3, 2.0, np.float32))
    assert ops.batch_norm2d(x, None, None, training=True).output.shape == shape


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("eps", [0.0, -1e-5, -np.inf, np.nan, 1e-3])
def test_batch_norm_eps_is_checked_like_torch(training, eps):
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)

    def outcome(fn):
        try:
            return fn(), None
        except ValueError as error:
            return None, error

    theirs, torch_error = outcome(lambda: F.batch_norm(tensor(x), tensor(rm), tensor(rv), training=training, eps=eps))
    ours, our_error = outcome(lambda: ops.batch_norm2d(x, rm, rv, training=training, eps=eps))
    assert (torch_error is None) == (our_error is None), (torch_error, our_error)
    if torch_error is not None:
        assert str(our_error) == str(torch_error)
    twin = torch.nn.BatchNorm2d(3, eps=eps).train(training)
    layer = npconv.from_torch(twin)
    _, torch_error = outcome(lambda: run_torch(twin, x))
    _, our_error = outcome(lambda: layer(x))
    assert (torch_error is None) == (our_error is None), (torch_error, our_error)
    if not training and our_error is None:  # eps NaN / 0 / positive in evaluation: the same values
        ours, theirs = layer(x), run_torch(twin, x)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_batch_norm_eval_with_zero_eps_and_zero_variance_gives_torchs_infinities_and_nans():
    x = np.array([-1.0, 0.0, 2.0, 3.0], np.float32).reshape(1, 1, 1, 4).repeat(4, axis=1)
    rm, rv = np.array([0.0, 2.0, 2.0, 0.0], np.float32), np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    w, b = np.array([1.0, 1.0, 0.0, -1.0], np.float32), np.array([0.0, 1.0, 1.0, 5.0], np.float32)
    for dtype in (np.float16, np.float32, np.float64):
        args = [a.astype(dtype) for a in (x, rm, rv, w, b)]
        theirs = F.batch_norm(*map(tensor, args[:3]), tensor(args[3]), tensor(args[4]), eps=0.0).numpy()
        ours = ops.batch_norm2d(*args, training=False, eps=0.0)  # (was ZeroDivisionError)
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)  # NaN == NaN for assert_array_equal


@pytest.mark.parametrize("eps", [1e-50, 1e-80])
def test_batch_norm_training_with_an_eps_below_float32_on_a_constant_channel_like_torch(eps):
    """eps > 0 passes PyTorch's check but is 0 in float32: PyTorch takes the square root in
    double (huge, or infinite, 1 / sqrt(eps)); npconv's kernel would divide by zero."""
    x = np.ones((2, 2, 2, 2), np.float32)
    x[:, 1] = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    b = np.array([1.0, 0.5], np.float32)
    theirs = F.batch_norm(tensor(x), None, None, bias=tensor(b), training=True, eps=eps).numpy()
    ours = ops.batch_norm2d(x, None, None, bias=b, training=True, eps=eps).output
    np.testing.assert_array_equal(ours[:, 0], theirs[:, 0])
    np.testing.assert_allclose(ours[:, 1], theirs[:, 1], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(bias=False), dict(affine=False), dict(track_running_stats=False),
                                    dict(affine=False, track_running_stats=False), dict(switched_off=True)])
@pytest.mark.parametrize("training", [True, False])
def test_from_torch_converts_every_batch_norm_layout(kwargs, training):
    kwargs = dict(kwargs)
    switched_off = kwargs.pop("switched_off", False)
    rng = np.random.default_rng(3)
    twin = torch.nn.BatchNorm2d(4, **kwargs)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(tensor(rng.uniform(0.5, 1.5, 4).astype(np.float32)))
        if twin.running_mean is not None:
            twin.running_mean.copy_(tensor(rng.normal(0, 1, 4).astype(np.float32)))
            twin.running_var.copy_(tensor(rng.uniform(0.5, 2, 4).astype(np.float32)))
    if switched_off:  # buffers kept, batch statistics in training, the buffers in evaluation
        twin.track_running_stats = False
    twin.train(training)
    layer = npconv.from_torch(twin)
    assert set(layer.state_dict()) == set(twin.state_dict())
    x = (rng.standard_normal((2, 4, 3, 3)) + 1).astype(np.float32)
    uses_batch = training or twin.running_mean is None
    bound = (batch_norm_train_bound(layer, Bounded.exact(x), np.float32).output if uses_batch
             else batch_norm_eval_bound(layer, Bounded.exact(x), np.float32))
    assert_bounded(layer(x), bound, "npconv BatchNorm2d")
    assert_bounded(run_torch(twin, x), bound, "torch BatchNorm2d")
    if twin.running_mean is not None:
        np.testing.assert_allclose(np.asarray(layer.running_mean), twin.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        assert int(layer.num_batches_tracked) == int(twin.num_batches_tracked)
    if kwargs.get("bias") is False:  # the backward gives no bias gradient to a layer without one
        with nn.enable_grad():
            layer(x)
        layer.backward(np.ones_like(x))
        assert set(layer.grads) == {"weight"}


# ----------------------------------------------------------------------------- pinned PyTorch behaviours


@pytest.mark.parametrize("pad, shape", [((5, -1), (1, 5)), ((-5, 1), (1, 5)), ((-4, 2), (1, 5)),
                                        ((3, -1, 0, 0), (1, 2, 3)), ((1, 1, 2, -1), (1, 2, 3))])
def test_torch_circular_padding_reads_uninitialised_memory(pad, shape):
    """A positive circular pad longer than what the other side's crop leaves of the axis:
    PyTorch copies from parts of its output it has not written yet. With deterministic
    algorithms on, PyTorch fills new memory with NaN, or notices the overlapping copy, and so
    shows it; npconv refuses the call."""
    x = torch.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        y = F.pad(x, pad, "circular")
        assert torch.isnan(y).any(), y
    except RuntimeError as error:
        assert "refer to a single memory location" in str(error)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    with pytest.raises(ValueError, match="uninitialised"):
        npconv.pad(x.numpy(), pad, "circular")


def test_torch_reflect_padding_can_return_a_negative_size():
    """Reflect padding of 2 axes checks only that *some* output axis is non-empty; with an
    empty batch nothing fails when the other axis comes out negative."""
    y = F.pad(torch.zeros(0, 1, 3, 5), (-3, -3, 0, 0), "reflect")
    assert tuple(y.shape) == (0, 1, 3, -1)
    with pytest.raises(ValueError, match="negative dimension -1"):
        npconv.pad(np.zeros((0, 1, 3, 5), np.float32), (-3, -3, 0, 0), "reflect")


def test_torch_skips_argument_checks_on_empty_inputs():
    """PyTorch's empty path (N = 0 or C_in = 0) skips the checks on dilation, kernel size and
    output_padding; npconv checks its arguments whatever the sizes."""
    assert F.conv2d(torch.zeros(1, 0, 5, 5), torch.zeros(3, 0, 3, 3), dilation=0).shape == (1, 0, 5, 5)
    assert F.conv2d(torch.zeros(1, 0, 5, 5), torch.zeros(6, 0, 0, 0)).shape == (1, 0, 6, 6)
    assert F.conv_transpose2d(torch.zeros(0, 2, 2, 2), torch.zeros(2, 3, 3, 3), output_padding=1).shape == (0, 3, 5, 5)
    assert F.conv_transpose2d(torch.zeros(0, 2, 2, 2), torch.zeros(2, 3, 3, 3), dilation=0).shape == (0, 3, 2, 2)
    with pytest.raises(ValueError, match="dilation should be greater than zero"):
        npconv.conv2d(np.zeros((1, 0, 5, 5), np.float32), np.zeros((3, 0, 3, 3), np.float32), dilation=0)
    with pytest.raises(ValueError, match="kernel size should be greater than zero"):
        npconv.conv2d(np.zeros((1, 0, 5, 5), np.float32), np.zeros((6, 0, 0, 0), np.float32))
    with pytest.raises(ValueError, match="output padding must be smaller"):
        npconv.conv_transpose2d(np.zeros((0, 2, 2, 2), np.float32), np.zeros((2, 3, 3, 3), np.float32),
                                output_padding=1)


def test_torch_counts_a_batch_norm_forward_that_fails():
    """nn.BatchNorm2d increments num_batches_tracked before F.batch_norm checks the call;
    npconv counts only a forward that succeeded."""
    twin, layer = torch.nn.BatchNorm2d(3, eps=0.0), nn.BatchNorm2d(3, eps=0.0)
    x = np.ones((2, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="eps must be positive during training"):
        twin(tensor(x))
    with pytest.raises(ValueError, match="eps must be positive during training"):
        layer(x)
    assert int(twin.num_batches_tracked) == 1 and int(layer.num_batches_tracked) == 0
