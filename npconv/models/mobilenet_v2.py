"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", Table 2) with torchvision's module layout, so that the `state_dict()` of
`torchvision.models.mobilenet_v2()` loads unchanged.

torchvision/models/mobilenetv2.py, mirrored here:

    features.0      Conv2dNormActivation(3, 32*, stride 2) = Sequential(Conv2d 3x3 no bias, BN, ReLU6)
    features.1-17   InvertedResidual blocks from the (t, c, n, s) table below; each has
                    .conv = Sequential([Conv2dNormActivation 1x1 expand,] Conv2dNormActivation
                    3x3 depthwise, Conv2d 1x1 project no bias, BatchNorm2d)
    features.18     Conv2dNormActivation(320*, last_channel, kernel_size=1)
    (functional)    adaptive_avg_pool2d(x, (1, 1)), flatten
    classifier      Sequential(Dropout(0.2), Linear(last_channel, num_classes))

    t (expansion)  c (channels)  n (repeats)  s (first stride)
        1              16             1            1
        6              24             2            2
        6              32             3            2
        6              64             4            2
        6              96             3            1
        6             160             3            2
        6             320             1            1

Channels are c * width_mult rounded to a multiple of 8 (`make_divisible`), the last conv
has make_divisible(1280 * max(1, width_mult)) channels, and a block adds its input back
when stride == 1 and its input and output channels agree. Initialisation follows
torchvision: convolutions kaiming_normal(fan_out), BatchNorm weight 1 bias 0, Linear
N(0, 0.01) with zero bias.

1.0 MobileNetV2 has 3,504,872 parameters (torchvision's documentation).
"""

from __future__ import annotations

from .. import memory
from ..functional import layers as ops
from ..functional.layer_backward import adaptive_avg_pool2d_backward, flatten_backward
from ..nn import init
from ..nn.activation import ReLU6
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.module import Module, Sequential
from . import _checks
from .residual import ResidualBranch
from ..nn.normalization import BatchNorm2d

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's `_make_divisible`: v rounded to the nearest multiple of `divisor`
    (at least min_value, default divisor), bumped up one multiple if rounding lost more
    than 10% of v."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(Sequential):
    """torchvision's Conv2dNormActivation with MobileNetV2's choices: Sequential(Conv2d k x k
    with padding (k - 1) // 2 and no bias, BatchNorm2d, ReLU6)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, *, rng=None):
        padding = (kernel_size - 1) // 2
        super().__init__(
            Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False, rng=rng),
            BatchNorm2d(out_channels),
            ReLU6(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(ResidualBranch):
    """torchvision's MobileNetV2 block: [1x1 expand to round(inp * expand_ratio), BN, ReLU6,]
    3x3 depthwise with `stride`, BN, ReLU6, 1x1 linear projection to oup, BN; plus the input
    when stride == 1 and inp == oup (`use_res_connect`). Convolutions have no bias."""

    def __init__(self, inp, oup, stride, expand_ratio, *, rng=None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        inp = _checks.integer(inp, "inp", "InvertedResidual")
        oup = _checks.integer(oup, "oup", "InvertedResidual")
        _checks.positive_number(expand_ratio, "expand_ratio", "InvertedResidual")
        memory.check_model(InvertedResidual, inp=inp, oup=oup, stride=stride, expand_ratio=expand_ratio)
        rng = init.generator(rng)
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, rng=rng))
        layers.extend([
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, rng=rng),
            Conv2d(hidden_dim, oup, 1, 1, 0, bias=False, rng=rng),
            BatchNorm2d(oup),
        ])
        self.conv = Sequential(*layers)
        self.out_channels = oup

    @property
    def shortcut(self) -> bool:
        return self.use_res_connect


class MobileNetV2(Module):
    """MobileNetV2 with torchvision's layout and state_dict keys (module docstring).

    Input (N, 3, H, W), output (N, num_classes) logits. Note the argument order
    (width_mult first); torchvision's constructor takes num_classes first, so pass both
    by keyword. The network downsamples by 32; any H, W >= 1 runs, as in PyTorch.
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000, *, dropout: float = 0.2,
                 round_nearest: int = 8, rng=None):
        super().__init__()
        width_mult = _checks.positive_number(width_mult, "width_mult", "MobileNetV2")
        num_classes = _checks.integer(num_classes, "num_classes", "MobileNetV2")
        _checks.probability(dropout, "dropout", "MobileNetV2")
        round_nearest = _checks.integer(round_nearest, "round_nearest", "MobileNetV2")
        memory.check_model(MobileNetV2, width_mult=width_mult, num_classes=num_classes, dropout=dropout,
                           round_nearest=round_nearest)
        rng = init.generator(rng)
        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[Module] = [Conv2dNormActivation(3, input_channel, stride=2, rng=rng)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t, rng=rng))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1, rng=rng))
        self.features = Sequential(*features)
        self.classifier = Sequential(Dropout(p=dropout, rng=rng), Linear(self.last_channel, num_classes, rng=rng))
        self._torchvision_init(rng)

    def _torchvision_init(self, rng) -> None:
        for module in self.modules():
            if isinstance(module, Conv2d):
                dtype = module.weight.dtype
                module.weight = init.kaiming_normal_fan_out(module.weight.shape, rng, dtype)
                if module.bias is not None:
                    module.bias = init.zeros(module.bias.shape, module.bias.dtype)
            elif isinstance(module, Linear):
                module.weight = init.normal(module.weight.shape, 0.01, rng, module.weight.dtype)
                module.bias = init.zeros(module.bias.shape, module.bias.dtype)

    def forward(self, x):
        x = self.features(x)
        self.save_for_backward(x.shape)
        x = ops.adaptive_avg_pool2d(x, (1, 1))
        x = ops.flatten(x, 1)
        return self.classifier(x)

    def backward(self, grad):
        (features_shape,) = self.saved_for_backward()
        grad = self.classifier.backward(grad)
        if grad is not None:
            grad = flatten_backward(grad, features_shape[:2] + (1, 1))
            grad = adaptive_avg_pool2d_backward(grad, features_shape)
        return self.features.backward(grad)

    def own_cost(self, input_shape, output_shape, child_shapes) -> dict:
        """Closed forms of the network's own forward: the global average pool of `features`'
        output (N, C, H, W): every value added once, one divide per (n, c)."""
        from ..cost.formulas import adaptive_avg_pool2d_adds, adaptive_avg_pool2d_divides

        features = child_shapes["features"][1]
        n, c, h, w = features
        return {"pool_adds": adaptive_avg_pool2d_adds(n, c, (h, w), (1, 1)),
                "pool_divides": adaptive_avg_pool2d_divides(n, c, (1, 1))}
