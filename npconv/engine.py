"""Which tier computes a convolution: the readable reference kernels or the fast ones.

    npconv.conv2d(x, w, padding=1)                    # the default engine ("reference")
    npconv.conv2d(x, w, padding=1, engine="fast")     # this call only
    with npconv.engine.use("fast"):                   # every call inside, layers and models too
        y = model(x)

Engines:
    "reference"  npconv/kernels/: one readable Numba loop nest per op, single-threaded,
                 bitwise deterministic, counts incremented per multiply-accumulate.
    "fast"       npconv/fast/: depthwise loop nests on padded, phase-split planes, pointwise
                 and standard convolution and the fully connected layer as BLAS matrix
                 products, parallel where it pays.
                 Property-tested against the reference within the rigorous error bound of
                 npconv.tolerance; configurations it does not cover fall back to the reference.

`engine=None` (the default of every functional op) means "the current engine": the one set
by the innermost open `use(...)` block, else DEFAULT.

Why the default is "reference": npconv is first an oracle. By default what runs is what a
reader reads, its results are the same bits on every machine (no BLAS build, blocking or
thread count changes them), and importing npconv next to torch starts no thread pool: the
fast tier's Numba OpenMP pool and OpenBLAS's pool spin-wait between calls, and on a small
machine that measurably stalls PyTorch's own pool in the same process (bench/README.md,
"Thread pools"). Opting in is one keyword or one `with` block.
"""

from __future__ import annotations

import contextlib
import contextvars

ENGINES = ("reference", "fast")
DEFAULT = "reference"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("npconv_engine", default=None)


def _check(engine) -> str:
    if not isinstance(engine, str):
        raise TypeError(f"engine must be one of {ENGINES} or None, not {type(engine).__name__}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} or None, but got engine={engine!r}")
    return engine


def resolve(engine: str | None = None) -> str:
    """The engine a call with `engine=...` runs on: `engine` itself, or for None the one set
    by the innermost open `use(...)`, else DEFAULT."""
    if engine is None:
        current = _current.get()
        return DEFAULT if current is None else current
    return _check(engine)


def current() -> str:
    """The engine `engine=None` means here and now."""
    return resolve(None)


@contextlib.contextmanager
def use(engine: str):
    """Make `engine` the one `engine=None` resolves to inside the block (a contextvar: each
    thread and asyncio task sees its own). Blocks nest; leaving one restores the outer."""
    token = _current.set(_check(engine))
    try:
        yield engine
    finally:
        _current.reset(token)
