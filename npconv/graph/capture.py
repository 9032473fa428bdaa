"""Capturing a PyTorch model as an npconv graph, with torch.export.

    graph = npconv.capture(torch_model, x)     # x: a NumPy array or a tensor, e.g. 1x3x224x224

What is captured: `torch.export.export(model.eval(), (x,))`, PyTorch 2's standard graph
capture, which traces the model's Python forward (functional calls included: residual `+`,
`torch.cat`, `x.mean(...)`, `view`/`transpose` channel shuffles), then
`run_decompositions()` down to the core ATen op set (in one trace where this torch allows it:
"One trace" below), with two exceptions kept whole:
`reflection_pad2d` and `replication_pad2d` (the core table turns them into index
arithmetic; npconv runs them with the padding kernel its convolutions use), and circular
padding written as slices and a cat (`decompositions`). Why core ATen:
it is the small, stable op set every backend of PyTorch 2 consumes, so the ops npconv must
implement stay few (about twenty cover the pytorchcv zoo in the tests) and a composite op such
as Hardswish or SiLU is checked through the arithmetic PyTorch itself decomposes it into.

One trace. The public route traces the model twice: `export` records PyTorch's training IR,
and `run_decompositions` traces that program again to decompose it, each trace a walk of
every op through fake tensors (Python, a few ms per op: 3-7 s for a 1,000-node network on
this project's two-core machine). torch.export's own inference route (`_trace._export` with
`pre_dispatch=False`, what `export` did before PyTorch 2.5) can apply the decomposition table
during its single trace, as `run_decompositions` applies it during its own. `export_program`
uses it when this torch has it, and the public route otherwise, or whenever the one trace
raises (so any error reported is the public route's). It is a private entry point of torch.export, so it is checked, not trusted:
reference_tests/test_capture.py holds the graphs of both routes equal, node by node (op,
arguments, name, module path), on generated networks in CI and on the pytorchcv zoo in the
thorough profile; on the zoo it halves the capture's time (docs/graph.md).

Every node keeps its module path from `nn_module_stack`, so counts and checks land on the
module names `model.named_modules()` uses, and FlopCounterMode's per-module table lines up.

Errors, before any npconv work:
* `CaptureError`: torch.export could not trace the model; one line with export's reason and
  what to try.
* `UnsupportedOpsError`: the graph contains ops npconv lacks; one line naming every one, its
  Python-level name, how often it occurs and the first module:
  "2 unsupported ops: aten.upsample_nearest2d (F.interpolate) ×2, first at decoder.up1; ..."

torch is imported inside the functions; the Graph returned holds only NumPy arrays.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..dtypes import from_tensor
from .graph import Graph, Node, Ref
from .ops import unsupported_ops

__all__ = ["CaptureError", "UnsupportedOpsError", "capture", "export_program"]

KEPT_WHOLE = ("reflection_pad2d.default", "replication_pad2d.default")


class CaptureError(ValueError):
    """torch.export could not capture the model (the message says why and what to try)."""


class UnsupportedOpsError(NotImplementedError):
    """The captured graph contains ops npconv does not implement. `ops` lists
    (ATen name, Python-level name, occurrences, first module) for each."""

    def __init__(self, ops: list):
        self.ops = ops
        parts = []
        for aten, user, n, module in ops:
            parts.append(f"{aten}{f' ({user})' if user else ''} ×{n}, first at {module or '(model)'}")
        super().__init__(f"{len(ops)} unsupported op{'s' if len(ops) != 1 else ''}: " + "; ".join(parts))


def _as_tensor(x):
    import torch

    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.ascontiguousarray(x))


def export_program(model, example_input, *, strict: bool = False, one_trace: bool = True):
    """torch.export's ExportedProgram of `model` (put in eval mode) on `example_input`,
    decomposed to core ATen (module docstring): in one trace when `one_trace` and this
    torch allows it, else (or when that raises) by the public route, `export` then
    `run_decompositions`. Raises CaptureError with export's reason."""
    import torch

    model.eval()
    x = _as_tensor(example_input)
    if one_trace:
        program = _export_in_one_trace(model, x, strict)
        if program is not None:
            return program
    try:
        program = torch.export.export(model, (x,), strict=strict)
    except Exception as error:  # export raises many types; each becomes one line
        reason = " ".join(str(error).strip().split("\n")[0].split())[:300] or type(error).__name__
        hint = ("try another example input (a shape the model accepts, its dtype)"
                + (", or strict=False" if strict else ", or strict=True"))
        raise CaptureError(f"torch.export could not capture {type(model).__name__}: {type(error).__name__}: "
                           f"{reason} ({hint})") from error
    return program.run_decompositions(decompositions())


_one_trace_lock = threading.Lock()


def _export_in_one_trace(model, x, strict: bool):
    """The decomposed ExportedProgram from torch.export's inference route, which applies
    `decompositions()` in its one trace (module docstring, "One trace"); None when this torch
    lacks that route or the trace raises, for the caller to take the public route.

    It does what `run_decompositions` does with the table, in the first trace instead of a
    second: the table's entries for CompositeImplicitAutograd ops that are not the op's own
    kernel (here `_pad_circular` and torch's Python decompositions: `_split`) replace those
    ops' decompositions for the length of the trace (`_override_composite_implicit_decomp`),
    and the rest goes to the trace as its
    decomposition table. `_trace._export(pre_dispatch=False)` calls the module-level
    `_export_to_aten_ir`, whose `decomp_table` it leaves empty; for the length of the call
    that name is bound to itself with the table given (under a lock, so captures in other
    threads do not interleave). Its other callers pass their own table, which overrides the
    one bound here."""
    import inspect

    try:
        from torch.export import _trace
        from torch.export.exported_program import _override_composite_implicit_decomp
        lower = _trace._export_to_aten_ir
        if ("decomp_table" not in inspect.signature(lower).parameters
                or "pre_dispatch" not in inspect.signature(_trace._export).parameters):
            return None
        composite, table = _split_table()
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    with _one_trace_lock:
        _trace._export_to_aten_ir = functools.partial(lower, decomp_table=dict(table))
        try:
            with _override_composite_implicit_decomp(composite):
                return _trace._export(model, (x,), strict=strict, pre_dispatch=False)
        except Exception:  # the public route runs next and reports its own error
            return None
        finally:
            _trace._export_to_aten_ir = lower


def _split_table() -> tuple[dict, dict]:
    """`decompositions()` split as `run_decompositions` splits a table: (the
    CompositeImplicitAutograd ops whose decomposition the trace overrides, the rest of the
    table), made once per set of registered operators (`_split`)."""
    import torch

    registered = len(torch._C._dispatch_get_registrations_for_dispatch_key("CompositeImplicitAutograd"))
    return _split(tuple(torch.ops._dir), registered)


@functools.lru_cache(maxsize=4)
def _split(namespaces: tuple, registered: int) -> tuple[dict, dict]:
    """`_split_table`'s result, keyed by what it depends on: the operator namespaces loaded
    (torch.ops._dir) and the number of CompositeImplicitAutograd registrations, which a newly
    loaded operator library changes.

    An entry that is such an op's own CompositeImplicitAutograd kernel, reached through the
    C++ dispatcher (torch's `_special_op_to_decompose_cia`; 476 of the 513 in torch 2.13's
    default table), is left out of the override: the trace decomposes that op with that same
    kernel anyway, and overriding each costs a dozen Python-dispatcher registrations and
    their removal. Left in, torch.export's own bookkeeping took about 0.11 s of every
    capture: most of a small network's (150 -> 40 ms), and 13% of a profile of the reference
    tests (docs/graph.md, "One trace instead of two"). reference_tests/test_capture.py holds
    the graphs of this route and the public one (which overrides every entry) equal, node by
    node."""
    from torch.export.exported_program import _split_decomp_table_to_cia_and_python_decomp

    composite, rest = _split_decomp_table_to_cia_and_python_decomp(dict(decompositions()))
    return {op: fn for op, fn in composite.items() if not _own_composite_kernel(op, fn)}, rest


def _own_composite_kernel(op, decomposition) -> bool:
    """Whether `decomposition` is torch.export's stand-in for `op`'s own C++
    CompositeImplicitAutograd kernel (torch._export.utils._get_decomp_for_cia)."""
    return (isinstance(decomposition, functools.partial) and decomposition.keywords.get("kernel") is op
            and getattr(decomposition.func, "__name__", "") == "_special_op_to_decompose_cia")


def decompositions():
    """The decomposition table of `export_program` (module docstring): torch's default (core
    ATen), with reflection_pad2d and replication_pad2d kept whole, and circular padding
    (aten._pad_circular, by default an empty tensor filled by copy / slice_scatter) written
    as slices of the input concatenated along each padded dimension."""
    import torch

    aten = torch.ops.aten
    table = torch.export.default_decompositions()
    for name in KEPT_WHOLE:
        packet, overload = name.split(".")
        table.pop(getattr(getattr(aten, packet), overload), None)
    table[aten._pad_circular.default] = _pad_circular_by_cat
    return table


def _pad_circular_by_cat(x, pad):
    """aten._pad_circular(x, pad) for non-negative pads, as slices and cats: F.pad's order,
    (before, after) of the last dimension first; the corners come out right because each
    dimension wraps the already-wrapped array."""
    import torch

    aten = torch.ops.aten
    for i in range(len(pad) // 2):
        dim = x.dim() - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        if before < 0 or after < 0:
            raise NotImplementedError("negative circular padding (cropping) is not decomposed by npconv")
        size = x.shape[dim]
        parts = ([aten.slice.Tensor(x, dim, size - before, size)] if before else []) + [x] + (
            [aten.slice.Tensor(x, dim, 0, after)] if after else [])
        if len(parts) > 1:
            x = aten.cat.default(parts, dim)
    return x


def _op_name(target) -> str:
    import operator

    return "getitem" if target is operator.getitem else str(target)


def _user_name(node, module_type: str) -> str:
    """The name a user wrote: the torch.nn layer the call came from, else the function."""
    if module_type.startswith("torch.nn.modules."):
        return "nn." + module_type.rsplit(".", 1)[-1]
    kind, _, fn = (node.meta.get("torch_fn") or ("", ""))[1].partition(".")
    prefix = {"function": "F.", "builtin_function_or_method": "torch.", "method_descriptor": "Tensor."}.get(kind)
    return prefix + fn if prefix and fn else ""


def _convert(value):
    """An fx argument as plain data: Nodes become Refs, torch dtypes/devices/layouts strings."""
    import torch

    if isinstance(value, torch.fx.Node):
        return Ref(value.name)
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v) for v in value)
    if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
        return str(value)
    return value


def _numpy(tensor) -> np.ndarray:
    return from_tensor(tensor).copy()  # bfloat16 as ml_dtypes.bfloat16


def graph_from_program(program, name: str) -> Graph:
    """An npconv Graph of an ExportedProgram (already decomposed)."""
    from torch.export.graph_signature import InputKind

    signature = program.graph_signature
    parameters, buffers, fqn, inputs = {}, {}, {}, []
    for spec in signature.input_specs:
        arg = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            inputs.append(arg)
            continue
        fqn[arg] = spec.target
        if spec.kind == InputKind.PARAMETER:
            parameters[arg] = _numpy(program.state_dict[spec.target])
        elif spec.target in program.state_dict:
            buffers[arg] = _numpy(program.state_dict[spec.target])
        else:
            buffers[arg] = _numpy(program.constants[spec.target])
    nodes, modules, output = [], {}, None
    for fx_node in program.graph.nodes:
        if fx_node.op == "output":
            outs = _convert(fx_node.args[0])
            output = outs[0] if isinstance(outs, (list, tuple)) and len(outs) == 1 else tuple(outs)
            continue
        if fx_node.op != "call_function":
            continue
        stack = list((fx_node.meta.get("nn_module_stack") or {}).values())
        module, module_type = stack[-1] if stack else ("", "")
        module = "" if module.startswith("L__self__") else module
        modules.setdefault(module, module_type.rsplit(".", 1)[-1])
        nodes.append(Node(fx_node.name, _op_name(fx_node.target), _convert(tuple(fx_node.args)),
                          _convert(dict(fx_node.kwargs)), module, module_type.rsplit(".", 1)[-1],
                          _user_name(fx_node, module_type)))
    return Graph(name, inputs, nodes, output, parameters, buffers, fqn, modules, program)


def capture(model, example_input, *, strict: bool = False, name: str | None = None, check: bool = True) -> Graph:
    """Capture `model` (a torch nn.Module, put in eval mode) on `example_input` as an npconv
    Graph (module docstring). Raises CaptureError when torch.export cannot trace it, and
    (check=True) UnsupportedOpsError naming every op npconv lacks."""
    program = export_program(model, example_input, strict=strict)
    graph = graph_from_program(program, name or type(model).__name__)
    missing = unsupported_ops(graph.nodes)
    if check and missing:
        raise UnsupportedOpsError(missing)
    return graph
