"""`BatchNorm1d`, `BatchNorm2d` and `BatchNorm3d`, with PyTorch's arguments, state and
training behaviour. The three differ only in the ranks they accept ((N, C) or (N, C, L);
(N, C, H, W); (N, C, D, H, W)); each normalises every channel over all the other axes
(`npconv.ops.batch_norm`)."""

from __future__ import annotations

import numpy as np

from ..functional import layers as ops
from ..geometry import check_array
from ..functional.layer_backward import batch_norm2d_backward
from .module import Module


class _BatchNorm(Module):
    """What the three classes share; `_ranks` and `_rank_message` are each one's input check."""

    _ranks: tuple[int, ...] = ()
    _rank_message = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a non-negative int, got {num_features!r}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        C = self.num_features
        self.register_parameter("weight", np.ones(C, dtype) if affine else None)
        self.register_parameter("bias", np.zeros(C, dtype) if affine and bias else None)
        self.register_buffer("running_mean", np.zeros(C, dtype) if track_running_stats else None)
        self.register_buffer("running_var", np.ones(C, dtype) if track_running_stats else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if track_running_stats else None)

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = check_array(input, "input", f"batch_norm{type(self).__name__[-2:]}")
        if input.ndim not in self._ranks:
            raise ValueError(self._rank_message.format(input.ndim))
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"expected input with {self.num_features} channels (num_features), "
                f"but got input of size {list(input.shape)}"
            )
        dtype = input.dtype
        cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
        weight, bias = cast(self.weight), cast(self.bias)
        tracking = self.training and self.track_running_stats
        use_batch_stats = self.training or self.running_mean is None
        if not use_batch_stats:
            mean, var = cast(self.running_mean), cast(self.running_var)
            self.save_for_backward(input, mean, var, False)
            return ops.batch_norm(input, mean, var, weight, bias, training=False, eps=self.eps)
        if tracking:
            batches = int(self.num_batches_tracked) + 1
            factor = 1.0 / batches if self.momentum is None else float(self.momentum)
            result = ops.batch_norm(input, cast(self.running_mean), cast(self.running_var), weight, bias,
                                    training=True, momentum=factor, eps=self.eps)
            self.running_mean = result.running_mean.astype(self.running_mean.dtype)
            self.running_var = result.running_var.astype(self.running_var.dtype)
            self.num_batches_tracked = np.array(batches, dtype=np.int64)
        else:
            result = ops.batch_norm(input, None, None, weight, bias, training=True, eps=self.eps)
        self.save_for_backward(input, result.batch_mean, result.batch_var, True)
        return result.output

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        """batch_norm2d_backward on the input viewed as (N, C, 1, prod(*)), as the forward
        computed it (the same values per channel)."""
        input, mean, var, batch_statistics = self.saved_for_backward()
        weight = None if self.weight is None else self.weight.astype(input.dtype, copy=False)
        plane = (input.shape[0], input.shape[1], 1, int(np.prod(input.shape[2:], dtype=np.int64)))
        if input.ndim != 4:
            grad_output = np.reshape(grad_output, plane)
        grad_input, grad_weight, grad_bias = batch_norm2d_backward(
            grad_output, input if input.ndim == 4 else input.reshape(plane), weight, mean=mean, var=var,
            training=batch_statistics, eps=self.eps, needs_input_grad=self.needs_input_grad)
        self.set_grads(weight=grad_weight, bias=None if self.bias is None else grad_bias)
        return None if grad_input is None else grad_input.reshape(input.shape)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over the channels of an (N, C) or (N, C, L) input,
    `torch.nn.BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True)`: `BatchNorm2d` with each channel's statistics
    over its N (or N*L) values. Other ranks: ValueError "expected 2D or 3D input (got kD
    input)", as PyTorch."""

    _ranks = (2, 3)
    _rank_message = "expected 2D or 3D input (got {}D input)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over the channels of an (N, C, D, H, W) input,
    `torch.nn.BatchNorm3d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True)`: `BatchNorm2d` with each channel's statistics
    over its N*D*H*W values. Other ranks: ValueError "expected 5D input (got kD input)", as
    PyTorch."""

    _ranks = (5,)
    _rank_message = "expected 5D input (got {}D input)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels of an (N, C, H, W) input (Ioffe & Szegedy 2015),
    `torch.nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True)`.

        y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

    Parameters weight (C,) = 1 when affine and bias (C,) = 0 when affine and bias (PyTorch's
    keyword-only `bias=False` keeps the weight and drops the shift); buffers running_mean
    (C,) = 0, running_var (C,) = 1 and num_batches_tracked (int64 scalar) = 0 when
    track_running_stats.

    Evaluation mode uses the running statistics (or the batch's when there are none).
    Training mode normalises with the batch's mean and biased variance over N*H*W values
    per channel and, when tracking, increments num_batches_tracked and updates
    running = (1 - f) * running + f * batch with the unbiased batch variance, where
    f = momentum (any number, as in PyTorch: values outside [0, 1] extrapolate), or
    1 / num_batches_tracked (a cumulative average) when momentum is None. An empty batch
    gives an empty output and leaves the running statistics alone, but still counts in
    num_batches_tracked, as in PyTorch. Errors, as PyTorch's: a training batch with one
    value per channel (the unbiased variance would divide by zero), eps <= 0 in training
    (or whenever the batch statistics are used), eps < 0 in evaluation. Unlike PyTorch, which
    increments num_batches_tracked before these checks, num_batches_tracked is incremented
    only once the forward pass has succeeded.

    Backward (npconv.layer_backward.batch_norm2d_backward): a recorded forward keeps its
    input and the statistics it normalised with -- the batch's mean and biased variance in
    training (PyTorch's save_mean, save_invstd), the running ones in evaluation -- so the
    backward uses exactly those values and recomputes nothing.
    """

    _ranks = (4,)
    _rank_message = "expected 4D input (got {}D input)"
