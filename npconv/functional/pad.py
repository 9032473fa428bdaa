"""`pad`: `torch.nn.functional.pad` on NumPy arrays.

    y = pad(x, (1, 1))                          # the last axis: one element before, one after
    y = pad(x, (1, 1, 2, 0), mode="reflect")    # then the axis before it: two before, none after
    y = pad(x, (-1, 0), value=7.0)              # a negative pad crops

`pad` lists (before, after) for the last axis, then for the one before it, and so on: a
tuple of length 2, 4 or 6 pads one, two or three axes. The modes and their rules are
PyTorch's (`npconv.geometry.pad_geometry` has them all):

    constant    the fill value `value` (default 0) around the input; any number of axes,
                any input rank; negative pads crop
    reflect     the input mirrored at its edges, the edge element not repeated; pads smaller
                than the axis
    replicate   the edge element repeated
    circular    the input tiled; pads at most the axis size (one wrap); a negative pad crops
                first and the rest is tiled

reflect, replicate and circular pad the last 1, 2 or 3 axes of an input with one or two
more axes (a batch and channels, or channels only), and take no fill value (0 is allowed).

Exact: every output element is a copy of an input element or the fill value, so the result
equals PyTorch's bit for bit, in the input's dtype. The fill value is rounded to the dtype
as PyTorch rounds it (a float16 fill goes through float32 first), and a finite value
outside the dtype's range is an error, as in PyTorch (which lets it through to a float16
output of a single element). The convolutions' `padding_mode`
(npconv.functional.conv) pads with the same kernel.

Counted under op "pad": `copies`, one per output element written (npconv/kernels/pad.py).
"""

from __future__ import annotations

import numpy as np

from .. import counting
from ..dtypes import NARROW_DTYPES, as_kernel_array, compute_dtype, finfo, finish
from ..geometry import PadGeometry, check_array, check_pad_arguments, pad_geometry, torch_dtype_name
from ..kernels import pad as pad_kernel

__all__ = ["pad"]

_C10_TYPE_NAMES = {"float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double"}


def pad(input: np.ndarray, pad, mode: str = "constant", value: float | None = None) -> np.ndarray:
    """`torch.nn.functional.pad(input, pad, mode, value)` (module docstring).

    input: any float16/float32/float64 array (reflect, replicate and circular: 2-D to 5-D,
    see `pad`); pad: a tuple or list of an even number of ints, (before, after) of the last
    axis first; mode: "constant", "reflect", "replicate" or "circular"; value: the fill of
    constant mode (None: 0). Returns a new array of the input's dtype, each padded axis
    `before + size + after` long.

    Raises where PyTorch raises: TypeError for a wrong type, NotImplementedError for an
    unknown mode or a mode/rank combination PyTorch does not implement, ValueError (with
    PyTorch's message) for the rest.
    """
    op = "pad"
    input = check_array(input, "input", op)
    pads, mode = check_pad_arguments(pad, mode, value)
    geometry = pad_geometry(input.shape, pads, mode, value)
    dtype = compute_dtype(input.dtype)
    fill = _fill_value(value, input.dtype, dtype, geometry)
    y, copies = _padded(as_kernel_array(input, dtype), geometry, fill)
    counting.record(op, copies=copies)
    return finish(y, input.dtype)


def padded(x: np.ndarray, pad, mode: str) -> np.ndarray:
    """`x` (C-contiguous, a kernel dtype) padded as `pad(x, pad, mode)` would, `mode` also
    "zeros" (constant 0): the convolutions' padding_mode, applied before the convolution.
    Not counted: the convolution's counts are its own (docs/semantics.md)."""
    mode = "constant" if mode == "zeros" else mode
    y, _ = _padded(x, pad_geometry(x.shape, pad, mode), x.dtype.type(0))
    return y


def _fill_value(value, out_dtype: np.dtype, dtype: np.dtype, g: PadGeometry):
    """The fill value in the kernel's dtype, rounded as PyTorch rounds it: to float32 first
    for float16 and bfloat16 (c10::Half and c10::BFloat16 are made from a float), then to the
    dtype by `finish`. PyTorch's fill_ rejects a finite value beyond the dtype's range, and
    fills only when some pad is positive (a pure crop never converts the value). Except for a
    float16 or bfloat16 output of exactly one element, which its fill_ writes without the
    check (rounded, to inf if need be)."""
    if value is None or g.mode != "constant":
        return dtype.type(0)
    value = float(value)
    fills = any(p > 0 for p in g.before + g.after)
    one_narrow = out_dtype in NARROW_DTYPES and int(np.prod(g.output_shape, dtype=np.int64)) == 1
    if fills and not one_narrow and np.isfinite(value) and abs(value) > float(finfo(out_dtype).max):
        raise ValueError(f"value cannot be converted to type {_C10_TYPE_NAMES[np.dtype(out_dtype).name]} without "
                         f"overflow: {value!r} is outside the range of {torch_dtype_name(out_dtype)}")
    with np.errstate(over="ignore"):
        return dtype.type(np.float32(value) if out_dtype in NARROW_DTYPES else value)


def _padded(x: np.ndarray, g: PadGeometry, fill) -> tuple[np.ndarray, int]:
    """(the padded array, copies): up to three padded axes on the kernel; more (constant mode
    only) by NumPy slicing, counted one copy per output element all the same."""
    k = g.padded_axes
    if k > 3:
        y = np.full(g.output_shape, fill, dtype=x.dtype)
        lead = x.ndim - k
        crop = (slice(None),) * lead + tuple(slice(max(-b, 0), s - max(-a, 0))
                                             for s, b, a in zip(x.shape[lead:], g.before, g.after))
        box = (slice(None),) * lead + tuple(slice(max(b, 0), max(b, 0) + max(s - max(-b, 0) - max(-a, 0), 0))
                                            for s, b, a in zip(x.shape[lead:], g.before, g.after))
        y[box] = x[crop]
        return y, int(y.size)
    lead = int(np.prod(x.shape[:x.ndim - k], dtype=np.int64))
    unit = 3 - k  # axes of size 1, not padded, that make every input (P, D, H, W)
    inner = (1,) * unit + tuple(x.shape[x.ndim - k:])
    outer = (1,) * unit + tuple(g.output_shape[x.ndim - k:])
    y = np.empty((lead,) + outer, dtype=x.dtype)
    copies = 0
    if y.size:  # (an empty output may pair a positive size with an axis left empty by a crop)
        as_array = lambda values, pad_with: np.array((pad_with,) * unit + tuple(values), dtype=np.int64)  # noqa: E731
        copies = pad_kernel.pad3d(np.ascontiguousarray(x).reshape((lead,) + inner), y, as_array(g.before, 0),
                                  as_array(g.keep_lo, 0), as_array(g.keep_hi, 1), pad_kernel.MODE_CODES[g.mode],
                                  x.dtype.type(fill))
    return y.reshape(g.output_shape), int(copies)
