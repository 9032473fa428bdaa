"""Private helpers shared by the formulas' submodules (imported by them, importing none)."""

from __future__ import annotations


def _pair(v) -> tuple[int, int]:
    """An int, or one or two ints, as (height, width)."""
    if isinstance(v, int):
        return v, v
    return int(v[0]), int(v[-1])


def _taps_inside(out_size: int, stride: int, offset: int, pad_before: int, size: int) -> int:
    """#{i in [0, out_size) : pad_before <= i*stride + offset < pad_before + size}.

    The padded coordinate of output i under kernel tap offset `offset` (= p * d) is
    i*s + offset; it reads the input, not the border, iff it lies in [pad_before,
    pad_before + size). Solving for i: ceil((pad_before - offset) / s) <= i <=
    floor((pad_before + size - 1 - offset) / s), clipped to [0, out_size - 1].
    """
    first = max(0, -(-(pad_before - offset) // stride))
    last = min(out_size - 1, (pad_before + size - 1 - offset) // stride)
    return max(0, last - first + 1)


def _numel(shape) -> int:
    """The product of the sizes (Python ints: no overflow): 1 for an empty shape."""
    total = 1
    for s in shape:
        total *= int(s)
    return total
