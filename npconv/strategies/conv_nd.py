"""Hypothesis strategies for convolutions over one and three axes: conv1d, conv3d and their
transposed twins, as `npconv.strategies` has them for two.

    cfg = data.draw(conv3d_configs())                          # valid by construction
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float32))       # the value families of conv2d_arrays
    layer = torch.nn.Conv3d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=b is not None,
                            **cfg.kwargs())
    npconv.conv3d(x, w, b, **cfg.kwargs())

    cfg = data.draw(conv_transpose1d_configs())
    x, w, b = data.draw(conv_nd_arrays(cfg, np.float64))
    torch.nn.functional.conv_transpose1d(*tensors, **cfg.kwargs()); npconv.conv_transpose1d(x, w, b, **cfg.kwargs())

`ConvNdConfig` and `ConvTransposeNdConfig` hold one int per axis (outermost first: depth,
height, width; a 1-D one has its length only) and obey the rules of `Conv2dConfig` and
`ConvTranspose2dConfig` on every axis: channels are multiples of groups, the dilated
kernel fits the padded input, reflect padding is narrower than the input, circular
padding at most as wide, "same" only with stride 1; output_padding < max(stride,
dilation) and an output of at least one element. `invalid_conv_nd_configs(dims)` breaks
exactly one rule of a valid configuration and says which (`cfg.broken`).

The default limits keep a 3-D example small (at most 5 per axis, kernels up to 3): a few
thousand MACs, so that thousands of examples run in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from ..geometry import PADDING_MODES, same_padding

__all__ = [
    "ConvNdConfig",
    "ConvTransposeNdConfig",
    "conv1d_configs",
    "conv3d_configs",
    "conv_nd_arrays",
    "conv_nd_configs",
    "conv_transpose1d_configs",
    "conv_transpose3d_configs",
    "conv_transpose_nd_configs",
    "invalid_conv_nd_configs",
]


@dataclass(frozen=True)
class ConvNdConfig:
    """One conv1d / conv3d call's shapes and arguments, one int per axis. `broken` names the
    rule an invalid one breaks."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    padding_mode: str = "zeros"
    bias: bool = True
    unbatched: bool = False
    broken: str | None = None
    input_shape_override: tuple[int, ...] | None = None

    @property
    def dims(self) -> int:
        return len(self.kernel_size)

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.input_shape_override is not None:
            return self.input_shape_override
        shape = (self.batch, self.in_channels) + tuple(self.size)
        return shape[1:] if self.unbatched else shape

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // max(self.groups, 1)) + tuple(self.kernel_size)

    def kwargs(self) -> dict:
        """Keyword arguments of `npconv.conv1d` / `conv3d` (and of `nn.Conv1d` / `nn.Conv3d`,
        with in/out channels and kernel_size)."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def functional_kwargs(self) -> dict:
        """Keyword arguments of `torch.nn.functional.conv1d` / `conv3d` (zeros padding only)."""
        assert self.padding_mode == "zeros", "F.conv1d / F.conv3d have no padding_mode; use nn.Conv1d / nn.Conv3d"
        kw = self.kwargs()
        del kw["padding_mode"]
        return kw


@dataclass(frozen=True)
class ConvTransposeNdConfig:
    """One conv_transpose1d / conv_transpose3d call (always valid), one int per axis. The
    weight is (in_channels, out_channels // groups, *kernel_size), as PyTorch lays it out."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    bias: bool = True
    unbatched: bool = False

    @property
    def dims(self) -> int:
        return len(self.kernel_size)

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = (self.batch, self.in_channels) + tuple(self.size)
        return shape[1:] if self.unbatched else shape

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.out_per_group) + tuple(self.kernel_size)

    def kwargs(self) -> dict:
        """Keyword arguments of `npconv.conv_transpose1d` / `conv_transpose3d` and of
        `torch.nn.functional.conv_transpose1d` / `conv_transpose3d`."""
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)


def _default(value, dims: int, one_d: int, three_d: int) -> int:
    return value if value is not None else (one_d if dims == 1 else three_d)


@st.composite
def conv_nd_configs(
    draw,
    dims: int,
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 3,
    max_groups: int = 3,
    max_size: int | None = None,
    max_kernel: int | None = None,
    max_stride: int = 3,
    max_dilation: int = 3,
    padding_modes=PADDING_MODES,
    allow_string_padding: bool = True,
    allow_unbatched: bool = True,
    allow_empty_batch: bool = True,
) -> ConvNdConfig:
    """Valid conv1d (dims=1) or conv3d (dims=3) configurations, small enough to run
    thousands of times: per axis what `conv2d_configs` draws per axis. max_size and
    max_kernel default to 12 and 5 for 1-D, 5 and 3 for 3-D."""
    from . import _padding_limits  # npconv.strategies' rule for each mode, said there once

    max_size = _default(max_size, dims, 12, 5)
    max_kernel = _default(max_kernel, dims, 5, 3)
    batch = draw(st.integers(0 if allow_empty_batch else 1, max_batch))
    groups = draw(st.integers(1, max_groups))
    in_per_group = draw(st.integers(1, max_channels_per_group))
    out_per_group = draw(st.integers(1, max_channels_per_group))
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(dims))
    mode = draw(st.sampled_from(padding_modes))
    padding_kind = draw(st.sampled_from(("ints", "same", "valid") if allow_string_padding else ("ints",)))
    if padding_kind == "same":
        stride = (1,) * dims
    else:
        stride = tuple(draw(st.integers(1, max_stride)) for _ in range(dims))

    # Input size per axis: large enough for the dilated kernel (after padding) and the mode's limits.
    size, pads = [], []
    for k, d in zip(kernel, dilation):
        span = d * (k - 1) + 1
        n = draw(st.integers(1, max_size))
        if padding_kind == "same":
            widest = max(same_padding(k, d))  # the larger side
            n = max(n, widest + 1) if mode == "reflect" else max(n, widest) if mode == "circular" else n
        elif padding_kind == "valid":
            n = max(n, span)
        else:
            p = draw(st.integers(0, _padding_limits(mode, n)))
            n = max(n, span - 2 * p)
            pads.append(p)
        size.append(n)
    padding = padding_kind if padding_kind != "ints" else tuple(pads)
    return ConvNdConfig(
        batch=batch, in_channels=in_per_group * groups, out_channels=out_per_group * groups, groups=groups,
        size=tuple(size), kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
        bias=draw(st.booleans()), unbatched=allow_unbatched and batch == 1 and draw(st.booleans()),
    )


def conv1d_configs(**limits):
    """`conv_nd_configs(1, **limits)`: valid conv1d configurations."""
    return conv_nd_configs(1, **limits)


def conv3d_configs(**limits):
    """`conv_nd_configs(3, **limits)`: valid conv3d configurations."""
    return conv_nd_configs(3, **limits)


@st.composite
def conv_transpose_nd_configs(
    draw,
    dims: int,
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 3,
    max_groups: int = 3,
    max_size: int | None = None,
    max_kernel: int | None = None,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_padding: int = 3,
    allow_unbatched: bool = True,
    allow_empty_batch: bool = True,
) -> ConvTransposeNdConfig:
    """Valid conv_transpose1d / conv_transpose3d configurations: per axis what
    `conv_transpose2d_configs` draws per axis (output_padding < max(stride, dilation), padding
    at most max_padding and leaving an output of at least 1). max_size and max_kernel default
    to 10 and 4 for 1-D, 4 and 3 for 3-D."""
    max_size = _default(max_size, dims, 10, 4)
    max_kernel = _default(max_kernel, dims, 4, 3)
    batch = draw(st.integers(0 if allow_empty_batch else 1, max_batch))
    groups = draw(st.integers(1, max_groups))
    axes = []
    for _ in range(dims):
        k = draw(st.integers(1, max_kernel))
        s = draw(st.integers(1, max_stride))
        d = draw(st.integers(1, max_dilation))
        n = draw(st.integers(1, max_size))
        op = draw(st.integers(0, max(s, d) - 1))
        widest = ((n - 1) * s + d * (k - 1) + op) // 2  # output >= 1
        axes.append((n, k, s, draw(st.integers(0, min(max_padding, widest))), op, d))
    size, kernel, stride, padding, output_padding, dilation = (tuple(v) for v in zip(*axes))
    in_per_group = draw(st.integers(1, max_channels_per_group))
    out_per_group = draw(st.integers(1, max_channels_per_group))
    return ConvTransposeNdConfig(
        batch=batch, in_channels=in_per_group * groups, out_channels=out_per_group * groups, groups=groups,
        size=size, kernel_size=kernel, stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, bias=draw(st.booleans()), unbatched=allow_unbatched and batch == 1 and draw(st.booleans()),
    )


def conv_transpose1d_configs(**limits):
    """`conv_transpose_nd_configs(1, **limits)`."""
    return conv_transpose_nd_configs(1, **limits)


def conv_transpose3d_configs(**limits):
    """`conv_transpose_nd_configs(3, **limits)`."""
    return conv_transpose_nd_configs(3, **limits)


@st.composite
def conv_nd_arrays(draw, config, dtype=np.float32, values=None):
    """(input, weight, bias or None) for a `ConvNdConfig` or `ConvTransposeNdConfig`,
    C-contiguous, of `dtype`; `values` as for `conv2d_arrays` (one of VALUE_FAMILIES, or None
    to draw the family: "normal", "integers", "wide"; "special" only when asked for)."""
    from . import _draw_arrays  # conv2d_arrays' value families, said there once

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
    "argument_length",
)


@st.composite
def invalid_conv_nd_configs(draw, dims: int, *, rules=_BREAKERS) -> ConvNdConfig:
    """A valid conv1d / conv3d configuration (zeros padding, integer padding) with exactly one
    rule broken, on one axis drawn at random; `.broken` names the rule."""
    rule = draw(st.sampled_from(rules))
    cfg = draw(conv_nd_configs(dims, allow_string_padding=False, allow_unbatched=False, allow_empty_batch=False,
                               padding_modes=("zeros",)))
    axis = draw(st.integers(0, dims - 1))
    neg = draw(st.integers(-3, 0))

    def at(values, value):
        return tuple(value if a == axis else v for a, v in enumerate(values))

    if rule == "stride_not_positive":
        cfg = replace(cfg, stride=at(cfg.stride, neg))
    elif rule == "padding_negative":
        cfg = replace(cfg, padding=at(cfg.padding, min(neg, -1)))
    elif rule == "dilation_below_one":
        cfg = replace(cfg, dilation=at(cfg.dilation, neg))
    elif rule == "groups_not_positive":
        cfg = replace(cfg, groups=neg)
    elif rule == "groups_not_dividing_out_channels":
        groups = draw(st.integers(2, 4))
        out = draw(st.integers(groups + 1, 9).filter(lambda o: o % groups))  # (fewer than groups: another rule)
        cfg = replace(cfg, groups=groups, in_channels=groups * draw(st.integers(1, 3)), out_channels=out)
    elif rule == "channel_mismatch":
        wrong = draw(st.integers(1, cfg.in_channels + 3).filter(lambda c: c != cfg.in_channels))
        return replace(cfg, input_shape_override=(cfg.batch, wrong) + cfg.size, broken=rule)
    elif rule == "kernel_larger_than_padded_input":
        k = draw(st.integers(2, 5))
        span = cfg.dilation[axis] * (k - 1) + 1  # >= 2
        p = draw(st.integers(0, (span - 2) // 2))
        n = draw(st.integers(1, span - 1 - 2 * p))  # padded size < span
        cfg = replace(cfg, kernel_size=at(cfg.kernel_size, k), size=at(cfg.size, n), padding=at(cfg.padding, p))
    elif rule == "same_with_stride":
        cfg = replace(cfg, padding="same", stride=at(cfg.stride, draw(st.integers(2, 3))))
    elif rule == "unknown_padding_string":
        cfg = replace(cfg, padding=draw(st.sampled_from(("full", "SAME", "Valid", ""))))
    elif rule == "unknown_padding_mode":
        cfg = replace(cfg, padding_mode=draw(st.sampled_from(("zero", "symmetric", "edge", "wrap"))))
    elif rule in ("reflect_padding_too_wide", "circular_padding_too_wide"):
        # one axis padded past the mode's limit with a 1-wide kernel; the others valid under the mode
        mode = rule.split("_")[0]
        n = draw(st.integers(1, 5))
        wide = draw(st.integers(n, n + 2) if mode == "reflect" else st.integers(n + 1, n + 3))
        size = tuple(n if a == axis else max(s, p + 1, cfg.dilation[a] * (cfg.kernel_size[a] - 1) + 1)
                     for a, (s, p) in enumerate(zip(cfg.size, cfg.padding)))
        cfg = replace(cfg, padding_mode=mode, size=size, padding=at(cfg.padding, wide),
                      kernel_size=at(cfg.kernel_size, 1), stride=at(cfg.stride, 1))
    elif rule == "input_ndim":
        full = (cfg.batch, cfg.in_channels) + cfg.size
        shape = draw(st.sampled_from((full[2:], (1,) + full)))
        return replace(cfg, input_shape_override=shape, broken=rule)
    elif rule == "argument_length":
        name = draw(st.sampled_from(("stride", "padding", "dilation")))
        length = draw(st.sampled_from(tuple(n for n in (2, 3, 4) if n != dims)))
        cfg = replace(cfg, **{name: (1,) * length})
    return replace(cfg, broken=rule)
