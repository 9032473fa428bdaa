"""The tutorial's PyTorch classes and a PyTorch MobileNetV1: the twins npconv's modules are
tested against, under module-level names for the tests.

They are defined once, in npconv.twins (the `npconv verify` command builds the same twins):
the tutorial's code restored token for token from its text extraction, and MobileNetV1 after
Howard et al. 2017, Table 1, written in PyTorch with npconv.models.MobileNetV1's keys.
"""

from npconv.twins import classes

_twins = classes()

DepthwiseSeparableConv = _twins.DepthwiseSeparableConv
MobileNetBlock = _twins.MobileNetBlock
InvertedResidual = _twins.InvertedResidual
HybridBlock = _twins.HybridBlock
TinyMobileNet = _twins.TinyMobileNet
MobileNetV1 = _twins.MobileNetV1
