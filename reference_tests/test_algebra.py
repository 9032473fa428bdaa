"""Algebraic properties of convolution, checked on npconv itself (no torch needed).

* linearity in x and in w:   conv(a x1 + x2, w) = a conv(x1, w) + conv(x2, w), likewise in w;
* a grouped convolution is the concatenation of `groups` independent convolutions;
* depthwise_separable_conv2d == pointwise_conv2d(depthwise_conv2d(x));
* the named special cases equal conv2d with the corresponding groups / kernel.

Linearity is checked on integer-valued data, where every side is computed exactly (all
partial sums are small integers), so equality is exact and the property cannot pass by
tolerance. Group splitting and the special cases run the same arithmetic in the same
order, so they are bit-for-bit.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv.strategies import conv2d_arrays, conv2d_configs


@given(data=st.data(), a=st.integers(-3, 3))
def test_linear_in_input(data, a):
    cfg = data.draw(conv2d_configs())
    x1, w, _ = data.draw(conv2d_arrays(cfg, np.float64, values="integers"))
    x2, _, _ = data.draw(conv2d_arrays(cfg, np.float64, values="integers"))
    kw = cfg.kwargs()
    lhs = npconv.conv2d(a * x1 + x2, w, **kw)
    rhs = a * npconv.conv2d(x1, w, **kw) + npconv.conv2d(x2, w, **kw)
    np.testing.assert_array_equal(lhs, rhs)


@given(data=st.data(), a=st.integers(-3, 3))
def test_linear_in_weight(data, a):
    cfg = data.draw(conv2d_configs())
    x, w1, _ = data.draw(conv2d_arrays(cfg, np.float64, values="integers"))
    _, w2, _ = data.draw(conv2d_arrays(cfg, np.float64, values="integers"))
    kw = cfg.kwargs()
    np.testing.assert_array_equal(npconv.conv2d(x, a * w1 + w2, **kw),
                                  a * npconv.conv2d(x, w1, **kw) + npconv.conv2d(x, w2, **kw))


@given(data=st.data())
def test_grouped_conv_is_independent_convs_per_group(data):
    cfg = data.draw(conv2d_configs(allow_unbatched=False))
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32))
    kw = cfg.kwargs()
    whole = npconv.conv2d(x, w, b, **kw)
    cin, cout = cfg.in_channels // cfg.groups, cfg.out_channels // cfg.groups
    kw["groups"] = 1
    parts = [
        npconv.conv2d(x[:, g * cin:(g + 1) * cin], w[g * cout:(g + 1) * cout],
                      None if b is None else b[g * cout:(g + 1) * cout], **kw)
        for g in range(cfg.groups)
    ]
    np.testing.assert_array_equal(whole, np.concatenate(parts, axis=1))


@given(data=st.data())
def test_depthwise_separable_is_pointwise_after_depthwise(data):
    cfg = data.draw(conv2d_configs(depthwise=True))
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    out_channels = data.draw(st.integers(1, 5))
    pw = rng.standard_normal((out_channels, cfg.out_channels, 1, 1)).astype(np.float32)
    pb = rng.standard_normal(out_channels).astype(np.float32)
    kw = dict(stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation, padding_mode=cfg.padding_mode)
    hidden = npconv.conv2d(x, w, b, groups=cfg.groups, **kw)
    expected = npconv.conv2d(hidden, pw, pb)
    np.testing.assert_array_equal(npconv.depthwise_conv2d(x, w, b, **kw), hidden)
    np.testing.assert_array_equal(npconv.pointwise_conv2d(hidden, pw[:, :, 0, 0], pb), expected)
    np.testing.assert_array_equal(npconv.depthwise_separable_conv2d(x, w, pw, b, pb, **kw), expected)
