"""The error bound is rigorous and not vacuous.

Rigorous: a float32 computation in a deliberately bad order (largest terms first, then the
small ones) stays within it. Not vacuous: results wrong by a little more than the bound are
rejected, a float16-accurate result is rejected as float32, and an integer case wrong by one
ulp is rejected (exactness required).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv.strategies import conv2d_arrays, conv2d_configs
from npconv.tolerance import gamma, unit_roundoff


@given(data=st.data())
def test_a_sorted_float32_summation_stays_within_the_bound(data):
    """Each output as an explicit float32 dot product, summed in descending |term| order."""
    cfg = data.draw(conv2d_configs(padding_modes=("zeros",), allow_unbatched=False, allow_empty_batch=False))
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32, values="wide"))
    g = npconv.conv2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    xp = np.pad(x, ((0, 0), (0, 0), (g.pad_top, g.pad_bottom), (g.pad_left, g.pad_right)))
    y = np.empty(g.output_shape, np.float32)
    cg, og = g.in_per_group, g.out_per_group
    for n, o, i, j in np.ndindex(*y.shape):
        c0 = (o // og) * cg
        rows = i * g.stride_h + np.arange(g.kernel_h) * g.dilation_h
        cols = j * g.stride_w + np.arange(g.kernel_w) * g.dilation_w
        terms = (xp[n, c0:c0 + cg][:, rows][:, :, cols] * w[o]).ravel()
        terms = list(terms[np.argsort(-np.abs(terms))]) + ([b[o]] if b is not None else [])
        acc = np.float32(0)
        for t in terms:
            acc = np.float32(acc + t)
        y[n, o, i, j] = acc
    npconv.assert_close_to_reference(y, x, w, b, **cfg.kwargs())


@given(data=st.data())
def test_a_result_just_outside_the_bound_is_rejected(data):
    cfg = data.draw(conv2d_configs(allow_empty_batch=False))
    x, w, b = data.draw(conv2d_arrays(cfg, np.float64, values="normal"))
    bound, _, _ = npconv.conv2d_error_bound(x, w, b, **cfg.kwargs(), dtype=np.float32)
    reference = npconv.conv2d(x, w, b, **cfg.kwargs())
    k = data.draw(st.integers(0, reference.size - 1))
    wrong = reference.copy().reshape(-1)
    wrong[k] += 1.01 * bound.reshape(-1)[k] + 1e-300
    with pytest.raises(AssertionError, match="exceed the error bound"):
        npconv.assert_within_bound(wrong.reshape(reference.shape), reference, bound)


def test_a_float16_accurate_result_fails_the_float32_bound():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 8, 8))
    w = rng.standard_normal((4, 16, 3, 3))
    half = npconv.conv2d(x.astype(np.float16), w.astype(np.float16), padding=1)
    with pytest.raises(AssertionError):
        npconv.assert_close_to_reference(half.astype(np.float32), x.astype(np.float32), w.astype(np.float32), padding=1)


def test_integer_case_must_be_exact():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(1, 2, 5, 5) % 7
    w = np.ones((3, 2, 3, 3), np.float32)
    y = npconv.conv2d(x, w)
    off_by_one_ulp = y.copy()
    off_by_one_ulp[0, 0, 0, 0] = np.nextafter(y[0, 0, 0, 0], np.float32(np.inf))
    npconv.assert_close_to_reference(y, x, w)
    with pytest.raises(AssertionError):
        npconv.assert_close_to_reference(off_by_one_ulp, x, w)


def test_nan_in_the_wrong_place_is_rejected():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    w = np.ones((1, 1, 2, 2), np.float32)
    y = npconv.conv2d(x, w)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1, 1])
    moved = y.copy()
    moved[0, 0, 0, 0], moved[0, 0, 2, 2] = 4.0, np.nan
    with pytest.raises(AssertionError, match="non-finite"):
        npconv.assert_close_to_reference(moved, x, w)


def test_unit_roundoff_and_gamma():
    assert unit_roundoff(np.float32) == 2.0**-24 and unit_roundoff(np.float64) == 2.0**-53
    assert unit_roundoff(np.float16) == 2.0**-11
    assert gamma(10, np.float32) == pytest.approx(10 * 2.0**-24 / (1 - 10 * 2.0**-24), rel=1e-15)
    assert gamma(2**11, np.float16) == np.inf


def test_a_narrow_result_may_round_to_inf_only_past_its_overflow_threshold():
    """Round to nearest sends every exact value from the largest float16 plus half an ulp
    (65,504 + 16) upwards to inf: assert_within_bound accepts an inf of the reference's sign
    exactly where |reference| + bound reaches that threshold, and only in a narrower dtype."""
    from npconv.tolerance import assert_within_bound

    assert np.float16(65519.99) == 65504 and np.isinf(np.float16(65520.0))
    inf16 = np.array([np.inf], np.float16)
    assert_within_bound(inf16, np.array([65520.0]), 0.0)
    assert_within_bound(inf16, np.array([65510.0]), 10.0)
    for reference, bound in ((65510.0, 9.0), (-70000.0, 1.0)):
        with pytest.raises(AssertionError, match="non-finite values differ"):
            assert_within_bound(inf16, np.array([reference]), bound)
    with pytest.raises(AssertionError, match="non-finite values differ"):  # float64 does not overflow there
        assert_within_bound(np.array([np.inf]), np.array([70000.0]), 1.0)
