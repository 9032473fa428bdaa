"""conv1d, conv3d, conv_transpose1d and conv_transpose3d against PyTorch, over drawn configurations.

What is proved, for every drawn configuration (npconv.strategies.conv_nd: stride, padding
incl. "same"/"valid", the four padding modes, dilation, groups, bias, batch of 0,
unbatched input; transposed: output_padding too), on one and on three axes:
* float64 and float32: torch's result (nn.Conv1d / nn.Conv3d, F.conv_transpose1d / 3d) and
  npconv's are within the rigorous bound of npconv's float64 result, NaN/Inf planted in the
  input landing in the same places; float16: npconv accumulates in float32 and rounds once;
* integer-valued inputs with exactly representable sums: bit-for-bit equal (float16 too);
* counted MACs, padding MACs, inside MACs and bias adds equal npconv.formulas, and the 1-D
  counts equal the 2-D ones of the plane of height 1 (conv1d is conv2d on that plane);
* the 3-D loop nests against the 2-D ones: with a depth of 1 they give conv2d's and
  conv_transpose2d's results bit for bit (the same sums in the same order);
* the adjoint identity <conv3d(x, w), y> = <x, conv_transpose3d(y, w)>;
* errors: npconv raises iff torch raises, over unconstrained configurations and over
  configurations with exactly one rule broken (the message naming the rule); the N-d
  transposed geometry, for two axes, raises and sizes exactly as conv_transpose2d's;
* a torch model with nn.Conv1d / nn.Conv3d / nn.ConvTranspose1d / nn.ConvTranspose3d,
  captured with npconv.capture, runs on npconv and passes npconv.graph.verify;
* conv1d_backward and conv_transpose1d_backward against torch.autograd.

Error bound (npconv.tolerance.bound_from_magnitude, Higham eq. 3.5): an output is an inner
product of n = (C_in/groups) * prod(kernel) terms, plus the bias (n + 1). For a transposed
convolution at most one input position per tap and axis reaches an output, so the same n
with its own C_in/groups (test_transpose.py's derivation, per axis). M is the same op run
in float64 on |x|, |w|, |b|.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv import counting, formulas
from npconv.geometry import conv1d_geometry, conv_nd_geometry, conv_transpose_nd_geometry
from npconv.strategies import (ConvNdConfig, VALUE_FAMILIES, conv2d_arrays, conv2d_configs, conv_nd_arrays,
                               conv_nd_configs, conv_transpose2d_arrays, conv_transpose2d_configs,
                               conv_transpose_nd_configs, invalid_conv_nd_configs)
from npconv.tolerance import assert_within_bound, bound_from_magnitude
from npconv.transpose import conv_transpose2d

TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}
CONV = {1: npconv.conv1d, 3: npconv.conv3d}
CONV_TRANSPOSE = {1: npconv.conv_transpose1d, 3: npconv.conv_transpose3d}
TORCH_CONV = {1: torch.nn.Conv1d, 3: torch.nn.Conv3d}
TORCH_CONV_TRANSPOSE = {1: torch.nn.functional.conv_transpose1d, 3: torch.nn.functional.conv_transpose3d}
DIMS = [1, 3]


def _tensor(a):
    return None if a is None else torch.from_numpy(a)


def torch_conv(cfg, x, w, b):
    """nn.Conv1d / nn.Conv3d of `cfg` (padding_mode included) with weight w and bias b, on x."""
    layer = TORCH_CONV[cfg.dims](cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=b is not None,
                                 dtype=TORCH_DTYPES[x.dtype], **cfg.kwargs())
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if b is not None:
            layer.bias.copy_(torch.from_numpy(b))
        return layer(torch.from_numpy(x)).numpy()


def torch_conv_transpose(cfg, x, w, b):
    return TORCH_CONV_TRANSPOSE[cfg.dims](_tensor(x), _tensor(w), _tensor(b), **cfg.kwargs()).numpy()


def reference_and_bound(op, x, w, b, kwargs, n, dtype, accumulation_dtype=None):
    """npconv's float64 result of op(x, w, b, **kwargs), and the bound on |result in `dtype` -
    it| for n terms per output (module docstring)."""
    as64 = lambda a, f=lambda v: v: None if a is None else f(np.asarray(a, np.float64))  # noqa: E731
    with counting.paused():
        reference = op(as64(x), as64(w), as64(b), **kwargs)
        magnitude = op(as64(x, np.abs), as64(w, np.abs), as64(b, np.abs), **kwargs)
    return reference, bound_from_magnitude(magnitude, n, dtype, accumulation_dtype)


def terms(cfg) -> int:
    """n: the products per output (C_in/groups * prod(kernel)), plus one for a bias."""
    return cfg.in_channels // cfg.groups * math.prod(cfg.kernel_size) + (1 if cfg.bias else 0)


# ----------------------------------------------------------------------------- against torch


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_conv_matches_torch_within_error_bound(dims, dtype, data):
    cfg = data.draw(conv_nd_configs(dims), label="config")
    family = data.draw(st.sampled_from(VALUE_FAMILIES), label="values")
    x, w, b = data.draw(conv_nd_arrays(cfg, dtype, values=family), label="arrays")
    expected = torch_conv(cfg, x, w, b)
    ours = CONV[dims](x, w, b, **cfg.kwargs())
    assert ours.dtype == x.dtype and ours.shape == expected.shape
    reference, bound = reference_and_bound(CONV[dims], x, w, b, cfg.kwargs(), terms(cfg), dtype)
    assert_within_bound(expected, reference, bound, what=f"torch conv{dims}d")
    assert_within_bound(ours, reference, bound, what=f"npconv conv{dims}d")
    if family == "integers":  # exact sums (test_float16_...'s docstring): bit for bit
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_conv_transpose_matches_torch_within_error_bound(dims, dtype, data):
    cfg = data.draw(conv_transpose_nd_configs(dims), label="config")
    family = data.draw(st.sampled_from(VALUE_FAMILIES), label="values")
    x, w, b = data.draw(conv_nd_arrays(cfg, dtype, values=family), label="arrays")
    expected = torch_conv_transpose(cfg, x, w, b)
    ours = CONV_TRANSPOSE[dims](x, w, b, **cfg.kwargs())
    assert ours.dtype == x.dtype and ours.shape == expected.shape
    reference, bound = reference_and_bound(CONV_TRANSPOSE[dims], x, w, b, cfg.kwargs(), terms(cfg), dtype)
    assert_within_bound(expected, reference, bound, what=f"torch conv_transpose{dims}d")
    assert_within_bound(ours, reference, bound, what=f"npconv conv_transpose{dims}d")
    if family == "integers":
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("transposed", [False, True])
@given(data=st.data())
def test_float16_is_computed_in_float32_and_rounded_once(dims, transposed, data):
    """npconv widens float16 to float32, accumulates there and rounds once: the float32-
    accumulation bound holds and the result is the float32 one rounded. PyTorch's CPU
    kernels meet the bound for half-precision accumulation (its transposed convolutions
    accumulate in half, test_transpose.py::test_torch_float16_accumulates_in_half).

    Integer inputs: |x|, |w|, |b| <= 4 and at most 3 * 27 products per output, so every
    partial sum is an integer below 2^11, exact in float16 and wider in any order: both
    results equal bit for bit (here and, for float32 / float64, in the tests above)."""
    configs, op, torch_op = ((conv_transpose_nd_configs, CONV_TRANSPOSE[dims], torch_conv_transpose) if transposed
                             else (conv_nd_configs, CONV[dims], torch_conv))
    cfg = data.draw(configs(dims), label="config")
    family = data.draw(st.sampled_from(("normal", "integers")), label="values")
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float16, values=family), label="arrays")
    ours = op(x, w, b, **cfg.kwargs())
    assert ours.dtype == np.float16
    reference, bound = reference_and_bound(op, x, w, b, cfg.kwargs(), terms(cfg), np.float16)
    assert_within_bound(ours, reference, bound, what="npconv float16")
    widened = op(*(None if a is None else a.astype(np.float32) for a in (x, w, b)), **cfg.kwargs())
    np.testing.assert_array_equal(ours, widened.astype(np.float16))
    _, half_bound = reference_and_bound(op, x, w, b, cfg.kwargs(), terms(cfg), np.float16,
                                        accumulation_dtype=np.float16)
    expected = torch_op(cfg, x, w, b)
    assert_within_bound(expected, reference, half_bound, what="torch float16")
    if family == "integers":
        np.testing.assert_array_equal(ours, expected)


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_conv_counts_equal_the_formulas(dims, data):
    cfg = data.draw(conv_nd_configs(dims), label="config")
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float64, values="normal"), label="arrays")
    with npconv.count() as tally:
        y = CONV[dims](x, w, b, **cfg.kwargs())
    counts = tally.by_op[f"conv{dims}d"]
    g = conv_nd_geometry(dims, x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    assert y.shape == g.output_shape
    name = f"conv{dims}d"
    assert counts.calls == 1
    assert counts.macs == getattr(formulas, f"{name}_macs")(g.batch, g.in_channels, g.out_channels, g.out_size,
                                                            cfg.kernel_size, cfg.groups)
    assert counts.padding_macs == getattr(formulas, f"{name}_padding_macs")(g)
    assert counts.bias_adds == getattr(formulas, f"{name}_bias_adds")(g.batch, g.out_channels, g.out_size, cfg.bias)
    assert math.prod(cfg.kernel_size) * cfg.in_channels // cfg.groups * y.size == counts.macs
    if dims == 1:  # the plane of height 1: the 2-D formulas with kH = OH = H = 1
        plane = g.as_conv2d()
        assert counts.macs == formulas.conv2d_macs(g.batch, g.in_channels, g.out_channels, (1, g.out_size[0]),
                                                   (1, g.kernel[0]), g.groups)
        assert counts.padding_macs == formulas.conv2d_padding_macs(plane)
        assert formulas.conv1d_params(4, 6, 3, 2) == formulas.conv2d_params(4, 6, (1, 3), 2) == 6 * 2 * 3 + 6


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_conv_transpose_counts_equal_the_formulas(dims, data):
    cfg = data.draw(conv_transpose_nd_configs(dims), label="config")
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float64, values="normal"), label="arrays")
    with npconv.count() as tally:
        y = CONV_TRANSPOSE[dims](x, w, b, **cfg.kwargs())
    counts = tally.by_op[f"conv_transpose{dims}d"]
    g = conv_transpose_nd_geometry(dims, x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    assert y.shape == g.output_shape and counts.calls == 1 and counts.padding_macs == 0
    assert counts.macs == getattr(formulas, f"conv_transpose{dims}d_macs")(
        g.batch, cfg.in_channels, cfg.out_channels, cfg.size, cfg.kernel_size, cfg.groups)
    assert counts.other["inside_macs"] == getattr(formulas, f"conv_transpose{dims}d_inside_macs")(g)
    assert counts.bias_adds == (y.size if cfg.bias else 0)
    # an independent check of inside_macs: with x = w = 1 every product is 1, so the output
    # (without bias) sums to the number of products that land inside it
    ones = CONV_TRANSPOSE[dims](np.ones_like(x), np.ones_like(w), None, **cfg.kwargs())
    assert counts.other["inside_macs"] == int(ones.sum())


# ----------------------------------------------------------------------------- 3-D loops against 2-D ones


@given(data=st.data())
def test_conv3d_with_a_depth_of_one_is_conv2d(data):
    """conv3d on (N, C, 1, H, W) with a (C_out, Cg, 1, KH, KW) kernel and no padding in depth
    sums the same products in the same order as conv2d: bit for bit, counts too."""
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32), label="arrays")
    kw = cfg.kwargs()
    with npconv.count() as flat:
        expected = npconv.conv2d(x, w, b, **kw)
    padding = kw["padding"] if isinstance(kw["padding"], str) else (0,) + tuple(kw["padding"])
    deep = dict(kw, stride=(1,) + tuple(kw["stride"]), padding=padding, dilation=(1,) + tuple(kw["dilation"]))
    with npconv.count() as tally:
        y = npconv.conv3d(x[..., np.newaxis, :, :], w[:, :, np.newaxis], b, **deep)
    np.testing.assert_array_equal(y[..., 0, :, :], expected)
    assert tally.by_op["conv3d"].as_dict() == flat.by_op["conv2d"].as_dict()


@given(data=st.data())
def test_conv_transpose3d_with_a_depth_of_one_is_conv_transpose2d(data):
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, np.float32), label="arrays")
    kw = cfg.kwargs()
    with npconv.count() as flat:
        expected = conv_transpose2d(x, w, b, **kw)
    deep = {k: (v if k == "groups" else (1 if k in ("stride", "dilation") else 0,) + tuple(v)) for k, v in kw.items()}
    with npconv.count() as tally:
        y = npconv.conv_transpose3d(x[..., np.newaxis, :, :], w[:, :, np.newaxis], b, **deep)
    np.testing.assert_array_equal(y[..., 0, :, :], expected)
    assert tally.by_op["conv_transpose3d"].as_dict() == flat.by_op["conv_transpose2d"].as_dict()


def _inner(a, b, dtype):
    return float(np.dot(a.astype(dtype).ravel(), b.astype(dtype).ravel()))


@given(data=st.data())
def test_adjoint_of_conv3d(data):
    """<conv3d(x, w), y> = <x, conv_transpose3d(y, w)> with output_padding chosen so that the
    shapes match; bound as in test_transpose.py::test_adjoint_of_conv2d (each side a
    convolution then a dot product: gamma(n + m) times <conv3d(|x|, |w|), |y|>)."""
    cfg = data.draw(conv_nd_configs(3, padding_modes=("zeros",), allow_string_padding=False), label="config")
    x, w, _ = data.draw(conv_nd_arrays(cfg, np.float64, values="normal"), label="arrays")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    kw = dict(stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation, groups=cfg.groups)
    z = npconv.conv3d(x, w, None, **kw)
    y = rng.standard_normal(z.shape)
    output_padding = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in
                           zip(cfg.size, cfg.padding, cfg.dilation, cfg.kernel_size, cfg.stride))
    v = npconv.conv_transpose3d(y, w, None, output_padding=output_padding, **kw)
    assert v.shape == x.shape
    with counting.paused():
        magnitude = _inner(npconv.conv3d(np.abs(x), np.abs(w), None, **kw), np.abs(y), np.float64)
    n = math.prod(cfg.kernel_size) * max(cfg.in_channels, cfg.out_channels) // cfg.groups
    bound = 2 * bound_from_magnitude(magnitude, n + max(x.size, y.size), np.float64)
    assert abs(_inner(z, y, np.float64) - _inner(x, v, np.float64)) <= bound


# ----------------------------------------------------------------------------- errors


# What the message must mention, per broken rule (npconv's wording follows PyTorch's).
MENTIONS = {
    "stride_not_positive": "stride",
    "padding_negative": "padding",
    "dilation_below_one": "dilation",
    "groups_not_positive": "groups",
    "groups_not_dividing_out_channels": "divisible",
    "channel_mismatch": "channels",
    "kernel_larger_than_padded_input": "Kernel size",
    "same_with_stride": "strided",
    "unknown_padding_string": "padding string",
    "unknown_padding_mode": "padding_mode",
    "reflect_padding_too_wide": "Padding size",
    "circular_padding_too_wide": "wrapping",
    "input_ndim": "(batched) input to conv",
    "argument_length": "to match the convolution dimensions",
}


def _raises(call):
    """The exception `call` raises, or None. PyTorch's IndexError counts: on an empty batch an
    empty weight fails inside a transposed convolution with one (docs/findings.md, finding 25);
    npconv's own must still be a ValueError or TypeError (the tests assert it)."""
    try:
        call()
    except (ValueError, TypeError, RuntimeError, NotImplementedError, IndexError) as e:
        return e
    return None


def _torch_conv_raises(dims, x, w, b, kwargs, in_channels):
    """The exception nn.Conv{dims}d semantics raise (construction or call), or None."""
    def call():
        layer = TORCH_CONV[dims](max(in_channels, 1), max(w.shape[0], 1), w.shape[2:] or 1, bias=False,
                                 dtype=torch.float32, **kwargs)
        with torch.no_grad():  # the module's checks ran; the call's see the weight as F.conv{dims}d would
            layer.weight = torch.nn.Parameter(torch.from_numpy(w))
            layer.bias = None if b is None else torch.nn.Parameter(torch.from_numpy(b))
            layer(torch.from_numpy(x))
    return _raises(call)


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_invalid_configurations_raise_like_torch(dims, data):
    cfg = data.draw(invalid_conv_nd_configs(dims), label="config")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cfg.input_shape).astype(np.float32)
    w = rng.standard_normal(cfg.weight_shape if cfg.groups > 0 else (1, 1) + cfg.kernel_size).astype(np.float32)
    ours = _raises(lambda: CONV[dims](x, w, None, **cfg.kwargs()))
    theirs = _torch_conv_raises(dims, x, w, None, cfg.kwargs(), cfg.in_channels)
    assert theirs is not None, f"the strategy drew a configuration torch accepts: {cfg}"
    assert isinstance(ours, (ValueError, TypeError)), f"torch raised {theirs!r}, npconv: {ours!r}"
    assert MENTIONS[cfg.broken] in str(ours), f"{cfg.broken}: message {ours} does not mention it"


def _divergence(dims, shape, w_shape, kwargs) -> str | None:
    """The phrase of npconv's error where PyTorch accepts a call on purpose-known grounds:

    * its empty path (N = 0, or C_in = 0) skips argument checks that npconv makes for every
      size (docs/semantics.md; test_torch_divergences.py pins the 2-D cases);
    * nn.Conv1d / nn.Conv3d with a padding_mode pad with F.pad whatever the padding's length,
      so a padding of the wrong length pads other axes, the channels even
      (test_torch_pads_the_channels_given_a_padding_of_the_wrong_length); F.conv*d rejects it,
      and so does npconv.
    """
    empty = shape[0] == 0 or (len(shape) > 1 and shape[1] == 0) or 0 in w_shape[1:2]
    dilation = kwargs.get("dilation", 1)
    if empty and (0 in (dilation if isinstance(dilation, tuple) else (dilation,)) or 0 in w_shape[2:]
                  or "output_padding" in kwargs):
        return ""
    padding = kwargs.get("padding")
    if kwargs.get("padding_mode", "zeros") != "zeros" and isinstance(padding, tuple) and len(padding) not in (1, dims):
        return "to match the convolution dimensions"
    return None


def _unconstrained(data, dims, transposed):
    """An arbitrary call: sizes and arguments with no validity constraint."""
    def per_axis(lo, hi):  # an int, one per axis, or a list of any length
        return data.draw(st.one_of(st.integers(lo, hi), st.tuples(*[st.integers(lo, hi)] * dims),
                                   st.lists(st.integers(lo, hi), min_size=1, max_size=4).map(tuple)))

    in_channels, groups = data.draw(st.integers(0, 4)), data.draw(st.integers(-1, 3))
    rank = data.draw(st.sampled_from((dims + 2, dims + 2, dims + 2, dims + 1, dims, dims + 3)))
    shape = ((data.draw(st.integers(0, 2)), in_channels) + tuple(data.draw(st.integers(0, 5)) for _ in range(dims))
             )[dims + 2 - rank:] if rank <= dims + 2 else (1, 1, in_channels) + (3,) * dims
    w_shape = (data.draw(st.integers(0, 5)), data.draw(st.integers(0, 3))) + tuple(
        data.draw(st.integers(0, 4)) for _ in range(data.draw(st.sampled_from((dims, dims, dims, dims + 1)))))
    b_len = data.draw(st.one_of(st.none(), st.integers(0, 6)))
    kwargs = dict(stride=per_axis(-1, 3), padding=per_axis(-1, 3), dilation=per_axis(0, 3), groups=groups)
    if transposed:
        kwargs["output_padding"] = per_axis(-1, 3)
    else:
        kwargs["padding"] = data.draw(st.one_of(st.just(kwargs["padding"]), st.sampled_from(("same", "valid"))))
        kwargs["padding_mode"] = data.draw(st.sampled_from(("zeros", "zeros", "reflect", "replicate", "circular")))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = None if b_len is None else rng.standard_normal(b_len).astype(np.float32)
    return x, w, b, kwargs


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_conv_raises_exactly_when_torch_does(dims, data):
    x, w, b, kwargs = _unconstrained(data, dims, transposed=False)
    ours = _raises(lambda: CONV[dims](x, w, b, **kwargs))
    # nn.Conv*d checks in_channels % groups at construction; give it the channels the weight implies
    in_channels = w.shape[1] * kwargs["groups"] if kwargs["groups"] > 0 and w.ndim > 1 else 1
    theirs = _torch_conv_raises(dims, x, w, b, kwargs, in_channels)
    divergence = _divergence(dims, x.shape, w.shape, kwargs)
    if theirs is None and ours is not None and divergence is not None:
        assert divergence in str(ours)
        return
    assert (ours is None) == (theirs is None), f"npconv: {ours!r}; torch: {theirs!r}"
    assert ours is None or isinstance(ours, (ValueError, TypeError)), repr(ours)


@pytest.mark.parametrize("dims", DIMS)
@given(data=st.data())
def test_conv_transpose_raises_exactly_when_torch_does(dims, data):
    x, w, b, kwargs = _unconstrained(data, dims, transposed=True)
    ours = _raises(lambda: CONV_TRANSPOSE[dims](x, w, b, **kwargs))
    theirs = _raises(lambda: TORCH_CONV_TRANSPOSE[dims](_tensor(x), _tensor(w), _tensor(b), **kwargs))
    if theirs is None and ours is not None and _divergence(dims, x.shape, w.shape, kwargs) is not None:
        return
    assert (ours is None) == (theirs is None), f"npconv: {ours!r}; torch: {theirs!r}"
    assert ours is None or isinstance(ours, (ValueError, TypeError)), repr(ours)


def test_an_empty_batch_with_an_empty_transposed_weight_is_refused_by_both():
    """The raise-parity property's falsifying example (thorough profile; its draws are
    `st.data()`, which @example cannot replay): PyTorch fails with an IndexError
    (finding 25), npconv with its ValueError."""
    x, w = np.zeros((0, 1, 0), np.float32), np.zeros((1, 0, 0), np.float32)
    kwargs = dict(stride=1, padding=0, dilation=0, groups=1, output_padding=0)
    assert isinstance(_raises(lambda: torch.nn.functional.conv_transpose1d(_tensor(x), _tensor(w), **kwargs)), IndexError)
    with pytest.raises(ValueError, match="kernel size should be greater than zero"):
        npconv.conv_transpose1d(x, w, **kwargs)


def test_messages_name_the_axes_as_torch_does():
    """1-D: PyTorch checks some arguments on the plane of height 1 it computes on, and says so."""
    x, w = np.zeros((1, 2, 5)), np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match=r"kernel_height: 1 kernel_width: 0"):
        npconv.conv1d(x, np.zeros((4, 2, 0)))
    with pytest.raises(ValueError, match=r"Calculated padded input size per channel: \(5\). Kernel size: \(7\)"):
        npconv.conv1d(x, np.zeros((4, 2, 7)))
    with pytest.raises(ValueError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv1d"):
        npconv.conv1d(x[0, 0], w)
    with pytest.raises(ValueError, match=r"list of 1 values to match the convolution dimensions"):
        npconv.conv1d(x, w, stride=(1, 1))
    with pytest.raises(ValueError, match=r"kernel size should be greater than zero, but got: 3 x 0 x 3 \(TxHxW\)"):
        npconv.conv3d(np.zeros((1, 2, 5, 5, 5)), np.zeros((4, 2, 3, 0, 3)))
    with pytest.raises(ValueError, match=r"non-empty 5D \(n_output_plane x n_input_plane"):
        npconv.conv_transpose3d(np.zeros((1, 2, 5, 5, 5)), np.zeros((2, 3, 3, 0, 3)))
    with pytest.raises(ValueError, match=r"output_padding_depth: 2 output_padding_height: 0"):
        npconv.conv_transpose3d(np.zeros((1, 2, 5, 5, 5)), np.zeros((2, 3, 3, 3, 3)), output_padding=(2, 0, 0))
    with pytest.raises(ValueError, match=r"dilation_height: 1, dilation_width: 0"):
        npconv.conv_transpose1d(x, np.zeros((2, 3, 3)), dilation=0)
    for message, torch_call in ((r"kernel_height: 1 kernel_width: 0", lambda: torch.nn.functional.conv1d(
            torch.zeros(1, 2, 5), torch.zeros(4, 2, 0))), (r"dilation_height: 1, dilation_width: 0", lambda: (
            torch.nn.functional.conv_transpose1d(torch.zeros(1, 2, 5), torch.zeros(2, 3, 3), dilation=0)))):
        with pytest.raises(RuntimeError, match=message):
            torch_call()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_negative_padding_crops_under_a_padding_mode(mode):
    """nn.Conv1d / nn.Conv3d pad with F.pad unless the mode is zeros: a negative padding crops."""
    rng = np.random.default_rng(1)
    for dims, padding in ((1, -1), (3, (-1, 1, 0))):
        cfg = ConvNdConfig(batch=2, in_channels=2, out_channels=4, groups=2, size=(6,) * dims,
                           kernel_size=(2,) * dims, stride=(1,) * dims, padding=padding, dilation=(1,) * dims,
                           padding_mode=mode)
        x, w, b = (rng.standard_normal(s) for s in (cfg.input_shape, cfg.weight_shape, (4,)))
        reference, bound = reference_and_bound(CONV[dims], x, w, b, cfg.kwargs(), terms(cfg), np.float64)
        assert reference.shape[2] == 6 - 2 + 1 - 2  # cropped by one on each side of the first axis
        assert_within_bound(torch_conv(cfg, x, w, b), reference, bound, what=f"nn.Conv{dims}d, {mode}")


def test_torch_pads_the_channels_given_a_padding_of_the_wrong_length():
    """nn.Conv1d(padding=(p0, p1), padding_mode=...) hands F.pad the pads (p1, p1, p0, p0),
    which pad the length by p1 and the *channels* by p0; F.conv1d then sees the padded
    channels. F.conv1d itself, and nn.Conv1d with zeros padding, reject a padding of two
    values for one axis; npconv rejects it in every mode. (Likewise nn.Conv2d with three
    values.) If this test fails, PyTorch changed and `_divergence` can lose its case."""
    x = torch.arange(10.0).reshape(1, 2, 5)
    layer = torch.nn.Conv1d(4, 1, 1, padding=(1, 0), padding_mode="circular", bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(4.0).reshape(1, 4, 1))
        y = layer(x)  # channels (c1, c0, c1, c0) weighted 0, 1, 2, 3
    np.testing.assert_array_equal(y.numpy(), 4 * x[:, :1].numpy() + 2 * x[:, 1:].numpy())
    with pytest.raises(RuntimeError, match="list of 1 values"):
        torch.nn.Conv1d(4, 1, 1, padding=(1, 0), bias=False)(x)
    with pytest.raises(ValueError, match="list of 1 values"):
        npconv.conv1d(x.numpy(), layer.weight.detach().numpy(), padding=(1, 0), padding_mode="circular")


# ----------------------------------------------------------------------------- the graph


class _Volumes(torch.nn.Module):
    """Every 1-D and 3-D convolution, one after the other: 3-D on the input, then the volume
    flattened into a sequence for the 1-D ones; BatchNorm3d / BatchNorm1d and the 3-D / 1-D
    max, average and adaptive average pools on the way."""

    def __init__(self):
        super().__init__()
        self.conv3d = torch.nn.Conv3d(2, 4, 3, padding="same", padding_mode="circular")
        self.up3d = torch.nn.ConvTranspose3d(4, 2, 2, stride=2, groups=2, padding=(0, 1, 0), output_padding=(1, 0, 0))
        self.strided3d = torch.nn.Conv3d(2, 3, (1, 2, 3), stride=(1, 2, 1), padding=(0, 1, 1), bias=False)
        self.conv1d = torch.nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular", stride=2)
        self.up1d = torch.nn.ConvTranspose1d(4, 2, 3, stride=2, groups=2, dilation=2)
        self.norm3d, self.norm1d = torch.nn.BatchNorm3d(4), torch.nn.BatchNorm1d(4)
        self.pool3d, self.pool1d = torch.nn.AdaptiveAvgPool3d((1, 2, 1)), torch.nn.AdaptiveAvgPool1d(3)
        self.max3d, self.avg3d = torch.nn.MaxPool3d(2, stride=1, padding=1), torch.nn.AvgPool3d((1, 2, 2), padding=(0, 1, 0))
        self.max1d, self.avg1d = torch.nn.MaxPool1d(3, stride=2, ceil_mode=True), torch.nn.AvgPool1d(2, padding=1)
        with torch.no_grad():  # statistics that are not the identity
            for norm in (self.norm3d, self.norm1d):
                norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2)
                norm.weight.uniform_(0.5, 2), norm.bias.uniform_(-1, 1)

    def forward(self, x):
        v = self.avg3d(self.max3d(self.norm3d(self.conv3d(x))))
        y = self.strided3d(torch.relu(self.up3d(v)))
        s = self.avg1d(self.max1d(self.up1d(self.norm1d(self.conv1d(y.flatten(2))))))
        return torch.cat([self.pool1d(s).flatten(1), self.pool3d(v).flatten(1)], 1)


def test_captured_graph_runs_and_verifies():
    from npconv.graph.verify import verify

    torch.manual_seed(0)
    model = _Volumes().eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4, 3)).astype(np.float32)
    graph = npconv.capture(model, x)
    with npconv.count() as tally:
        y = graph(x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert {"conv3d", "conv_transpose3d", "conv1d", "conv_transpose1d", "batch_norm3d", "batch_norm1d"} <= set(tally.by_op)
    report = verify(model, x, timing=False, graph=graph)
    assert report.ok, report.failures


# ----------------------------------------------------------------------------- backward (1-D)


@given(data=st.data())
def test_conv1d_backward_matches_autograd_within_error_bound(data):
    """Bounds (test_backward.py's derivation, with kH = 1): grad_weight and grad_bias are sums
    over n, l of N * OL terms; a grad_input element sums at most (C_out/g) * K products per
    padded position, and an input element collects at most 1 + pad_before + pad_after padded
    positions (itself, and border positions that copy it), so n <= (C_out/g) * K * (1 + pads).
    float64 (float32 is the 2-D backward's, test_backward.py, on the same kernels)."""
    dtype = np.float64
    cfg = data.draw(conv_nd_configs(1), label="config")
    x, w, b = data.draw(conv_nd_arrays(cfg, dtype, values="normal"), label="arrays")
    kwargs = cfg.kwargs()
    y_shape = npconv.conv1d(x, w, b, **kwargs).shape
    gy = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(y_shape).astype(dtype)
    flags = dict(bias=cfg.bias, needs_input_grad=True)
    ours = npconv.conv1d_backward(gy, x, w, **kwargs, **flags)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    tb = None if b is None else torch.from_numpy(b).requires_grad_()
    layer_out = torch_conv_with(cfg, tx, tw, tb)
    layer_out.backward(torch.from_numpy(gy))
    theirs = (tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())

    as64 = lambda *arrays: [None if a is None else np.abs(a).astype(np.float64) for a in arrays]  # noqa: E731
    with counting.paused():
        reference = npconv.conv1d_backward(*(a.astype(np.float64) for a in (gy, x, w)), **kwargs, **flags)
        magnitude = npconv.conv1d_backward(*as64(gy, x, w), **kwargs, **flags)
    g = conv1d_geometry(x.shape, w.shape, None, **kwargs)
    pads = g.pad_before[0] + g.pad_after[0]
    reduction = g.batch * g.out_size[0]
    n = (g.out_per_group * g.kernel[0] * (1 + pads), reduction, reduction)
    for name, r, m, k, mine, torch_grad in zip(("grad_input", "grad_weight", "grad_bias"), reference, magnitude, n,
                                               ours, theirs):
        if r is None:
            assert mine is None and torch_grad is None
            continue
        bound = bound_from_magnitude(m, k, dtype)
        assert_within_bound(mine, r, bound, what=f"npconv {name}")
        assert_within_bound(torch_grad, r, bound, what=f"torch {name}")


def torch_conv_with(cfg, x, w, b):
    """nn.Conv1d's computation with tensors x, w, b that may require gradients: F.pad with the
    padding mode, then F.conv1d (what nn.Conv1d.forward does)."""
    kw = cfg.kwargs()
    mode = kw.pop("padding_mode")
    if mode == "zeros":
        return torch.nn.functional.conv1d(x, w, b, **kw)
    g = conv1d_geometry(tuple(x.shape), tuple(w.shape), None, **cfg.kwargs())
    padded = torch.nn.functional.pad(x, (g.pad_before[0], g.pad_after[0]), mode)
    return torch.nn.functional.conv1d(padded, w, b, **dict(kw, padding=0))


@given(data=st.data())
def test_conv_transpose1d_backward_matches_autograd_within_error_bound(data):
    cfg = data.draw(conv_transpose_nd_configs(1), label="config")
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float64, values="normal"), label="arrays")
    y_shape = npconv.conv_transpose1d(x, w, b, **cfg.kwargs()).shape
    gy = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(y_shape)
    with npconv.count() as tally:
        ours = npconv.conv_transpose1d_backward(gy, x, w, **cfg.kwargs(), bias=cfg.bias)
    assert {"conv_transpose1d_grad_input", "conv_transpose1d_grad_weight"} <= set(tally.by_op)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    tb = None if b is None else torch.from_numpy(b).requires_grad_()
    torch.nn.functional.conv_transpose1d(tx, tw, tb, **cfg.kwargs()).backward(torch.from_numpy(gy))
    theirs = (tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())
    with counting.paused():
        magnitude = npconv.conv_transpose1d_backward(np.abs(gy), np.abs(x), np.abs(w), **cfg.kwargs(), bias=cfg.bias)
    # grad_input: (C_out/g) * K products; grad_weight: N * L; grad_bias: N * OL terms
    n = (cfg.out_per_group * cfg.kernel_size[0], cfg.batch * cfg.size[0], max(gy.size // max(cfg.out_channels, 1), 1))
    for name, mine, torch_grad, m, k in zip(("grad_input", "grad_weight", "grad_bias"), ours, theirs, magnitude, n):
        if mine is None:
            assert torch_grad is None
            continue
        assert_within_bound(torch_grad, mine, bound_from_magnitude(m, k, np.float64), what=f"torch {name}")


def test_conv1d_backward_is_conv2d_backward_on_the_plane():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 9)), rng.standard_normal((6, 2, 3))
    kw = dict(stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect")
    gy = rng.standard_normal(npconv.conv1d(x, w, **kw).shape)
    with npconv.count() as line:
        ours = npconv.conv1d_backward(gy, x, w, **kw)
    with npconv.count() as plane:
        flat = npconv.conv2d_backward(gy[:, :, None], x[:, :, None], w[:, :, None], stride=(1, 2), padding=(0, 2),
                                      dilation=(1, 2), groups=2, padding_mode="reflect")
    for a, b in zip(ours, flat):
        np.testing.assert_array_equal(a, b if b.ndim == 1 else b[..., 0, :])
    assert {op.replace("conv1d", "conv2d"): c.as_dict() for op, c in line.by_op.items()} == \
        {op: c.as_dict() for op, c in plane.by_op.items()}
    with pytest.raises(ValueError, match="the output of conv1d"):
        npconv.conv1d_backward(gy[..., 1:], x, w, **kw)
