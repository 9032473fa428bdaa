"""`Linear`, `Identity` and `Flatten`, each with its backward under its forward."""

from __future__ import annotations

import numpy as np

from ..functional import layers as ops
from ..geometry import check_array
from ..functional.layer_backward import flatten_backward, linear_backward
from . import init
from .module import Module


class Linear(Module):
    """y = x W^T + b, `torch.nn.Linear(in_features, out_features, bias=True)`.

    weight: (out_features, in_features), bias: (out_features,) or None, both
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch initialises them. Input
    (*, in_features), output (*, out_features), in the input's dtype.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None, dtype=np.float32) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        shape = (self.out_features, self.in_features)
        rng = init.generator(rng)
        self.register_parameter("weight", init.kaiming_uniform(shape, rng, dtype))
        self.register_parameter("bias", init.bias_uniform(shape, self.out_features, rng, dtype) if bias else None)

    def forward(self, input):
        input = check_array(input, "input", "linear")
        dtype = input.dtype
        bias = None if self.bias is None else self.bias.astype(dtype, copy=False)
        self.save_for_backward(input)
        return ops.linear(input, self.weight.astype(dtype, copy=False), bias)

    def backward(self, grad_output):
        (input,) = self.saved_for_backward()
        grad_input, grad_weight, grad_bias = linear_backward(
            grad_output, input, self.weight.astype(input.dtype, copy=False), bias=self.bias is not None,
            needs_input_grad=self.needs_input_grad)
        self.set_grads(weight=grad_weight, bias=grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (the same array); accepts and ignores any arguments."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input

    def backward(self, grad_output):
        return grad_output if self.needs_input_grad else None


class Flatten(Module):
    """`torch.nn.Flatten(start_dim=1, end_dim=-1)`: merge dimensions start_dim..end_dim."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        output = ops.flatten(input, self.start_dim, self.end_dim)
        self.save_for_backward(np.shape(input))
        return output

    def backward(self, grad_output):
        (input_shape,) = self.saved_for_backward()
        return flatten_backward(grad_output, input_shape) if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
