"""Layers with PyTorch's names, arguments and `state_dict` keys, over NumPy arrays.

    import numpy as np
    from npconv import nn
    layer = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=0), nn.BatchNorm2d(8), nn.ReLU6())
    y = layer(np.ones((1, 3, 16, 16), np.float32))        # (1, 8, 16, 16), float32

Every layer computes in its input's dtype through the counted reference kernels
(`npconv.functional`, `npconv.transpose`, `npconv.ops`); see `Module` for parameters,
state dicts, train/eval, counting by layer and each layer's `backward` (written under its
`forward`; a forward inside `enable_grad()` keeps what the backward needs), and
`npconv.nn.init` for the seeded initialisation.
"""

from . import init
from .activation import ReLU, ReLU6
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .init import manual_seed
from .linear import Flatten, Identity, Linear
from .module import IncompatibleKeys, Module, Sequential, enable_grad, is_grad_enabled
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .pooling import AdaptiveAvgPool2d
from .shuffle import ChannelShuffle

__all__ = [
    "AdaptiveAvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "ChannelShuffle",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "Flatten",
    "Identity",
    "IncompatibleKeys",
    "Linear",
    "Module",
    "ReLU",
    "ReLU6",
    "Sequential",
    "enable_grad",
    "init",
    "is_grad_enabled",
    "manual_seed",
]
