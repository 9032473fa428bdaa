"""An npconv graph: a captured network as a list of ATen nodes, run on npconv's kernels.

    graph = npconv.capture(torch_model, x)          # torch.export, then core ATen (capture.py)
    with npconv.count() as tally:
        y = graph(x)                                 # every node on npconv's kernels, counted
    tally.by_layer["features.stage1.unit1.conv1.conv"].macs

A `Graph` holds no torch object: nodes name their ATen op ("aten.convolution.default"),
their arguments (constants, or `Ref`s to earlier nodes' outputs, parameters and buffers)
and the module path they came from (`nn_module_stack`), and its parameters and buffers are
NumPy arrays. `run` evaluates the nodes in order through `npconv.graph.ops.OPS`, each
inside `counting.scope(module_path)`, so counts land per node's module and add up per
module and in total. The dtype is the input's: `graph.astype(np.float64)` converts the
floating parameters for a float64 run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np

from .. import engine as engines
from .. import memory
from ..dtypes import is_floating

__all__ = ["Graph", "Node", "Ref", "resolve"]


@dataclass(frozen=True)
class Ref:
    """The value of another node, input, parameter or buffer, by its graph name."""

    name: str

    def __repr__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class Node:
    """One ATen call: `op` is its qualified name ("aten.convolution.default"; "getitem" for
    picking one output of a node that returns several). `module` is the qualified name of
    the innermost nn.Module the call came from ("" for the model itself), `module_type` that
    module's class name, `source` the Python-level name a user wrote ("nn.Conv2d",
    "F.interpolate", "torch.cat") where the capture recorded one."""

    name: str
    op: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    module: str = ""
    module_type: str = ""
    source: str = ""

    def __repr__(self) -> str:
        args = ", ".join(repr(a) for a in self.args)
        kwargs = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.name} = {self.op}({args}{kwargs})  # {self.module or '(model)'}"


def resolve(value, env: dict):
    """`value` with every Ref replaced by env[ref.name] (inside lists and tuples too)."""
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, env) for v in value)
    return value


@dataclass
class Graph:
    """A captured network (module docstring).

    inputs: the names of the user inputs, in order; nodes: the calls in execution order;
    output: a Ref (or a tuple of Refs) naming what the network returns; parameters and
    buffers: graph name -> NumPy array; fqn: graph name -> the state_dict key it came from
    ("features.0.conv.weight"); modules: qualified module name -> class name, for every module
    a node came from; program: the ExportedProgram it was captured from (None for a graph built
    by hand), whose nodes npconv.graph.verify runs in PyTorch."""

    name: str
    inputs: list
    nodes: list
    output: object
    parameters: dict
    buffers: dict
    fqn: dict
    modules: dict = field(default_factory=dict)
    program: object = field(default=None, repr=False, compare=False)  # torch's ExportedProgram, for verify

    def __call__(self, *inputs, engine: str | None = None):
        return self.run(*inputs, engine=engine)

    def __repr__(self) -> str:
        return f"Graph({self.name}: {len(self.nodes)} nodes, {self.param_count:,} parameters)"

    @property
    def param_count(self) -> int:
        """Elements of the parameters the graph uses (buffers such as BatchNorm's running
        statistics are not parameters, as in PyTorch's sum(p.numel() for p in parameters()))."""
        return int(sum(a.size for a in self.parameters.values()))

    def astype(self, dtype) -> Graph:
        """The same graph with its floating parameters and buffers converted to `dtype`."""
        dtype = np.dtype(dtype)
        convert = lambda a: a.astype(dtype) if is_floating(a.dtype) else a  # noqa: E731
        return replace(self, parameters={k: convert(v) for k, v in self.parameters.items()},
                       buffers={k: convert(v) for k, v in self.buffers.items()})

    def environment(self, inputs) -> dict:
        """Graph name -> value for the inputs, parameters and buffers."""
        if len(inputs) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} input(s), got {len(inputs)}")
        env = dict(self.parameters)
        env.update(self.buffers)
        for name, value in zip(self.inputs, inputs):
            env[name] = np.asarray(value)
        return env

    def run(self, *inputs, engine: str | None = None, trace: dict | None = None):
        """Evaluate the graph on NumPy `inputs` through npconv's kernels, counting each node
        under its module's name. `trace`, if given, receives every node's output by name.
        Raises npconv.memory.InsufficientMemoryError, before any node runs, when the outputs
        it would keep exceed the memory available (override: npconv.memory.unchecked())."""
        from .ops import run_node

        memory.check_graph_run(self, inputs)
        env = self.environment(inputs)
        use = engines.use(engine) if engine is not None else contextlib.nullcontext()
        with use:
            for node in self.nodes:
                env[node.name] = run_node(node, env)
        if trace is not None:
            trace.update({node.name: env[node.name] for node in self.nodes})
        return resolve(self.output, env)
