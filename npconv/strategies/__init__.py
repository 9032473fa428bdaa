"""Hypothesis strategies for property-testing 2-D convolutions (yours or PyTorch's).

Every public strategy of npconv is importable from here: conv2d (`conv2d_configs`,
`conv2d_arrays`, `invalid_conv2d_configs`), conv_transpose2d (`conv_transpose2d_configs`,
`conv_transpose2d_arrays`), and whole networks (`networks`, `network_and_input`,
`NetworkSpec`, defined in `npconv.strategies.random_networks`), and a Hypothesis example
database shared across processes and machines (`example_database`, in `.database`).

The usual pattern draws a configuration, then arrays for it:

    from hypothesis import given, strategies as st
    from npconv.strategies import conv2d_configs, conv2d_arrays

    @given(st.data())
    def test_torch_conv2d_matches_npconv(data):
        cfg = data.draw(conv2d_configs(padding_modes=("zeros",)))
        x, w, b = data.draw(conv2d_arrays(cfg, dtype=np.float32))
        out = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                         None if b is None else torch.from_numpy(b),
                                         **cfg.functional_kwargs())
        npconv.assert_close_to_reference(out, x, w, b, **cfg.kwargs())

`Conv2dConfig` is valid by construction: channels are multiples of groups, the dilated
kernel fits the padded input, reflect padding is narrower than the input, circular
padding at most as wide, "same" only with stride 1. `invalid_conv2d_configs()` breaks
exactly one rule of a valid configuration and says which (`cfg.broken`).

`ConvTranspose2dConfig` likewise, for conv_transpose2d (and its backward):

    cfg = data.draw(conv_transpose2d_configs())
    x, w, b = data.draw(conv_transpose2d_arrays(cfg, dtype=np.float64))
    out = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                               None if b is None else torch.from_numpy(b),
                                               **cfg.kwargs())
    npconv.transpose.conv_transpose2d(x, w, b, **cfg.kwargs())      # the reference

valid by construction too: channels are multiples of groups, output_padding is smaller
than max(stride, dilation) on each axis, padding leaves an output of at least one pixel.

Arrays come from a NumPy generator seeded by Hypothesis (fast, reproducible, shrinks by
seed), with value families: "normal" (standard normal), "integers" (small integers, so
that sums are exact), "wide" (magnitudes spread over many binades), and "special"
(normal values with a few NaN / +-Inf planted in the input).

Whole networks (re-exported from `npconv.strategies.random_networks`, whose docstring lists the layer
vocabulary): `networks()` draws a `NetworkSpec`, pure data that Hypothesis prints as
re-typeable Python and shrinks towards fewer, plainer layers; `spec.build()` makes the
torch module (eval mode, seeded) and `spec.input()` a NumPy input for it;
`network_and_input(dtype)` draws the built (module, input) pair directly (a failure then
prints less readably than a spec).

    @given(networks())
    def test_capture_matches_torch(spec):
        model, x = spec.build(), spec.input()

Importing this module imports hypothesis and NumPy, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from ..geometry import PADDING_MODES, same_padding
from .database import example_database
from .random_networks import NetworkSpec, network_and_input, networks
from . import conv_nd
from .conv_nd import *  # noqa: F401,F403 -- conv1d, conv3d and transposed: conv_nd.__all__

__all__ = [
    "example_database",
    "Conv2dConfig",
    "conv2d_configs",
    "conv2d_arrays",
    "invalid_conv2d_configs",
    "ConvTranspose2dConfig",
    "conv_transpose2d_configs",
    "conv_transpose2d_arrays",
    "NetworkSpec",
    "networks",
    "network_and_input",
    "VALUE_FAMILIES",
    *conv_nd.__all__,
]

VALUE_FAMILIES = ("normal", "integers", "wide", "special")


@dataclass(frozen=True)
class Conv2dConfig:
    """One conv2d call's shapes and arguments. `broken` names the rule an invalid one breaks."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    height: int
    width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    padding_mode: str = "zeros"
    bias: bool = True
    unbatched: bool = False
    broken: str | None = None
    input_shape_override: tuple[int, ...] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.input_shape_override is not None:
            return self.input_shape_override
        shape = (self.batch, self.in_channels, self.height, self.width)
        return shape[1:] if self.unbatched else shape

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // max(self.groups, 1)) + tuple(self.kernel_size)

    def kwargs(self) -> dict:
        """Keyword arguments of `npconv.conv2d` (and of `nn.Conv2d`, with in/out channels)."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def functional_kwargs(self) -> dict:
        """Keyword arguments of `torch.nn.functional.conv2d` (zeros padding only)."""
        assert self.padding_mode == "zeros", "F.conv2d has no padding_mode; use nn.Conv2d"
        kw = self.kwargs()
        del kw["padding_mode"]
        return kw


def _padding_limits(mode: str, size: int) -> int:
    """The largest padding a mode allows on an axis of this size (zeros: unbounded, capped at 3)."""
    if mode == "reflect":
        return min(3, size - 1)
    if mode == "circular":
        return min(3, size)
    return 3


@st.composite
def conv2d_configs(
    draw,
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 4,
    max_groups: int = 4,
    max_size: int = 9,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
    padding_modes=PADDING_MODES,
    allow_string_padding: bool = True,
    allow_unbatched: bool = True,
    allow_empty_batch: bool = True,
    depthwise: bool | None = None,
) -> Conv2dConfig:
    """Valid conv2d configurations, small enough to run thousands of times.

    depthwise=True draws groups == in_channels (with a channel multiplier); False forbids
    groups > 1; None draws any groups.
    """
    min_batch = 0 if allow_empty_batch else 1
    batch = draw(st.integers(min_batch, max_batch))
    if depthwise is False:
        groups = 1
    else:
        groups = draw(st.integers(1, max_groups))
    in_per_group = 1 if depthwise else draw(st.integers(1, max_channels_per_group))
    out_per_group = draw(st.integers(1, max_channels_per_group))
    kh = draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    dh = draw(st.integers(1, max_dilation))
    dw = draw(st.integers(1, max_dilation))
    mode = draw(st.sampled_from(padding_modes))
    padding_kind = draw(st.sampled_from(("ints", "same", "valid") if allow_string_padding else ("ints",)))
    if padding_kind == "same":
        stride = (1, 1)
    else:
        stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))

    # Input size: large enough for the dilated kernel (after padding) and for the mode's limits.
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    height = draw(st.integers(1, max(1, max_size)))
    width = draw(st.integers(1, max(1, max_size)))
    if padding_kind == "same":
        padding: tuple[int, int] | str = "same"
        pads = (max(same_padding(kh, dh)), max(same_padding(kw, dw)))  # the larger side of each
        if mode == "reflect":
            height, width = max(height, pads[0] + 1), max(width, pads[1] + 1)
        elif mode == "circular":
            height, width = max(height, pads[0]), max(width, pads[1])
    elif padding_kind == "valid":
        padding = "valid"
        height, width = max(height, span_h), max(width, span_w)
    else:
        ph = draw(st.integers(0, _padding_limits(mode, height)))
        pw = draw(st.integers(0, _padding_limits(mode, width)))
        height = max(height, span_h - 2 * ph)
        width = max(width, span_w - 2 * pw)
        padding = (ph, pw)
    return Conv2dConfig(
        batch=batch,
        in_channels=in_per_group * groups,
        out_channels=out_per_group * groups,
        groups=groups,
        height=height,
        width=width,
        kernel_size=(kh, kw),
        stride=stride,
        padding=padding,
        dilation=(dh, dw),
        padding_mode=mode,
        bias=draw(st.booleans()),
        unbatched=allow_unbatched and batch == 1 and draw(st.booleans()),
    )


@st.composite
def conv2d_arrays(draw, config: Conv2dConfig, dtype=np.float32, values=None):
    """(input, weight, bias or None) for `config`, C-contiguous, of `dtype`.

    values: one of VALUE_FAMILIES, or None to draw the family too ("special" is only drawn
    when asked for explicitly). Seeded from Hypothesis, so failures reproduce and shrink.
    """
    return _draw_arrays(draw, config, dtype, values)


def _draw_arrays(draw, config, dtype, values):
    """The arrays of `conv2d_arrays` / `conv_transpose2d_arrays`, for any config with
    input_shape, weight_shape, out_channels and bias."""
    family = values if values is not None else draw(st.sampled_from(("normal", "integers", "wide")))
    if family not in VALUE_FAMILIES:
        raise ValueError(f"values must be one of {VALUE_FAMILIES} or None, not {family!r}")
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def make(shape):
        if family == "integers":
            return rng.integers(-4, 5, size=shape).astype(dtype)
        if family == "wide":
            mantissa = rng.standard_normal(shape)
            return (mantissa * 2.0 ** rng.integers(-8, 9, size=shape)).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    x = make(config.input_shape)
    w = make(config.weight_shape)
    b = make((config.out_channels,)) if config.bias else None
    if family == "special" and x.size:
        planted = rng.integers(1, min(4, x.size) + 1)
        flat = x.reshape(-1)
        for k in rng.choice(x.size, size=planted, replace=False):
            flat[k] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype))
    return x, w, b


# --- conv_transpose2d ------------------------------------------------------------------


@dataclass(frozen=True)
class ConvTranspose2dConfig:
    """One conv_transpose2d call's shapes and arguments (always valid).

    The weight is (in_channels, out_channels // groups, kH, kW), as PyTorch lays it out.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    height: int
    width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    bias: bool = True
    unbatched: bool = False

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = (self.batch, self.in_channels, self.height, self.width)
        return shape[1:] if self.unbatched else shape

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.in_channels, self.out_per_group) + tuple(self.kernel_size)

    def kwargs(self) -> dict:
        """Keyword arguments of `npconv.transpose.conv_transpose2d`, of
        `torch.nn.functional.conv_transpose2d`, and of `nn.ConvTranspose2d` (with in/out
        channels and kernel_size)."""
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)


@st.composite
def conv_transpose2d_configs(
    draw,
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 3,
    max_groups: int = 3,
    max_size: int = 6,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_padding: int = 3,
    allow_unbatched: bool = True,
    allow_empty_batch: bool = True,
) -> ConvTranspose2dConfig:
    """Valid conv_transpose2d configurations, small enough to run thousands of times.

    Per axis: output_padding < max(stride, dilation) (PyTorch's rule), and padding at most
    max_padding and small enough that the output has at least one pixel:
    (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1 >= 1.
    """
    batch = draw(st.integers(0 if allow_empty_batch else 1, max_batch))
    groups = draw(st.integers(1, max_groups))
    kernel, stride, dilation, size, padding, output_padding = [], [], [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, max_kernel))
        s = draw(st.integers(1, max_stride))
        d = draw(st.integers(1, max_dilation))
        h = draw(st.integers(1, max_size))
        op = draw(st.integers(0, max(s, d) - 1))
        widest = ((h - 1) * s + d * (k - 1) + op) // 2  # output >= 1
        p = draw(st.integers(0, min(max_padding, widest)))
        kernel.append(k), stride.append(s), dilation.append(d), size.append(h)
        padding.append(p), output_padding.append(op)
    in_per_group = draw(st.integers(1, max_channels_per_group))
    out_per_group = draw(st.integers(1, max_channels_per_group))
    return ConvTranspose2dConfig(
        batch=batch,
        in_channels=in_per_group * groups,
        out_channels=out_per_group * groups,
        groups=groups,
        height=size[0],
        width=size[1],
        kernel_size=tuple(kernel),
        stride=tuple(stride),
        padding=tuple(padding),
        output_padding=tuple(output_padding),
        dilation=tuple(dilation),
        bias=draw(st.booleans()),
        unbatched=allow_unbatched and batch == 1 and draw(st.booleans()),
    )


@st.composite
def conv_transpose2d_arrays(draw, config: ConvTranspose2dConfig, dtype=np.float32, values=None):
    """(input, weight, bias or None) for `config`, C-contiguous, of `dtype`.

    values: as for `conv2d_arrays` (one of VALUE_FAMILIES, or None to draw the family).
    """
    return _draw_arrays(draw, config, dtype, values)


_BREAKERS = (
    "stride_not_positive",
    "padding_negative",
    "dilation_below_one",
    "groups_not_positive",
    "groups_not_dividing_out_channels",
    "channel_mismatch",
    "kernel_larger_than_padded_input",
    "same_with_stride",
    "unknown_padding_string",
    "unknown_padding_mode",
    "reflect_padding_too_wide",
    "circular_padding_too_wide",
    "input_ndim",
)


@st.composite
def invalid_conv2d_configs(draw, *, rules=_BREAKERS) -> Conv2dConfig:
    """A valid configuration with exactly one rule broken; `.broken` names the rule.

    Some breakers need room (a padding mode's limit, a kernel that can outgrow the input);
    the configuration is adjusted so that the rule really is broken.
    """
    rule = draw(st.sampled_from(rules))
    cfg = draw(conv2d_configs(allow_string_padding=False, allow_unbatched=False, allow_empty_batch=False,
                              padding_modes=("zeros",)))
    neg = draw(st.integers(-3, 0))
    if rule == "stride_not_positive":
        cfg = replace(cfg, stride=(neg, cfg.stride[1]) if draw(st.booleans()) else (cfg.stride[0], neg))
    elif rule == "padding_negative":
        cfg = replace(cfg, padding=(min(neg, -1), cfg.padding[1]))
    elif rule == "dilation_below_one":
        cfg = replace(cfg, dilation=(cfg.dilation[0], neg))
    elif rule == "groups_not_positive":
        cfg = replace(cfg, groups=neg)
    elif rule == "groups_not_dividing_out_channels":
        groups = draw(st.integers(2, 4))
        # more output channels than groups: with fewer, the check that fails first is the
        # weight's size ("expected weight to be at least {groups}"), another rule's message
        out = draw(st.integers(groups + 1, 9).filter(lambda o: o % groups))
        cfg = replace(cfg, groups=groups, in_channels=groups * draw(st.integers(1, 3)), out_channels=out)
    elif rule == "channel_mismatch":
        wrong = draw(st.integers(1, cfg.in_channels + 3).filter(lambda c: c != cfg.in_channels))
        shape = (cfg.batch, wrong, cfg.height, cfg.width)
        return replace(cfg, input_shape_override=shape, broken=rule)
    elif rule == "kernel_larger_than_padded_input":
        kh = draw(st.integers(2, 5))
        span = cfg.dilation[0] * (kh - 1) + 1  # >= 2
        ph = draw(st.integers(0, (span - 2) // 2))
        height = draw(st.integers(1, span - 1 - 2 * ph))  # padded height < span
        cfg = replace(cfg, kernel_size=(kh, cfg.kernel_size[1]), height=height, padding=(ph, cfg.padding[1]))
    elif rule == "same_with_stride":
        cfg = replace(cfg, padding="same", stride=(draw(st.integers(2, 3)), cfg.stride[1]))
    elif rule == "unknown_padding_string":
        cfg = replace(cfg, padding=draw(st.sampled_from(("full", "SAME", "Valid", ""))))
    elif rule == "unknown_padding_mode":
        cfg = replace(cfg, padding_mode=draw(st.sampled_from(("zero", "symmetric", "edge", "wrap"))))
    elif rule == "reflect_padding_too_wide":
        height = draw(st.integers(1, 5))
        cfg = replace(cfg, padding_mode="reflect", height=height,
                      padding=(draw(st.integers(height, height + 2)), cfg.padding[1]),
                      kernel_size=(1, cfg.kernel_size[1]), stride=(1, cfg.stride[1]))
        cfg = _fit_width_for_reflect(cfg)
    elif rule == "circular_padding_too_wide":
        width = draw(st.integers(1, 5))
        cfg = replace(cfg, padding_mode="circular", width=width,
                      padding=(cfg.padding[0], draw(st.integers(width + 1, width + 3))),
                      kernel_size=(cfg.kernel_size[0], 1))
        cfg = _fit_height_for_circular(cfg)
    elif rule == "input_ndim":
        full = (cfg.batch, cfg.in_channels, cfg.height, cfg.width)
        shape = draw(st.sampled_from((full[2:], (1,) + full, full[3:])))
        return replace(cfg, input_shape_override=shape, broken=rule)
    return replace(cfg, broken=rule)


def _fit_width_for_reflect(cfg: Conv2dConfig) -> Conv2dConfig:
    """Keep the width valid under reflect padding (padding < width) and wide enough for the
    kernel, so that only the height breaks a rule."""
    pw = cfg.padding[1]
    width = max(cfg.width, pw + 1, cfg.dilation[1] * (cfg.kernel_size[1] - 1) + 1)
    return replace(cfg, width=width)


def _fit_height_for_circular(cfg: Conv2dConfig) -> Conv2dConfig:
    """Keep the height valid under circular padding (padding <= height) and tall enough for
    the kernel, so that only the width breaks a rule."""
    ph = cfg.padding[0]
    height = max(cfg.height, ph, cfg.dilation[0] * (cfg.kernel_size[0] - 1) + 1 - 2 * ph, 1)
    return replace(cfg, height=height)
