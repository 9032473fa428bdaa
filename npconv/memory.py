"""Checking size up front: refuse work that cannot fit in memory, before allocating it.

    npconv.models.MobileNetV2(width_mult=1000)   # InsufficientMemoryError at once, nothing allocated
    with npconv.memory.unchecked():               # the override: build or run it anyway
        ...
    npconv summary mobilenet_v2 --width 1000 --no-memory-check      # the command's override

A MobileNetV2 at width 1000 has about 2*10^12 parameters (8 TiB in float32); without this
check its constructor drew weights layer by layer for minutes until the machine ran out.
Nothing here restates a model's architecture: the sizes come from the model's own code.

What is checked, and how the bytes are estimated:

* building a model (npconv.models' constructors call `check_model(cls, *args, **kwargs)`
  first, after checking their arguments): the model is built once more by its own
  constructor inside `npconv.nn.init.dry()` (a "dry build": every initialiser returns a
  zero-memory placeholder of the right shape and dtype and draws no random numbers), and
  its parameters and buffers are summed: their bytes in their dtypes, plus the largest
  parameter once more in float64 (the initialisers draw in float64, then convert). So the
  count is exactly what a real build allocates for its arrays. The dry build itself
  allocates only what a constructor makes without an initialiser -- BatchNorm2d's four
  per-channel vectors -- and Python objects for the modules;
* the ops whose output can be larger than their input -- conv2d (and its depthwise and
  pointwise forms), conv_transpose2d (its uncropped frame too), linear, the channel
  concatenation, max and average pooling (padding can enlarge them) -- call
  `check_output(op, shape, dtype)` with the output's shape, computed from the geometry,
  right before they allocate it: a forward pass is refused at the first layer whose output
  would not fit, naming the op and the shape. Below `SMALL` this is one multiplication;
* a captured graph's `run`: every node's output is kept until the run ends (the graph's
  environment), so the sum of the node outputs that are not views, plus the largest once
  more; node sizes come from torch.export's metadata for the example input, scaled by the
  input's size relative to it (a graph built by hand, without metadata: each node taken as
  large as the largest input);
* the `npconv` command, before building a built-in model: the dry-built model's bytes (as
  its constructor counts them) and the input array's, with the copies the command makes
  (npconv/cli.py's `_check_memory` says which); the activations are then checked op by op
  as the forward pass runs.

Not estimated: the activations of a model's forward pass as a whole (each output is checked
alone, when it is about to be allocated: a forward pass whose outputs each fit, but not all
together, still runs out), the padded copy of a convolution's input, scratch arrays of the
fast engine's kernels, and everything PyTorch allocates (the command's twin models and
traces).

Estimates under `SMALL` (64 MiB) are accepted without reading anything. The memory available
is /proc/meminfo's MemAvailable (what the kernel can give without swapping), else
`os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")`; when neither can be read,
nothing is refused. (A cgroup limit below the machine's memory is not seen.)

The error is a `MemoryError` subclass -- the program did not run out of memory, but it is
memory it lacks -- with one line: what, the estimate and its parts, the memory available,
and how to override. The command turns it into exit status 2 naming --no-memory-check.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SMALL",
    "InsufficientMemoryError",
    "ModelSize",
    "available_bytes",
    "check",
    "check_graph_run",
    "check_model",
    "check_output",
    "dry_build",
    "enabled",
    "format_bytes",
    "graph_run_bytes",
    "model_size",
    "unchecked",
]

SMALL = 64 * 2**20  # estimates below this are not checked (no file is read)

PYTHON_OVERRIDE = "to try anyway, run it inside `with npconv.memory.unchecked():`"
MEMINFO = "/proc/meminfo"

_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("npconv_memory_check_disabled", default=False)


class InsufficientMemoryError(MemoryError):
    """An estimate of the memory some work needs exceeds the memory available (module
    docstring). Attributes: what, needed and available (bytes), detail (the estimate's
    parts). str() is one line ending with the Python override; `message(override)` gives
    the same line with another (the command's --no-memory-check)."""

    def __init__(self, what: str, needed: int, available: int, detail: str = ""):
        self.what, self.needed, self.available, self.detail = what, int(needed), int(available), detail
        super().__init__(self.message())

    def message(self, override: str = PYTHON_OVERRIDE) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return (f"{self.what} needs about {format_bytes(self.needed)} of memory{detail}, more than the "
                f"{format_bytes(self.available)} available; {override}")


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB': binary units, three significant digits."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def available_bytes() -> int | None:
    """The memory available now, in bytes: MemAvailable from /proc/meminfo, else
    SC_AVPHYS_PAGES * SC_PAGE_SIZE; None when neither can be read."""
    try:
        with open(MEMINFO, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    value, unit = line.split()[1:3]
                    return int(value) * {"kB": 1024, "B": 1}.get(unit, 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def enabled() -> bool:
    """Whether checks run here (False inside `unchecked()`)."""
    return not _disabled.get()


@contextlib.contextmanager
def unchecked():
    """The override: inside, no estimate is refused (this thread or task only).

        with npconv.memory.unchecked():
            model = npconv.models.MobileNetV2(width_mult=8)"""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def check(needed: int, what: str, detail: str = "") -> None:
    """Raise InsufficientMemoryError when `needed` bytes exceed the memory available (and
    checks are enabled, and needed >= SMALL)."""
    if needed < SMALL or not enabled():
        return
    available = available_bytes()
    if available is not None and needed > available:
        raise InsufficientMemoryError(what, needed, available, detail)


# ----------------------------------------------------------------------------- outputs of ops


def check_output(op: str, shape: tuple, dtype, scratch: int = 0) -> None:
    """The ops' check, right before they allocate their output: refuse when an array of
    `shape` and `dtype` (plus `scratch` bytes allocated with it) exceeds the memory
    available. One multiplication when it is small."""
    needed = math.prod(shape) * (dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize)
    if needed + scratch < SMALL or not enabled():
        return
    shown = "×".join(str(int(s)) for s in shape)
    check(needed + scratch, f"{op}'s output of shape {shown} ({np.dtype(dtype).name})",
          f"and {format_bytes(scratch)} of scratch" if scratch else "")


# ----------------------------------------------------------------------------- models, from a dry build


@dataclass(frozen=True)
class ModelSize:
    """A model's arrays as a dry build of it finds them: `params` (elements of its
    parameters), `largest_param` (elements of the largest), `buffers` (elements of its
    buffers) and `nbytes` (bytes of parameters and buffers, each in its dtype)."""

    params: int
    largest_param: int
    buffers: int
    nbytes: int

    def build_bytes(self) -> int:
        """Building the model: its arrays, and the largest parameter drawn in float64 once."""
        return self.nbytes + self.largest_param * 8


def dry_build(cls, *args, **kwargs):
    """`cls(*args, **kwargs)` built inside `npconv.nn.init.dry()`: the real structure with
    zero-memory placeholders for its parameters, nothing drawn from any generator."""
    from .nn import init

    with init.dry():
        return cls(*args, **kwargs)


def model_size(cls, *args, **kwargs) -> ModelSize:
    """The ModelSize of `cls(*args, **kwargs)`, from its dry build (exact: the dry build runs
    the constructor's own code)."""
    model = dry_build(cls, *args, **kwargs)
    params, buffers = model.parameters(), model.buffers()
    return ModelSize(params=sum(p.size for p in params), largest_param=max((p.size for p in params), default=0),
                     buffers=sum(b.size for b in buffers), nbytes=sum(a.nbytes for a in params + buffers))


def _describe(cls, args, kwargs) -> str:
    """'MobileNetV2(width_mult=1000)': the call, keywords at their default left out."""
    try:
        defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    shown = [repr(a) for a in args]
    for key, value in kwargs.items():
        try:
            same = key in defaults and type(value) is type(defaults[key]) and value == defaults[key]
        except Exception:  # noqa: BLE001 -- a value without a plain ==
            same = False
        if not same and key != "rng":
            shown.append(f"{key}={value!r}")
    return f"{cls.__name__}({', '.join(shown)})"


def check_model(cls, *args, **kwargs) -> None:
    """The constructors' check (called first in npconv.models' constructors, after their
    argument checks, with their own arguments): refuse to build `cls(*args, **kwargs)` when
    its arrays (`ModelSize.build_bytes` of its dry build) exceed the memory available. Does
    nothing inside a dry build (the dry build's own constructor call) or `unchecked()`."""
    from .nn import init

    if init.is_dry() or not enabled():
        return
    size = model_size(cls, *args, **kwargs)
    needed = size.build_bytes()
    if needed < SMALL:
        return
    check(needed, _describe(cls, args, kwargs), f"{size.params:,} parameters")


# ----------------------------------------------------------------------------- captured graphs

_GRAPH_SIZES: dict = {}  # id(program) -> (program, example input elements, [(elements, view)] per node)


def _numel(value) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return math.prod(int(s) for s in shape)
    except TypeError:  # a symbolic (dynamic) dimension
        return None


def _graph_sizes(graph):
    """(elements of the example input, [(elements of the node's outputs, is a view)] per
    node) from torch.export's metadata of graph.program; None without a program."""
    program = graph.program
    if program is None:
        return None
    cached = _GRAPH_SIZES.get(id(program))
    if cached is not None and cached[0] is program:
        return cached[1], cached[2]
    from .graph.ops import OPS

    meta = {n.name: n.meta.get("val") for n in program.graph.nodes}
    example = _numel(meta.get(graph.inputs[0])) if graph.inputs else None
    nodes = []
    for node in graph.nodes:
        value = meta.get(node.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        sizes = [_numel(v) for v in values]
        spec = OPS.get(node.op)
        nodes.append((None if any(s is None for s in sizes) else sum(sizes), bool(spec is not None and spec.view)))
    if len(_GRAPH_SIZES) > 64:
        _GRAPH_SIZES.clear()
    _GRAPH_SIZES[id(program)] = (program, example, nodes)
    return example, nodes


def graph_run_bytes(graph, inputs) -> int:
    """Estimated bytes a `graph.run(*inputs)` allocates (module docstring): the node outputs
    that are not views, all kept until the end, plus the largest once more, in the inputs'
    dtype."""
    arrays = [a for a in inputs if hasattr(a, "shape") and hasattr(a, "dtype")]  # NumPy arrays or tensors
    itemsize = max((int(getattr(a.dtype, "itemsize", 8)) for a in arrays), default=8)
    elements = [math.prod(int(s) for s in a.shape) for a in arrays]
    largest_input = max(elements, default=0)
    sizes = _graph_sizes(graph)
    if sizes is None or not sizes[0] or any(s is None for s, _ in sizes[1]):
        copies = sum(1 for node in graph.nodes if node.op != "getitem")
        return (copies + 1) * largest_input * itemsize
    example, nodes = sizes
    scale = (elements[0] / example) if elements else 1.0
    kept = [s for s, view in nodes if not view]
    return int(math.ceil((sum(kept) + max(kept, default=0)) * scale)) * itemsize


def check_graph_run(graph, inputs) -> None:
    """Graph.run's check: refuse when `graph_run_bytes` exceeds the memory available."""
    if not enabled():
        return
    needed = graph_run_bytes(graph, inputs)
    shapes = ", ".join("×".join(map(str, a.shape)) for a in inputs if hasattr(a, "shape"))
    check(needed, f"{graph.name}.run on {shapes or 'its input'}",
          f"{len(graph.nodes)} nodes' outputs kept until the end")
