"""Activation layers: `ReLU` and `ReLU6`, each with its backward (a selection of gy by the
forward's input; npconv.layer_backward)."""

from __future__ import annotations

from ..functional import layers as ops
from ..functional.layer_backward import relu6_backward, relu_backward
from .module import Module


class ReLU(Module):
    """max(x, 0) element-wise, any shape. `inplace` is accepted for PyTorch compatibility
    and ignored: the output is always a new array."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        self.save_for_backward(input)
        return ops.relu(input)

    def backward(self, grad_output):
        (input,) = self.saved_for_backward()
        return relu_backward(grad_output, input) if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU6(Module):
    """min(max(x, 0), 6) element-wise, any shape (MobileNet's activation, bounded so that
    activations stay representable in low precision). `inplace` is accepted and ignored."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        self.save_for_backward(input)
        return ops.relu6(input)

    def backward(self, grad_output):
        (input,) = self.saved_for_backward()
        return relu6_backward(grad_output, input) if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""
