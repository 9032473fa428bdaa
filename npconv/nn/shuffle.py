"""`ChannelShuffle`."""

from __future__ import annotations

import numpy as np

from ..functional import layers as ops
from ..functional.layer_backward import channel_shuffle_backward
from .module import Module


class ChannelShuffle(Module):
    """ShuffleNet's channel shuffle (Zhang et al. 2018), `torch.nn.ChannelShuffle(groups)`:
    for an (N, C, *) input, output channel j*groups + i is input channel i*(C/groups) + j.
    Its backward is the inverse permutation."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
            raise TypeError(f"ChannelShuffle: groups must be an int, not {type(groups).__name__}")
        self.groups = int(groups)

    def forward(self, input):
        return ops.channel_shuffle(input, self.groups)

    def backward(self, grad_output):  # needs nothing from the forward: a fixed permutation
        return channel_shuffle_backward(grad_output, self.groups) if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
