"""Hypothesis strategies of small random CNNs, as data that builds PyTorch modules.

For property-testing whole-network paths (`npconv.capture`, `npconv.convert.from_torch`)
against PyTorch:

    from hypothesis import given
    from npconv.strategies.random_networks import networks

    @given(networks())
    def test_capture_matches_torch(spec):
        model, x = spec.build(), spec.input()          # torch module (eval), NumPy input
        ...

What is drawn is a `NetworkSpec`: pure data (frozen dataclasses of ints, tuples and
strings), so Hypothesis prints a failing architecture as readable, re-typeable Python and
shrinks it towards fewer, smaller, plainer layers. `spec.build()` imports torch then and
only then (importing this module does not import torch).

A network is an input shape (N in 1..2, C, H, W), a seed, 1..max_depth top-level layers
or blocks, and an optional head (flatten + Linear). The vocabulary (`LAYER_KINDS`):

    conv              Conv2d: kernel 1..3 per axis (square or rectangular), stride 1..2,
                      padding 0..k//2 per axis or "same" (stride 1 only), dilation 1..2,
                      groups 1, a divisor of the input channels, or depthwise (groups =
                      C_in, C_out a multiple of it), bias on/off; padding_mode "zeros"
                      mostly, "reflect" / "replicate" / "circular" where the padding allows
    conv_transpose    ConvTranspose2d: kernel 1..3, stride 1..2, dilation 1..2, padding,
                      output_padding < max(stride, dilation), groups, bias on/off
    batch_norm        BatchNorm2d
    activation        ReLU, ReLU6, Hardtanh(min_val < max_val, random), Hardswish,
                      Hardsigmoid, SiLU, Sigmoid (never in place)
    max_pool          MaxPool2d: kernel 2..3, stride 1..kernel, padding <= k//2, ceil_mode
    avg_pool          AvgPool2d: the same, count_include_pad, divisor_override sometimes
    global_avg_pool   AdaptiveAvgPool2d((1, 1))
  blocks (`BLOCK_KINDS`), whose forward is functional data flow:
    residual          x + f(x), f a shape-preserving branch of 1..2 layers
    concat            torch.cat([f(x), g(x)], dim=1), two spatially-preserving branches
    squeeze_excite    x * sigmoid(conv(relu(conv(x.mean((2, 3), keepdim=True)))))
    channel_shuffle   view(N, g, C/g, H, W).transpose(1, 2).contiguous().view(N, C, H, W)
    split             torch.chunk(x, 2, 1) or torch.split(x, [k, C-k], 1), each part
                      through its own branch, then torch.cat along channels

Branches (inside residual, concat, split) draw 1..2 layers from conv (stride 1, size-
preserving padding), batch_norm, activation, squeeze_excite and channel_shuffle, and end in
a 1x1 projection conv when their channel count must be brought to a target or budget.

Shapes are valid by construction: the drawer tracks (C, H, W) and adapts a layer's
arguments to fit (a dilation or kernel too large for the padded input is reduced, a padding
mode the size does not allow falls back to "zeros"), or skips a layer that cannot fit.
Every tracked size stays within 1..max_size and every channel count within 1..max_channels,
so one forward takes about a millisecond.

Weights are PyTorch's default initialisation under `torch.manual_seed(spec.seed)`; every
BatchNorm gets random affine parameters and calibrated, perturbed running statistics from
`npconv.twins.seed_batchnorm` (so no BatchNorm is an identity), with running_var floored
at `VAR_FLOOR` so that a channel a ReLU killed on the calibration batch does not divide by
sqrt(eps).

`export_decompositions()` is the decomposition table under which every drawn network
exports to a small, fixed set of ATen ops (`EXPORT_OPS`).
"""

from __future__ import annotations

import math
import functools
from dataclasses import MISSING, dataclass, fields

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "NetworkSpec",
    "networks",
    "network_and_input",
    "export_decompositions",
    "LAYER_KINDS",
    "BLOCK_KINDS",
    "ACTIVATIONS",
    "EXPORT_OPS",
    "VAR_FLOOR",
    "Conv2d",
    "ConvTranspose2d",
    "BatchNorm2d",
    "Activation",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool",
    "Residual",
    "Concat",
    "SqueezeExcite",
    "ChannelShuffle",
    "SplitConcat",
    "Linear",
]

BLOCK_KINDS = ("residual", "concat", "squeeze_excite", "channel_shuffle", "split")
LAYER_KINDS = ("conv", "conv_transpose", "batch_norm", "activation", "max_pool", "avg_pool",
               "global_avg_pool") + BLOCK_KINDS
ACTIVATIONS = ("ReLU", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "SiLU", "Sigmoid")
VAR_FLOOR = 1e-2

# How often each kind is drawn at the top level (listed first: what a failure shrinks to).
_WEIGHTS = {"conv": 4, "activation": 2, "batch_norm": 2, "conv_transpose": 1, "max_pool": 1, "avg_pool": 1,
            "global_avg_pool": 1, "residual": 1, "concat": 1, "squeeze_excite": 1, "channel_shuffle": 1,
            "split": 1}
_BRANCH_KINDS = ("conv", "batch_norm", "activation", "squeeze_excite", "channel_shuffle")

# The ATen ops (str(node.target) of call_function nodes) that every drawn network exports to
# under export_decompositions() (torch 2.13). Of these, sub.Tensor, split.Tensor,
# _adaptive_avg_pool2d, transpose.int, unsqueeze, squeeze.dims and expand were not seen in
# ~1,000 drawn networks (chunk/split become split_with_sizes, transpose becomes permute,
# AdaptiveAvgPool2d((1, 1)) becomes mean.dim); the list is the contract, not a census.
EXPORT_OPS = frozenset({
    "aten.convolution.default", "aten._native_batch_norm_legit_no_training.default", "aten.relu.default",
    "aten.hardtanh.default", "aten.clamp.default", "aten.add.Tensor", "aten.sub.Tensor", "aten.mul.Tensor",
    "aten.div.Tensor", "aten.sigmoid.default", "aten.mean.dim", "aten.cat.default",
    "aten.split_with_sizes.default", "aten.split.Tensor", "aten.view.default", "aten.permute.default",
    "aten.clone.default", "aten.max_pool2d_with_indices.default", "aten.avg_pool2d.default",
    "aten._adaptive_avg_pool2d.default", "aten.addmm.default", "aten.transpose.int", "aten.unsqueeze.default",
    "aten.squeeze.dims", "aten.expand.default", "aten.slice.Tensor", "aten.reflection_pad2d.default",
    "aten.replication_pad2d.default", "aten.constant_pad_nd.default", "<built-in function getitem>",
})


# ----------------------------------------------------------------------------- shape arithmetic

def _conv_out(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _conv_transpose_out(size: int, kernel: int, stride: int, padding: int, output_padding: int,
                        dilation: int) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape (dilation 1): with ceil_mode, a last window that would
    start in the right padding is dropped."""
    span = size + 2 * padding - kernel
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _same_sides(kernel: int, dilation: int) -> tuple[int, int]:
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ----------------------------------------------------------------------------- layer specs

class _Layer:
    """A layer spec: `kind`, `out_shape((C, H, W))` and `module()` (imports torch)."""

    kind: str  # a class attribute (not a dataclass field): one of LAYER_KINDS, or "linear_head"

    def children(self) -> tuple:
        return ()

    def walk(self):
        """This spec and every spec inside it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()

    def __repr__(self) -> str:  # only the fields that differ from their defaults, compact
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.default is not MISSING and value == f.default:
                continue
            parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _repr_pretty_(self, printer, cycle):  # Hypothesis prints falsifying examples with this
        printer.text(repr(self))


@dataclass(frozen=True, repr=False)
class Conv2d(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    kind = "conv"

    def out_shape(self, chw):
        _, h, w = chw
        if self.padding == "same":
            return self.out_channels, h, w
        return (self.out_channels,
                _conv_out(h, self.kernel_size[0], self.stride[0], 2 * self.padding[0], self.dilation[0]),
                _conv_out(w, self.kernel_size[1], self.stride[1], 2 * self.padding[1], self.dilation[1]))

    def module(self):
        import torch.nn as nn

        return nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, groups=self.groups, bias=self.bias,
                         padding_mode=self.padding_mode)


@dataclass(frozen=True, repr=False)
class ConvTranspose2d(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True
    kind = "conv_transpose"

    def out_shape(self, chw):
        _, h, w = chw
        return (self.out_channels,) + tuple(
            _conv_transpose_out(s, self.kernel_size[i], self.stride[i], self.padding[i], self.output_padding[i],
                                self.dilation[i]) for i, s in enumerate((h, w)))

    def module(self):
        import torch.nn as nn

        return nn.ConvTranspose2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding, groups=self.groups,
                                  bias=self.bias, dilation=self.dilation)


@dataclass(frozen=True, repr=False)
class BatchNorm2d(_Layer):
    num_features: int
    kind = "batch_norm"

    def out_shape(self, chw):
        return chw

    def module(self):
        import torch.nn as nn

        return nn.BatchNorm2d(self.num_features)


@dataclass(frozen=True, repr=False)
class Activation(_Layer):
    """One of ACTIVATIONS; min_val / max_val only for Hardtanh."""

    name: str
    min_val: float | None = None
    max_val: float | None = None
    kind = "activation"

    def out_shape(self, chw):
        return chw

    def module(self):
        import torch.nn as nn

        if self.name == "Hardtanh":
            return nn.Hardtanh(self.min_val, self.max_val)
        return getattr(nn, self.name)()


@dataclass(frozen=True, repr=False)
class MaxPool2d(_Layer):
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    kind = "max_pool"

    def out_shape(self, chw):
        c, h, w = chw
        return (c,) + tuple(_pool_out(s, self.kernel_size[i], self.stride[i], self.padding[i], self.ceil_mode)
                            for i, s in enumerate((h, w)))

    def module(self):
        import torch.nn as nn

        return nn.MaxPool2d(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)


@dataclass(frozen=True, repr=False)
class AvgPool2d(_Layer):
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    kind = "avg_pool"

    def out_shape(self, chw):
        return MaxPool2d.out_shape(self, chw)

    def module(self):
        import torch.nn as nn

        return nn.AvgPool2d(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)


@dataclass(frozen=True, repr=False)
class GlobalAvgPool(_Layer):
    """AdaptiveAvgPool2d((1, 1))."""

    kind = "global_avg_pool"

    def out_shape(self, chw):
        return chw[0], 1, 1

    def module(self):
        import torch.nn as nn

        return nn.AdaptiveAvgPool2d((1, 1))


def _branch_shape(layers, chw):
    for layer in layers:
        chw = layer.out_shape(chw)
    return chw


@dataclass(frozen=True, repr=False)
class Residual(_Layer):
    """x + body(x); body preserves the shape."""

    body: tuple
    kind = "residual"

    def children(self):
        return self.body

    def out_shape(self, chw):
        return chw

    def module(self):
        return _torch_blocks().Residual([layer.module() for layer in self.body])


@dataclass(frozen=True, repr=False)
class Concat(_Layer):
    """torch.cat([left(x), right(x)], dim=1); both branches keep H and W."""

    left: tuple
    right: tuple
    kind = "concat"

    def children(self):
        return self.left + self.right

    def out_shape(self, chw):
        left, right = _branch_shape(self.left, chw), _branch_shape(self.right, chw)
        return left[0] + right[0], left[1], left[2]

    def module(self):
        return _torch_blocks().Concat([m.module() for m in self.left], [m.module() for m in self.right])


@dataclass(frozen=True, repr=False)
class SqueezeExcite(_Layer):
    """x * sigmoid(expand(relu(reduce(x.mean((2, 3), keepdim=True))))), 1x1 convs with bias."""

    channels: int
    reduced: int
    kind = "squeeze_excite"

    def out_shape(self, chw):
        return chw

    def module(self):
        return _torch_blocks().SqueezeExcite(self.channels, self.reduced)


@dataclass(frozen=True, repr=False)
class ChannelShuffle(_Layer):
    """ShuffleNet's shuffle: view(N, groups, C // groups, H, W), transpose(1, 2), contiguous, view."""

    groups: int
    kind = "channel_shuffle"

    def out_shape(self, chw):
        return chw

    def module(self):
        return _torch_blocks().ChannelShuffle(self.groups)


@dataclass(frozen=True, repr=False)
class SplitConcat(_Layer):
    """Channels split in two (torch.chunk(x, 2, 1) when how="chunk": the first part has
    ceil(C/2); torch.split(x, [first_channels, C - first_channels], 1) when how="split"),
    each part through its own branch, the results concatenated along channels."""

    how: str
    first_channels: int
    first: tuple
    second: tuple
    kind = "split"

    def children(self):
        return self.first + self.second

    def out_shape(self, chw):
        c, h, w = chw
        a = _branch_shape(self.first, (self.first_channels, h, w))
        b = _branch_shape(self.second, (c - self.first_channels, h, w))
        return a[0] + b[0], h, w

    def module(self):
        return _torch_blocks().SplitConcat(self.how, self.first_channels, [m.module() for m in self.first],
                                           [m.module() for m in self.second])


@dataclass(frozen=True, repr=False)
class Linear(_Layer):
    """The head: torch.flatten(x, 1), then nn.Linear. Drawn with bias (bias=False would
    export to aten.mm.default, outside EXPORT_OPS)."""

    in_features: int
    out_features: int
    bias: bool = True
    kind = "linear_head"

    def module(self):
        import torch.nn as nn

        return nn.Sequential(nn.Flatten(), nn.Linear(self.in_features, self.out_features, bias=self.bias))


@functools.cache
def _torch_blocks():
    """The block modules (torch imported here, once)."""
    from types import SimpleNamespace

    import torch
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = nn.Sequential(*body)

        def forward(self, x):
            return x + self.body(x)

    class Concat(nn.Module):
        def __init__(self, left, right):
            super().__init__()
            self.left, self.right = nn.Sequential(*left), nn.Sequential(*right)

        def forward(self, x):
            return torch.cat([self.left(x), self.right(x)], dim=1)

    class SqueezeExcite(nn.Module):
        def __init__(self, channels, reduced):
            super().__init__()
            self.reduce = nn.Conv2d(channels, reduced, 1)
            self.expand = nn.Conv2d(reduced, channels, 1)

        def forward(self, x):
            scale = x.mean((2, 3), keepdim=True)
            scale = torch.sigmoid(self.expand(torch.relu(self.reduce(scale))))
            return x * scale

    class ChannelShuffle(nn.Module):
        def __init__(self, groups):
            super().__init__()
            self.groups = groups

        def forward(self, x):
            n, c, h, w = x.shape
            x = x.view(n, self.groups, c // self.groups, h, w)
            return x.transpose(1, 2).contiguous().view(n, c, h, w)

        def extra_repr(self):
            return f"groups={self.groups}"

    class SplitConcat(nn.Module):
        def __init__(self, how, first_channels, first, second):
            super().__init__()
            self.how, self.first_channels = how, first_channels
            self.first, self.second = nn.Sequential(*first), nn.Sequential(*second)

        def forward(self, x):
            if self.how == "chunk":
                a, b = torch.chunk(x, 2, dim=1)
            else:
                a, b = torch.split(x, [self.first_channels, x.shape[1] - self.first_channels], dim=1)
            return torch.cat([self.first(a), self.second(b)], dim=1)

        def extra_repr(self):
            return f"how={self.how!r}, first_channels={self.first_channels}"

    return SimpleNamespace(Residual=Residual, Concat=Concat, SqueezeExcite=SqueezeExcite,
                           ChannelShuffle=ChannelShuffle, SplitConcat=SplitConcat)


# ----------------------------------------------------------------------------- the network

@dataclass(frozen=True)
class NetworkSpec:
    """A small CNN as data: input shape (batch, channels, height, width), a seed, the
    top-level layers and blocks in order, and an optional flatten + Linear head."""

    batch: int
    channels: int
    height: int
    width: int
    seed: int
    layers: tuple
    head: Linear | None = None

    def __repr__(self) -> str:
        layers = "".join(f"\n    {layer!r}," for layer in self.layers)
        return (f"NetworkSpec(batch={self.batch}, channels={self.channels}, height={self.height}, "
                f"width={self.width}, seed={self.seed}, layers=({layers}\n), head={self.head!r})")

    def _repr_pretty_(self, printer, cycle):  # Hypothesis prints falsifying examples with this
        printer.text(repr(self))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.batch, self.channels, self.height, self.width

    def shapes(self) -> list[tuple[int, ...]]:
        """The (C, H, W) after each top-level layer, the input's first."""
        chw = [(self.channels, self.height, self.width)]
        for layer in self.layers:
            chw.append(layer.out_shape(chw[-1]))
        return chw

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.head is not None:
            return self.batch, self.head.out_features
        return (self.batch,) + self.shapes()[-1]

    def walk(self):
        """Every layer spec, blocks' insides included, depth first; the head last."""
        for layer in self.layers:
            yield from layer.walk()
        if self.head is not None:
            yield self.head

    def kinds(self) -> set[str]:
        """The kinds of every layer spec in the network (LAYER_KINDS and "linear_head")."""
        return {layer.kind for layer in self.walk()}

    def build(self, dtype=None):
        """The torch.nn.Module (an nn.Sequential), in eval mode, seeded from self.seed.
        dtype: a torch dtype or NumPy dtype (float32 when None)."""
        import torch

        from ..oracle.twins import seed_batchnorm

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            modules = [layer.module() for layer in self.layers]
            if self.head is not None:
                modules.append(self.head.module())
            model = torch.nn.Sequential(*modules)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if norms:
            generator = torch.Generator().manual_seed(self.seed + 1)
            # batch 2: a BatchNorm in training mode needs more than one value per channel
            calibration = torch.randn((2, self.channels, self.height, self.width), generator=generator)
            seed_batchnorm(model, self.seed + 2, calibration)
            with torch.no_grad():
                for m in norms:
                    m.running_var.clamp_(min=VAR_FLOOR)
        model.eval()
        if dtype is not None:
            model = model.to(_torch_dtype(dtype))
        return model

    def input(self, dtype=np.float32) -> np.ndarray:
        """A seeded standard-normal input of input_shape."""
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal(self.input_shape).astype(dtype)


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
            np.dtype(np.float16): torch.float16}[np.dtype(dtype)]


# ----------------------------------------------------------------------------- drawing

@dataclass(frozen=True)
class _Limits:
    max_channels: int
    max_size: int
    padding_modes: tuple[str, ...]

    def fits(self, chw) -> bool:
        c, h, w = chw
        return 1 <= c <= self.max_channels and 1 <= h <= self.max_size and 1 <= w <= self.max_size


def _pair(draw, low: int, high: int) -> tuple[int, int]:
    """(a, b) in low..high, square more often than not."""
    a = draw(st.integers(low, high))
    return (a, a) if draw(st.booleans()) else (a, draw(st.integers(low, high)))


def _draw_groups(draw, c_in: int, limits: _Limits) -> tuple[int, int]:
    """(groups, out_channels): dense, grouped or depthwise."""
    grouping = draw(st.sampled_from(("dense", "grouped", "depthwise")))
    if grouping == "dense":
        groups = 1
    elif grouping == "grouped":
        groups = draw(st.sampled_from(_divisors(c_in)))
    else:
        groups = c_in
    out = groups * draw(st.integers(1, max(1, limits.max_channels // groups)))
    return groups, out


def _draw_conv(draw, chw, limits: _Limits, preserve_spatial: bool = False):
    c, h, w = chw
    groups, out = _draw_groups(draw, c, limits)
    kernel = list(_pair(draw, 1, 3))
    dilation = list(_pair(draw, 1, 2))
    stride = (1, 1) if preserve_spatial else _pair(draw, 1, 2)
    if preserve_spatial:
        padding = "same"
        if all(d * (k - 1) % 2 == 0 for k, d in zip(kernel, dilation)) and draw(st.booleans()):
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    elif stride == (1, 1) and draw(st.booleans()):
        padding = "same"
    else:
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    if padding != "same" and not preserve_spatial:
        # the dilated kernel must fit the padded input: drop the dilation, then shrink the kernel
        for i, size in enumerate((h, w)):
            room = size + 2 * padding[i]
            if dilation[i] * (kernel[i] - 1) + 1 > room:
                dilation[i] = 1
            kernel[i] = min(kernel[i], room)
    kernel, dilation = tuple(kernel), tuple(dilation)
    if padding == "same":
        sides = [_same_sides(k, d)[1] for k, d in zip(kernel, dilation)]  # the larger side
    else:
        sides = list(padding)
    mode = draw(st.sampled_from(("zeros", "zeros", "zeros", "reflect", "replicate", "circular")))
    if mode not in limits.padding_modes or not any(sides):
        mode = "zeros"
    elif mode == "reflect" and not (sides[0] < h and sides[1] < w):
        mode = "zeros"
    elif mode == "circular" and not (sides[0] <= h and sides[1] <= w):
        mode = "zeros"
    layer = Conv2d(c, out, kernel, stride, padding, dilation, groups, draw(st.booleans()), mode)
    return layer if limits.fits(layer.out_shape(chw)) else None


def _projection(c_in: int, c_out: int) -> Conv2d:
    return Conv2d(c_in, c_out, (1, 1))


def _draw_conv_transpose(draw, chw, limits: _Limits):
    c, h, w = chw
    groups, out = _draw_groups(draw, c, limits)
    kernel = _pair(draw, 1, 3)
    stride = list(_pair(draw, 1, 2))
    dilation = _pair(draw, 1, 2)
    padding = [draw(st.integers(0, min(k // 2, d * (k - 1)))) for k, d in zip(kernel, dilation)]
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    for i, size in enumerate((h, w)):
        upsampled = _conv_transpose_out(size, kernel[i], stride[i], padding[i], output_padding[i], dilation[i])
        if upsampled > limits.max_size:
            # too large: no upsampling on this axis, and as much padding (cropping) as allowed
            stride[i], output_padding[i] = 1, 0
            padding[i] = min(kernel[i] // 2, dilation[i] * (kernel[i] - 1))
    layer = ConvTranspose2d(c, out, kernel, tuple(stride), tuple(padding), tuple(output_padding), dilation,
                            groups, draw(st.booleans()))
    return layer if limits.fits(layer.out_shape(chw)) else None


def _draw_activation(draw, chw, limits: _Limits):
    name = draw(st.sampled_from(ACTIVATIONS))
    if name == "Hardtanh":
        low = draw(st.integers(-8, 4)) / 4
        return Activation(name, low, low + draw(st.integers(1, 12)) / 4)
    return Activation(name)


def _draw_pool(draw, chw, limits: _Limits, cls):
    c, h, w = chw
    kernel = _pair(draw, 2, 3)
    stride = tuple(draw(st.integers(1, k)) for k in kernel)
    padding = [draw(st.integers(0, k // 2)) for k in kernel]
    ceil_mode = draw(st.booleans())
    for i, size in enumerate((h, w)):
        if size + 2 * padding[i] < kernel[i]:
            padding[i] = kernel[i] // 2  # a window must fit: pad as much as allowed
        if _pool_out(size, kernel[i], stride[i], padding[i], ceil_mode) > limits.max_size:
            padding[i] = 0
    kwargs = dict(kernel_size=kernel, stride=stride, padding=tuple(padding), ceil_mode=ceil_mode)
    if cls is AvgPool2d:
        kwargs["count_include_pad"] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 3:
            kwargs["divisor_override"] = draw(st.integers(1, kernel[0] * kernel[1]))
    layer = cls(**kwargs)
    return layer if limits.fits(layer.out_shape(chw)) else None


def _draw_squeeze_excite(draw, chw, limits: _Limits):
    c = chw[0]
    return SqueezeExcite(c, draw(st.integers(1, max(1, c // 2))))


def _draw_channel_shuffle(draw, chw, limits: _Limits):
    c = chw[0]
    if c < 2:
        return None
    return ChannelShuffle(draw(st.sampled_from(_divisors(c)[1:])))


def _draw_branch(draw, chw, limits: _Limits, *, target: int | None = None, budget: int | None = None):
    """1..2 spatially-preserving layers; a 1x1 projection ends the branch when its channels
    differ from `target` or exceed `budget` (then projected to a drawn count within it)."""
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(_BRANCH_KINDS))
        layer = _DRAWERS[kind](draw, chw, limits, **({"preserve_spatial": True} if kind == "conv" else {}))
        if layer is not None:
            layers.append(layer)
            chw = layer.out_shape(chw)
    c = chw[0]
    if target is not None and c != target:
        layers.append(_projection(c, target))
    elif budget is not None and c > budget:
        layers.append(_projection(c, draw(st.integers(1, budget))))
    elif not layers:  # every drawn layer was skipped: keep the branch non-trivial
        layers.append(BatchNorm2d(c))
    return tuple(layers)


def _draw_residual(draw, chw, limits: _Limits):
    return Residual(_draw_branch(draw, chw, limits, target=chw[0]))


def _draw_concat(draw, chw, limits: _Limits):
    if limits.max_channels < 2:
        return None
    left = _draw_branch(draw, chw, limits, budget=limits.max_channels - 1)
    c_left = _branch_shape(left, chw)[0]
    right = _draw_branch(draw, chw, limits, budget=limits.max_channels - c_left)
    return Concat(left, right)


def _draw_split(draw, chw, limits: _Limits):
    c, h, w = chw
    if c < 2:
        return None
    how = draw(st.sampled_from(("chunk", "split")))
    first_channels = -(-c // 2) if how == "chunk" else draw(st.integers(1, c - 1))
    first = _draw_branch(draw, (first_channels, h, w), limits, budget=limits.max_channels - 1)
    c_first = _branch_shape(first, (first_channels, h, w))[0]
    second = _draw_branch(draw, (c - first_channels, h, w), limits, budget=limits.max_channels - c_first)
    return SplitConcat(how, first_channels, first, second)


_DRAWERS = {
    "conv": _draw_conv,
    "conv_transpose": _draw_conv_transpose,
    "batch_norm": lambda draw, chw, limits: BatchNorm2d(chw[0]),
    "activation": _draw_activation,
    "max_pool": lambda draw, chw, limits: _draw_pool(draw, chw, limits, MaxPool2d),
    "avg_pool": lambda draw, chw, limits: _draw_pool(draw, chw, limits, AvgPool2d),
    "global_avg_pool": lambda draw, chw, limits: GlobalAvgPool(),
    "residual": _draw_residual,
    "concat": _draw_concat,
    "squeeze_excite": _draw_squeeze_excite,
    "channel_shuffle": _draw_channel_shuffle,
    "split": _draw_split,
}


@st.composite
def networks(
    draw,
    max_depth: int = 6,
    max_channels: int = 16,
    max_size: int = 16,
    *,
    kinds=LAYER_KINDS,
    head: bool | None = None,
    padding_modes=("zeros", "reflect", "replicate", "circular"),
) -> NetworkSpec:
    """Small random CNNs as `NetworkSpec`s (module docstring: the vocabulary).

    max_depth: the most top-level layers or blocks (1..max_depth are drawn; a layer that
    cannot fit the tracked shape is skipped, and an empty network gets one ReLU).
    max_channels, max_size: bounds on every channel count and every spatial size, input
    included. kinds: the top-level vocabulary, a subset of LAYER_KINDS (branches inside
    blocks still draw from conv, batch_norm, activation, squeeze_excite, channel_shuffle).
    head: True / False forces the flatten + Linear head on / off; None draws it.
    padding_modes: the Conv2d padding modes that may be drawn ("zeros" is always allowed).
    """
    unknown = set(kinds) - set(LAYER_KINDS)
    if unknown or not kinds:
        raise ValueError(f"networks(kinds=...): unknown or no kinds {sorted(unknown)}; choose from {LAYER_KINDS}")
    limits = _Limits(max_channels, max_size, tuple(padding_modes))
    weighted = [k for k in _WEIGHTS for _ in range(_WEIGHTS[k]) if k in kinds]
    batch = draw(st.integers(1, 2))
    chw = (draw(st.integers(1, max_channels)), draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    seed = draw(st.integers(0, 2**31 - 1))
    layers = []
    shape = chw
    for _ in range(draw(st.integers(1, max_depth))):
        layer = _DRAWERS[draw(st.sampled_from(weighted))](draw, shape, limits)
        if layer is not None:
            layers.append(layer)
            shape = layer.out_shape(shape)
    if not layers:
        layers.append(Activation("ReLU"))
    use_head = draw(st.booleans()) if head is None else head
    # the head keeps its bias: without one, Linear exports to aten.mm instead of aten.addmm
    linear = Linear(math.prod(shape), draw(st.integers(1, 10))) if use_head else None
    return NetworkSpec(batch, chw[0], chw[1], chw[2], seed, tuple(layers), linear)


@st.composite
def network_and_input(draw, dtype=np.float32, **network_kwargs):
    """(torch module in eval mode and `dtype`, NumPy input of `dtype`) of a drawn network.
    Prefer `networks()` in properties: a failing NetworkSpec prints as readable data."""
    spec = draw(networks(**network_kwargs))
    return spec.build(dtype), spec.input(dtype)


def export_decompositions():
    """The decomposition table under which every drawn network exports to EXPORT_OPS: the
    one `npconv.capture` uses (npconv.graph.capture.decompositions)."""
    from ..graph.capture import decompositions

    return decompositions()
