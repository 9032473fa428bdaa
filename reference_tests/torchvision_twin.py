"""torchvision's MobileNetV2, reproduced (torchvision is not installed beside the local torch
wheel), under the names torchvision uses. Defined once, in npconv.twins; checked against
torchvision's published figure of 3,504,872 parameters for width 1.0 (test_models.py).
"""

from npconv.twins import classes

_twins = classes()

_make_divisible = _twins.make_divisible
Conv2dNormActivation = _twins.Conv2dNormActivation
InvertedResidual = _twins.TorchvisionInvertedResidual
MobileNetV2 = _twins.MobileNetV2
