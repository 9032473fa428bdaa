"""MobileNetV1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications", Table 1), built from the tutorial's `MobileNetBlock`.

Layout, for input 224 x 224 and width multiplier alpha (channels c -> int(c * alpha)):

    features.0      Sequential(Conv2d 3->32 3x3 s2 p1 no bias, BatchNorm2d, ReLU6)   112 x 112
    features.1      MobileNetBlock(32, 64, 1)                                        112
    features.2-3    MobileNetBlock(64, 128, 2), (128, 128, 1)                         56
    features.4-5    MobileNetBlock(128, 256, 2), (256, 256, 1)                        28
    features.6-11   MobileNetBlock(256, 512, 2), then 5 x (512, 512, 1)               14
    features.12-13  MobileNetBlock(512, 1024, 2), (1024, 1024, 1)                      7
    avgpool         AdaptiveAvgPool2d(1)                                               1
    classifier      Linear(1024, num_classes)

so `state_dict()` keys read "features.0.0.weight", "features.1.dw_conv.0.weight", ...,
"classifier.bias". The paper's Table 1 prints the second-to-last depthwise layer as
"Conv dw / s2" on a 7 x 7 x 1024 input; read literally that would shrink the map to 4 x 4,
yet the same table gives the next layer's input, and the 7 x 7 average pool's, as 7 x 7.
The stride there is a typo: every implementation (TF-Slim's mobilenet_v1.py, Keras's
MobileNet) uses stride 1, and so does this one. The paper's activation is ReLU; the
tutorial's block, used here, has ReLU6, as TF-Slim's implementation does.

1.0 MobileNet-224 has about 4.2 million parameters and 569 million mult-adds (Table 8).
"""

from __future__ import annotations

from .. import memory
from ..functional import layers as ops
from ..functional.layer_backward import flatten_backward
from ..nn import init
from ..nn.activation import ReLU6
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.module import Module, Sequential
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d
from . import _checks
from .tutorial import MobileNetBlock

# (output channels, stride) of the 13 depthwise separable blocks of Table 1.
BLOCKS = (
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)


class MobileNetV1(Module):
    """MobileNetV1 with width multiplier `width_mult` (module docstring).

    Input (N, 3, H, W), output (N, num_classes) logits. The network downsamples by 32; any
    H, W >= 1 runs (as in PyTorch), though 224 x 224 is what it was designed for.
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000, *, rng=None):
        super().__init__()
        width_mult = _checks.positive_number(width_mult, "width_mult", "MobileNetV1")
        num_classes = _checks.integer(num_classes, "num_classes", "MobileNetV1")
        channels = lambda c: int(c * width_mult)  # noqa: E731
        in_ch = channels(32)
        if in_ch < 1:
            raise ValueError(f"MobileNetV1(): argument 'width_mult' = {width_mult} leaves the stem with {in_ch} "
                             f"channels (int(32 * width_mult)); use at least {1 / 32:g}")
        memory.check_model(MobileNetV1, width_mult=width_mult, num_classes=num_classes)
        rng = init.generator(rng)
        layers = [Sequential(Conv2d(3, in_ch, 3, 2, 1, bias=False, rng=rng), BatchNorm2d(in_ch), ReLU6(inplace=True))]
        for out_c, stride in BLOCKS:
            out_ch = channels(out_c)
            layers.append(MobileNetBlock(in_ch, out_ch, stride, rng=rng))
            in_ch = out_ch
        self.width_mult = width_mult
        self.features = Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.classifier = Linear(in_ch, num_classes, rng=rng)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        self.save_for_backward(x.shape)
        x = ops.flatten(x, 1)
        return self.classifier(x)

    def backward(self, grad):
        (pooled_shape,) = self.saved_for_backward()
        grad = self.classifier.backward(grad)
        grad = None if grad is None else flatten_backward(grad, pooled_shape)
        grad = self.avgpool.backward(grad)
        return self.features.backward(grad)
