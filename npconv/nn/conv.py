"""Convolution layers: `Conv2d` and `ConvTranspose2d`, with PyTorch's arguments.

Both compute in the input's dtype: parameters are converted to it at every call (exact
when widening float32 parameters for a float64 input). `backward(grad_output)` (under
`forward`; see `Module`) returns dL/d(input) and puts dL/dweight, dL/dbias in `self.grads`,
from the input the forward kept (npconv.backward's conv2d_backward / conv_transpose2d_backward). Counting: Conv2d records under op
"conv2d" (depthwise and pointwise convolutions are the same kernel with other shapes),
ConvTranspose2d under "conv_transpose2d" (scatter `macs`, `inside_macs`, `bias_adds`).
"""

from __future__ import annotations

import numpy as np

from ..functional.backward import conv2d_backward, conv_transpose2d_backward
from ..functional.conv import conv2d
from ..geometry import PADDING_MODES, check_array, int_pair
from ..functional.conv_transpose import conv_transpose2d
from . import init
from .module import Module


def _check_channels(in_channels, out_channels, groups, layer: str) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{layer}: {name} must be an int, not {type(value).__name__}")
    if groups <= 0:
        raise ValueError("groups must be a positive integer")
    if in_channels < 0 or out_channels < 0:
        raise ValueError(
            f"{layer}: in_channels and out_channels must be non-negative, got {in_channels}, {out_channels}"
        )
    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")


def _cast(array: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if array is None else array.astype(dtype, copy=False)


class Conv2d(Module):
    """2-D convolution, `torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros')`.

    weight: (out_channels, in_channels / groups, kH, kW); bias: (out_channels,) or None.
    Input (N, C_in, H, W) or (C_in, H, W); output (N, C_out, OH, OW), see
    `npconv.functional.conv2d`. Initialised as PyTorch does (`npconv.nn.init`), from `rng`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        rng=None,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        _check_channels(in_channels, out_channels, groups, "Conv2d")
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(PADDING_MODES)}, but got padding_mode='{padding_mode}'"
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.stride = int_pair(stride, "stride")
        self.dilation = int_pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = int_pair(padding, "padding")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        rng = init.generator(rng)
        self.register_parameter("weight", init.kaiming_uniform(shape, rng, dtype))
        self.register_parameter("bias", init.bias_uniform(shape, self.out_channels, rng, dtype) if bias else None)

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = check_array(input, "input")
        self.save_for_backward(input)
        return conv2d(
            input, _cast(self.weight, input.dtype), _cast(self.bias, input.dtype),
            self.stride, self.padding, self.dilation, self.groups, self.padding_mode,
        )

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        (input,) = self.saved_for_backward()
        grad_input, grad_weight, grad_bias = conv2d_backward(
            grad_output, input, _cast(self.weight, input.dtype), stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, padding_mode=self.padding_mode, bias=self.bias is not None,
            needs_input_grad=self.needs_input_grad)
        self.set_grads(weight=grad_weight, bias=grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class ConvTranspose2d(Module):
    """2-D transposed convolution, `torch.nn.ConvTranspose2d(in_channels, out_channels,
    kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1)`.

    weight: (in_channels, out_channels / groups, kH, kW) -- input channels first, as PyTorch
    stores it; bias: (out_channels,) or None. Output size
    OH = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1; see
    `npconv.transpose.conv_transpose2d`. Only padding_mode='zeros' exists, as in PyTorch.
    `forward(input, output_size=None)`: output_size (the last two entries used) picks the
    output_padding that gives that size, as PyTorch does.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        *,
        rng=None,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        _check_channels(in_channels, out_channels, groups, "ConvTranspose2d")
        if padding_mode != "zeros":
            raise ValueError('Only "zeros" padding mode is supported for ConvTranspose2d')
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair of ints, got '{padding}'")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int_pair(kernel_size, "kernel_size", "conv_transpose2d")
        self.stride = int_pair(stride, "stride", "conv_transpose2d")
        self.padding = int_pair(padding, "padding", "conv_transpose2d")
        self.output_padding = int_pair(output_padding, "output_padding", "conv_transpose2d")
        self.dilation = int_pair(dilation, "dilation", "conv_transpose2d")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        rng = init.generator(rng)
        self.register_parameter("weight", init.kaiming_uniform(shape, rng, dtype))
        self.register_parameter("bias", init.bias_uniform(shape, self.out_channels, rng, dtype) if bias else None)

    def _output_padding(self, input: np.ndarray, output_size) -> tuple[int, int]:
        """PyTorch's `_ConvTransposeNd._output_padding`: the output_padding that makes the
        output `output_size` ((OH, OW), or the full output shape), which must lie within
        [smallest, smallest + stride - 1] in each dimension."""
        if output_size is None:
            return self.output_padding
        output_size = [int(s) for s in output_size]
        if len(output_size) == input.ndim:
            output_size = output_size[-2:]
        if len(output_size) != 2:
            raise ValueError(
                f"ConvTranspose2d: output_size must have 2 or {input.ndim} elements (got {len(output_size)})"
            )
        smallest = [
            (input.shape[-2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
            + self.dilation[d] * (self.kernel_size[d] - 1) + 1
            for d in range(2)
        ]
        largest = [smallest[d] + self.stride[d] - 1 for d in range(2)]
        if not all(smallest[d] <= output_size[d] <= largest[d] for d in range(2)):
            raise ValueError(
                f"requested an output size of {output_size}, but valid sizes range from {smallest} to {largest} "
                f"(for an input of {list(input.shape[-2:])})"
            )
        return output_size[0] - smallest[0], output_size[1] - smallest[1]

    def forward(self, input: np.ndarray, output_size=None) -> np.ndarray:
        input = check_array(input, "input", "conv_transpose2d")
        output_padding = self._output_padding(input, output_size)
        self.save_for_backward(input, output_padding)
        return conv_transpose2d(
            input, _cast(self.weight, input.dtype), _cast(self.bias, input.dtype),
            self.stride, self.padding, output_padding, self.groups, self.dilation,
        )

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        input, output_padding = self.saved_for_backward()
        grad_input, grad_weight, grad_bias = conv_transpose2d_backward(
            grad_output, input, _cast(self.weight, input.dtype), stride=self.stride, padding=self.padding,
            output_padding=output_padding, groups=self.groups, dilation=self.dilation, bias=self.bias is not None,
            needs_input_grad=self.needs_input_grad)
        self.set_grads(weight=grad_weight, bias=grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
