"""The tutorial's blocks and the two published MobileNets, built from `npconv.nn`.

    DepthwiseSeparableConv, MobileNetBlock, InvertedResidual, HybridBlock, TinyMobileNet
        the seed tutorial's modules, same arguments and attribute names (models.tutorial)
    MobileNetV1(width_mult=1.0, num_classes=1000)
        Howard et al. 2017, Table 1, from the tutorial's MobileNetBlock (models.mobilenet_v1)
    MobileNetV2(width_mult=1.0, num_classes=1000)
        Sandler et al. 2018 with torchvision's layout and keys (models.mobilenet_v2; its
        torchvision-style block is models.mobilenet_v2.InvertedResidual)
"""

from .mobilenet_v1 import MobileNetV1
from .mobilenet_v2 import MobileNetV2
from .tutorial import DepthwiseSeparableConv, HybridBlock, InvertedResidual, MobileNetBlock, TinyMobileNet

__all__ = [
    "DepthwiseSeparableConv",
    "HybridBlock",
    "InvertedResidual",
    "MobileNetBlock",
    "MobileNetV1",
    "MobileNetV2",
    "TinyMobileNet",
]
