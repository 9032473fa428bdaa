"""The dtype and argument plumbing every op wrapper shares, written once.

npconv's precision rule (docs/semantics.md): float32 and float64 are computed in their own
precision; float16 is widened to float32, computed there, and rounded back to float16 once,
as PyTorch's CPU kernels do. The Numba kernels take C-contiguous arrays with a batch axis.
So a wrapper

    dtype = compute_dtype(input.dtype)                    # float16 -> float32
    x = as_kernel_array(input, dtype, unbatched)          # C-contiguous, batch axis added
    ... run the kernel into y ...
    return finish(y, input.dtype, unbatched)              # rounded back once, batch axis dropped

and checks its boolean options with `check_flag`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_kernel_array", "check_flag", "compute_dtype", "finish"]


def compute_dtype(dtype) -> np.dtype:
    """The dtype a kernel computes in for arrays of `dtype`: float32 for float16, else `dtype`."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def as_kernel_array(a, dtype, unbatched: bool = False) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype` (a view when it already is one, else a copy),
    with a leading batch axis of 1 added when `unbatched`."""
    a = np.asarray(a)
    return np.ascontiguousarray(a[np.newaxis] if unbatched else a, dtype=dtype)


def finish(y: np.ndarray | None, out_dtype, unbatched: bool = False) -> np.ndarray | None:
    """A kernel's result in the caller's dtype: rounded once to `out_dtype` (a float32 value
    beyond float16's range becomes +-inf, as in PyTorch, silently), the batch axis dropped when
    `unbatched`. None stays None (a gradient that was not asked for)."""
    if y is None:
        return None
    with np.errstate(over="ignore"):
        y = y.astype(out_dtype, copy=False)
    return y[0] if unbatched else y


def check_flag(value, name: str, op: str) -> bool:
    """`value` as a bool, or TypeError: a flag must be True or False (or a NumPy bool), not a
    number or None, as PyTorch's bool arguments."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}(): {name} must be True or False, not {type(value).__name__}")
    return bool(value)
