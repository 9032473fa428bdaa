"""npconv.bounds is the one home of u, gamma and tiny, and its per-op bounds agree with the
independent per-layer derivation of reference_tests/error_bounds.py.

error_bounds derives Conv2d, Linear, BatchNorm2d (evaluation) and AdaptiveAvgPool2d bounds
again on purpose (its module docstring says why). With an exact input (E = 0) each must
meet npconv.bounds' one-sided bound of the same op turned two-sided (`both_sides(u)`: the
float64 reference's own rounding added):

* float32 and float64: the two are the same bound, up to float64 rounding of the bounds
  themselves and the `tiny` terms (error_bounds counts n * tiny where the pooling bound of
  npconv.bounds counts one). Equality of the gamma parts: error_bounds' g(n) =
  gamma(n, u) + gamma(n, 2^-53), npconv.bounds' both_sides(u) * gamma(n, u) =
  gamma(n, u) + (2^-53 / u) gamma(n, u) >= g(n), and the two differ by under 1e-15 relatively.
* float16: error_bounds' inner products accumulate in float32 and round once (npconv's and
  PyTorch's CPU rule: gamma(n, 2^-24) + 2^-11), npconv.bounds' assume any float16
  evaluation (gamma(n, 2^-11)), which is larger: error_bounds' bound is provably <=.

The BatchNorm constant is one (npconv.bounds.BATCH_NORM_EVAL_ROUNDINGS = 7, derived in
npconv.bounds.batch_norm_eval_bound), and computed float32 / float16 BatchNorm in both orders
it describes (PyTorch's x * alpha + beta with beta = bias - mean * alpha, npconv's
(x - mean) * scale + bias) stays within it on inputs chosen to cancel.
"""

from __future__ import annotations

import math
from fractions import Fraction

import error_bounds as eb
import numpy as np
import pytest

import npconv
from npconv import bounds, counting, formulas, nn, ops, tolerance
from npconv.graph.ops import OPS

FLOATS = [np.float16, np.float32, np.float64]
SEEDS = range(6)
REL = 1e-12  # float64 rounding of the bounds' own evaluation


def _layer_params(layer, rng, dtype):
    for name, value in list(layer.named_parameters()):
        setattr(layer, name.split(".")[-1], rng.standard_normal(value.shape).astype(dtype))
    return layer


def _f64(*arrays):
    """The graph verifier's bounds take the op's arguments exactly widened to float64."""
    return tuple(None if a is None else np.asarray(a, np.float64) for a in arrays)


def _agree(from_error_bounds, from_bounds, dtype, tiny_terms):
    """error_bounds' bound (E = 0) against npconv.bounds' one-sided bound made two-sided."""
    dtype = np.dtype(dtype)
    two_sided = from_bounds * bounds.both_sides(bounds.unit_roundoff(dtype))
    slack = tiny_terms * bounds.tiny(dtype)
    assert from_error_bounds.shape == two_sided.shape
    assert np.all(from_error_bounds <= two_sided * (1 + REL) + slack)
    if dtype != np.float16:  # the same bound; float16: error_bounds' float32 accumulation is tighter
        assert np.all(two_sided <= from_error_bounds * (1 + REL) + slack)
    assert np.all(two_sided > 0)


def test_gamma_unit_roundoff_and_tiny_live_in_npconv_bounds():
    assert tolerance.gamma is bounds.gamma and tolerance.unit_roundoff is bounds.unit_roundoff
    assert tolerance.tiny is bounds.tiny and eb.gamma is bounds.gamma
    assert bounds.gamma(10, np.float32) == bounds.gamma(10, 2.0**-24) == 10 * 2.0**-24 / (1 - 10 * 2.0**-24)
    assert bounds.gamma(3, "tf32") == bounds.gamma(3, np.float16) and bounds.unit_roundoff("tf32") == 2.0**-11
    assert bounds.gamma(2**11, np.float16) == np.inf
    assert np.array_equal(bounds.gamma(np.array([1, 2]), np.float64), [2.0**-53 / (1 - 2.0**-53),
                                                                      2.0**-52 / (1 - 2.0**-52)])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_eval_bounds_agree(dtype, seed):
    assert eb.BATCH_NORM_EVAL_ROUNDINGS == bounds.BATCH_NORM_EVAL_ROUNDINGS == 7
    rng = np.random.default_rng(seed)
    C = int(rng.integers(1, 5))
    x = (rng.standard_normal((2, C, 3, 4)) * 10.0 ** rng.integers(-3, 4)).astype(dtype)
    layer = nn.BatchNorm2d(C, eps=float(10.0 ** rng.integers(-6, -1)), dtype=dtype).eval()
    layer.weight = rng.standard_normal(C).astype(dtype)
    layer.bias = rng.standard_normal(C).astype(dtype)
    layer.running_mean = (rng.standard_normal(C) * 5).astype(dtype)
    layer.running_var = rng.uniform(0.01, 4, C).astype(dtype)
    with counting.paused():
        ours = eb.batch_norm_eval_bound(layer, eb.Bounded.exact(x), dtype).error
    theirs = bounds.batch_norm_eval_bound(x, layer.weight, layer.bias, layer.running_mean, layer.running_var,
                                          layer.eps, dtype)
    _agree(ours, theirs, dtype, tiny_terms=8)


def _pytorch_order(x, weight, bias, mean, var, eps, dtype):
    """aten's CPU batch norm in eval mode, in its opmath (float32 for float16 and float32):
    invstd = 1 / sqrt(var + eps), alpha = invstd * weight, beta = bias - mean * alpha,
    y = x * alpha + beta, rounded to the dtype."""
    op = np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)
    s = (1,) + (-1,) + (1,) * (x.ndim - 2)
    with np.errstate(all="ignore"):
        invstd = op.type(1) / np.sqrt(var.astype(op) + op.type(eps))
        alpha = invstd * weight.astype(op)
        beta = bias.astype(op) - mean.astype(op) * alpha
        return (x.astype(op) * alpha.reshape(s) + beta.reshape(s)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("seed", SEEDS)
def test_computed_batch_norm_stays_within_the_constant(dtype, seed):
    """x close to the mean (the subtraction cancels), a small variance and large parameters:
    PyTorch's order (emulated, and torch itself when installed) and npconv's kernel both
    within batch_norm_eval_bound, two-sided against the float64 evaluation."""
    rng = np.random.default_rng(100 + seed)
    C = 3
    mean = (rng.standard_normal(C) * 100).astype(dtype)
    x = (mean.reshape(1, C, 1, 1) * (1 + rng.standard_normal((4, C, 5, 5)) * 1e-2)).astype(dtype)
    var = rng.uniform(1e-3, 1e-1, C).astype(dtype)
    weight = (rng.standard_normal(C) * 10).astype(dtype)
    bias = rng.standard_normal(C).astype(dtype)
    eps = 1e-5
    as64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    with counting.paused():
        reference = ops.batch_norm2d(as64(x), as64(mean), as64(var), as64(weight), as64(bias), eps=eps)
        computed = {"npconv": ops.batch_norm2d(x, mean, var, weight, bias, eps=eps),
                    "PyTorch's order": _pytorch_order(x, weight, bias, mean, var, eps, dtype)}
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None:
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        computed["torch"] = torch.nn.functional.batch_norm(t(x), t(mean), t(var), t(weight), t(bias),
                                                           training=False, eps=eps).numpy()
    bound = bounds.batch_norm_eval_bound(x, weight, bias, mean, var, eps, dtype)
    bound = bound * bounds.both_sides(bounds.unit_roundoff(dtype))
    for who, y in computed.items():
        npconv.assert_within_bound(y, reference, bound, what=f"{who} batch_norm {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_bounds_agree(dtype, seed):
    rng = np.random.default_rng(200 + seed)
    groups = int(rng.choice([1, 2]))
    c_in, c_out = 2 * groups, 2 * groups
    k = int(rng.integers(1, 4))
    stride, padding, dilation = int(rng.integers(1, 3)), int(rng.integers(0, 2)), int(rng.integers(1, 3))
    has_bias = bool(rng.integers(0, 2))
    layer = _layer_params(nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, has_bias, dtype=dtype),
                          rng, dtype)
    x = rng.standard_normal((2, c_in, 7, 6)).astype(dtype)
    with counting.paused():
        ours = eb.conv2d_bound(layer, eb.Bounded.exact(x), dtype).error
        theirs = OPS["aten.convolution.default"].bound(dtype, *_f64(x, layer.weight, layer.bias), (stride, stride),
                                                       (padding, padding), (dilation, dilation), False, (0, 0),
                                                       groups)
        tol = tolerance.conv2d_error_bound(x, layer.weight, layer.bias, stride, padding, dilation, groups)[0]
    # the same rule as npconv.assert_close_to_reference, evaluated in float64 by two kernels (error_bounds'
    # convolutions run on the fast tier, tolerance's on the reference loop nest): equal up to REL
    np.testing.assert_allclose(ours, tol, rtol=REL, atol=0)
    _agree(ours, theirs, dtype, tiny_terms=0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("seed", SEEDS)
def test_linear_bounds_agree(dtype, seed):
    rng = np.random.default_rng(300 + seed)
    has_bias = bool(rng.integers(0, 2))
    layer = _layer_params(nn.Linear(int(rng.integers(1, 9)), int(rng.integers(1, 5)), has_bias, dtype=dtype),
                          rng, dtype)
    x = rng.standard_normal((3, layer.in_features)).astype(dtype)
    with counting.paused():
        ours = eb.linear_bound(layer, eb.Bounded.exact(x), dtype).error
        if has_bias:
            theirs = OPS["aten.addmm.default"].bound(dtype, *_f64(layer.bias, x, layer.weight.T))
        else:
            theirs = OPS["aten.mm.default"].bound(dtype, *_f64(x, layer.weight.T))
    _agree(ours, theirs, dtype, tiny_terms=0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_avg_pool2d_bounds_agree(dtype, seed):
    rng = np.random.default_rng(400 + seed)
    H, W = (int(v) for v in rng.integers(1, 9, 2))
    out = (int(rng.integers(1, H + 2)), int(rng.integers(1, W + 2)))
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    k = max(formulas.adaptive_pool_windows(H, out[0])) * max(formulas.adaptive_pool_windows(W, out[1]))
    with counting.paused():
        ours = eb.adaptive_avg_pool2d_bound(eb.Bounded.exact(x), out, dtype).error
    theirs = bounds.adaptive_avg_pool2d_bound(x, out, dtype)
    _agree(ours, theirs, dtype, tiny_terms=k + 1)


@pytest.mark.parametrize("size", range(1, 12))
@pytest.mark.parametrize("out", range(1, 12))
def test_adaptive_pool_windows_are_pytorchs(size, out):
    """floor(i * size / out) .. ceil((i + 1) * size / out), exactly, in rationals."""
    expected = [(math.floor(Fraction(i * size, out)), math.ceil(Fraction((i + 1) * size, out))) for i in range(out)]
    assert formulas.adaptive_pool_ranges(size, out) == expected
    assert formulas.adaptive_pool_windows(size, out) == [end - start for start, end in expected]
    assert formulas.adaptive_pool_window_total(size, out) == sum(end - start for start, end in expected)
    assert formulas.adaptive_avg_pool2d_adds(2, 3, (size, 5), (out, 2)) == (
        6 * formulas.adaptive_pool_window_total(size, out) * formulas.adaptive_pool_window_total(5, 2))
