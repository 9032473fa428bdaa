"""Run an npconv model's forward on the fast engine with Conv2d + BatchNorm2d (+ ReLU6) fused.

    with fused(model):
        y = model(x)

Inside the block every `npconv.nn.Sequential` runs its children through `_fused_forward`:
a run Conv2d, BatchNorm2d (evaluation), optional ReLU6 becomes one call of
`npconv.fast.conv2d_bn_relu6`, whose kernel applies BN as a per-channel scale and shift and
clamps to [0, 6] while the output is in cache; everything else runs as usual (inside
`npconv.engine.use("fast")`, so stray convolutions take the fast tier too). BN's scale and
shift are folded once per model (the weights are "packed once", then reused). Counts are
recorded under the same op names as the unfused forward ("conv2d", "batch_norm2d", "relu6");
per layer, all three land under the convolution's layer name.

This lives in bench/ (it replaces Sequential.forward for the duration of the block); it is
how the whole-model benchmark gets the fused numbers without touching npconv.nn.
"""

from __future__ import annotations

import contextlib

import numpy as np

import npconv
import npconv.fast
from npconv import counting
from npconv.nn.activation import ReLU6
from npconv.nn.conv import Conv2d
from npconv.nn.module import Sequential
from npconv.nn.normalization import BatchNorm2d


def _folded(bn: BatchNorm2d, dtype, cache: dict):
    key = (id(bn), np.dtype(dtype).name)
    if key not in cache:
        cache[key] = npconv.fast.batch_norm_scale_shift(bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                         bn.eps, dtype)
    return cache[key]


def _fused_forward(sequential: Sequential, x, cache: dict):
    modules = list(sequential._modules.items())
    k = 0
    while k < len(modules):
        name, module = modules[k]
        following = [m for _, m in modules[k + 1:k + 3]]
        if (isinstance(module, Conv2d) and following and isinstance(following[0], BatchNorm2d)
                and not following[0].training and following[0].running_mean is not None):
            bn = following[0]
            relu6 = len(following) > 1 and isinstance(following[1], ReLU6)
            scale, shift = _folded(bn, x.dtype, cache)
            weight = module.weight.astype(x.dtype, copy=False)
            bias = None if module.bias is None else module.bias.astype(x.dtype, copy=False)
            with counting.scope(name):
                x = npconv.fast.conv2d_bn_relu6(
                    x, weight, bias, scale, shift, module.stride, module.padding, module.dilation, module.groups,
                    module.padding_mode, relu6=relu6, op="conv2d")
            k += 3 if relu6 else 2
            continue
        x = module(x)
        k += 1
    return x


@contextlib.contextmanager
def fused(model):
    """Within the block, `model(x)` (any npconv model built from Sequential runs of
    Conv2d -> BatchNorm2d -> ReLU6) runs fused on the fast tier; the model must be in eval()."""
    cache: dict = {}
    original = Sequential.forward
    Sequential.forward = lambda self, x: _fused_forward(self, x, cache)
    try:
        with npconv.engine.use("fast"):
            yield model
    finally:
        Sequential.forward = original
