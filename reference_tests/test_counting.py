"""Counted work == closed-form formulas, and count() blocks behave as a user expects.

The kernels increment their counters in their own loops; npconv.formulas derives the same
numbers in closed form. Agreement over every drawn configuration is the property.
"""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv import formulas
from npconv.strategies import conv2d_arrays, conv2d_configs


@given(data=st.data())
def test_counted_macs_padding_macs_and_bias_adds_equal_the_formulas(data):
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32), label="arrays")
    with npconv.count() as tally:
        y = npconv.conv2d(x, w, b, **cfg.kwargs())
    g = npconv.conv2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    out_size = (g.out_h, g.out_w)
    assert y.shape[-2:] == out_size
    assert tally.macs == formulas.conv2d_macs(g.batch, cfg.in_channels, cfg.out_channels, out_size,
                                              cfg.kernel_size, cfg.groups)
    assert tally.padding_macs == formulas.conv2d_padding_macs(g)
    assert tally.bias_adds == formulas.conv2d_bias_adds(g.batch, cfg.out_channels, out_size, cfg.bias)
    assert tally.by_op["conv2d"].macs == tally.macs and tally.by_op["conv2d"].calls == 1
    assert all(type(v) is int for v in (tally.macs, tally.padding_macs, tally.bias_adds))


@given(data=st.data())
def test_padding_macs_are_the_taps_that_read_the_border(data):
    """An independent check of the padding count: with zeros padding, a tap reads the border
    exactly when replacing every input value by 1 and counting (conv of ones with ones)
    leaves it out. sum(conv(ones, ones)) = inside taps; macs - inside = padding taps."""
    cfg = data.draw(conv2d_configs(padding_modes=("zeros",)), label="config")
    x = np.ones(cfg.input_shape, np.float64)
    w = np.ones(cfg.weight_shape, np.float64)
    with npconv.count() as tally:
        y = npconv.conv2d(x, w, None, **cfg.kwargs())
    assert tally.macs - tally.padding_macs == int(y.sum())


@given(data=st.data())
def test_output_size_and_params_agree_with_torch(data):
    cfg = data.draw(conv2d_configs(allow_empty_batch=False, allow_unbatched=False), label="config")
    layer = torch.nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=cfg.bias, **cfg.kwargs())
    out = layer(torch.zeros(cfg.input_shape))
    g = npconv.conv2d_geometry(cfg.input_shape, cfg.weight_shape, (cfg.out_channels,) if cfg.bias else None,
                               **cfg.kwargs())
    assert (g.out_h, g.out_w) == tuple(out.shape[-2:])
    assert formulas.conv2d_params(cfg.in_channels, cfg.out_channels, cfg.kernel_size, cfg.groups, cfg.bias) == sum(
        p.numel() for p in layer.parameters()
    )


@given(
    batch=st.integers(1, 2), channels=st.integers(1, 6), out_channels=st.integers(1, 8),
    size=st.integers(3, 9), k=st.sampled_from([1, 3, 5]), multiplier=st.integers(1, 3),
)
def test_depthwise_pointwise_and_separable_formulas(batch, channels, out_channels, size, k, multiplier):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, size, size)).astype(np.float32)
    dw = rng.standard_normal((channels * multiplier, 1, k, k)).astype(np.float32)
    pw = rng.standard_normal((out_channels, channels * multiplier, 1, 1)).astype(np.float32)
    with npconv.count() as tally:
        npconv.depthwise_separable_conv2d(x, dw, pw, padding=k // 2)
    dw_macs = formulas.depthwise_macs(batch, channels, size, k, multiplier)
    assert tally.by_op["depthwise_conv2d"].macs == dw_macs
    assert tally.by_op["pointwise_conv2d"].macs == formulas.pointwise_macs(batch, channels * multiplier,
                                                                          out_channels, size)
    if multiplier == 1:
        assert tally.macs == formulas.depthwise_separable_macs(batch, channels, out_channels, size, k)
        standard = formulas.standard_conv_macs(batch, channels, out_channels, size, k)
        assert tally.macs / standard == __import__("pytest").approx(
            formulas.separable_to_standard_ratio(out_channels, k), rel=1e-12)
        assert formulas.depthwise_separable_params(channels, out_channels, k, bias=False) == dw.size + pw.size


def test_the_tutorials_example_counts():
    """The tutorial's 3->64, 3x3, 224x224 example: the standard layer has 1,728 weights and
    N*C_out*OH*OW*C_in*9 = 86,704,128 MACs (about 0.87e8, not the 8.7e8 it prints); the
    separable one 3*9 + 64*3 = 219 weights, not the 75 it prints."""
    x = np.zeros((1, 3, 224, 224), np.float32)
    with npconv.count() as standard:
        npconv.conv2d(x, np.zeros((64, 3, 3, 3), np.float32), padding=1)
    assert standard.macs == 64 * 3 * 3 * 3 * 224 * 224 == 86_704_128
    assert formulas.conv2d_params(3, 64, 3, bias=False) == 1728
    assert formulas.depthwise_separable_params(3, 64, 3, bias=False) == 219


def test_nested_and_repeated_blocks():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    one_call = 3 * 2 * 9 * 3 * 3
    with npconv.count() as outer:
        npconv.conv2d(x, w)
        with npconv.count() as inner:
            npconv.conv2d(x, w)
        npconv.conv2d(x, w)
    assert inner.macs == one_call and inner.calls == 1
    assert outer.macs == 3 * one_call and outer.by_op["conv2d"].calls == 3
    npconv.conv2d(x, w)  # outside every block: nobody counts it
    assert outer.macs == 3 * one_call
    with npconv.count() as again:
        npconv.conv2d(x, w)
    assert again.macs == one_call


def test_bookkeeping_runs_are_not_counted():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    with npconv.count() as tally:
        y = npconv.conv2d(x, w)
        npconv.assert_close_to_reference(y, x, w)
    assert tally.calls == 1


def test_counts_do_not_overflow_on_large_shapes():
    """Python ints: a total beyond 2**63 is kept exactly."""
    x = np.zeros((1, 1, 1, 1), np.float32)
    with npconv.count() as tally:
        for _ in range(3):
            npconv.conv2d(x, np.zeros((1, 1, 1, 1), np.float32))
            npconv.counting.record("synthetic", macs=2**62)
    assert tally.macs == 3 * 2**62 + 3
