"""What npconv counted in each node of a captured graph, with the metadata the counters'
conventions read (`node_facts`).

    facts = node_facts(graph, x, torch_model)     # graph = npconv.capture(torch_model, x)
    facts.nodes[3].counts                         # {"macs": ..., "bias_adds": ...}: what the
                                                  # reference kernels counted for that node
    facts.nodes[3].args                           # its arguments, arrays replaced by Shape(...)
    facts.modules["features.0.0"].cls             # torch.nn.Conv2d: the class, for exact-type rules

The graph runs once on the reference kernels, each node inside its own `npconv.count()`
block, so every node's counts are the ones its loops executed (nothing here computes a
count). Beside them, each node keeps what a counter's convention may read:

* its module call: the innermost module of `nn_module_stack` (path and call key: a module
  called twice has two keys, "L__self___act" and "L__self___act@1"), and the whole stack;
* its Python-level call (`torch_fn`: ("relu_1", "function.relu") for `F.relu`, inside
  `nn.ReLU` too; ("add_1", "method_descriptor.add") for `x + y` and `x.add(y)` alike;
  ("add_1", "builtin_function_or_method.add") for `torch.add`), which groups the nodes a
  decomposed call became (F.silu -> sigmoid, mul), and the source line it came from;
* the shapes of its arguments and outputs.

The torch model supplies the module metadata: each module's class (thop and ptflops
dispatch on the exact type), whether it is a leaf, its own parameters' shapes, and the few
attributes a convention reads (a convolution's string padding, BatchNorm's affine).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .. import counting
from .. import engine as engines

__all__ = ["Facts", "ModuleInfo", "NodeFacts", "Shape", "module_infos", "node_facts", "numel"]


class Shape(tuple):
    """The shape of an array argument or output (a tuple of ints, told apart from the
    int lists an op takes, such as a stride)."""

    def __repr__(self) -> str:
        return f"Shape{tuple(self)}"


def numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


@dataclass(frozen=True)
class ModuleInfo:
    """One module of the torch model (module docstring)."""

    path: str
    cls: type
    leaf: bool
    params: dict                        # own parameter name -> shape
    padding_is_str: bool = False        # a convolution with padding="same" / "valid"
    padding_mode: str = "zeros"         # a convolution's padding_mode
    affine: bool = True                 # BatchNorm / InstanceNorm / LayerNorm with learnable weight and bias

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    @property
    def qualname(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


@dataclass
class NodeFacts:
    """One node of the graph: what npconv counted and what a convention reads (module
    docstring). `args` are the node's arguments with arrays as `Shape`s; `out` its output's
    Shape (a tuple of Shapes for several outputs)."""

    name: str
    op: str
    module: str
    call: str
    stack: tuple                 # ((path, qualified class name), ...), outermost first
    fn: tuple | None             # torch_fn: (call id, "kind.name")
    line: str                    # the source line the node came from ("" when unknown)
    args: tuple
    kwargs: dict
    out: object
    counts: dict = field(default_factory=dict)

    @property
    def fn_kind(self) -> str:
        """"function.relu", "builtin_function_or_method.add", "method_descriptor.mul", or ""."""
        return self.fn[1] if self.fn else ""

    def shape(self, i: int = 0):
        """The Shape of the i-th array argument (None when there is none)."""
        shapes = [a for a in _flat(self.args) if isinstance(a, Shape)]
        return shapes[i] if i < len(shapes) else None

    @property
    def out_shape(self):
        return self.out if isinstance(self.out, Shape) else None


@dataclass
class Facts:
    """Every node's facts, the modules, and the input's batch size."""

    nodes: list
    modules: dict                # path -> ModuleInfo ("" the model itself)
    batch: int
    input_shape: tuple
    model_name: str = ""

    def module(self, node: NodeFacts) -> ModuleInfo | None:
        return self.modules.get(node.module)

    def calls(self) -> dict:
        """Module call key -> its nodes, in graph order."""
        calls = defaultdict(list)
        for node in self.nodes:
            calls[node.call].append(node)
        return dict(calls)

    def fn_calls(self) -> dict:
        """Python-level call (torch_fn) -> its nodes, in graph order."""
        calls = defaultdict(list)
        for node in self.nodes:
            if node.fn:
                calls[node.fn].append(node)
        return dict(calls)

    def module_order(self) -> list:
        """Module paths in the order their first node ran (a module's ancestors just before
        it), then the modules that ran none."""
        order = {}
        for node in self.nodes:
            parts = node.module.split(".") if node.module else []
            for i in range(len(parts) + 1):
                order.setdefault(".".join(parts[:i]), None)
        return list(order) + [path for path in self.modules if path not in order]


def _flat(value):
    if isinstance(value, Shape):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _flat(v)
    else:
        yield value


def _shapes(value):
    """`value` with every array replaced by its Shape (inside tuples and lists too)."""
    if isinstance(value, np.ndarray):
        return Shape(int(s) for s in value.shape)
    if isinstance(value, (tuple, list)):
        return type(value)(_shapes(v) for v in value)
    return value


def module_infos(torch_model) -> dict:
    """path -> ModuleInfo for every module of `torch_model` ("" the model itself)."""
    infos = {}
    for path, module in torch_model.named_modules():
        params = {name: tuple(p.shape) for name, p in module.named_parameters(recurse=False)}
        padding = getattr(module, "padding", None)
        infos[path] = ModuleInfo(path, type(module), not any(True for _ in module.children()), params,
                                 padding_is_str=isinstance(padding, str),
                                 padding_mode=str(getattr(module, "padding_mode", "zeros")),
                                 affine=bool(getattr(module, "affine", getattr(module, "elementwise_affine", True))))
    return infos


def _last_line(stack_trace) -> str:
    lines = [line.strip() for line in (stack_trace or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def node_facts(graph, x, torch_model, *, engine: str = "reference") -> Facts:
    """Run `graph` (npconv.capture(torch_model, x)) on `x`, node by node on npconv's
    kernels, and collect each node's counts and metadata (module docstring)."""
    from ..graph.ops import run_node

    if graph.program is None:
        raise ValueError("node_facts() needs a graph captured by npconv.capture (it reads each node's "
                         "nn_module_stack and torch_fn), not one built by hand")
    meta = {n.name: n.meta for n in graph.program.graph.nodes if n.op == "call_function"}
    x = np.asarray(x)
    try:  # Graph.run's up-front memory check (every node's output is kept here too)
        from ..memory import check_graph_run
    except ImportError:  # pragma: no cover - before npconv.memory
        check_graph_run = None
    if check_graph_run is not None:
        check_graph_run(graph, (x,))
    env = graph.environment((x,))
    nodes = []
    with engines.use(engine) if engine else contextlib.nullcontext():
        for node in graph.nodes:
            with counting.count() as tally:
                env[node.name] = run_node(node, env)
            counts = {k: int(v) for k, v in tally.as_dict().items() if k != "calls" and v}
            m = meta.get(node.name, {})
            stack = list((m.get("nn_module_stack") or {}).items())
            call = stack[-1][0] if stack else ""
            out = env[node.name]
            nodes.append(NodeFacts(
                node.name, node.op, node.module, call,
                tuple((path if not path.startswith("L__self__") else "", qual) for _, (path, qual) in stack),
                tuple(m["torch_fn"]) if m.get("torch_fn") else None,
                _last_line(m.get("stack_trace")),
                _shapes(_resolve(node.args, env)), _shapes(_resolve(node.kwargs, env)),
                _shapes(tuple(out) if isinstance(out, (tuple, list)) else out),
                counts))
    return Facts(nodes, module_infos(torch_model), int(x.shape[0]) if x.ndim else 1, tuple(x.shape),
                 type(torch_model).__name__)


def _resolve(value, env):
    from ..graph.graph import resolve

    return resolve(value, env)
