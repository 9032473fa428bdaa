"""npconv.conv_transpose2d against torch.nn.functional.conv_transpose2d.

Error bound. Output element y[n, g*Cog + o, a, b] is b[o] plus the products
x[n, c, i, j] * w[c, o, p, q] over the Cig = C_in/groups channels c of group g and the
taps with i*s_h + p*d_h = a + pad_h, j*s_w + q*d_w = b + pad_w: for each tap p at most
one row i qualifies, so at most n = Cig * kH * kW products, plus the bias (n + 1 terms).
Any summation order then gives |computed - exact| <= gamma(n+1) * M with
M = conv_transpose2d(|x|, |w|, |b|) (Higham eq. 3.5), and `bound_from_magnitude` adds
the float64 reference's own error; see npconv/tolerance.py.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv import counting
from npconv.tolerance import assert_within_bound, bound_from_magnitude
from npconv.transpose import conv_transpose2d, conv_transpose2d_geometry, conv_transpose_output_size


@dataclass(frozen=True)
class TransposeConfig:
    batch: int
    in_per_group: int
    out_per_group: int
    groups: int
    height: int
    width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    bias: bool
    unbatched: bool

    @property
    def in_channels(self) -> int:
        return self.in_per_group * self.groups

    @property
    def out_channels(self) -> int:
        return self.out_per_group * self.groups

    @property
    def input_shape(self):
        shape = (self.batch, self.in_channels, self.height, self.width)
        return shape[1:] if self.unbatched else shape

    @property
    def weight_shape(self):
        return (self.in_channels, self.out_per_group) + self.kernel_size

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)


@st.composite
def transpose_configs(draw, max_size=6, allow_empty_batch=True):
    """Valid conv_transpose2d configurations: output_padding < max(stride, dilation) per
    dimension, padding small enough for a non-empty output."""
    batch = draw(st.integers(0 if allow_empty_batch else 1, 2))
    groups = draw(st.integers(1, 3))
    kernel, stride, dilation, size, padding, output_padding = [], [], [], [], [], []
    for _ in range(2):
        k, s, d, h = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(
            st.integers(1, max_size))
        op = draw(st.integers(0, max(s, d) - 1))
        widest = ((h - 1) * s + d * (k - 1) + op) // 2  # output >= 1
        p = draw(st.integers(0, min(3, widest)))
        kernel.append(k), stride.append(s), dilation.append(d), size.append(h)
        padding.append(p), output_padding.append(op)
    return TransposeConfig(
        batch=batch,
        in_per_group=draw(st.integers(1, 3)),
        out_per_group=draw(st.integers(1, 3)),
        groups=groups,
        height=size[0],
        width=size[1],
        kernel_size=tuple(kernel),
        stride=tuple(stride),
        padding=tuple(padding),
        output_padding=tuple(output_padding),
        dilation=tuple(dilation),
        bias=draw(st.booleans()),
        unbatched=batch == 1 and draw(st.booleans()),
    )


@st.composite
def arrays_for(draw, cfg: TransposeConfig, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(cfg.input_shape).astype(dtype)
    w = rng.standard_normal(cfg.weight_shape).astype(dtype)
    b = rng.standard_normal(cfg.out_channels).astype(dtype) if cfg.bias else None
    return x, w, b


def torch_conv_transpose2d(x, w, b, cfg, device="cpu"):
    t = lambda a: None if a is None else torch.from_numpy(a).to(device)  # noqa: E731
    return torch.nn.functional.conv_transpose2d(t(x), t(w), t(b), **cfg.kwargs()).cpu().numpy()


def reference_and_bound(x, w, b, cfg, dtype):
    """npconv's float64 result, and the bound on |result in `dtype` - it| (module docstring)."""
    as64 = lambda a, f=lambda v: v: None if a is None else f(np.asarray(a, np.float64))  # noqa: E731
    with counting.paused():
        reference = conv_transpose2d(as64(x), as64(w), as64(b), **cfg.kwargs())
        magnitude = conv_transpose2d(as64(x, np.abs), as64(w, np.abs), as64(b, np.abs), **cfg.kwargs())
    n = cfg.in_per_group * cfg.kernel_size[0] * cfg.kernel_size[1] + (1 if cfg.bias else 0)
    return reference, bound_from_magnitude(magnitude, n, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_matches_torch_within_error_bound(device, dtype, data):
    cfg = data.draw(transpose_configs(), label="config")
    x, w, b = data.draw(arrays_for(cfg, dtype), label="arrays")
    expected = torch_conv_transpose2d(x, w, b, cfg, device)
    ours = conv_transpose2d(x, w, b, **cfg.kwargs())
    assert ours.dtype == x.dtype and ours.shape == expected.shape
    reference, bound = reference_and_bound(x, w, b, cfg, dtype)
    assert_within_bound(expected, reference, bound, what="torch conv_transpose2d")
    assert_within_bound(ours, reference, bound, what="npconv conv_transpose2d")


@given(data=st.data())
def test_counted_macs_equal_formula(data):
    cfg = data.draw(transpose_configs(), label="config")
    x, w, b = data.draw(arrays_for(cfg, np.float64), label="arrays")
    with npconv.count() as tally:
        y = conv_transpose2d(x, w, b, **cfg.kwargs())
    counts = tally.by_op["conv_transpose2d"]
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, **cfg.kwargs())
    assert y.shape == g.output_shape
    assert g.out_h == conv_transpose_output_size(cfg.height, cfg.kernel_size[0], cfg.stride[0], cfg.padding[0],
                                                 cfg.output_padding[0], cfg.dilation[0])
    # Scatter MACs: every input element times every weight of its group, cropped or not.
    assert counts.macs == max(cfg.batch, 1 if cfg.unbatched else 0) * cfg.in_channels * cfg.height * cfg.width \
        * cfg.out_per_group * cfg.kernel_size[0] * cfg.kernel_size[1]
    assert counts.bias_adds == (y.size if cfg.bias else 0)
