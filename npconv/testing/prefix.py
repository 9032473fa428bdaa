"""Prefixes of a captured graph as torch modules, for running part of a network through a path.

    builder = Prefixes(oracle)                        # an Oracle (npconv.testing.oracle)
    module = builder.module(["convolution_7"])        # forward(x) -> node convolution_7's value

`module` is a torch.fx.GraphModule built from the exported program's nodes up to the last
node asked for. Where a run of consecutive nodes is one call of a module of the original model
and the prefix holds all of it — an nn.Conv2d with its padding, an nn.BatchNorm2d and its
getitem, a Hardswish's five ops, a conv-BN-activation block, a whole stage — the prefix calls
that module (`call_module`, the same object, at the same qualified name; the outermost such
module) instead of its ATen ops. A path then sees the module as it sees it in the whole model:
a forward hook on `features.3.conv` or on its block fires, autocast casts a convolution's
inputs, a BatchNorm after a convolution can be folded, a block's Python forward is traced or
compiled as written. A run is called as a module only if it has one tensor input, one output
read outside it and no parameters but the module's own, and the module, run in float64 on the
run's exact input, gives the run's exact output (so a module whose forward is not what the run
computes is never substituted). Parameters and buffers the remaining ATen nodes read are
attributes of the GraphModule (`get_attr`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["ModuleCall", "Prefixes"]


@dataclass(frozen=True)
class ModuleCall:
    """Nodes start..end (inclusive, indices into the graph's call_function nodes) are one call
    of the module `path`, reading node/placeholder `input` and producing `output`."""

    start: int
    end: int
    path: str
    input: str
    output: str


def _stack(fx_node) -> set:
    """(call key, module path) of every module the node's call is inside."""
    return {(key, path) for key, (path, _type) in (fx_node.meta.get("nn_module_stack") or {}).items()}


class Prefixes:
    """Builds prefix modules of `oracle`'s captured graph (module docstring)."""

    def __init__(self, oracle):
        from torch.export.graph_signature import InputKind

        self.oracle = oracle
        program = oracle.graph.program
        self.nodes = [n for n in program.graph.nodes if n.op == "call_function"]
        self.position = {n.name: i for i, n in enumerate(self.nodes)}
        self.placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
        specs = {spec.arg.name: spec for spec in program.graph_signature.input_specs}
        self.user_inputs = [p.name for p in self.placeholders if specs[p.name].kind == InputKind.USER_INPUT]
        self.targets = {p.name: specs[p.name].target for p in self.placeholders if p.name not in self.user_inputs}
        self.tensors = {}
        for name, key in self.targets.items():
            source = program.state_dict if key in program.state_dict else program.constants
            self.tensors[name] = source[key]
        self.calls: dict = {}
        self._checked: dict = {}
        for call in self._module_calls():   # by first node, outermost (longest) first
            self.calls.setdefault(call.start, []).append(call)
        for calls in self.calls.values():
            calls.sort(key=lambda c: -c.end)

    # ------------------------------------------------------------------ module calls

    def _module_calls(self) -> list:
        """Every run of consecutive nodes that is one call of a module of the model (at any
        depth: a Conv2d, a ConvBlock around it, a whole stage) and may be called instead of
        its nodes (module docstring); whether the module reproduces the run is checked when a
        prefix first uses it (`_valid`)."""
        model = self.oracle.model
        runs, open_runs = [], {}
        for i, node in enumerate(self.nodes):
            members = _stack(node)
            for key in [k for k in open_runs if k not in members]:
                runs.append((open_runs.pop(key), i - 1, key[1]))
            for key in members:
                open_runs.setdefault(key, i)
        runs += [(start, len(self.nodes) - 1, key[1]) for key, start in open_runs.items()]
        calls = []
        for start, end, path in sorted(runs):
            if not path:
                continue
            try:
                model.get_submodule(path)
            except AttributeError:
                continue
            inside = {n.name for n in self.nodes[start:end + 1]}
            external, ok = set(), True
            for node in self.nodes[start:end + 1]:
                for arg in node.all_input_nodes:
                    if arg.name in inside:
                        continue
                    if arg.name in self.targets:
                        if not self.targets[arg.name].startswith(path + "."):
                            ok = False
                    else:
                        external.add(arg.name)
            used_outside = [n.name for n in self.nodes[start:end + 1]
                            if any(user.name not in inside for user in n.users)]
            if not ok or len(external) != 1 or len(used_outside) != 1:
                continue
            calls.append(ModuleCall(start, end, path, external.pop(), used_outside[0]))
        return calls

    def _valid(self, call) -> bool:
        """`_same_values` for `call`, checked once, when a prefix first would use it."""
        import torch

        if call not in self._checked:
            module = self.oracle.model.get_submodule(call.path)
            self._checked[call] = self._same_values(module, call, self.oracle._forward64(), torch)
        return self._checked[call]

    def output_of(self, name: str) -> list:
        """The modules (outermost first) one of whose calls ends in node `name`'s value."""
        found = [c for calls in self.calls.values() for c in calls if c.output == name]
        return [c.path for c in sorted(found, key=lambda c: c.start - c.end)]

    def _same_values(self, module, call, env, torch) -> bool:
        """Does the module, in float64, map the run's exact input to its exact output?"""
        x, expected = env.get(call.input), env.get(call.output)
        if not isinstance(x, torch.Tensor) or not isinstance(expected, torch.Tensor):
            return False
        try:
            twin = copy.deepcopy(module).double().eval()
            with torch.no_grad():
                actual = twin(x.detach().clone())   # an inplace module (ReLU(inplace=True)) writes its input
        except Exception:  # noqa: BLE001 - a module that cannot be called this way is not substituted
            return False
        if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
            return False
        expected = expected.detach()
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        return bool(torch.all((actual - expected).abs() <= 1e-9 * scale + 1e-300))

    # ------------------------------------------------------------------ prefixes

    def module(self, outputs: list[str]):
        """A GraphModule whose forward(x) returns the values of the nodes `outputs` (one
        tensor for one name, else a tuple), computed by the graph's nodes up to the last of
        them, module calls substituted where the prefix holds the whole call (the outermost)."""
        import torch

        cut = max(self.position[name] for name in outputs)
        wanted = set(outputs)
        graph = torch.fx.Graph()
        env, attributes = {}, {}
        for placeholder in self.placeholders:
            if placeholder.name in self.user_inputs:
                env[placeholder.name] = graph.placeholder(placeholder.name)
            else:
                attribute = f"npconv_{placeholder.name}"
                attributes[attribute] = self.tensors[placeholder.name]
                env[placeholder.name] = graph.get_attr(attribute)
        i = 0
        while i <= cut:
            call = next((c for c in self.calls.get(i, ()) if c.end <= cut and not (
                wanted & ({n.name for n in self.nodes[c.start:c.end + 1]} - {c.output})) and self._valid(c)), None)
            if call is not None:
                env[call.output] = graph.call_module(call.path, (env[call.input],))
                i = call.end + 1
                continue
            node = self.nodes[i]
            env[node.name] = graph.node_copy(node, lambda n: env[n.name])
            i += 1
        result = [env[name] for name in outputs]
        graph.output(result[0] if len(result) == 1 else tuple(result))
        for node in reversed(list(graph.nodes)):   # dead code: every op here is pure (module calls included)
            if node.op not in ("placeholder", "output") and not node.users:
                graph.erase_node(node)
        used = {n.target for n in graph.nodes if n.op == "get_attr"}
        modules = {n.target: self.oracle.model.get_submodule(n.target) for n in graph.nodes if n.op == "call_module"}
        holder = torch.nn.Module()
        for attribute, tensor in attributes.items():
            if attribute not in used:
                continue
            if isinstance(tensor, torch.nn.Parameter):
                holder.register_parameter(attribute, tensor)
            else:
                holder.register_buffer(attribute, tensor)
        for path, module in modules.items():
            _install(holder, path, module)
        gm = torch.fx.GraphModule(holder, graph, class_name="NpconvPrefix")
        return gm.eval()

    def candidates(self) -> list[str]:
        """The nodes a prefix may end at: those whose exact value is one floating tensor."""
        values = self.oracle.values
        out = []
        for node in self.nodes:
            value = values.get(node.name)
            if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                out.append(node.name)
        return out


def _install(holder, path: str, module) -> None:
    """holder.<path> = module, creating empty parent modules as needed."""
    import torch

    parts = path.split(".")
    parent = holder
    for part in parts[:-1]:
        child = getattr(parent, part, None) if part in parent._modules else None
        if child is None:
            child = torch.nn.Module()
            parent.add_module(part, child)
        parent = child
    parent.add_module(parts[-1], module)
