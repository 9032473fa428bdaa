"""Pins on the oracle: the bound's value written out by hand, its non-finite rules, and the
FlopCounterMode flag (issue #13, "A trustworthy oracle").

Every expected number here is computed from the derivation as docs/semantics.md and the
docstrings of npconv/oracle/tolerance.py and npconv/oracle/bounds.py state it, with the
constants typed in (u = 2^-11, 2^-24, 2^-53; tiny = 2^-14, 2^-126, 2^-1022) and
Higham's γ_n(u) = n·u / (1 − n·u) written out below -- never taken from npconv. The cases
are small and fixed, and compared with a relative tolerance of 1e-12 (float64 rounding of
the bound's own evaluation), so a bound multiplied or divided by 2, 4 or 10 anywhere in
tolerance.py or bounds.py fails here; so does a NaN/Inf rule dropped, and a FlopCounterMode
disagreement left unflagged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import npconv
from npconv.graph.graph import Graph, Node, Ref
from npconv.graph.verify import _measure, check_nodes
from npconv.oracle import bounds, tolerance

U = {np.float16: 2.0**-11, np.float32: 2.0**-24, np.float64: 2.0**-53}
TINY = {np.float16: 2.0**-14, np.float32: 2.0**-126, np.float64: 2.0**-1022}
U64 = 2.0**-53
UP = 1 + 8 * 2.0**-53  # bounds.py evaluates magnitudes in float64 and rounds them up by this
REL = 1e-12
FLOATS = [np.float16, np.float32, np.float64]


def g(n, u):
    """Higham's γ_n(u) = n u / (1 − n u), written out; +inf (no bound) once n u >= 1."""
    return n * u / (1 - n * u) if n * u < 1 else math.inf


def close(actual, expected):
    """Equal up to float64 rounding of the bound's evaluation (a factor 2 is 1e12 times that)."""
    return np.allclose(np.asarray(actual, np.float64), expected, rtol=REL, atol=0)


# ----------------------------------------------------------------------------- the convolution bound, by hand
#
# Fixed case: x is 1x2x2x2 of 1.5, w is 1x2x2x2 of ±0.75 (alternating signs), so the single
# output is an inner product of n = 2·2·2 = 8 terms ±1.125 that cancel: y = 0, and
# M = Σ|x||w| = 8 · 1.125 = 9. With the bias b = 0.25: n = 9, M = 9.25, y = 0.25.
# tolerance.py's bound on |actual − npconv's float64 reference|:
#
#     c · ((γ_n(u_acc) + γ_n(2⁻⁵³)) · M + n · tiny)          [+ c · u_out · M when float16 is
#                                                              accumulated in float32 and rounded]


def _conv_case(dtype=np.float64, bias=True):
    x = np.full((1, 2, 2, 2), 1.5, dtype)
    w = (0.75 * (-1.0) ** np.arange(8)).reshape(1, 2, 2, 2).astype(dtype)
    b = np.array([0.25], dtype) if bias else None
    return x, w, b


def _hand_conv_bound(dtype, n, M, accumulation=None, c=1.0):
    u_out = U[dtype]
    if accumulation == "tf32":
        # tolerance.py: γ_n(2⁻¹¹) + γ_n(2⁻⁵³), plus 2·2⁻¹¹ for the two rounded factors, plus
        # γ_n(2⁻²⁴) for the float32 accumulation, plus the final rounding u_out
        rel = g(n, 2.0**-11) + g(n, U64) + 2 * 2.0**-11 + g(n, 2.0**-24) + u_out
    else:
        acc = {np.float16: np.float32}.get(dtype, dtype) if accumulation is None else accumulation
        rel = g(n, U[acc]) + g(n, U64) + (u_out if U[acc] < u_out else 0.0)
    return c * (rel * M + n * TINY[dtype])


@pytest.mark.parametrize("dtype, accumulation, c", [
    (np.float32, None, 1.0),      # (γ_9(2⁻²⁴) + γ_9(2⁻⁵³))·9.25 + 9·2⁻¹²⁶
    (np.float64, None, 1.0),      # 2·γ_9(2⁻⁵³)·9.25 + 9·2⁻¹⁰²²
    (np.float16, None, 1.0),      # (γ_9(2⁻²⁴) + γ_9(2⁻⁵³) + 2⁻¹¹)·9.25 + 9·2⁻¹⁴
    (np.float16, np.float16, 1.0),  # (γ_9(2⁻¹¹) + γ_9(2⁻⁵³))·9.25 + 9·2⁻¹⁴
    (np.float32, "tf32", 1.0),
    (np.float32, None, 0.5),      # c scales the whole bound
])
def test_the_conv2d_bound_is_the_derivations_value(dtype, accumulation, c):
    x, w, b = _conv_case()
    bound, magnitude, n = npconv.conv2d_error_bound(x, w, b, dtype=dtype, accumulation_dtype=accumulation, c=c)
    assert n == 9 and magnitude.shape == bound.shape == (1, 1, 1, 1)
    assert magnitude.item() == 9.25
    assert close(bound, _hand_conv_bound(dtype, 9, 9.25, accumulation, c))
    assert close(tolerance.bound_from_magnitude(9.25, 9, dtype, accumulation, c),
                 _hand_conv_bound(dtype, 9, 9.25, accumulation, c))


@pytest.mark.parametrize("dtype", FLOATS)
def test_with_no_magnitude_the_bound_is_n_tiny(dtype):
    """x = 0, no bias: M = 0 and the bound is its underflow term alone, n · tiny = 8 · tiny."""
    x, w, _ = _conv_case(bias=False)
    bound, magnitude, n = npconv.conv2d_error_bound(np.zeros_like(x), w, None, dtype=dtype)
    assert n == 8 and magnitude.item() == 0.0
    assert close(bound, 8 * TINY[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("factor, accepted", [(0.9, True), (1.1, False)])
def test_assert_close_to_reference_accepts_within_and_rejects_beyond_the_hand_bound(dtype, factor, accepted):
    """The cancelling case without bias: reference y = 0 exactly, M = 9, n = 8, so the bound
    B = (γ_8(u_acc) + γ_8(2⁻⁵³) [+ 2⁻¹¹ for float16])·9 + 8·tiny is many ulps of y and a
    result y + f·B is representable: f = 0.9 must pass, f = 1.1 must fail. (A bound 2x too
    large passes 1.1; one 2x too small fails 0.9.)"""
    x, w, _ = _conv_case(dtype, bias=False)
    B = _hand_conv_bound(dtype, 8, 9.0)
    actual = np.full((1, 1, 1, 1), factor * B, dtype)
    assert abs(float(actual.item()) - factor * B) < 0.01 * B  # the dtype holds f·B to 1%
    if accepted:
        npconv.assert_close_to_reference(actual, x, w)
    else:
        with pytest.raises(AssertionError, match="exceed the error bound"):
            npconv.assert_close_to_reference(actual, x, w)


def test_integer_inputs_get_bound_zero_and_overflow_is_not_judged():
    """Exactness: integer x, w with M = 8 <= 2^24 must match exactly (bound 0): 1 ulp off fails.
    Overflow: x = w = ±2^64 puts M = 8 · 2^128 past float32's largest (2^128 (1 − 2^-24)),
    so an Inf there is not judged; at ±2^60 (M = 2^123) it is, and Inf is rejected."""
    x = np.ones((1, 2, 2, 2), np.float32)
    w = np.ones((1, 2, 2, 2), np.float32)
    npconv.assert_close_to_reference(np.full((1, 1, 1, 1), 8.0, np.float32), x, w)
    with pytest.raises(AssertionError):
        npconv.assert_close_to_reference(np.full((1, 1, 1, 1), np.nextafter(np.float32(8), np.float32(9))), x, w)
    signs = (-1.0) ** np.arange(8).reshape(1, 2, 2, 2)
    inf = np.full((1, 1, 1, 1), np.inf, np.float32)
    npconv.assert_close_to_reference(inf, np.full((1, 2, 2, 2), 2.0**64, np.float32),
                                     (signs * 2.0**64).astype(np.float32))
    with pytest.raises(AssertionError, match="non-finite"):
        npconv.assert_close_to_reference(inf, np.full((1, 2, 2, 2), 2.0**60, np.float32),
                                         (signs * 2.0**60).astype(np.float32))


def test_assert_within_bound_compares_with_less_or_equal():
    """|actual − reference| <= bound passes at equality, fails one ulp above."""
    npconv.assert_within_bound(np.array([0.5]), np.array([0.0]), np.array([0.5]))
    with pytest.raises(AssertionError, match="exceed the error bound"):
        npconv.assert_within_bound(np.array([np.nextafter(0.5, 1.0)]), np.array([0.0]), np.array([0.5]))


# ----------------------------------------------------------------------------- bounds.py, by hand


def test_unit_roundoff_tiny_gamma_and_both_sides():
    """u = 2^-p, tiny = the smallest normal, γ_n = n u/(1 − n u) (+inf once n u >= 1), and the
    two-sided factor: 1 + 2⁻⁵³/u for u = 2⁻²⁴ (1 + 2⁻²⁹) and 2⁻¹¹, 2 for two float64 sides."""
    for dtype in FLOATS:
        assert bounds.unit_roundoff(dtype) == U[dtype]
        assert bounds.tiny(dtype) == TINY[dtype]
    assert bounds.unit_roundoff("tf32") == 2.0**-11
    assert (bounds.U16, bounds.U32, bounds.U64) == (2.0**-11, 2.0**-24, 2.0**-53)
    for n in (1, 2, 7, 9, 100, 10**6):
        for dtype in FLOATS:
            assert close(bounds.gamma(n, dtype), g(n, U[dtype]))
            assert close(bounds.gamma(n, U[dtype]), g(n, U[dtype]))
    assert close(bounds.gamma(np.array([3, 5]), np.float32), [g(3, 2.0**-24), g(5, 2.0**-24)])
    assert bounds.gamma(2**11, np.float16) == np.inf and bounds.gamma(2**12, np.float16) == np.inf
    assert bounds.both_sides(2.0**-24) == 1 + 2.0**-29 and bounds.F64_PER_F32 == 2.0**-29
    assert bounds.both_sides(2.0**-11) == 1 + 2.0**-42
    assert bounds.both_sides(2.0**-53) == 2.0


@pytest.mark.parametrize("dtype", FLOATS)
def test_inner_product_bound(dtype):
    """γ_n(u)·M + n·tiny, for n = 8, M = 9 and for M = 0."""
    assert close(bounds.inner_product_bound(9.0, 8, dtype), g(8, U[dtype]) * 9 + 8 * TINY[dtype])
    assert close(bounds.inner_product_bound(0.0, 8, dtype), 8 * TINY[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_norm_eval_bound(dtype):
    """y = α(x − μ) + β, α = γ/sqrt(σ² + eps): |ŷ − y| <= γ_7(u)·(|α|(|x| + |μ|) + |β|) + 7·tiny.
    Two channels: γ = (2, −0.5), σ² = (3, 15), eps = 1, so α = (2/2, −0.5/4) = (1, −0.125)
    exactly; μ = (1, −3), β = (0.25, −1)."""
    assert bounds.BATCH_NORM_EVAL_ROUNDINGS == 7
    x = np.array([[[[0.5, -2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    weight, bias = np.array([2.0, -0.5]), np.array([0.25, -1.0])
    mean, var = np.array([1.0, -3.0]), np.array([3.0, 15.0])
    got = bounds.batch_norm_eval_bound(x, weight, bias, mean, var, 1.0, dtype)
    # |α|(|x| + |μ|) + |β| by hand (|α| rounded up by UP):
    #   channel 0: 1·(0.5 + 1) + 0.25 = 1.75,   1·(2 + 1) + 0.25 = 3.25
    #   channel 1: 0.125·(3 + 3) + 1 = 1.75,    0.125·(0 + 3) + 1 = 1.375
    M = np.array([[[[1.5 * UP + 0.25, 3 * UP + 0.25]], [[0.75 * UP + 1, 0.375 * UP + 1]]]])
    assert np.allclose(M, [[[[1.75, 3.25]], [[1.75, 1.375]]]], rtol=1e-15)
    assert got.shape == (1, 2, 1, 2) and close(got, g(7, U[dtype]) * M + 7 * TINY[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
def test_pooling_and_mean_bounds(dtype):
    """avg_pool2d (2x2 windows, stride 2, k = 4 values, divisor 4) and adaptive_avg_pool2d
    (4x4 -> 2x2, m = 2·2 = 4): γ_{k+1}(u)·Σ_window|x|/4 [· (1 + γ_{k+3}(2⁻⁵³)) for avg_pool2d]
    + tiny; mean over m = 3 values: γ_4(u)·mean|x|·(1 + γ_6(2⁻⁵³)) + tiny; max pooling: 0."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4) - 7.5  # |x| = 7.5, 6.5, ..., 0.5, ..., 7.5
    # rows −7.5..−4.5, −3.5..−0.5, 0.5..3.5, 4.5..7.5; mean |x| per 2x2 window, by hand:
    # top-left (7.5 + 6.5 + 3.5 + 2.5)/4 = 5, top-right (5.5 + 4.5 + 1.5 + 0.5)/4 = 3, and symmetrically
    window_means = np.array([[5.0, 3.0], [3.0, 5.0]])
    avg = bounds.avg_pool2d_bound(x.astype(dtype), 2, 2, dtype=dtype)
    assert close(avg, g(5, U[dtype]) * window_means * (1 + g(7, U64)) + TINY[dtype])
    adaptive = bounds.adaptive_avg_pool2d_bound(x, (2, 2), dtype)
    assert close(adaptive, g(5, U[dtype]) * window_means + TINY[dtype])
    rows = np.array([[1.0, -2.0, 3.0], [-0.5, 0.25, 0.25]])  # mean |x| per row: 2, 1/3
    mean = bounds.mean_bound(rows.astype(dtype), 1, dtype=dtype)
    assert close(mean, g(4, U[dtype]) * np.array([2.0, 1.0 / 3.0]) * (1 + g(6, U64)) + TINY[dtype])
    assert np.array_equal(bounds.max_pool2d_bound(x, 2, 2), np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_elementwise_bounds(dtype):
    """add/sub (α = 1): γ_1(u)(|a| + |b|); α = 3: γ_1(|a| + |αb|) + γ_1|αb| + (1 + u)·tiny;
    mul: γ_1|ab| + tiny; div: γ_2|a/b| + tiny, and tiny·(1 + 2|a|) when 1/b underflows
    (|b| > 1/tiny); sigmoid: γ_{2+2E}(u)·s + tiny with E = 1 ulp, s(0) = 1/2. Magnitudes rounded
    up by (1 + 8·2⁻⁵³)."""
    u, t = U[dtype], TINY[dtype]
    a, b = np.array([1.5, -3.0]), np.array([0.5, 2.0])
    assert close(bounds.add_bound(a, b, dtype), g(1, u) * (np.abs(a) + np.abs(b)) * UP)
    assert close(bounds.sub_bound(a, b, dtype), g(1, u) * (np.abs(a) + np.abs(b)) * UP)
    assert close(bounds.add_bound(a, b, dtype, alpha=3),
                 g(1, u) * (np.abs(a) + 3 * np.abs(b)) * UP + g(1, u) * 3 * np.abs(b) * UP + (1 + u) * t)
    assert close(bounds.mul_bound(a, b, dtype), g(1, u) * np.abs(a * b) * UP + t)
    assert close(bounds.div_bound(a, b, dtype), g(2, u) * np.abs(a / b) * UP + t)
    big = 2.0 / t  # |b| > 1/tiny: 1/b underflows (float16: 2^15, within range)
    assert close(bounds.div_bound(3.0, big, dtype), g(2, u) * (3.0 / big) * UP + t * (1 + 2 * 3.0))
    assert bounds.SIGMOID_EXP_ULPS == 1.0
    assert close(bounds.sigmoid_bound(np.array([0.0]), dtype), [g(4, u) * 0.5 * UP + t])
    # the non-finite conventions: 0 where an input is NaN/Inf or the divisor 0 (the class must
    # match); +inf (not judged) where the result may overflow
    assert bounds.add_bound(np.array([np.nan]), np.array([1.0]), dtype)[0] == 0.0
    assert bounds.div_bound(1.0, 0.0, dtype) == 0.0
    largest = float(np.finfo(dtype).max)
    assert bounds.mul_bound(largest, 2.0, dtype) == np.inf


# ----------------------------------------------------------------------------- non-finite values must match


NON_FINITE_CASES = {
    # name: (reference, actual) -- the first position differs in class, the rest agree
    "dropped NaN (reference NaN, result finite)": ([np.nan, 1.0], [0.0, 1.0]),
    "NaN appears (reference finite, result NaN)": ([2.0, 1.0], [np.nan, 1.0]),
    "Inf of the wrong sign": ([np.inf, 1.0], [-np.inf, 1.0]),
    "-Inf of the wrong sign": ([-np.inf, 1.0], [np.inf, 1.0]),
    "Inf appears (reference finite)": ([2.0, 1.0], [np.inf, 1.0]),
}


@pytest.mark.parametrize("case", list(NON_FINITE_CASES))
def test_assert_within_bound_rejects_a_non_finite_mismatch_even_under_a_huge_bound(case):
    """Where the reference is NaN the result must be NaN; where ±Inf, the same Inf; where
    finite, finite -- whatever the (finite) bound: 1e300 here."""
    reference, actual = (np.array(v) for v in NON_FINITE_CASES[case])
    with pytest.raises(AssertionError, match="non-finite values differ at 1 positions, first at \\(0,\\)"):
        npconv.assert_within_bound(actual, reference, np.full(2, 1e300))
    npconv.assert_within_bound(reference.copy(), reference, np.full(2, 1e300))  # itself: passes


def test_assert_close_to_reference_rejects_a_dropped_nan():
    """A NaN in x reaches the outputs whose window covers it: a result that replaced it by a
    number (what a kernel skipping NaN would return) is rejected."""
    x = np.full((1, 1, 3, 3), 0.5, np.float32)
    x[0, 0, 0, 0] = np.nan
    w = np.full((1, 1, 2, 2), 0.25, np.float32)
    y = npconv.conv2d(x, w)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1, 1])
    npconv.assert_close_to_reference(y, x, w)
    dropped = y.copy()
    dropped[0, 0, 0, 0] = 0.375  # the sum of the three finite taps
    with pytest.raises(AssertionError, match="non-finite"):
        npconv.assert_close_to_reference(dropped, x, w)


def _graph(op, *args, parameters=None):
    """A graph built by hand: one node `op` on input x (and parameters), named "out"."""
    return Graph("hand", ["x"], [Node("out", op, args)], Ref("out"), dict(parameters or {}), {}, {})


@pytest.mark.parametrize("case", list(NON_FINITE_CASES))
@pytest.mark.parametrize("op", ["aten.add.Tensor", "aten.clone.default"])
def test_graph_verify_rejects_a_non_finite_mismatch(case, op):
    """graph.verify's node check (its own comparison, `_measure`): a bounded op (add) and an
    exact one (clone, compared bit for bit) whose PyTorch output differs from npconv's in the
    class of one value fail with ratio inf; the same output unchanged passes. The input is
    chosen so that npconv's value is the case's reference (x/2 + x/2 and clone(x) keep NaN,
    ±Inf and the sign)."""
    reference, actual = (np.array(v, np.float32) for v in NON_FINITE_CASES[case])
    x = reference / 2 if op == "aten.add.Tensor" else reference
    args = (Ref("x"), Ref("x")) if op == "aten.add.Tensor" else (Ref("x"),)
    graph = _graph(op, *args)
    with np.errstate(invalid="ignore"):  # inf − inf in the finite-part arithmetic
        (good,) = check_nodes(graph, {"x": x, "out": reference}, bounds.U32)
        (bad,) = check_nodes(graph, {"x": x, "out": actual}, bounds.U32)
        assert _measure(actual, reference, np.full(2, 1e300))[1] == np.inf
        assert _measure(actual, reference, None)[1] == np.inf
    assert good.ok, good
    assert not bad.ok and bad.ratio == np.inf


@pytest.mark.parametrize("factor, accepted", [(0.9, True), (1.1, False)])
def test_graph_verify_convolution_threshold_is_the_hand_bound(factor, accepted):
    """A convolution node on the cancelling case (y = 0, n = 8, M = 9): PyTorch's float32
    output must lie within both_sides(2⁻²⁴)·(γ_8(2⁻²⁴)·9 + 8·2⁻¹²⁶), (1 + 2⁻²⁹) the one-sided
    bound. 0.9 of it passes, 1.1 fails."""
    x, w, _ = _conv_case(np.float32, bias=False)
    graph = _graph("aten.convolution.default", Ref("x"), Ref("w"), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                   parameters={"w": w})
    B = (1 + 2.0**-29) * (g(8, 2.0**-24) * 9 + 8 * 2.0**-126)
    (check,) = check_nodes(graph, {"x": x, "out": np.full((1, 1, 1, 1), factor * B)}, bounds.U32)
    assert check.ok is accepted
    assert math.isclose(check.ratio, factor, rel_tol=1e-9)


# ----------------------------------------------------------------------------- FlopCounterMode disagreements flagged


def _fake_flop_counter(monkeypatch, layer: str, factor: int = 2):
    """FlopCounterMode reporting `factor` times its FLOPs on `layer` (the extra added to the
    root's total too, as FlopCounterMode's figures include children)."""
    from npconv.cost import summary as summary_module

    real = summary_module.flop_counter_by_module

    def fake(torch_model, input_shape, dtype=None):
        flops = real(torch_model, input_shape, dtype)
        extra = (factor - 1) * flops[layer]
        flops[layer] += extra
        flops[""] += extra
        return flops

    monkeypatch.setattr(summary_module, "flop_counter_by_module", fake)


# DepthwiseSeparableConv(4, 6, 3, padding=1) on 1x4x8x8: pointwise MACs = 1·6·4·8·8 = 1,536,
# depthwise 1·4·9·8·8 = 2,304. FlopCounterMode reports 2·MACs; faked 2x on pointwise: 6,144
# FLOPs, /2 = 3,072 = 2x the counted 1,536.
POINTWISE_LINE = "pointwise: FlopCounterMode/2 = 3,072 != counted 1,536 MACs (factor 2)"


def _separable_pair():
    from npconv.oracle import twins

    ours = npconv.models.DepthwiseSeparableConv(4, 6, 3, padding=1, rng=0)
    twin = twins.build("DepthwiseSeparableConv", 4, 6, 3, padding=1, seed=0)
    return ours, twin


def test_summary_flags_a_flop_counter_disagreement_on_its_layer(monkeypatch):
    ours, twin = _separable_pair()
    clean = npconv.summary(ours, (1, 4, 8, 8), torch_model=twin)
    assert clean.ok and not clean.disagreements and clean.total["flop_counter_macs"] == 1536 + 2304
    _fake_flop_counter(monkeypatch, "pointwise")
    faked = npconv.summary(ours, (1, 4, 8, 8), torch_model=twin)
    assert not faked.ok
    assert POINTWISE_LINE in faked.disagreements  # the layer itself, not only the total
    assert not any(line.startswith("depthwise") for line in faked.disagreements)


def test_the_command_reports_a_flop_counter_disagreement_and_exits_1(monkeypatch, capsys):
    import json

    from npconv.cli import main

    _fake_flop_counter(monkeypatch, "pointwise")
    code = main(["summary", "depthwise_separable_conv", "--input", "1,4,8,8", "--out-channels", "6",
                 "--flop-counter", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert POINTWISE_LINE in json.loads(out)["flop_counter_disagreements"]
    assert err.startswith("npconv summary: error:") and f"first: {POINTWISE_LINE}" in err


def test_verify_fails_on_a_flop_counter_disagreement(monkeypatch):
    from npconv.verify import verify_model

    _, twin = _separable_pair()
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8), dtype=np.float32)
    _fake_flop_counter(monkeypatch, "pointwise")
    report = verify_model(twin, x, timing=False)
    assert not report.ok
    assert f"PyTorch disagrees: {POINTWISE_LINE}" in report.failures
