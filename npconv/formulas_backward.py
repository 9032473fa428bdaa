"""Deprecated alias of `npconv.formulas.backward` (every name is also in `npconv.formulas`)."""

from .formulas.backward import *  # noqa: F401,F403
from .formulas.backward import __all__  # noqa: F401
