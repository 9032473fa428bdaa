"""The inverted residual's data flow, shared by the tutorial's block and torchvision's:
y = x + conv(x) when the block adds its input back, else y = conv(x).

Subclasses build `self.conv` and say, by `shortcut`, whether the input is added back (the
tutorial names that flag `use_residual`, torchvision `use_res_connect`)."""

from __future__ import annotations

import numpy as np

from ..functional import layers as ops
from ..functional.layer_backward import residual_add_backward
from ..nn.module import Module


class ResidualBranch(Module):
    """conv(x), plus x when `shortcut` (He et al. 2016; Sandler et al. 2018, Sec. 3.3)."""

    @property
    def shortcut(self) -> bool:
        raise NotImplementedError

    def forward(self, x):
        if self.shortcut:
            return ops.add(x, self.conv(x))
        return self.conv(x)

    def backward(self, grad):
        grad_branch = self.conv.backward(grad)
        if self.shortcut and grad_branch is not None:
            return residual_add_backward(grad, grad_branch)  # x feeds the shortcut and conv: the sum at the fork
        return grad_branch

    def own_cost(self, input_shape, output_shape, child_shapes) -> dict:
        """Closed forms of this block's own forward (not its children's): one add per output
        element when the input is added back."""
        return {"residual_adds": int(np.prod(output_shape, dtype=np.int64)) if self.shortcut else 0}
