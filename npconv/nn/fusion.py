"""Conv2d -> BatchNorm2d -> ReLU6 as one kernel call, when a Sequential runs on the fast engine.

MobileNet is built of runs of three layers,

    Conv2d -> BatchNorm2d (evaluation) -> ReLU6 (optional),

and on the fast engine `Sequential.forward` hands such a run to one call of
`npconv.fast.conv2d_bn_relu6`: BatchNorm in evaluation is an affine map per channel,
x * scale + shift with scale = weight / sqrt(running_var + eps), shift = bias - running_mean
* scale (`npconv.fast.batch_norm_scale_shift`, folded in float64 and rounded once, as
PyTorch's CPU kernel folds it), and the kernel applies it and the clamp to each output
plane while it is still in cache, instead of three passes over memory. The error bound of
the fused result is derived in npconv/fast/__init__.py.

What stays the same as the three separate calls:
  * counts: each layer's counts land under its own qualified name and op ("conv2d" under the
    convolution, "batch_norm2d" under the BatchNorm, "relu6" under the ReLU6), so a tally by
    layer or by op is the one the reference engine gives (reference_tests/test_fusion.py);
  * errors: anything the three layers would refuse is not fused (`plan` returns 0)
    and runs unfused, so it gets the unfused layer's message, with the layer's name.

A run is fused only when all of this holds, else it runs layer by layer as usual:
  * the engine is "fast" and no backward is being recorded (`enable_grad`): a fused run
    keeps nothing for a backward;
  * the layers are exactly npconv.nn.Conv2d, BatchNorm2d and ReLU6 (not subclasses, whose
    forward may differ), none with a forward hook or pre-hook (a hook must see its layer's
    own input and output);
  * the BatchNorm is in eval() with running statistics and as many features as the
    convolution has output channels;
  * the input is a batched (4-D) float32 or float64 array whose convolution the fast tier
    covers (`npconv.fast.covers`).
"""

from __future__ import annotations

import numpy as np

from .. import counting, memory
from ..geometry import conv2d_geometry


_imported = None


def _imports():
    """(Conv2d, BatchNorm2d, ReLU6, npconv.fast), imported on the first call (the layers'
    modules import this one through npconv.nn.module; the fast tier loads Numba) and kept:
    an import statement in `plan` cost about a microsecond a layer on every forward."""
    global _imported
    if _imported is None:
        from .. import fast
        from .activation import ReLU6
        from .conv import Conv2d
        from .normalization import BatchNorm2d

        _imported = (Conv2d, BatchNorm2d, ReLU6, fast)
    return _imported


def _geometry(conv, input):
    """The geometry of `conv` (an npconv.nn.Conv2d) on `input`: what its forward validates."""
    return conv2d_geometry(input.shape, conv.weight.shape, None if conv.bias is None else conv.bias.shape,
                           conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)


def plan(modules: list, k: int, input):
    """(length, geometry): how many of modules[k:] run as one fused call on `input` (3 with a
    ReLU6, 2 without), or 0 when modules[k] does not start a run that can be fused (module
    docstring); and the convolution's geometry on `input` that decided it (None with 0),
    handed on to `run` so that it is not worked out twice."""
    Conv2d, BatchNorm2d, ReLU6, fast = _imports()
    none = (0, None)
    if k + 1 >= len(modules) or type(modules[k]) is not Conv2d or type(modules[k + 1]) is not BatchNorm2d:
        return none
    conv, bn = modules[k], modules[k + 1]
    length = 3 if k + 2 < len(modules) and type(modules[k + 2]) is ReLU6 else 2
    if any(m._forward_hooks or m._forward_pre_hooks for m in modules[k:k + length]):
        return none
    if bn.training or bn.running_mean is None or bn.num_features != conv.out_channels:
        return none
    if not isinstance(input, np.ndarray) or input.ndim != 4 or input.dtype not in (np.float32, np.float64):
        return none
    try:
        geometry = _geometry(conv, input)
    except (ValueError, TypeError):
        return none   # the unfused Conv2d raises it, with the layer's name
    return (length, geometry) if fast.covers(geometry, input.dtype) else none


def run(parent, layers: list, input: np.ndarray, geometry) -> np.ndarray:
    """The fused call for `layers` = [Conv2d, BatchNorm2d] or [Conv2d, BatchNorm2d, ReLU6],
    children of `parent`, on `input` (accepted by `plan`); each layer's counts are
    recorded under its own name. `geometry`: the convolution's on `input`, as `plan` gave
    it."""
    fast = _imports()[3]
    conv, bn = layers[0], layers[1]
    dtype = input.dtype
    cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
    weight, bias = cast(conv.weight), cast(conv.bias)
    scale, shift = fast.batch_norm_scale_shift(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps, dtype)
    memory.check_output("conv2d", geometry.output_shape, dtype)
    x = np.ascontiguousarray(input)
    y, recorded = fast.conv2d(x, np.ascontiguousarray(weight), None if bias is None else np.ascontiguousarray(bias),
                              geometry, scale=scale, shift=shift, relu6=len(layers) == 3)
    if counting.counting():   # (each scope costs a microsecond or two: skipped when nothing counts)
        for layer, (op, counters) in zip(layers, (("conv2d", recorded["conv"]), ("batch_norm2d", recorded["batch_norm2d"]),
                                                  ("relu6", recorded.get("relu6")))):
            with counting.scope(parent._name_of(layer)):
                counting.record(op, **counters)
    return y
