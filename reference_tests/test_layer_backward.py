"""Backward of BatchNorm2d (training and evaluation), ReLU, ReLU6, AdaptiveAvgPool2d, Linear
and the residual add, against torch.autograd; counted operations against the formulas.

What is proved, for every drawn configuration:
* float64 and float32: torch.autograd's gradients and npconv's lie within the derived bound
  of npconv's float64 gradients (CPU; CUDA, TF32 off, when present, except BatchNorm in
  training, whose bound assumes the CPU's two-pass statistics);
* float16: npconv computes in float32 and rounds each gradient once;
* ReLU / ReLU6 gradients are selections, so they equal PyTorch's exactly, at the corners
  (x = 0, x = 6), for -0.0, +-Inf and NaN inputs, and for NaN / Inf gradients;
* every counted operation equals its closed form (npconv.formulas_layer_backward), and
  the backward's counts are recorded under their own ops, apart from the forward's.

Error bounds. A sum of n terms computed in floating point, in any order, is within
gamma(n) * sum|terms| of the exact sum; a product or quotient of k rounded factors is
within gamma(k) relatively (Higham, Accuracy and Stability of Numerical Algorithms,
eq. 3.5 and Lemma 3.1). The float64 reference's own error adds the same expression with
u = 2^-53 (`bound_from_magnitude` adds both, and n * tiny for underflow).
* Linear: grad_input[n, k] = sum_o gy w: n = OUT products; grad_weight[o, k] = sum_n gy x:
  n = rows; grad_bias[o]: n = rows terms. Magnitudes: the same kernels on |gy|, |x|, |w|.
* AdaptiveAvgPool2d: gx[h, w] adds one share gy / |window| (npconv divides once, PyTorch by
  kh then by kw: at most 2 roundings) from each of the R windows covering (h, w), R =
  R_h * R_w (R_h the most windows covering one row): n = R + 1 roundings on each term.
  Magnitude: the same kernel on |gy|.
* BatchNorm2d, evaluation: gx = gy * weight * invstd, invstd = 1 / sqrt(running_var + eps):
  + eps, sqrt, divide, two multiplies, and one conversion when PyTorch computes invstd in a
  wider type: n = 6 relative to |gy weight invstd|. grad_weight = sum gy (x - mean) invstd:
  n = m + 6 on sum |gy| |x - mean| invstd (m = N*H*W); grad_bias: n = m on sum |gy|.
* BatchNorm2d, training: `train_helpers.bn_train_backward_bound`, a first-order bound derived from
  gx = (weight r)(gy - mean(gy) - x_hat mean(gy x_hat)); its docstring gives the derivation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st
from train_helpers import bn_train_backward_bound

import npconv
from npconv.formulas import adaptive_pool_ranges
from npconv import counting, formulas_layer_backward, ops
from npconv.layer_backward import (adaptive_avg_pool2d_backward, batch_norm2d_backward, flatten_backward,
                                   linear_backward, relu6_backward, relu_backward, residual_add_backward)
from npconv.tolerance import assert_within_bound, bound_from_magnitude

TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}


def _rng(data, label="seed"):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label=label))


def _t(a, device="cpu", grad=True):
    t = torch.from_numpy(np.array(a)).to(device)
    return t.requires_grad_() if grad else t


def _np(t):
    return None if t is None else t.detach().cpu().numpy()


def _as64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def _abs64(*arrays):
    return [None if a is None else np.abs(np.asarray(a, np.float64)) for a in arrays]


# --------------------------------------------------------------------------------------
# BatchNorm2d
# --------------------------------------------------------------------------------------


def _per_channel(a):
    return a.reshape(1, -1, 1, 1)


def bn_eval_backward_bound(gy, x, weight, running_mean, running_var, eps, dtype):
    """The evaluation-mode bounds of the module docstring (implementation in `dtype` plus
    the float64 reference), each (N, C, H, W), (C,), (C,)."""
    gy, x, weight, rm, rv = _as64(gy, x, weight, running_mean, running_var)
    N, C, H, W = x.shape
    m = N * H * W
    invstd = 1 / np.sqrt(rv + eps)
    gx_magnitude = np.abs(gy) * _per_channel(np.abs(weight) * invstd)
    gw_magnitude = (np.abs(gy) * np.abs(x - _per_channel(rm))).sum(axis=(0, 2, 3)) * invstd
    gb_magnitude = np.abs(gy).sum(axis=(0, 2, 3))
    return (bound_from_magnitude(gx_magnitude, 6, dtype), bound_from_magnitude(gw_magnitude, m + 6, dtype),
            bound_from_magnitude(gb_magnitude, m, dtype))


def _both(bound_fn, *args, dtype):
    """A bound for `dtype` plus the float64 reference's own (the first-order bound is per
    implementation; |actual - reference| <= its bound + the reference's)."""
    return tuple(a + b for a, b in zip(bound_fn(*args, dtype), bound_fn(*args, np.float64)))


@st.composite
def bn_cases(draw, training: bool, max_values: int = 60):
    """(x, gy, weight or None, running_mean, running_var, eps): channels with a random offset
    and scale (so that mean and variance are not 0 and 1), m = N*H*W >= 2 in training."""
    N = draw(st.integers(1, 3), label="N")
    C = draw(st.integers(1, 4), label="C")
    H = draw(st.integers(1, 5), label="H")
    W = draw(st.integers(1 if (N * H > 1 or not training) else 2, 5), label="W")
    while N * H * W > max_values:
        H = max(1, H - 1)
        W = max(1 if (N * H > 1 or not training) else 2, W - 1)
    affine = draw(st.booleans(), label="affine")
    offset_scale = draw(st.sampled_from([0.0, 1.0, 10.0]), label="channel offsets")
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]), label="eps")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    scale = rng.uniform(0.1, 3.0, C)
    x = rng.standard_normal((N, C, H, W)) * _per_channel(scale) + _per_channel(rng.normal(0, offset_scale, C))
    gy = rng.standard_normal((N, C, H, W))
    weight = rng.uniform(-1.5, 1.5, C) if affine else None
    running_mean = rng.normal(0, 1, C)
    running_var = rng.uniform(0.2, 3.0, C)
    return x, gy, weight, running_mean, running_var, eps


def torch_bn_grads(x, gy, weight, running_mean, running_var, eps, training, device="cpu"):
    tx = _t(x, device)
    tw = None if weight is None else _t(weight, device)
    tb = None if weight is None else _t(np.zeros_like(weight), device)
    rm = None if training else _t(running_mean, device, grad=False)
    rv = None if training else _t(running_var, device, grad=False)
    y = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, training=training, eps=eps)
    params = [tx] + ([tw, tb] if weight is not None else [])
    grads = torch.autograd.grad(y, params, _t(gy, device, grad=False))
    grads = [_np(g) for g in grads]
    return tuple(grads) + ((None, None) if weight is None else ())


def npconv_bn_grads(x, gy, weight, running_mean, running_var, eps, training):
    """npconv's forward statistics (in x's dtype), then its backward."""
    if training:
        result = ops.batch_norm2d(x, None, None, weight, None, training=True, eps=eps)
        mean, var = result.batch_mean, result.batch_var
    else:
        mean, var = running_mean, running_var
    return batch_norm2d_backward(gy, x, weight, mean=mean, var=var, training=training, eps=eps)


def _assert_grads(actual, reference, bounds, who):
    for name, a, r, b in zip(("grad_input", "grad_weight", "grad_bias"), actual, reference, bounds):
        assert (a is None) == (r is None), f"{who} {name}: {a!r} vs {r!r}"
        if r is not None:
            assert_within_bound(a, r, b, what=f"{who} {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_batch_norm2d_backward_training_matches_autograd_within_error_bound(dtype, data):
    x, gy, weight, rm, rv, eps = data.draw(bn_cases(training=True), label="case")
    x_d, gy_d = x.astype(dtype), gy.astype(dtype)
    w_d = None if weight is None else weight.astype(dtype)
    with counting.paused():
        reference = npconv_bn_grads(*_as64(x_d, gy_d, w_d), rm, rv, eps, training=True)
    bounds = _both(bn_train_backward_bound, gy_d, x_d, np.ones(x.shape[1]) if weight is None else w_d, eps,
                   dtype=dtype)
    expected = torch_bn_grads(x_d, gy_d, w_d, rm, rv, eps, training=True)
    _assert_grads(expected, reference, bounds, "torch.autograd")
    ours = npconv_bn_grads(x_d, gy_d, w_d, rm, rv, eps, training=True)
    for a in ours:
        assert a is None or a.dtype == dtype
    _assert_grads(ours, reference, bounds, "npconv")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_batch_norm2d_backward_eval_matches_autograd_within_error_bound(device, dtype, data):
    x, gy, weight, rm, rv, eps = data.draw(bn_cases(training=False), label="case")
    x_d, gy_d, rm_d, rv_d = (a.astype(dtype) for a in (x, gy, rm, rv))
    w_d = None if weight is None else weight.astype(dtype)
    with counting.paused():
        reference = npconv_bn_grads(*_as64(x_d, gy_d, w_d, rm_d, rv_d), eps, training=False)
    w_for_bound = np.ones(x.shape[1]) if weight is None else w_d
    bounds = bn_eval_backward_bound(gy_d, x_d, w_for_bound, rm_d, rv_d, eps, dtype)
    _assert_grads(torch_bn_grads(x_d, gy_d, w_d, rm_d, rv_d, eps, False, device), reference, bounds, "torch.autograd")
    _assert_grads(npconv_bn_grads(x_d, gy_d, w_d, rm_d, rv_d, eps, False), reference, bounds, "npconv")


def test_batch_norm2d_training_bound_is_not_vacuous():
    """The derived bound must be far below the gradients it bounds (else the test above
    proves nothing) and above the error actually seen (else it is not a bound)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 3
    gy = rng.standard_normal(x.shape)
    weight = rng.uniform(0.5, 1.5, 3)
    reference = npconv_bn_grads(x, gy, weight, None, None, 1e-5, True)
    bounds = _both(bn_train_backward_bound, gy.astype(np.float32), x.astype(np.float32),
                   weight.astype(np.float32), 1e-5, dtype=np.float32)
    ours = npconv_bn_grads(x.astype(np.float32), gy.astype(np.float32), weight.astype(np.float32),
                           None, None, 1e-5, True)
    for a, r, b in zip(ours, reference, bounds):
        err = np.abs(a - r)
        assert np.max(b) < 1e-3 * np.max(np.abs(r))
        assert np.all(err <= b)


@pytest.mark.parametrize("training", [True, False])
@given(data=st.data())
def test_batch_norm2d_backward_float16_is_computed_in_float32_and_rounded_once(training, data):
    x, gy, weight, rm, rv, eps = data.draw(bn_cases(training=training), label="case")
    h = lambda a: None if a is None else a.astype(np.float16)  # noqa: E731
    f = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    mean, var = (ops.batch_norm2d(f(h(x)), None, None, training=True, eps=eps)[3:] if training else (rm, rv))
    ours = batch_norm2d_backward(h(gy), h(x), h(weight), mean=mean, var=var, training=training, eps=eps)
    wide = batch_norm2d_backward(f(h(gy)), f(h(x)), f(h(weight)), mean=mean, var=var, training=training, eps=eps)
    for a, b in zip(ours, wide):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == np.float16
            np.testing.assert_array_equal(a, b.astype(np.float16))


@pytest.mark.parametrize("training", [True, False])
@given(data=st.data())
def test_batch_norm2d_backward_counts_equal_formulas(training, data):
    x, gy, weight, rm, rv, eps = data.draw(bn_cases(training=training), label="case")
    needs_input_grad = data.draw(st.booleans(), label="needs_input_grad")
    with npconv.count() as tally:
        gx, _, _ = batch_norm2d_backward(gy, x, weight, mean=rm, var=rv, training=training, eps=eps,
                                         needs_input_grad=needs_input_grad)
    assert (gx is None) == (not needs_input_grad)
    assert set(tally.by_op) == {"batch_norm2d_backward"}
    counted = tally.by_op["batch_norm2d_backward"]
    expected = formulas_layer_backward.batch_norm2d_backward_counts(*x.shape, training=training,
                                                                   needs_input_grad=needs_input_grad)
    assert dict(counted.other) == expected
    assert counted.macs == 0 and counted.calls == 1


def test_batch_norm2d_backward_rejects_bad_arguments():
    x, gy, s = np.ones((2, 3, 2, 2)), np.ones((2, 3, 2, 2)), np.ones(3)
    with pytest.raises(ValueError, match="expected 4D input"):
        batch_norm2d_backward(gy[0], x[0], s, mean=s, var=s, training=True)
    with pytest.raises(ValueError, match="Mismatch in shape"):
        batch_norm2d_backward(gy[:1], x, s, mean=s, var=s, training=True)
    with pytest.raises(TypeError, match="grad_output of scalar type Double"):
        batch_norm2d_backward(gy.astype(np.float32), x, s, mean=s, var=s, training=True)
    with pytest.raises(ValueError, match="weight should contain 3 elements"):
        batch_norm2d_backward(gy, x, np.ones(2), mean=s, var=s, training=True)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        batch_norm2d_backward(np.ones((1, 3, 1, 1)), np.ones((1, 3, 1, 1)), s, mean=s, var=s, training=True)
    with pytest.raises(TypeError, match="training must be True or False"):
        batch_norm2d_backward(gy, x, s, mean=s, var=s, training="yes")
    with pytest.raises(TypeError, match="must be a numpy.ndarray"):
        batch_norm2d_backward(gy, x, s, mean=[0, 0, 0], var=s, training=False)


# --------------------------------------------------------------------------------------
# ReLU, ReLU6
# --------------------------------------------------------------------------------------

SPECIAL_VALUES = np.array([0.0, -0.0, 6.0, -6.0, 3.0, np.nan, np.inf, -np.inf, 1e-300, 5.999999])


@st.composite
def activation_cases(draw, dtype):
    """x with the corners, -0.0, +-Inf and NaN planted among normal values; gy likewise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=4), label="shape"))
    x = (rng.standard_normal(shape) * 4 + 3).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    if x.size:
        for a in (x, gy):
            planted = rng.random(shape) < 0.3
            a[planted] = rng.choice(SPECIAL_VALUES, size=int(planted.sum())).astype(dtype)
    return x, gy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("name", ["relu", "relu6"])
@given(data=st.data())
def test_activation_backward_equals_autograd_exactly(name, dtype, device, data):
    """A selection (gy or 0) has no rounding: npconv and PyTorch must agree bit for bit,
    NaN for NaN, including 0 (not NaN) where a masked gy is NaN or Inf.

    One exception, PyTorch's: where x is NaN, torch's CPU ReLU6 backward gives 0 in its
    vectorised loop body and gy in its scalar tail (`test_torch_relu6_backward_of_nan_
    depends_on_its_position`). npconv passes gy there, the scalar formula
    `(x <= 0) || (x >= 6) ? 0 : grad` of aten; torch may give either."""
    x, gy = data.draw(activation_cases(dtype), label="arrays")
    tx = _t(x, device)
    forward = torch.nn.functional.relu if name == "relu" else torch.nn.functional.relu6
    (expected,) = torch.autograd.grad(forward(tx), tx, _t(gy, device, grad=False))
    expected = _np(expected)
    ours = (relu_backward if name == "relu" else relu6_backward)(gy, x)
    assert ours.dtype == dtype and ours.shape == x.shape
    nan_x = np.isnan(x)
    np.testing.assert_array_equal(ours[nan_x], gy[nan_x])
    if name == "relu6":
        torch_either = (expected[nan_x] == 0) | (expected[nan_x] == gy[nan_x]) | np.isnan(gy[nan_x])
        assert torch_either.all(), expected[nan_x]
        expected = np.where(nan_x, gy, expected)
    np.testing.assert_array_equal(ours, expected)


def test_torch_relu6_backward_of_nan_depends_on_its_position():
    """Pins a PyTorch inconsistency (torch 2.13 CPU): hardtanh_backward, ReLU6's backward,
    passes gy for a NaN input in the scalar loop but gives 0 in the vectorised one, which
    takes one SIMD vector at a time (8 float64 / 16 float32 values with AVX-512, 4 / 8 with
    AVX2) and leaves the remainder to the scalar loop. So a NaN input's gradient depends on
    where it sits in memory: of 65 NaNs, the first 64 get 0 and the last gets gy. npconv
    gives gy everywhere. If this test
    fails, PyTorch has changed (or this CPU vectorises differently): revisit the exception
    in `test_activation_backward_equals_autograd_exactly`."""
    for dtype in (torch.float64, torch.float32):
        n = 65  # longer than any chunk, not a multiple of one: a body and a tail
        x = torch.full((n,), float("nan"), dtype=dtype, requires_grad=True)
        (grad,) = torch.autograd.grad(torch.nn.functional.relu6(x), x, torch.ones(n, dtype=dtype))
        assert grad[0] == 0 and grad[-1] == 1, grad
        ours = relu6_backward(np.ones(n, _np(x).dtype), _np(x))
        assert (ours == 1).all()
        (grad,) = torch.autograd.grad(torch.relu(x), x, torch.ones(n, dtype=dtype))
        assert (grad == 1).all()  # ReLU's backward (threshold_backward) is consistent


@pytest.mark.parametrize("name", ["relu", "relu6"])
@given(data=st.data())
def test_activation_backward_counts_equal_formulas(name, data):
    x, gy = data.draw(activation_cases(np.float64), label="arrays")
    with npconv.count() as tally:
        (relu_backward if name == "relu" else relu6_backward)(gy, x)
    formula = (formulas_layer_backward.relu_backward_compares if name == "relu"
               else formulas_layer_backward.relu6_backward_compares)
    assert set(tally.by_op) == {f"{name}_backward"}
    assert tally.by_op[f"{name}_backward"].other["activation_compares"] == formula(x.size)


def test_relu6_backward_at_the_corners():
    x = np.array([-1.0, -0.0, 0.0, 1e-300, 3.0, 6.0 - 2**-50, 6.0, 7.0, np.nan])
    gy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(relu6_backward(gy, x), [0, 0, 0, 2, 2, 2, 0, 0, 2])
    np.testing.assert_array_equal(relu_backward(gy, x), [0, 0, 0, 2, 2, 2, 2, 2, 2])


# --------------------------------------------------------------------------------------
# AdaptiveAvgPool2d
# --------------------------------------------------------------------------------------


def _covering(size: int, out: int) -> int:
    """The most adaptive windows of an axis that contain one position."""
    cover = np.zeros(size, dtype=np.int64)
    for start, end in adaptive_pool_ranges(size, out):
        cover[start:end] += 1
    return int(cover.max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_adaptive_avg_pool2d_backward_matches_autograd_within_error_bound(device, dtype, data):
    N = data.draw(st.integers(1, 3), label="N")
    C = data.draw(st.integers(1, 3), label="C")
    H, W = data.draw(st.integers(1, 9), label="H"), data.draw(st.integers(1, 9), label="W")
    OH, OW = data.draw(st.integers(1, H + 2), label="OH"), data.draw(st.integers(1, W + 2), label="OW")
    unbatched = data.draw(st.booleans(), label="unbatched")
    shape = (C, H, W) if unbatched else (N, C, H, W)
    rng = _rng(data)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape[:-2] + (OH, OW)).astype(dtype)
    with counting.paused():
        reference = adaptive_avg_pool2d_backward(gy.astype(np.float64), shape)
        magnitude = adaptive_avg_pool2d_backward(np.abs(gy.astype(np.float64)), shape)
    n = _covering(H, OH) * _covering(W, OW) + 1
    bound = bound_from_magnitude(magnitude, n, dtype)
    tx = _t(x, device)
    (expected,) = torch.autograd.grad(torch.nn.functional.adaptive_avg_pool2d(tx, (OH, OW)), tx,
                                      _t(gy, device, grad=False))
    assert_within_bound(_np(expected), reference, bound, what="torch.autograd grad_input")
    ours = adaptive_avg_pool2d_backward(gy, shape)
    assert ours.dtype == dtype and ours.shape == shape
    assert_within_bound(ours, reference, bound, what="npconv grad_input")


@given(data=st.data())
def test_adaptive_avg_pool2d_backward_counts_equal_formulas_and_the_forward(data):
    N, C = data.draw(st.integers(0, 2), label="N"), data.draw(st.integers(1, 3), label="C")
    H, W = data.draw(st.integers(1, 9), label="H"), data.draw(st.integers(1, 9), label="W")
    OH, OW = data.draw(st.integers(1, H + 2), label="OH"), data.draw(st.integers(1, W + 2), label="OW")
    x = _rng(data).standard_normal((N, C, H, W))
    with npconv.count() as forward:
        y = ops.adaptive_avg_pool2d(x, (OH, OW))
    with npconv.count() as backward:
        adaptive_avg_pool2d_backward(np.ones_like(y), x.shape)
    counted = backward.by_op["adaptive_avg_pool2d_backward"].other
    assert counted["pool_grad_adds"] == forward.by_op["adaptive_avg_pool2d"].other["pool_adds"]
    assert counted["pool_grad_adds"] == formulas_layer_backward.adaptive_avg_pool2d_backward_adds(N, C, (H, W),
                                                                                                  (OH, OW))
    assert counted["pool_grad_divides"] == formulas_layer_backward.adaptive_avg_pool2d_backward_divides(N, C,
                                                                                                       (OH, OW))


def test_adaptive_avg_pool2d_backward_rejects_bad_arguments():
    with pytest.raises(ValueError, match="does not belong to an input of shape"):
        adaptive_avg_pool2d_backward(np.ones((2, 3, 1, 1)), (2, 4, 5, 5))
    with pytest.raises(ValueError, match="Expected 3D or 4D"):
        adaptive_avg_pool2d_backward(np.ones((2, 3)), (2, 3))
    with pytest.raises(ValueError, match="non-zero size"):
        adaptive_avg_pool2d_backward(np.ones((2, 3, 1, 1)), (2, 3, 0, 5))


# --------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------


@st.composite
def linear_cases(draw, dtype):
    lead = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=2), label="leading dims"))
    IN, OUT = draw(st.integers(1, 7), label="IN"), draw(st.integers(1, 7), label="OUT")
    bias = draw(st.booleans(), label="bias")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.standard_normal(lead + (IN,)).astype(dtype)
    w = rng.standard_normal((OUT, IN)).astype(dtype)
    gy = rng.standard_normal(lead + (OUT,)).astype(dtype)
    return x, w, gy, bias


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_linear_backward_matches_autograd_within_error_bound(device, dtype, data):
    x, w, gy, bias = data.draw(linear_cases(dtype), label="case")
    rows = int(np.prod(x.shape[:-1]))
    with counting.paused():
        reference = linear_backward(*_as64(gy, x, w), bias=bias)
        magnitude = linear_backward(*_abs64(gy, x, w), bias=bias)
    bounds = (bound_from_magnitude(magnitude[0], w.shape[0], dtype),
              bound_from_magnitude(magnitude[1], rows, dtype),
              None if not bias else bound_from_magnitude(magnitude[2], rows, dtype))
    tx, tw = _t(x, device), _t(w, device)
    tb = _t(np.zeros(w.shape[0], dtype), device) if bias else None
    params = (tx, tw) + ((tb,) if bias else ())
    expected = torch.autograd.grad(torch.nn.functional.linear(tx, tw, tb), params, _t(gy, device, grad=False),
                                   allow_unused=True)
    expected = [np.zeros(p.shape, dtype) if g is None else _np(g) for g, p in zip(expected, params)]
    expected += [None] * (3 - len(expected))
    _assert_grads(expected, reference, bounds, "torch.autograd")
    ours = linear_backward(gy, x, w, bias=bias)
    for a, like in zip(ours, (x, w, np.empty(w.shape[0]))):
        assert a is None or (a.dtype == dtype and a.shape == like.shape)
    _assert_grads(ours, reference, bounds, "npconv")


@given(data=st.data())
def test_linear_backward_counts_equal_formulas_and_the_forward(data):
    """grad-input MACs = grad-weight MACs = forward MACs: both run over the forward's (n, o, k)."""
    x, w, gy, bias = data.draw(linear_cases(np.float64), label="case")
    rows = int(np.prod(x.shape[:-1]))
    OUT, IN = w.shape
    with npconv.count() as forward:
        ops.linear(x, w, np.zeros(OUT) if bias else None)
    with npconv.count() as backward:
        linear_backward(gy, x, w, bias=bias)
    assert "linear" not in backward.by_op
    gi, gw = backward.by_op["linear_grad_input"], backward.by_op["linear_grad_weight"]
    assert gi.macs == gw.macs == forward.macs == formulas_layer_backward.linear_grad_input_macs(rows, IN, OUT)
    assert gw.macs == formulas_layer_backward.linear_grad_weight_macs(rows, IN, OUT)
    if bias:
        assert backward.by_op["linear_grad_bias"].other["adds"] == formulas_layer_backward.linear_grad_bias_adds(
            rows, OUT)
    else:
        assert "linear_grad_bias" not in backward.by_op


def test_linear_backward_skips_the_input_gradient_when_asked():
    rng = np.random.default_rng(0)
    x, w, gy = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal((3, 2))
    with npconv.count() as tally:
        gx, gw, gb = linear_backward(gy, x, w, needs_input_grad=False)
    assert gx is None and "linear_grad_input" not in tally.by_op
    np.testing.assert_array_equal(gw, linear_backward(gy, x, w)[1])


def test_linear_backward_rejects_bad_arguments():
    x, w = np.ones((3, 4)), np.ones((2, 4))
    with pytest.raises(ValueError, match=r"mat1 and mat2 shapes cannot be multiplied \(3x5 and 4x2\)"):
        linear_backward(np.ones((3, 2)), np.ones((3, 5)), w)
    with pytest.raises(ValueError, match=r"grad_output has a shape of \[3, 3\]"):
        linear_backward(np.ones((3, 3)), x, w)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        linear_backward(np.ones((3, 2)), x, np.ones((2, 4, 1)))
    with pytest.raises(TypeError, match="expected grad_output of scalar type Double"):
        linear_backward(np.ones((3, 2), np.float32), x, w)


# --------------------------------------------------------------------------------------
# Residual add, flatten
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@given(data=st.data())
def test_residual_add_backward_is_the_sum_at_the_fork(dtype, data):
    """For y = x + F(x), autograd's dL/dx is gy (shortcut) + F's backward of gy (branch):
    one rounded add per element (float16 in float32, then rounded), so exactly PyTorch's."""
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4), label="shape"))
    rng = _rng(data)
    x = rng.standard_normal(shape).astype(dtype)
    branch_weight = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    tx = _t(x)
    y = tx + tx * _t(branch_weight, grad=False)   # F(x) = x * c: its backward is gy * c
    (expected,) = torch.autograd.grad(y, tx, _t(gy, grad=False))
    wide = np.float32 if dtype == np.float16 else dtype   # half arithmetic: in float32, rounded once
    g_branch = (gy.astype(wide) * branch_weight.astype(wide)).astype(dtype)
    with npconv.count() as tally:
        ours = residual_add_backward(gy, g_branch)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, (gy.astype(wide) + g_branch.astype(wide)).astype(dtype))
    np.testing.assert_array_equal(ours, _np(expected))
    assert tally.by_op["add_backward"].other["residual_grad_adds"] == \
        formulas_layer_backward.residual_add_backward_adds(x.size)


def test_flatten_backward_reshapes_and_counts_a_call():
    gy = np.arange(24.0).reshape(2, 12)
    with npconv.count() as tally:
        gx = flatten_backward(gy, (2, 3, 2, 2))
    np.testing.assert_array_equal(gx, gy.reshape(2, 3, 2, 2))
    assert tally.by_op["flatten_backward"].calls == 1 and tally.macs == 0
    with pytest.raises(ValueError, match="cannot be the gradient"):
        flatten_backward(gy, (2, 3, 2, 3))
    with pytest.raises(ValueError, match="differ"):
        residual_add_backward(np.ones(3), np.ones(4))
