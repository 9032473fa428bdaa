"""Closed-form counts of the element-wise ops of the graph evaluator: npconv.elementwise's
clamp/hardtanh, sigmoid, add, sub, mul and div, from shapes and arguments.

Each op is one flat loop over the broadcast output: one unit of work per output element
(per element and limit for clamp), plus one multiply per element for add/sub with
alpha != 1. Broadcasting copies operands without arithmetic: nothing counted.
"""

from __future__ import annotations

from ._common import _numel

__all__ = [
    "elementwise_count",
    "clamp_compares",
    "sigmoid_exps",
    "alpha_muls",
]


def elementwise_count(out_shape) -> int:
    """Elements of the output, prod(out_shape): 1 for a 0-d result, 0 when a size is 0.

    This is the count of adds (add), subs (sub), muls (mul) and divides (div): the flat loop
    executes its one operation once per output element, whichever operand was broadcast.
    """
    return _numel(out_shape)


def clamp_compares(numel: int, has_min: bool, has_max: bool, nan_limit: bool = False) -> int:
    """activation_compares of clamp / hardtanh: numel * (has_min + has_max), or 0 when a
    given limit is NaN (the output is NaN everywhere and nothing is compared).

    Derivation: each element is compared once with each limit that exists, whatever its
    value (no comparison is skipped when the first one already moved it); hardtanh always
    has both limits, 2 * numel.
    """
    if nan_limit:
        return 0
    return numel * (int(bool(has_min)) + int(bool(has_max)))


def sigmoid_exps(numel: int) -> int:
    """sigmoid_exps of sigmoid: one per element (each one exp, one add and one reciprocal)."""
    return numel


def alpha_muls(numel: int, alpha=1) -> int:
    """muls of add / sub: numel when alpha != 1 (b * alpha, one per output element, before the
    add or sub), 0 when alpha == 1 (nothing is multiplied)."""
    return numel if alpha != 1 else 0
