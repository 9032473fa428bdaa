"""`AdaptiveAvgPool2d`."""

from __future__ import annotations

import numpy as np

from ..functional import layers as ops
from ..functional.layer_backward import adaptive_avg_pool2d_backward
from .module import Module


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, `torch.nn.AdaptiveAvgPool2d(output_size)`.

    Input (N, C, H, W) or (C, H, W); output (..., OH, OW). output_size is an int or a pair,
    None in the pair keeping the input's size. Output cell (i, j) averages input rows
    floor(i*H/OH) .. ceil((i+1)*H/OH) - 1 and the same for columns (PyTorch's rule).
    AdaptiveAvgPool2d(1) is global average pooling.
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        output = ops.adaptive_avg_pool2d(input, self.output_size)
        self.save_for_backward(np.shape(input))
        return output

    def backward(self, grad_output):
        (input_shape,) = self.saved_for_backward()
        return adaptive_avg_pool2d_backward(grad_output, input_shape) if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
