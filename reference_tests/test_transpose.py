"""npconv.conv_transpose2d against torch.nn.functional.conv_transpose2d.

What is proved, for every drawn configuration (stride, padding, output_padding, dilation,
groups, bias, batch of 0, unbatched input):
* float64 and float32: torch's and npconv's results are within the derived bound of
  npconv's float64 result (CPU; CUDA with TF32 off when present); float16 likewise, with
  float32 accumulation and one final rounding;
* counted scatter MACs, inside MACs and bias adds equal npconv.formulas_backward;
* the adjoint identity <conv2d(x, w), y> = <x, conv_transpose2d(y, w)> holds within an
  inner-product bound, for npconv's pair and for torch's;
* every call torch rejects, npconv rejects with a ValueError/TypeError, and the message
  carries torch's key phrase.

Error bound. Output element y[n, g*Cog + o, a, b] is b[o] plus the products
x[n, c, i, j] * w[c, o, p, q] over the Cig = C_in/groups channels c of group g and the
taps with i*s_h + p*d_h = a + pad_h, j*s_w + q*d_w = b + pad_w: for each tap p at most
one row i qualifies, so at most n = Cig * kH * kW products, plus the bias (n + 1 terms).
Any summation order then gives |computed - exact| <= gamma(n+1) * M with
M = conv_transpose2d(|x|, |w|, |b|) (Higham eq. 3.5), and `bound_from_magnitude` adds
the float64 reference's own error; see npconv/oracle/tolerance.py.
"""

import numpy as np
import pytest
import torch
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st
from torch_conv import torch_own_cpu_kernels

import npconv
from npconv import counting, formulas_backward
from npconv.strategies import (VALUE_FAMILIES, ConvTranspose2dConfig, conv2d_arrays, conv2d_configs,
                               conv_transpose2d_arrays, conv_transpose2d_configs)
from npconv.tolerance import assert_within_bound, bound_from_magnitude
from npconv.transpose import conv_transpose2d, conv_transpose2d_geometry, conv_transpose_output_size


def torch_conv_transpose2d(x, w, b, cfg, device="cpu"):
    t = lambda a: None if a is None else torch.from_numpy(a).to(device)  # noqa: E731
    return torch.nn.functional.conv_transpose2d(t(x), t(w), t(b), **cfg.kwargs()).cpu().numpy()


def reference_and_bound(x, w, b, cfg, dtype, accumulation_dtype=None):
    """npconv's float64 result, and the bound on |result in `dtype` - it| (module docstring)."""
    as64 = lambda a, f=lambda v: v: None if a is None else f(np.asarray(a, np.float64))  # noqa: E731
    with counting.paused():
        reference = conv_transpose2d(as64(x), as64(w), as64(b), **cfg.kwargs())
        magnitude = conv_transpose2d(as64(x, np.abs), as64(w, np.abs), as64(b, np.abs), **cfg.kwargs())
    n = cfg.in_per_group * cfg.kernel_size[0] * cfg.kernel_size[1] + (1 if cfg.bias else 0)
    return reference, bound_from_magnitude(magnitude, n, dtype, accumulation_dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_matches_torch_within_error_bound(device, dtype, data):
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, dtype, values="normal"), label="arrays")
    expected = torch_conv_transpose2d(x, w, b, cfg, device)
    ours = conv_transpose2d(x, w, b, **cfg.kwargs())
    assert ours.dtype == x.dtype and ours.shape == expected.shape
    reference, bound = reference_and_bound(x, w, b, cfg, dtype)
    assert_within_bound(expected, reference, bound, what="torch conv_transpose2d")
    assert_within_bound(ours, reference, bound, what="npconv conv_transpose2d")


@given(data=st.data())
def test_float16_is_computed_in_float32_and_rounded_once(data):
    """npconv widens float16 to float32, accumulates there and rounds once, so it obeys the
    float32-accumulation bound. PyTorch's CPU conv_transpose2d in float16 does not: it
    accumulates in half precision (see test_torch_float16_accumulates_in_half), so it is
    held to the bound with u = 2^-11 for every term."""
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, np.float16, values="normal"), label="arrays")
    ours = conv_transpose2d(x, w, b, **cfg.kwargs())
    assert ours.dtype == np.float16
    reference, bound = reference_and_bound(x, w, b, cfg, np.float16)
    assert_within_bound(ours, reference, bound, what="npconv conv_transpose2d float16")
    widened = conv_transpose2d(*(None if a is None else a.astype(np.float32) for a in (x, w, b)), **cfg.kwargs())
    np.testing.assert_array_equal(ours, widened.astype(np.float16))
    expected = torch_conv_transpose2d(x, w, b, cfg)
    _, half_bound = reference_and_bound(x, w, b, cfg, np.float16, accumulation_dtype=np.float16)
    assert_within_bound(expected, reference, half_bound, what="torch conv_transpose2d float16")


def test_torch_float16_accumulates_in_half():
    """Found by Hypothesis (dev profile): torch 2.13's CPU conv_transpose2d in float16 gives
    -1.049 for output row 4 = x4*w0 + x3*w1 + x2*w2 (exact -1.049691...), which is what
    rounding each product to float16 and summing in float16 gives (-0.698 + 0.09937 -> -0.5986,
    -0.5986 - 0.4507 -> -1.049), 1.09x outside the bound for float32 accumulation with one
    final rounding, inside the bound for float16 accumulation. npconv stays inside the
    float32-accumulation bound. Pinned so that a change in PyTorch is noticed: PyTorch's own
    kernel (slow_conv_transpose2d), which oneDNN replaces on CPUs where it takes float16
    (`torch_own_cpu_kernels`)."""
    cfg = ConvTranspose2dConfig(batch=1, in_channels=1, out_channels=1, groups=1, height=6, width=1,
                                kernel_size=(3, 1), stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                                dilation=(1, 1), bias=False, unbatched=False)
    x = np.array([0.1257, -0.1321, 0.6406, 0.1049, -0.5356, 0.3616], np.float16).reshape(1, 1, 6, 1)
    w = np.array([1.304, 0.9473, -0.7036], np.float16).reshape(1, 1, 3, 1)
    reference, bound = reference_and_bound(x, w, None, cfg, np.float16)
    _, half_bound = reference_and_bound(x, w, None, cfg, np.float16, accumulation_dtype=np.float16)
    with torch_own_cpu_kernels():
        expected = torch_conv_transpose2d(x, w, None, cfg)
    assert_within_bound(expected, reference, half_bound, what="torch conv_transpose2d float16")
    with pytest.raises(AssertionError, match="exceed the error bound"):
        assert_within_bound(expected, reference, bound, what="torch conv_transpose2d float16")
    assert_within_bound(conv_transpose2d(x, w), reference, bound, what="npconv conv_transpose2d float16")


@given(data=st.data())
def test_counted_macs_equal_the_formulas(data):
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, np.float64, values="normal"), label="arrays")
    with npconv.count() as tally:
        y = conv_transpose2d(x, w, b, **cfg.kwargs())
    counts = tally.by_op["conv_transpose2d"]
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    assert y.shape == g.output_shape
    assert (g.out_h, g.out_w) == tuple(
        conv_transpose_output_size(size, k, s, p, op, d) for size, k, s, p, op, d in zip(
            (cfg.height, cfg.width), cfg.kernel_size, cfg.stride, cfg.padding, cfg.output_padding, cfg.dilation))
    assert counts.calls == 1
    assert counts.macs == formulas_backward.conv_transpose2d_macs(
        g.batch, cfg.in_channels, cfg.out_channels, (cfg.height, cfg.width), cfg.kernel_size, cfg.groups)
    assert counts.other["inside_macs"] == formulas_backward.conv_transpose2d_inside_macs(g)
    assert counts.bias_adds == (y.size if cfg.bias else 0)
    assert counts.padding_macs == 0


@given(data=st.data())
def test_inside_macs_are_the_products_that_reach_the_output(data):
    """An independent check of the inside count: with x = 1 and w = 1 every product is 1,
    so the output's sum is the number of products that land inside it."""
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w = np.ones(cfg.input_shape), np.ones(cfg.weight_shape)
    with npconv.count() as tally:
        y = conv_transpose2d(x, w, None, **cfg.kwargs())
    assert tally.other["inside_macs"] == int(y.sum())


def _inner(a, b, dtype):
    """<a, b> computed in `dtype` (a dot product, any summation order)."""
    return float(np.dot(a.astype(dtype).ravel(), b.astype(dtype).ravel()))


def _adjoint_output_padding(cfg) -> tuple[int, int]:
    """The output_padding that makes conv_transpose2d map conv2d's output size back to its
    input size: (H + 2p - d(k-1) - 1) mod s, which is < s as torch requires."""
    return tuple((size + 2 * p - d * (k - 1) - 1) % s for size, p, d, k, s in zip(
        (cfg.height, cfg.width), cfg.padding, cfg.dilation, cfg.kernel_size, cfg.stride))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_adjoint_of_conv2d(dtype, data):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> with the same weight, stride,
    padding, dilation, groups, and output_padding chosen so the shapes match.

    Both sides are the same sum over every (n, o, i, j, c, p, q) of
    x[n, g*Cg + c, i*s + p*d - pad, j*s + q*d - pad] * w[o, c, p, q] * y[n, o, i, j].
    Bound: the left side computes z = conv2d(x, w) with |z - exact| <= gamma(n1) conv2d(|x|, |w|)
    (n1 = C_in/g * kH * kW) and then a dot product of m1 = y.size terms, so its error is at
    most (gamma(n1) + gamma(m1) + gamma(n1) gamma(m1)) T <= gamma(n1 + m1) T (Higham, Lemma 3.3)
    with T = <conv2d(|x|, |w|), |y|>; likewise the right side with n2 = C_out/g * kH * kW
    (at most one input row per tap) and m2 = x.size. The two sides differ by at most the
    sum of the two bounds (each taken from bound_from_magnitude, which also covers
    underflow and the float64 evaluation of T).
    """
    cfg = data.draw(conv2d_configs(padding_modes=("zeros",), allow_string_padding=False, max_size=7),
                    label="config")
    x, w, _ = data.draw(conv2d_arrays(cfg, dtype, values="normal"), label="arrays")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    conv_kwargs = dict(stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation, groups=cfg.groups)
    z = npconv.conv2d(x, w, None, **conv_kwargs)
    y = rng.standard_normal(z.shape).astype(dtype)
    transpose_kwargs = dict(conv_kwargs, output_padding=_adjoint_output_padding(cfg))
    v = conv_transpose2d(y, w, None, **transpose_kwargs)
    assert v.shape == x.shape

    with counting.paused():
        magnitude = _inner(npconv.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64), None,
                                         **conv_kwargs), np.abs(y), np.float64)
    kh, kw = cfg.kernel_size
    n1, m1 = cfg.in_channels // cfg.groups * kh * kw, y.size
    n2, m2 = cfg.out_channels // cfg.groups * kh * kw, x.size
    bound = bound_from_magnitude(magnitude, n1 + m1, dtype) + bound_from_magnitude(magnitude, n2 + m2, dtype)

    lhs, rhs = _inner(z, y, dtype), _inner(x, v, dtype)
    assert abs(lhs - rhs) <= bound, f"npconv: <conv2d(x,w),y> = {lhs!r}, <x,conv_transpose2d(y,w)> = {rhs!r}"

    tx, tw, ty = (torch.from_numpy(a) for a in (x, w, y))
    lhs_t = _inner(torch.nn.functional.conv2d(tx, tw, **conv_kwargs).numpy(), y, dtype)
    rhs_t = _inner(x, torch.nn.functional.conv_transpose2d(ty, tw, **transpose_kwargs).numpy(), dtype)
    assert abs(lhs_t - rhs_t) <= bound, f"torch: {lhs_t!r} vs {rhs_t!r}"


# Each invalid call breaks one rule of a valid configuration; torch's message and ours
# both contain the phrase listed.
_INVALID = {
    "stride_not_positive": "non-positive stride",
    "padding_negative": "negative padding",
    "output_padding_negative": "negative output_padding",
    "dilation_not_positive": "dilation should be greater than zero",
    "groups_not_positive": "non-positive groups",
    "groups_not_dividing_in_channels": "expected weight to be ",  # "divisible by g" / "at least g"
    "channel_mismatch": "channels instead",
    "bias_size": "expected bias to be 1-dimensional",
    "output_padding_too_large": "output padding must be smaller than either stride or dilation",
    "output_too_small": "Output size is too small",
    "input_ndim": "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d",
    "empty_spatial_input": "Only zero batch or zero channel inputs are supported",
    "kernel_size_zero": "kernel size should be greater than zero",
    "padding_string": "padding",
    "groups_float": "groups",
}


@st.composite
def invalid_calls(draw):
    """(rule, x, w, b, kwargs) with exactly one of torch's rules broken."""
    rule = draw(st.sampled_from(sorted(_INVALID)))
    cfg = draw(conv_transpose2d_configs(allow_empty_batch=False))
    x, w, b = draw(conv_transpose2d_arrays(cfg, np.float64, values="normal"))
    kw = cfg.kwargs()
    neg = draw(st.integers(-2, 0))
    if rule == "stride_not_positive":
        kw["stride"] = (neg, cfg.stride[1])
    elif rule == "padding_negative":
        kw["padding"] = (cfg.padding[0], min(neg, -1))
    elif rule == "output_padding_negative":
        kw["output_padding"] = (min(neg, -1), cfg.output_padding[1])
    elif rule == "dilation_not_positive":
        kw["dilation"] = (cfg.dilation[0], neg)
    elif rule == "groups_not_positive":
        kw["groups"] = neg
    elif rule == "groups_not_dividing_in_channels":
        groups = draw(st.integers(2, 4))
        c_in = draw(st.integers(1, 7).filter(lambda c: c % groups))
        x = np.ones((max(cfg.batch, 1), c_in, cfg.height, cfg.width))
        w = np.ones((c_in, 1) + cfg.kernel_size)
        kw["groups"], b = groups, None
    elif rule == "channel_mismatch":
        wrong = draw(st.integers(1, cfg.in_channels + 3).filter(lambda c: c != cfg.in_channels))
        x = np.ones(x.shape[:-3] + (wrong,) + x.shape[-2:])
    elif rule == "bias_size":
        b = np.ones(draw(st.integers(1, cfg.out_channels + 3).filter(lambda c: c != cfg.out_channels)))
    elif rule == "output_padding_too_large":
        s, d = cfg.stride[0], cfg.dilation[0]
        kw["output_padding"] = (draw(st.integers(max(s, d), max(s, d) + 2)), cfg.output_padding[1])
    elif rule == "output_too_small":
        k, s, d, op = cfg.kernel_size[1], cfg.stride[1], cfg.dilation[1], cfg.output_padding[1]
        kw["padding"] = (cfg.padding[0], ((cfg.width - 1) * s + d * (k - 1) + op) // 2 + draw(st.integers(1, 2)))
    elif rule == "input_ndim":
        x = np.ones(draw(st.sampled_from((x.shape[-2:], (1, 1) + x.shape[-3:], x.shape[-1:]))))
    elif rule == "empty_spatial_input":
        x = np.ones(x.shape[:-2] + (0, cfg.width))
    elif rule == "kernel_size_zero":
        w = np.ones(w.shape[:2] + (cfg.kernel_size[0], 0))
    elif rule == "padding_string":
        kw["padding"] = draw(st.sampled_from(("same", "valid")))
    elif rule == "groups_float":
        kw["groups"] = float(cfg.groups)
    return rule, x, w, b, kw


@given(call=invalid_calls())
def test_invalid_arguments_raise_when_torch_raises(call):
    rule, x, w, b, kw = call
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    with pytest.raises((RuntimeError, TypeError, ValueError)) as torch_error:
        torch.nn.functional.conv_transpose2d(t(x), t(w), t(b), **kw)
    with pytest.raises((ValueError, TypeError)) as our_error:
        conv_transpose2d(x, w, b, **kw)
    phrase = _INVALID[rule]
    assert phrase in str(torch_error.value), f"torch's message changed: {torch_error.value}"
    assert phrase in str(our_error.value), f"{rule}: {our_error.value}"


def test_wrong_dtypes_and_types_are_rejected():
    x, w = np.ones((1, 2, 3, 3)), np.ones((2, 1, 2, 2))
    with pytest.raises(TypeError, match="expected scalar type"):
        conv_transpose2d(x.astype(np.float32), w)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        conv_transpose2d(x.tolist(), w)
    with pytest.raises(TypeError, match="floating-point"):
        conv_transpose2d(x.astype(np.int64), w.astype(np.int64))


def test_unbatched_input_is_a_batch_of_one():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))
    np.testing.assert_array_equal(conv_transpose2d(x, w, b, **kw), conv_transpose2d(x[None], w, b, **kw)[0])


def test_batch_of_zero_has_the_right_shape():
    x, w = np.zeros((0, 4, 5, 5)), np.ones((4, 3, 3, 3))
    y = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2)
    assert y.shape == tuple(torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1, output_padding=1, groups=2).shape)


@given(data=st.data())
def test_drawn_configs_and_arrays_keep_their_contract(data):
    """npconv.strategies' conv_transpose2d_configs stays within the limits it is given and
    draws only calls torch accepts; conv_transpose2d_arrays has the config's shapes, the
    dtype asked for, and the value family asked for."""
    limits = dict(max_batch=data.draw(st.integers(1, 3)), max_channels_per_group=data.draw(st.integers(1, 4)),
                  max_groups=data.draw(st.integers(1, 4)), max_size=data.draw(st.integers(1, 8)),
                  max_kernel=data.draw(st.integers(1, 4)), max_stride=data.draw(st.integers(1, 4)),
                  max_dilation=data.draw(st.integers(1, 4)), max_padding=data.draw(st.integers(0, 4)))
    allow_unbatched, allow_empty_batch = data.draw(st.booleans()), data.draw(st.booleans())
    cfg = data.draw(conv_transpose2d_configs(allow_unbatched=allow_unbatched, allow_empty_batch=allow_empty_batch,
                                             **limits), label="config")
    assert (0 if allow_empty_batch else 1) <= cfg.batch <= limits["max_batch"]
    assert allow_unbatched or not cfg.unbatched
    assert 1 <= cfg.groups <= limits["max_groups"]
    assert cfg.in_channels == cfg.in_per_group * cfg.groups and cfg.out_channels == cfg.out_per_group * cfg.groups
    assert 1 <= cfg.in_per_group <= limits["max_channels_per_group"]
    assert 1 <= cfg.out_per_group <= limits["max_channels_per_group"]
    for size, k, s, p, op, d in zip((cfg.height, cfg.width), cfg.kernel_size, cfg.stride, cfg.padding,
                                    cfg.output_padding, cfg.dilation):
        assert 1 <= size <= limits["max_size"] and 1 <= k <= limits["max_kernel"]
        assert 1 <= s <= limits["max_stride"] and 1 <= d <= limits["max_dilation"]
        assert 0 <= p <= limits["max_padding"] and 0 <= op < max(s, d)
        assert conv_transpose_output_size(size, k, s, p, op, d) >= 1

    family = data.draw(st.sampled_from(VALUE_FAMILIES), label="values")
    dtype = data.draw(st.sampled_from((np.float32, np.float64)), label="dtype")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, dtype, values=family), label="arrays")
    assert x.shape == cfg.input_shape and w.shape == cfg.weight_shape
    assert (b is None) == (not cfg.bias) and (b is None or b.shape == (cfg.out_channels,))
    for a in (x, w) + ((b,) if cfg.bias else ()):
        assert a.dtype == dtype and a.flags.c_contiguous
        if family == "integers":
            assert np.all(a == np.round(a)) and np.all(np.abs(a) <= 4)
    assert (family == "special" and x.size > 0) == (not np.all(np.isfinite(x)))
    expected = torch_conv_transpose2d(np.nan_to_num(x), w, b, cfg)  # torch accepts every drawn call
    assert expected.shape == conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape,
                                                       **cfg.kwargs()).output_shape[-expected.ndim:]
