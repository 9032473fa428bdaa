"""`from_torch`: a PyTorch module tree -> the npconv module tree with the same weights.

    import torch, npconv
    net = npconv.convert.from_torch(torch_model.eval())
    net(x.numpy())                                  # agrees with torch_model(x)

Supported, by exact type (a subclass may have changed `forward`, so it is not assumed to
compute the same thing; a `Sequential` subclass is accepted when it keeps Sequential's
forward):

    torch.nn: Conv2d, ConvTranspose2d, BatchNorm2d, ReLU, ReLU6, Identity, AdaptiveAvgPool2d,
              Linear, Flatten, Dropout, ChannelShuffle, Sequential

and, recognised by class name and child modules (their `forward` cannot be inspected, so a
class with one of these names and these children is taken to compute what the tutorial or
torchvision computes):

    the tutorial's DepthwiseSeparableConv (depthwise, pointwise), MobileNetBlock (dw_conv,
    pw_conv), InvertedResidual (conv, use_residual), HybridBlock (downsample, mid, upsample),
    TinyMobileNet (features, classifier), npconv's MobileNetV1 layout (features, avgpool,
    classifier); torchvision's MobileNetV2 (features, classifier), its InvertedResidual
    (conv, use_res_connect) and Conv2dNormActivation.

Weights and buffers are copied with `load_state_dict` (strict), in the torch module's own
floating dtype; each module's train/eval mode is copied too. Anything else -- an
unsupported layer, a known class with unexpected children, a module with forward hooks --
raises TypeError naming the layer's type and its qualified path; no partial model is
returned. torch is imported only when this function runs.
"""

from __future__ import annotations

import numpy as np

from . import nn
from .dtypes import bfloat16
from .models import mobilenet_v1, mobilenet_v2, tutorial
from .nn.module import Module


class UnsupportedModuleError(TypeError):
    """A torch module that `from_torch` cannot convert; the message names its type and path."""


def _where(path: str) -> str:
    return f"'{path}'" if path else "the root"


def _type_name(module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _leaf_converters(torch_nn):
    """Exact torch.nn type -> function(torch module) -> npconv module (random weights, the
    right shapes; the weights are loaded afterwards)."""

    def conv2d(m):
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                         m.groups, m.bias is not None, m.padding_mode)

    def conv_transpose2d(m):
        return nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                  m.output_padding, m.groups, m.bias is not None, m.dilation, m.padding_mode)

    def batch_norm2d(m):
        # The parameters and buffers the module has (bias=False: a weight and no bias;
        # track_running_stats=False: no buffers), then its flags as they are: PyTorch's forward
        # reads the flag and the buffers separately (a module whose track_running_stats was
        # switched off after construction keeps its buffers, and uses them in eval mode).
        layer = nn.BatchNorm2d(m.num_features, m.eps, m.momentum, m.weight is not None, m.running_mean is not None,
                               bias=m.bias is not None)
        layer.affine, layer.track_running_stats = bool(m.affine), bool(m.track_running_stats)
        return layer

    return {
        torch_nn.Conv2d: conv2d,
        torch_nn.ConvTranspose2d: conv_transpose2d,
        torch_nn.BatchNorm2d: batch_norm2d,
        torch_nn.ReLU: lambda m: nn.ReLU(m.inplace),
        torch_nn.ReLU6: lambda m: nn.ReLU6(m.inplace),
        torch_nn.Identity: lambda m: nn.Identity(),
        torch_nn.AdaptiveAvgPool2d: lambda m: nn.AdaptiveAvgPool2d(m.output_size),
        torch_nn.Linear: lambda m: nn.Linear(m.in_features, m.out_features, m.bias is not None),
        torch_nn.Flatten: lambda m: nn.Flatten(m.start_dim, m.end_dim),
        torch_nn.Dropout: lambda m: nn.Dropout(m.p, m.inplace),
        torch_nn.ChannelShuffle: lambda m: nn.ChannelShuffle(m.groups),
    }


# Composite classes recognised by name: name -> (npconv class, child names, plain attributes to copy,
# a predicate telling this layout from another class of the same name).
_COMPOSITES = (
    ("DepthwiseSeparableConv", tutorial.DepthwiseSeparableConv, ("depthwise", "pointwise"), (), None),
    ("MobileNetBlock", tutorial.MobileNetBlock, ("dw_conv", "pw_conv"), (), None),
    ("InvertedResidual", tutorial.InvertedResidual, ("conv",), ("use_residual",),
     lambda m: hasattr(m, "use_residual")),
    ("InvertedResidual", mobilenet_v2.InvertedResidual, ("conv",), ("use_res_connect", "stride", "out_channels"),
     lambda m: hasattr(m, "use_res_connect")),
    ("HybridBlock", tutorial.HybridBlock, ("downsample", "mid", "upsample"), (), None),
    ("TinyMobileNet", tutorial.TinyMobileNet, ("features", "classifier"), (), None),
    ("MobileNetV1", mobilenet_v1.MobileNetV1, ("features", "avgpool", "classifier"), (), None),
    ("MobileNetV2", mobilenet_v2.MobileNetV2, ("features", "classifier"), ("last_channel",), None),
)


def _assemble(cls, children: dict[str, Module], attributes: dict) -> Module:
    """An instance of npconv class `cls` made of already converted children, without running
    its constructor (whose arguments a torch module does not always record)."""
    module = cls.__new__(cls)
    Module.__init__(module)
    for name, value in attributes.items():
        setattr(module, name, value)
    for name, child in children.items():
        setattr(module, name, child)
    return module


def _convert(module, path: str, torch) -> Module:
    torch_nn = torch.nn
    if not isinstance(module, torch_nn.Module):
        raise UnsupportedModuleError(
            f"from_torch(): expected a torch.nn.Module at {_where(path)}, got {_type_name(module)}"
        )
    if getattr(module, "_forward_hooks", None) or getattr(module, "_forward_pre_hooks", None):
        raise UnsupportedModuleError(
            f"from_torch(): {_type_name(module)} at {_where(path)} has forward hooks, which npconv cannot reproduce"
        )
    cls = type(module)
    converters = _leaf_converters(torch_nn)
    if cls in converters:
        converted = converters[cls](module)
    elif isinstance(module, torch_nn.Sequential) and cls.forward is torch_nn.Sequential.forward:
        converted = _convert_sequential(module, path, torch)
    else:
        converted = _convert_composite(module, path, torch)
    object.__setattr__(converted, "training", bool(module.training))
    return converted


def _children(module, path, torch) -> dict[str, Module]:
    return {
        name: _convert(child, f"{path}.{name}" if path else name, torch)
        for name, child in module.named_children()
    }


def _convert_sequential(module, path: str, torch) -> Module:
    children = _children(module, path, torch)
    if type(module).__name__ == "Conv2dNormActivation" and len(children) == 3:
        converted = _assemble(mobilenet_v2.Conv2dNormActivation, children, {})
        converted.out_channels = getattr(module, "out_channels", None)
        return converted
    converted = nn.Sequential()
    for name, child in children.items():
        converted.add_module(name, child)
    return converted


def _convert_composite(module, path: str, torch) -> Module:
    name = type(module).__name__
    child_names = tuple(name for name, _ in module.named_children())
    candidates = [entry for entry in _COMPOSITES if entry[0] == name]
    for _, cls, expected_children, attributes, matches in candidates:
        if matches is not None and not matches(module):
            continue
        if child_names != expected_children:
            raise UnsupportedModuleError(
                f"from_torch(): {_type_name(module)} at {_where(path)} has children {list(child_names)}, "
                f"but {name} is recognised only with children {list(expected_children)}"
            )
        values = {attribute: getattr(module, attribute) for attribute in attributes}
        return _assemble(cls, _children(module, path, torch), values)
    raise UnsupportedModuleError(
        f"from_torch(): unsupported layer {_type_name(module)} at {_where(path)}; supported are the torch.nn "
        f"layers Conv2d, ConvTranspose2d, BatchNorm2d, ReLU, ReLU6, Identity, AdaptiveAvgPool2d, Linear, Flatten, "
        f"Dropout, ChannelShuffle, Sequential and the tutorial's and torchvision's MobileNet classes"
    )


def from_torch(module, example_input=None):
    """Convert a PyTorch module tree to npconv modules with the same weights, buffers and
    train/eval modes (module docstring).

    For any other model (functional forwards, layers not listed above): with an
    `example_input` it returns `npconv.capture(module, example_input)`, a runnable npconv
    Graph of the same computation (torch.export; see npconv.graph). A module tree cannot be
    converted by type alone, because its data flow lives in Python code a type does not
    show; the graph PyTorch captures from a real input does show it. Without an example
    input it raises UnsupportedModuleError (a TypeError) naming the first unsupported
    layer's type and qualified path ("features.3.dw_conv.0") and pointing to capture."""
    import torch

    try:
        converted = _convert(module, "", torch)
    except UnsupportedModuleError as error:
        if example_input is None:
            raise UnsupportedModuleError(f"{error}; pass an example input, from_torch(model, x), or call "
                                         f"npconv.capture(model, x) to run it as a captured graph") from None
        from .graph import capture

        return capture(module, example_input)
    dtypes = {p.dtype for p in module.parameters() if p.is_floating_point()}
    dtypes |= {b.dtype for b in module.buffers() if b.is_floating_point()}
    if len(dtypes) > 1:
        raise TypeError(f"from_torch(): the module mixes floating dtypes {sorted(map(str, dtypes))}; convert it to one")
    if dtypes:
        torch_dtype = dtypes.pop()
        dtype = bfloat16() if torch_dtype == torch.bfloat16 else {
            torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}.get(torch_dtype)
        if dtype is None:
            raise TypeError("from_torch(): parameters must be float16, bfloat16, float32 or float64")
        converted.to(dtype)
    converted.load_state_dict(module.state_dict(), strict=True)
    return converted
