"""The models' argument checks: one line naming the constructor and the argument, in
PyTorch's style ("MobileNetV2(): argument 'width_mult' must be a number, not str"), raised
before anything is built -- instead of a TypeError from inside a comparison or a layer."""

from __future__ import annotations

import math
import numbers


def integer(value, name: str, where: str, minimum: int = 1) -> int:
    """`value` as an int; TypeError unless an integer (bool excluded), ValueError below
    `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}(): argument '{name}' must be int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{where}(): argument '{name}' must be at least {minimum}, got {value}")
    return int(value)


def positive_number(value, name: str, where: str) -> float:
    """`value` as a float; TypeError unless a real number (bool excluded), ValueError unless
    positive and finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}(): argument '{name}' must be a number, not {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{where}(): argument '{name}' must be a positive finite number, got {value}")
    return value


def probability(value, name: str, where: str) -> float:
    """A number in [0, 1] (PyTorch's Dropout rule)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}(): argument '{name}' must be a number, not {type(value).__name__}")
    if not 0 <= value <= 1:
        raise ValueError(f"{where}(): argument '{name}' must be between 0 and 1, got {value}")
    return value
