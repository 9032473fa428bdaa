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

import functools

import numpy as np

__all__ = ["FLOAT_DTYPES", "NARROW_DTYPES", "as_kernel_array", "bfloat16", "check_flag", "compute_dtype",
           "finfo", "finish", "from_tensor", "is_floating"]


@functools.cache
def bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16 as a NumPy dtype. ml_dtypes is imported here, on first use, not with
    npconv: importing it took 0.64 s on this project's machine (December 2026), more than the
    rest of `import npconv`, numba included, and a process that never meets a bfloat16 array
    never needs it (one that does has imported ml_dtypes to make the array)."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def _is_bfloat16(dtype) -> bool:
    # by kind and name first, so that asking about any other dtype does not import ml_dtypes
    # (ml_dtypes' bfloat16 is of kind "V"; NumPy's floats are "f", and a dtype's kind costs
    # 0.06 us to read where its name costs 2 us: this runs a few times in every op's call)
    return getattr(dtype, "kind", None) == "V" and dtype.name == "bfloat16" and dtype == bfloat16()


class _Dtypes:
    """A fixed set of dtypes that answers `dtype in it` as the tuple of them would, bfloat16
    included, without importing ml_dtypes for any other dtype; iterating lists them all."""

    def __init__(self, *numpy_dtypes, with_bfloat16: bool):
        self._numpy = tuple(np.dtype(d) for d in numpy_dtypes)
        self._hashed = frozenset(self._numpy)
        self._bfloat16 = with_bfloat16

    def __contains__(self, dtype) -> bool:
        # every op asks this of its arrays' dtypes, a few times per call: a set lookup for a
        # dtype (0.1 us; a Python loop of comparisons took a few us per call in all)
        if isinstance(dtype, np.dtype) and dtype in self._hashed:
            return True
        if self._bfloat16 and _is_bfloat16(dtype):
            return True
        return not isinstance(dtype, np.dtype) and any(dtype == d for d in self._numpy)

    def __iter__(self):
        yield from self._numpy[:1]
        if self._bfloat16:
            yield bfloat16()
        yield from self._numpy[1:]

    def __len__(self) -> int:
        return len(self._numpy) + self._bfloat16

    def __repr__(self) -> str:
        return repr(tuple(self))


NARROW_DTYPES = _Dtypes(np.float16, with_bfloat16=True)  # computed in float32, rounded back once
FLOAT_DTYPES = _Dtypes(np.float16, np.float32, np.float64, with_bfloat16=True)   # float16, bfloat16, float32, float64


def __getattr__(name):
    # BFLOAT16, the dtype itself, for `from npconv.dtypes import BFLOAT16` (imports ml_dtypes then)
    if name == "BFLOAT16":
        return bfloat16()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_floating(dtype) -> bool:
    """True for the four dtypes npconv computes with (`np.issubdtype(dtype, np.floating)`
    is False for ml_dtypes' bfloat16)."""
    return np.dtype(dtype) in FLOAT_DTYPES


def finfo(dtype):
    """`np.finfo` for every dtype of FLOAT_DTYPES (ml_dtypes.finfo for bfloat16)."""
    dtype = np.dtype(dtype)
    if _is_bfloat16(dtype):
        import ml_dtypes

        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype)


_COMPUTED_AS_IS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


def compute_dtype(dtype) -> np.dtype:
    """The dtype a kernel computes in for arrays of `dtype`: float32 for float16 and bfloat16,
    else `dtype`."""
    if dtype in _COMPUTED_AS_IS:    # (every op's call asks: a set lookup first, 0.1 of its 0.5 us)
        return dtype
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype in NARROW_DTYPES else dtype


def from_tensor(tensor) -> np.ndarray:
    """A torch tensor as a NumPy array (detached, on the CPU), without importing torch. A
    bfloat16 tensor, which `Tensor.numpy()` refuses, becomes an ml_dtypes.bfloat16 array of the
    same bits (its int16 view, reinterpreted); the result may share the tensor's memory."""
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":
        import torch  # already imported: `tensor` is one of its tensors

        return tensor.view(torch.int16).numpy().view(bfloat16())
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
