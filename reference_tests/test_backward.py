"""conv2d and conv_transpose2d backward against torch.autograd, counted MACs against the
formulas, and what torch.utils.flop_counter.FlopCounterMode reports for them.

What is proved, for every drawn configuration (conv2d: stride, integer/"same"/"valid"
padding, the four padding modes, dilation, groups, bias, batch of 0, unbatched input;
conv_transpose2d: stride, padding, output_padding, dilation, groups, bias):
* float64 and float32: torch.autograd's gradients and npconv's are within the derived
  bound of npconv's float64 gradients (CPU; CUDA with TF32 off when present);
* float16: npconv accumulates in float32 and rounds once;
* counted MACs equal the formulas, and grad-input MACs = grad-weight MACs = forward MACs;
* conv2d's input gradient (zeros padding) is conv_transpose2d of gy, bit for bit;
* FlopCounterMode (torch 2.13) counts the weight gradient of a grouped convolution
  `groups` times too high, its input gradient right (pinned below).

Error bounds (Higham eq. 3.5: a sum of n products, in any order, is within
gamma(n) * sum|products| of exact; `bound_from_magnitude` adds the float64 reference's own
error and underflow). The magnitudes sum|products| come from the same backward run in
float64 on |gy|, |x|, |w|, which adds up exactly those absolute products.
* grad_weight[o, c, p, q] = sum over n, i, j: n = N * OH * OW products (conv_transpose2d:
  N * H * W).
* grad_bias[o] = sum over n, i, j of gy: n = N * OH * OW terms.
* grad_input: each position of the padded gradient is a sum of at most (C_out/g) * kH * kW
  products (for each tap p at most one output row i has i*s + p*d = r); with reflect,
  replicate or circular padding an input pixel then collects the gradient of every padded
  position that copies it, at most R = R_h * R_w of them (R_h the most rows of the padded
  frame that copy one input row). So n = (C_out/g) * kH * kW * R products in all, and the
  bound holds for any order of the two sums. conv_transpose2d: n = (C_out/g) * kH * kW.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from train_helpers import fold_multiplicity

import npconv
from npconv import counting, formulas_backward
from npconv.backward import conv2d_backward, conv_transpose2d_backward
from npconv.strategies import (ConvTranspose2dConfig, conv2d_arrays, conv2d_configs, conv_transpose2d_arrays,
                               conv_transpose2d_configs)
from npconv.tolerance import assert_within_bound, bound_from_magnitude
from npconv.transpose import conv_transpose2d, conv_transpose2d_geometry

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _draw_grad_output(data, shape, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="grad_output seed"))
    return rng.standard_normal(shape).astype(dtype)


def _as64(*arrays, absolute=False):
    f = np.abs if absolute else (lambda a: a)
    return [f(np.asarray(a, np.float64)) for a in arrays]


# --- conv2d --------------------------------------------------------------------------


def torch_conv2d_grads(cfg, gy, x, w, b, device="cpu"):
    """torch.autograd's (grad_input, grad_weight, grad_bias) through nn.Conv2d(cfg)."""
    layer = torch.nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=cfg.bias,
                            dtype=TORCH_DTYPES[x.dtype], device=device, **cfg.kwargs())
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if cfg.bias:
            layer.bias.copy_(torch.from_numpy(b))
    tx = torch.from_numpy(x).to(device).requires_grad_()
    params = (tx, layer.weight) + ((layer.bias,) if cfg.bias else ())
    grads = torch.autograd.grad(layer(tx), params, torch.from_numpy(gy).to(device), allow_unused=True)
    grads = [None if g is None else g.cpu().numpy() for g in grads]
    if x.size == 0:  # no element of x reaches the output: autograd returns None or zeros
        grads[0] = np.zeros_like(x) if grads[0] is None else grads[0]
    return tuple(grads) + ((None,) if not cfg.bias else ())


def conv2d_reference_and_bounds(cfg, gy, x, w, dtype):
    """npconv's float64 gradients and the per-element bounds of the module docstring."""
    g = npconv.conv2d_geometry(x.shape, w.shape, (cfg.out_channels,) if cfg.bias else None, **cfg.kwargs())
    with counting.paused():
        reference = conv2d_backward(*_as64(gy, x, w), bias=cfg.bias, **cfg.kwargs())
        magnitude = conv2d_backward(*_as64(gy, x, w, absolute=True), bias=cfg.bias, **cfg.kwargs())
    fold = fold_multiplicity(g.height, g.pad_top, g.pad_bottom, g.padding_mode) * fold_multiplicity(
        g.width, g.pad_left, g.pad_right, g.padding_mode)
    n_input = g.out_per_group * g.kernel_h * g.kernel_w * fold
    n_weight = g.batch * g.out_h * g.out_w
    bounds = (bound_from_magnitude(magnitude[0], n_input, dtype),
              bound_from_magnitude(magnitude[1], n_weight, dtype),
              None if not cfg.bias else bound_from_magnitude(magnitude[2], n_weight, dtype))
    return reference, bounds


def _assert_grads_within(actual, reference, bounds, who):
    for name, a, r, bound in zip(("grad_input", "grad_weight", "grad_bias"), actual, reference, bounds):
        assert (a is None) == (r is None), f"{who} {name}: {a!r} vs {r!r}"
        if r is not None:
            assert_within_bound(a, r, bound, what=f"{who} {name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_conv2d_backward_matches_autograd_within_error_bound(device, dtype, data):
    cfg = data.draw(conv2d_configs(max_size=7), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, dtype, values="normal"), label="arrays")
    y_shape = npconv.conv2d(x, w, b, **cfg.kwargs()).shape
    gy = _draw_grad_output(data, y_shape, dtype)
    reference, bounds = conv2d_reference_and_bounds(cfg, gy, x, w, dtype)
    expected = torch_conv2d_grads(cfg, gy, x, w, b, device)
    _assert_grads_within(expected, reference, bounds, "torch.autograd")
    ours = conv2d_backward(gy, x, w, bias=cfg.bias, **cfg.kwargs())
    for a, like in zip(ours, (x, w, b)):
        assert a is None or (a.dtype == dtype and a.shape == like.shape)
    _assert_grads_within(ours, reference, bounds, "npconv")


@given(data=st.data())
def test_conv2d_backward_float16_is_computed_in_float32_and_rounded_once(data):
    cfg = data.draw(conv2d_configs(max_size=6), label="config")
    x, w, _ = data.draw(conv2d_arrays(cfg, np.float16, values="normal"), label="arrays")
    gy = _draw_grad_output(data, npconv.conv2d(x, w, **cfg.kwargs()).shape, np.float16)
    ours = conv2d_backward(gy, x, w, bias=cfg.bias, **cfg.kwargs())
    widened = conv2d_backward(*(a.astype(np.float32) for a in (gy, x, w)), bias=cfg.bias, **cfg.kwargs())
    for a, wide in zip(ours, widened):
        assert (a is None) == (wide is None)
        if a is not None:
            assert a.dtype == np.float16
            np.testing.assert_array_equal(a, wide.astype(np.float16))
    reference, bounds = conv2d_reference_and_bounds(cfg, gy, x, w, np.float16)
    _assert_grads_within(ours, reference, bounds, "npconv float16")


@given(data=st.data())
def test_conv2d_backward_counts_equal_formulas_and_the_forward(data):
    """For a dense kernel, grad-input MACs = grad-weight MACs = forward MACs: both
    gradients run over the forward's index set (n, o, i, j, c, p, q), one MAC per index."""
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float64, values="normal"), label="arrays")
    with npconv.count() as forward:
        y = npconv.conv2d(x, w, b, **cfg.kwargs())
    gy = _draw_grad_output(data, y.shape, np.float64)
    with npconv.count() as backward:
        conv2d_backward(gy, x, w, bias=cfg.bias, **cfg.kwargs())
    g = npconv.conv2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    gi, gw, gb = (backward.by_op[op] for op in ("conv2d_grad_input", "conv2d_grad_weight", "conv2d_grad_bias"))
    assert "conv2d" not in backward.by_op  # the backward's counts stay apart from the forward's
    assert gi.macs == gw.macs == forward.macs
    assert gi.macs == formulas_backward.conv2d_grad_input_macs(g)
    assert gw.macs == formulas_backward.conv2d_grad_weight_macs(g)
    assert gi.padding_macs == gw.padding_macs == forward.padding_macs
    assert gi.padding_macs == formulas_backward.conv2d_grad_input_padding_macs(g)
    assert gw.padding_macs == formulas_backward.conv2d_grad_weight_padding_macs(g)
    assert gi.other["fold_adds"] == formulas_backward.conv2d_grad_input_fold_adds(g)
    assert gb.other["adds"] == formulas_backward.conv2d_grad_bias_adds(g)
    assert gb.calls == (1 if cfg.bias else 0)


@given(data=st.data())
def test_conv2d_grad_input_is_conv_transpose2d_of_grad_output(data):
    """With zeros padding, the input gradient is conv_transpose2d(gy, w) with the output
    padding that restores the input size: the same sum, scattered in the same order, so
    equal bit for bit."""
    cfg = data.draw(conv2d_configs(padding_modes=("zeros",), allow_string_padding=False), label="config")
    x, w, _ = data.draw(conv2d_arrays(cfg, np.float32, values="normal"), label="arrays")
    gy = _draw_grad_output(data, npconv.conv2d(x, w, **cfg.kwargs()).shape, np.float32)
    output_padding = tuple((size + 2 * p - d * (k - 1) - 1) % s for size, p, d, k, s in zip(
        (cfg.height, cfg.width), cfg.padding, cfg.dilation, cfg.kernel_size, cfg.stride))
    grad_input, _, _ = conv2d_backward(gy, x, w, bias=False, **cfg.kwargs())
    transposed = conv_transpose2d(gy, w, None, stride=cfg.stride, padding=cfg.padding,
                                  output_padding=output_padding, groups=cfg.groups, dilation=cfg.dilation)
    np.testing.assert_array_equal(grad_input, transposed)


def test_conv2d_backward_skips_the_input_gradient_when_asked():
    rng = np.random.default_rng(0)
    x, w, gy = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 3, 3))
    with npconv.count() as tally:
        grad_input, grad_weight, grad_bias = conv2d_backward(gy, x, w, needs_input_grad=False)
    assert grad_input is None and grad_weight.shape == w.shape and grad_bias.shape == (4,)
    assert "conv2d_grad_input" not in tally.by_op
    np.testing.assert_array_equal(grad_weight, conv2d_backward(gy, x, w)[1])


def test_conv2d_backward_rejects_bad_arguments():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    gy = np.ones((1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"Mismatch in shape: grad_output has a shape of \[1, 3, 4, 4\]"):
        conv2d_backward(np.ones((1, 3, 4, 4)), x, w)
    with pytest.raises(TypeError, match="grad_output of scalar type Double"):
        conv2d_backward(gy.astype(np.float32), x, w)
    with pytest.raises(TypeError, match="bias must be True or False"):
        conv2d_backward(gy, x, w, bias=np.ones(3))
    with pytest.raises(ValueError, match="expected input"):
        conv2d_backward(gy, np.ones((1, 4, 5, 5)), w)
    with pytest.raises(ValueError, match="padding_mode"):
        conv2d_backward(gy, x, w, padding_mode="mirror")
    with pytest.raises(TypeError, match="numpy.ndarray"):
        conv2d_backward(gy.tolist(), x, w)
    with pytest.raises(ValueError, match=r"grad_output has a shape of \[1, 4, 5, 5\] and the output of conv_transpose2d"):
        conv_transpose2d_backward(np.ones((1, 4, 5, 5)), np.ones((1, 2, 3, 3)), np.ones((2, 2, 2, 2)), groups=2)


def test_numpy_integer_groups_keep_the_bias_gradient():
    """Regression: a NumPy integer for groups once made conv_transpose2d_backward drop grad_bias."""
    x, w = np.ones((1, 4, 3, 3)), np.ones((4, 2, 2, 2))
    _, _, grad_bias = conv_transpose2d_backward(np.ones((1, 4, 4, 4)), x, w, groups=np.int64(2))
    np.testing.assert_array_equal(grad_bias, np.full(4, 16.0))
    _, _, grad_bias = conv2d_backward(np.ones((1, 4, 2, 2)), x, w, groups=np.int64(2))
    np.testing.assert_array_equal(grad_bias, np.full(4, 4.0))


# --- conv_transpose2d ----------------------------------------------------------------


def torch_conv_transpose2d_grads(cfg: ConvTranspose2dConfig, gy, x, w, b, device="cpu"):
    t = lambda a: torch.from_numpy(a).to(device).requires_grad_()  # noqa: E731
    tx, tw = t(x), t(w)
    tb = t(b) if cfg.bias else None
    y = torch.nn.functional.conv_transpose2d(tx, tw, tb, **cfg.kwargs())
    params = (tx, tw) + ((tb,) if cfg.bias else ())
    grads = torch.autograd.grad(y, params, torch.from_numpy(gy).to(device))
    return tuple(g.cpu().numpy() for g in grads) + ((None,) if not cfg.bias else ())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_conv_transpose2d_backward_matches_autograd_within_error_bound(device, dtype, data):
    cfg = data.draw(conv_transpose2d_configs(allow_empty_batch=False), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, dtype, values="normal"), label="arrays")
    gy = _draw_grad_output(data, conv_transpose2d(x, w, b, **cfg.kwargs()).shape, dtype)
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    with counting.paused():
        reference = conv_transpose2d_backward(*_as64(gy, x, w), bias=cfg.bias, **cfg.kwargs())
        magnitude = conv_transpose2d_backward(*_as64(gy, x, w, absolute=True), bias=cfg.bias, **cfg.kwargs())
    bounds = (bound_from_magnitude(magnitude[0], g.out_per_group * g.kernel_h * g.kernel_w, dtype),
              bound_from_magnitude(magnitude[1], g.batch * g.height * g.width, dtype),
              None if not cfg.bias else bound_from_magnitude(magnitude[2], g.batch * g.out_h * g.out_w, dtype))
    expected = torch_conv_transpose2d_grads(cfg, gy, x, w, b, device)
    _assert_grads_within(expected, reference, bounds, "torch.autograd")
    ours = conv_transpose2d_backward(gy, x, w, bias=cfg.bias, **cfg.kwargs())
    _assert_grads_within(ours, reference, bounds, "npconv")


@given(data=st.data())
def test_conv_transpose2d_backward_counts_equal_formulas_and_the_forward(data):
    cfg = data.draw(conv_transpose2d_configs(), label="config")
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, np.float64, values="normal"), label="arrays")
    with npconv.count() as forward:
        y = conv_transpose2d(x, w, b, **cfg.kwargs())
    gy = _draw_grad_output(data, y.shape, np.float64)
    with npconv.count() as backward:
        conv_transpose2d_backward(gy, x, w, bias=cfg.bias, **cfg.kwargs())
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    gi, gw, gb = (backward.by_op["conv_transpose2d_grad_" + k] for k in ("input", "weight", "bias"))
    assert gi.macs == gw.macs == forward.macs
    assert gi.other["inside_macs"] == gw.other["inside_macs"] == forward.other["inside_macs"]
    assert gi.macs == formulas_backward.conv_transpose2d_grad_input_macs(g)
    assert gw.macs == formulas_backward.conv_transpose2d_grad_weight_macs(g)
    assert gi.other["inside_macs"] == formulas_backward.conv_transpose2d_grad_input_inside_macs(g)
    assert gw.other["inside_macs"] == formulas_backward.conv_transpose2d_grad_weight_inside_macs(g)
    assert gb.other["adds"] == formulas_backward.conv_transpose2d_grad_bias_adds(g)


# --- FlopCounterMode -----------------------------------------------------------------


def _fcm_conv_backward_flops(gy, x, w, *, stride, padding, dilation, groups, transposed=False,
                             output_padding=(0, 0)):
    """FlopCounterMode's count for aten.convolution_backward, one gradient at a time
    (output_mask selects grad_input, grad_weight, grad_bias)."""
    flops = []
    for mask in ([True, False, False], [False, True, False], [False, False, True]):
        with FlopCounterMode(display=False) as fcm:
            torch.ops.aten.convolution_backward(
                torch.from_numpy(gy), torch.from_numpy(x), torch.from_numpy(w), [gy.shape[1]],
                list(stride), list(padding), list(dilation), transposed, list(output_padding), groups, mask)
        flops.append(fcm.get_total_flops())
    return flops


@pytest.mark.parametrize("channels, size, kernel, stride", [(32, 16, 3, 1), (32, 16, 3, 2), (8, 9, 5, 1)])
def test_flop_counter_mode_counts_depthwise_grad_weight_groups_times_too_high(channels, size, kernel, stride):
    """torch 2.13's FlopCounterMode on the backward of a depthwise conv2d (groups = C):

    * grad_input: 2 * our counted MACs -- right (FLOPs = 2 * MACs);
    * grad_weight: 2 * C * our counted MACs -- `groups` times too high. Its formula
      (torch/utils/flop_counter.py, conv_backward_flop) counts grad_weight as a conv of
      x^T (C_in, N, H, W) with gy^T (C_out, N, OH, OW), i.e. N*OH*OW * C_out * C_in * kH*kW
      products, with all C_in channels where each output channel sees only C_in/groups;
    * grad_bias: 0 (bias adds are not counted at all).

    Pinned so that a fix (or another change) in PyTorch is noticed.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, channels, size, size)).astype(np.float32)
    w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    args = dict(stride=(stride, stride), padding=(kernel // 2, kernel // 2), dilation=(1, 1), groups=channels)
    y = npconv.conv2d(x, w, **args)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    with npconv.count() as tally:
        conv2d_backward(gy, x, w, **args)
    ours = [tally.by_op[op] for op in ("conv2d_grad_input", "conv2d_grad_weight", "conv2d_grad_bias")]
    fcm_input, fcm_weight, fcm_bias = _fcm_conv_backward_flops(gy, x, w, **args)
    assert fcm_input == 2 * ours[0].macs
    assert fcm_weight == 2 * channels * ours[1].macs
    assert ours[1].macs == ours[0].macs
    assert fcm_bias == 0 and ours[2].other["adds"] == y.size

    # Through autograd, as a user would see it: forward + both gradients in one op.
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    with FlopCounterMode(display=False) as fcm:
        out = torch.nn.functional.conv2d(tx, tw, **args)
        out.backward(torch.from_numpy(gy))
    counts = fcm.get_flop_counts()["Global"]
    assert counts[torch.ops.aten.convolution] == 2 * ours[0].macs
    assert counts[torch.ops.aten.convolution_backward] == 2 * ours[0].macs + 2 * channels * ours[1].macs


@given(data=st.data())
def test_flop_counter_mode_backward_relation_for_any_grouped_conv(data):
    """The same relation on every drawn conv2d (zeros padding, as F.conv2d takes it):
    FlopCounterMode's grad_input = 2 * counted, its grad_weight = 2 * groups * counted."""
    cfg = data.draw(conv2d_configs(padding_modes=("zeros",), allow_string_padding=False,
                                   allow_unbatched=False, allow_empty_batch=False), label="config")
    x, w, _ = data.draw(conv2d_arrays(cfg, np.float32, values="normal"), label="arrays")
    gy = _draw_grad_output(data, npconv.conv2d(x, w, **cfg.kwargs()).shape, np.float32)
    with npconv.count() as tally:
        conv2d_backward(gy, x, w, bias=False, **cfg.kwargs())
    fcm_input, fcm_weight, _ = _fcm_conv_backward_flops(gy, x, w, stride=cfg.stride, padding=cfg.padding,
                                                        dilation=cfg.dilation, groups=cfg.groups)
    assert fcm_input == 2 * tally.by_op["conv2d_grad_input"].macs
    assert fcm_weight == 2 * cfg.groups * tally.by_op["conv2d_grad_weight"].macs


@given(data=st.data())
def test_flop_counter_mode_backward_relation_for_conv_transpose2d(data):
    """For conv_transpose2d the same: grad_input right, grad_weight `groups` times too high."""
    cfg = data.draw(conv_transpose2d_configs(allow_empty_batch=False), label="config")
    if cfg.unbatched:
        cfg = replace(cfg, unbatched=False)
    x, w, _ = data.draw(conv_transpose2d_arrays(cfg, np.float32, values="normal"), label="arrays")
    gy = _draw_grad_output(data, conv_transpose2d(x, w, **cfg.kwargs()).shape, np.float32)
    with npconv.count() as tally:
        conv_transpose2d_backward(gy, x, w, bias=False, **cfg.kwargs())
    fcm_input, fcm_weight, _ = _fcm_conv_backward_flops(
        gy, x, w, stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation, groups=cfg.groups,
        transposed=True, output_padding=cfg.output_padding)
    assert fcm_input == 2 * tally.by_op["conv_transpose2d_grad_input"].macs
    assert fcm_weight == 2 * cfg.groups * tally.by_op["conv_transpose2d_grad_weight"].macs
