"""Deprecated alias of `npconv.formulas.layers` (every name is also in `npconv.formulas`)."""

from .formulas.layers import *  # noqa: F401,F403
from .formulas.layers import __all__  # noqa: F401
