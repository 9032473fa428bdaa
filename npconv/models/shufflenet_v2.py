"""ShuffleNetV2's building unit (Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for
Efficient CNN Architecture Design", Sec. 4 and Fig. 3(c), (d)), with torchvision's layout
(torchvision/models/shufflenetv2.py, `InvertedResidual`), so that its state_dict keys
("branch2.0.weight", "branch2.1.running_mean", ...) are torchvision's.

    stride 1, Fig. 3(c): x (C channels) is split into two halves; x1 passes unchanged,
        x2 goes through branch2; the two are joined and the channels shuffled:
            y = shuffle(cat(x1, branch2(x2)), 2)
    stride 2, Fig. 3(d): no split; both branches see all of x and halve its size:
            y = shuffle(cat(branch1(x), branch2(x)), 2)

    branch1  Sequential(3x3 depthwise conv s2, BN, 1x1 conv, BN, ReLU)       (stride 2 only)
    branch2  Sequential(1x1 conv, BN, ReLU, 3x3 depthwise conv (stride), BN, 1x1 conv, BN, ReLU)

Convolutions have no bias (BN's shift plays that role); each branch ends with oup // 2
channels. (torchvision keeps an empty `branch1 = nn.Sequential()` for stride 1; it holds
no state, and this unit has no branch1 then.)

The unit's own ops, between its children: the channel split (views), the concatenation
(counted "cat": copies, one per output element) and the channel shuffle with 2 groups
(counted "channel_shuffle": shuffle_copies, one per output element) -- `own_cost` gives
the closed forms. Backward, under forward: the shuffle undone (the inverse permutation),
the concatenation's gradient split at the same channel, then each branch's backward; at
stride 1 the passed-through half's gradient is joined with branch2's (a split's gradient
is a concatenation), at stride 2 x fed both branches, so its gradient is their sum.
"""

from __future__ import annotations

import numpy as np

from .. import memory
from ..functional import layers as ops
from ..functional.channels import cat_channels, cat_channels_backward, split_channels, split_channels_backward
from ..functional.layer_backward import channel_shuffle_backward, residual_add_backward
from ..nn import init
from ..nn.activation import ReLU
from ..nn.conv import Conv2d
from ..nn.module import Module, Sequential
from ..nn.normalization import BatchNorm2d
from . import _checks


class ShuffleNetV2Unit(Module):
    """torchvision's ShuffleNetV2 `InvertedResidual(inp, oup, stride)` (module docstring).

    Input (N, inp, H, W); output (N, oup, ceil(H/stride), ceil(W/stride)). stride 1 needs
    inp == oup and an even oup; stride 2 (or 3, as torchvision allows) any inp and an even
    oup. Convolutions initialised as PyTorch's (`npconv.nn.init`), from `rng`.
    """

    def __init__(self, inp: int, oup: int, stride: int, *, rng=None):
        super().__init__()
        inp = _checks.integer(inp, "inp", "ShuffleNetV2Unit")
        oup = _checks.integer(oup, "oup", "ShuffleNetV2Unit")
        stride = _checks.integer(stride, "stride", "ShuffleNetV2Unit", minimum=0)
        if not 1 <= stride <= 3:
            raise ValueError("illegal stride value")
        branch_features = oup // 2
        if stride == 1 and inp != branch_features << 1:
            raise ValueError(f"Invalid combination of stride {stride}, inp {inp} and oup {oup} values. "
                             "If stride == 1 then inp should be equal to oup // 2 << 1.")
        memory.check_model(ShuffleNetV2Unit, inp=inp, oup=oup, stride=stride)
        rng = init.generator(rng)
        self.stride = stride
        self.branch_features = branch_features
        if stride > 1:
            self.branch1 = Sequential(
                Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False, rng=rng),
                BatchNorm2d(inp),
                Conv2d(inp, branch_features, 1, 1, 0, bias=False, rng=rng),
                BatchNorm2d(branch_features),
                ReLU(inplace=True),
            )
        self.branch2 = Sequential(
            Conv2d(inp if stride > 1 else branch_features, branch_features, 1, 1, 0, bias=False, rng=rng),
            BatchNorm2d(branch_features),
            ReLU(inplace=True),
            Conv2d(branch_features, branch_features, 3, stride, 1, groups=branch_features, bias=False, rng=rng),
            BatchNorm2d(branch_features),
            Conv2d(branch_features, branch_features, 1, 1, 0, bias=False, rng=rng),
            BatchNorm2d(branch_features),
            ReLU(inplace=True),
        )

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = split_channels(x, self.branch_features)       # torchvision: x.chunk(2, dim=1)
            out = cat_channels(x1, self.branch2(x2))
        else:
            out = cat_channels(self.branch1(x), self.branch2(x))
        return ops.channel_shuffle(out, 2)

    def backward(self, grad):
        grad = channel_shuffle_backward(grad, 2)
        grad_first, grad_second = cat_channels_backward(grad, self.branch_features)
        if self.stride == 1:
            grad_x2 = self.branch2.backward(grad_second)
            return None if grad_x2 is None else split_channels_backward(grad_first, grad_x2)
        grad_x_branch1 = self.branch1.backward(grad_first)
        grad_x_branch2 = self.branch2.backward(grad_second)
        if grad_x_branch1 is None or grad_x_branch2 is None:
            return None
        return residual_add_backward(grad_x_branch1, grad_x_branch2)  # x fed both branches: the sum at the fork

    def own_cost(self, input_shape, output_shape, child_shapes=None) -> dict:
        """The closed forms of what this unit's own forward counts (not its children's), for
        one call with these shapes: the concatenation and the shuffle each write every
        output element once; the split is a view."""
        elements = int(np.prod(output_shape, dtype=np.int64))
        return {"copies": elements, "shuffle_copies": elements}

    def extra_repr(self) -> str:
        return f"stride={self.stride}"
