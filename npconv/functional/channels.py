"""Joining and splitting arrays along the channel axis, forward and backward, counted:
the data movement of ShuffleNetV2's unit (Ma et al. 2018, Fig. 3(c), (d)).

    y = cat_channels(a, b)                    torch.cat((a, b), dim=1)        op "cat": copies
    x1, x2 = split_channels(x, c1)            x[:, :c1], x[:, c1:] (views)     op "split": a call
    ga, gb = cat_channels_backward(gy, c1)    gy[:, :c1], gy[:, c1:] (views)   op "cat_backward": a call
    gx = split_channels_backward(g1, g2)      cat_channels(g1, g2)             op "split_backward": copies

A concatenation's gradient is the split of gy at the same channel, and a split's is the
concatenation of its parts' gradients (npconv/kernels/cat_channels.py). Arrays are
(N, C, *spatial) of one dtype and one batch and spatial shape; float16 is copied through
float32, which is exact.
"""

from __future__ import annotations

import numpy as np

from .. import counting
from .. import memory
from ..dtypes import as_kernel_array, compute_dtype, finish
from ..geometry import check_array
from ..kernels.cat_channels import cat_channels as _cat_kernel

__all__ = ["cat_channels", "cat_channels_backward", "split_channels", "split_channels_backward"]


def _cat(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    a = check_array(a, "a", op)
    b = check_array(b, "b", op)
    if a.dtype != b.dtype:
        raise TypeError(f"{op}(): both arrays must have one dtype, but got {a.dtype} and {b.dtype}")
    if a.ndim < 2 or a.ndim != b.ndim or a.shape[:1] + a.shape[2:] != b.shape[:1] + b.shape[2:]:
        raise ValueError(f"{op}(): arrays of shapes {list(a.shape)} and {list(b.shape)} cannot be joined along "
                         "the channels (dimension 1): every other dimension must agree")
    dtype = compute_dtype(a.dtype)
    N, spatial = a.shape[0], int(np.prod(a.shape[2:], dtype=np.int64))
    memory.check_output(op, (N, a.shape[1] + b.shape[1]) + a.shape[2:], dtype)
    y = np.empty((N, a.shape[1] + b.shape[1], spatial), dtype)
    copies = _cat_kernel(as_kernel_array(a, dtype).reshape(N, a.shape[1], spatial),
                         as_kernel_array(b, dtype).reshape(N, b.shape[1], spatial), y)
    counting.record(op, copies=copies)
    return finish(y.reshape((N, y.shape[1]) + a.shape[2:]), a.dtype)


def _split(x: np.ndarray, first: int, op: str) -> tuple[np.ndarray, np.ndarray]:
    x = check_array(x, "input", op)
    if x.ndim < 2 or not 0 <= first <= x.shape[1]:
        raise ValueError(f"{op}(): cannot split an array of shape {list(x.shape)} after channel {first}")
    counting.record(op)
    return x[:, :first], x[:, first:]


def cat_channels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, Ca, *S) and (N, Cb, *S) -> (N, Ca + Cb, *S). Records op "cat": copies, one per
    output element."""
    return _cat(a, b, "cat")


def split_channels(x: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, *S) -> views of its first `first` channels and of the rest (torch.chunk's
    halves for first = C // 2). Moves nothing; records op "split" (a call)."""
    return _split(x, first, "split")


def cat_channels_backward(grad_output: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """dL/da, dL/db of y = cat_channels(a, b) with a of `first` channels: views of
    grad_output's two channel ranges. Records op "cat_backward" (a call)."""
    return _split(grad_output, first, "cat_backward")


def split_channels_backward(grad_first: np.ndarray, grad_second: np.ndarray) -> np.ndarray:
    """dL/dx of x1, x2 = split_channels(x, c1): the two parts' gradients joined. Records op
    "split_backward": copies, one per element."""
    return _cat(grad_first, grad_second, "split_backward")
