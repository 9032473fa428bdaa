"""Counting the work the kernels execute.

    with npconv.count() as tally:
        y = npconv.conv2d(x, w, b, padding=1)
    tally.macs, tally.padding_macs, tally.bias_adds   # Python ints
    tally.by_op["conv2d"].macs                         # per-op breakdown
    tally.by_layer["features.3.dw_conv.0"].macs        # per-layer, under a model

Every number here arrives through `record`, which the kernels' Python wrappers call with
the counters the kernels' own loops returned; nothing in this module computes a count.

Nesting: every open `count()` block sees every call made while it is open, so an outer
block's total is the sum of what ran inside it, inner blocks included. A block that has
closed stops counting; opening a new one starts from zero.

Layer names: `scope(name)` pushes one component of a qualified name (modules do this
in `__call__`), so counts recorded inside land under "features.3.dw_conv.0".
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Counts:
    """Counters of one kind of work. `other` holds the non-MAC operations by kind
    (e.g. "bn_scale_shift", "activation_compares", "pool_adds", "residual_adds")."""

    calls: int = 0
    macs: int = 0
    padding_macs: int = 0
    bias_adds: int = 0
    other: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, macs: int = 0, padding_macs: int = 0, bias_adds: int = 0, **other: int) -> None:
        self.calls += 1
        self.macs += int(macs)
        self.padding_macs += int(padding_macs)
        self.bias_adds += int(bias_adds)
        for kind, n in other.items():
            self.other[kind] += int(n)

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "macs": self.macs,
            "padding_macs": self.padding_macs,
            "bias_adds": self.bias_adds,
            **dict(self.other),
        }


class Tally(Counts):
    """What one `count()` block saw: totals, `by_op` and `by_layer` breakdowns."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: dict[str, Counts] = defaultdict(Counts)
        self.by_layer: dict[str, Counts] = defaultdict(Counts)

    def _record(self, op: str, layer: str | None, counters: dict[str, int]) -> None:
        self.add(**counters)
        self.by_op[op].add(**counters)
        if layer is not None:
            self.by_layer[layer].add(**counters)

    def __repr__(self) -> str:
        ops = ", ".join(f"{op}: {c.macs:,} MACs" for op, c in self.by_op.items())
        return (
            f"Tally(macs={self.macs:,}, padding_macs={self.padding_macs:,}, "
            f"bias_adds={self.bias_adds:,}, ops={{{ops}}})"
        )


_open_tallies: contextvars.ContextVar[tuple[Tally, ...]] = contextvars.ContextVar("npconv_tallies", default=())
_scope: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("npconv_scope", default=())


@contextlib.contextmanager
def count():
    """Count the MACs, padding MACs, bias adds and other operations of every npconv call
    made inside the block. Yields a `Tally`."""
    tally = Tally()
    token = _open_tallies.set(_open_tallies.get() + (tally,))
    try:
        yield tally
    finally:
        _open_tallies.reset(token)


@contextlib.contextmanager
def scope(name: str):
    """Record everything inside under the qualified layer name extended by `name`."""
    token = _scope.set(_scope.get() + (name,))
    try:
        yield
    finally:
        _scope.reset(token)


def current_layer() -> str | None:
    names = _scope.get()
    return ".".join(n for n in names if n) if names else None


def counting() -> bool:
    """True when some `count()` block is open (kernels may skip bookkeeping otherwise)."""
    return bool(_open_tallies.get())


def record(op: str, macs: int = 0, padding_macs: int = 0, bias_adds: int = 0, **other: int) -> None:
    """Add the counters one kernel call returned to every open `count()` block."""
    tallies = _open_tallies.get()
    if not tallies:
        return
    counters = dict(macs=macs, padding_macs=padding_macs, bias_adds=bias_adds, **other)
    layer = current_layer()
    for tally in tallies:
        tally._record(op, layer, counters)


@contextlib.contextmanager
def paused():
    """Hide the calls inside from every open `count()` block (for npconv's own bookkeeping
    runs, such as the magnitude run of an error bound)."""
    token = _open_tallies.set(())
    try:
        yield
    finally:
        _open_tallies.reset(token)
