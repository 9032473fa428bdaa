"""The dtype and argument plumbing every op wrapper shares, written once.

npconv's precision rule (docs/semantics.md): float32 and float64 are computed in their own
precision; float16 and bfloat16 (`ml_dtypes.bfloat16` arrays, NumPy having no bfloat16) are
widened to float32, computed there, and rounded back once, as PyTorch's CPU kernels do
(docs/semantics.md says where PyTorch rounds more often: measured, op by op). The Numba
kernels take C-contiguous arrays with a batch axis. So a wrapper

    dtype = compute_dtype(input.dtype)                    # float16, bfloat16 -> float32
    x = as_kernel_array(input, dtype, unbatched)          # C-contiguous, batch axis added
    ... run the kernel into y ...
    return finish(y, input.dtype, unbatched)              # rounded back once, batch axis dropped

and checks its boolean options with `check_flag`.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = ["BFLOAT16", "FLOAT_DTYPES", "NARROW_DTYPES", "as_kernel_array", "check_flag", "compute_dtype", "finfo",
           "finish", "from_tensor", "is_floating"]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
NARROW_DTYPES = (np.dtype(np.float16), BFLOAT16)  # computed in float32, rounded back once
FLOAT_DTYPES = (np.dtype(np.float16), BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))


def is_floating(dtype) -> bool:
    """True for the four dtypes npconv computes with (`np.issubdtype(dtype, np.floating)`
    is False for ml_dtypes' bfloat16)."""
    return np.dtype(dtype) in FLOAT_DTYPES


def finfo(dtype):
    """`np.finfo` for every dtype of FLOAT_DTYPES (ml_dtypes.finfo for bfloat16)."""
    dtype = np.dtype(dtype)
    return ml_dtypes.finfo(dtype) if dtype == BFLOAT16 else np.finfo(dtype)


def compute_dtype(dtype) -> np.dtype:
    """The dtype a kernel computes in for arrays of `dtype`: float32 for float16 and bfloat16,
    else `dtype`."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype in NARROW_DTYPES else dtype


def from_tensor(tensor) -> np.ndarray:
    """A torch tensor as a NumPy array (detached, on the CPU), without importing torch. A
    bfloat16 tensor, which `Tensor.numpy()` refuses, becomes an ml_dtypes.bfloat16 array of the
    same bits (its int16 view, reinterpreted); the result may share the tensor's memory."""
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":
        import torch  # already imported: `tensor` is one of its tensors

        return tensor.view(torch.int16).numpy().view(BFLOAT16)
    return tensor.numpy()


def as_kernel_array(a, dtype, unbatched: bool = False) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype` (a view when it already is one, else a copy),
    with a leading batch axis of 1 added when `unbatched`."""
    a = np.asarray(a)
    return np.ascontiguousarray(a[np.newaxis] if unbatched else a, dtype=dtype)


def finish(y: np.ndarray | None, out_dtype, unbatched: bool = False) -> np.ndarray | None:
    """A kernel's result in the caller's dtype: rounded once to `out_dtype`, to nearest, ties
    to even (a float32 value beyond float16's or bfloat16's range becomes +-inf, as in
    PyTorch, silently), the batch axis dropped when
    `unbatched`. None stays None (a gradient that was not asked for)."""
    if y is None:
        return None
    if y.dtype != out_dtype:  # (most calls: already the caller's dtype, and nothing to round)
        with np.errstate(over="ignore", invalid="ignore"):  # (ml_dtypes' cast flags a NaN as invalid)
            y = y.astype(out_dtype)
    return y[0] if unbatched else y


def check_flag(value, name: str, op: str) -> bool:
    """`value` as a bool, or TypeError: a flag must be True or False (or a NumPy bool), not a
    number or None, as PyTorch's bool arguments."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}(): {name} must be True or False, not {type(value).__name__}")
    return bool(value)
