"""The public ops on NumPy arrays: argument checks with PyTorch's messages, dtype plumbing,
and a call of the counted reference kernel (npconv/kernels) or the fast tier (npconv/fast).

    conv.py             conv2d, depthwise / pointwise / depthwise-separable convolution
    conv_transpose.py   conv_transpose2d
    layers.py           batch norm, ReLU/ReLU6, adaptive average pooling, linear, flatten,
                        channel shuffle, dropout, the residual add
    elementwise.py      clamp/hardtanh, sigmoid, add/sub/mul/div with broadcasting
    pooling.py          max and average pooling, means
    channels.py         channel concatenation and split (forward and backward)
    pad.py              pad: F.pad's constant, reflect, replicate and circular padding
    backward.py         the convolutions' backward (grad_input, grad_weight, grad_bias)
    layer_backward.py   the other layers' backward

`npconv.functional.conv2d` and friends are re-exported here; the modules keep their former
import paths too (npconv.ops, npconv.transpose, npconv.backward, ...: see npconv/__init__.py).
"""

from .conv import conv2d, depthwise_conv2d, depthwise_separable_conv2d, pointwise_conv2d
from .pad import pad

__all__ = ["conv2d", "depthwise_conv2d", "depthwise_separable_conv2d", "pad", "pointwise_conv2d"]
