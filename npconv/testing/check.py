"""check_paths: one model through each execution path, every output held to npconv's float64
evaluation within the bound of the path's own arithmetic (npconv.testing.oracle: first-order
or probabilistic); a failing path is localised to the first node whose output leaves its bound.

    report = check_paths(model, x, paths=["eager", "channels_last", "torchscript_trace"])
    report.ok, print(report)
    assert_paths(model, x)                      # raises AssertionError with the report

Localisation (`localise`): prefixes of the captured graph (npconv.testing.prefix) are run
through the same path and each prefix's output compared with npconv's float64 value of that
node, within the same kind of bound for the prefix. A bisection over the nodes finds a node
whose prefix fails while an earlier one passes; the node is then confirmed by checking every
one of its inputs in one more prefix: the culprit fails while all its inputs pass. (A path's
error can vanish downstream — a ReLU, a max-pool — so the predicate need not be monotone; if
an input fails, the bisection restarts below it.)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .oracle import Comparison, Oracle
from .paths import CHEAP, Path, as_path
from .prefix import Prefixes

__all__ = ["Localisation", "PathResult", "PathsReport", "assert_paths", "check_paths", "localise"]


@dataclass
class Localisation:
    """Where a path first leaves its bound: `node` (its op, module path, module class and the
    user-level name), the prefix comparison there, its inputs' comparisons (all within their
    bounds when `confirmed`), and the bisection's probes as (node, worst ratio)."""

    node: str
    op: str
    module: str
    module_type: str
    source: str
    comparison: Comparison
    inputs: list = field(default_factory=list)
    probes: list = field(default_factory=list)
    confirmed: bool = False
    output_of: list = field(default_factory=list)   # modules whose call ends in this node, outermost first

    def __str__(self) -> str:
        where = f"{self.op} `{self.node}` in {self.module or '(model)'}"
        if self.module_type:
            where += f" ({self.module_type})"
        outer = [m for m in self.output_of if m != self.module]
        if outer:
            where += f", the output of {' and '.join(outer)}"
        state = "its inputs within their bounds" if self.confirmed else "not confirmed: an input also fails"
        return f"first node out of its bound: {where}, {self.comparison.worst_ratio:.3g}x its bound; {state}"


@dataclass
class PathResult:
    """One path's outcome: status "pass", "fail", "error" (the path could not run the model:
    `reason`) or "skipped" (`reason`: a missing package, no GPU)."""

    path: str
    status: str
    arithmetic: object = None
    comparison: Comparison | None = None
    localisation: Localisation | None = None
    reason: str = ""
    seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skipped")

    def __str__(self) -> str:
        if self.status in ("error", "skipped"):
            return f"{self.path}: {self.status.upper()} ({self.reason})"
        text = f"{self.path}: {self.status.upper()} {self.comparison}"
        if self.localisation is not None:
            text += f"\n    {self.localisation}"
        return text


@dataclass
class PathsReport:
    """What check_paths found, one PathResult per path."""

    model: str
    input_shape: tuple
    nodes: int
    results: list
    seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list:
        return [r for r in self.results if not r.ok]

    def result(self, path: str) -> PathResult:
        return next(r for r in self.results if r.path == path)

    def __str__(self) -> str:
        head = f"{self.model} on {tuple(self.input_shape)} ({self.nodes} nodes):"
        return "\n".join([head] + [f"  {r}" for r in self.results])


def _tensor(x):
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32).contiguous()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _run(path: Path, module, x, made: dict | None = None) -> tuple:
    """(outputs, {"prepare": s, "run": s}) of `path` on a deep copy of `module`. `made` maps
    each prepare function run so far on this module to what it returned; a path built on one
    of them (`Path.builds_on`) finishes that instead of preparing from scratch (its
    "prepare" time is then the finishing step's)."""
    import torch

    made = {} if made is None else made
    base, finish = path.builds_on or (None, None)
    reuse = base is not None and base in made
    copied = None if reuse else copy.deepcopy(module).eval()
    start = time.perf_counter()
    with torch.no_grad():
        fn = finish(made[base]) if reuse else path.prepare(copied, x.clone())
    made[path.prepare] = fn
    prepared = time.perf_counter()
    with torch.no_grad():
        out = fn(x.clone())
    return out, {"prepare": prepared - start, "run": time.perf_counter() - prepared}


def check_paths(model, example_input, paths=CHEAP, *, criterion: str = "probabilistic", localise_failures: bool = True,
                oracle: Oracle | None = None, name: str | None = None, fixed_directions: int = 3) -> PathsReport:
    """Run `model` (an nn.Module, put in eval mode) on `example_input` through each of `paths`
    (built-in names, Paths or callables: npconv.testing.paths.as_path) and compare every
    output with npconv's float64 evaluation of the captured graph, within the first-order
    bound of the path's arithmetic (npconv.testing.oracle): `criterion` "probabilistic"
    (Higham-Mary: sharp, holds with probability 1 − 2.5e-14 under its model) or "first-order"
    (rigorous to first order in u, 10³-10⁴ times a correct path's error); both ratios are
    reported either way. A failing path is localised (`localise`) unless localise_failures=False.
    `oracle`: reuse one built for this model and input."""
    start = time.perf_counter()
    x = _tensor(example_input)
    oracle = oracle if oracle is not None else Oracle(model, x.numpy())
    seconds = {"oracle": time.perf_counter() - start}
    results, ran, made = [], [], {}
    for spec in paths:
        path = as_path(spec)
        reason = path.unavailable()
        if reason:
            results.append(PathResult(path.name, "skipped", path.arithmetic, reason=reason))
            continue
        try:
            out, times = _run(path, oracle.model, x, made)
        except Exception as error:  # noqa: BLE001 - a path that cannot run the model is reported, not raised
            results.append(PathResult(path.name, "error", path.arithmetic, reason=_one_line(error)))
            continue
        result = PathResult(path.name, "pending", path.arithmetic, seconds=times)
        results.append(result)
        ran.append((result, path, out))
    begin = time.perf_counter()
    comparisons = oracle.compare_many([(out, path.arithmetic) for _, path, out in ran], fixed=fixed_directions,
                                      criterion=criterion)
    seconds["compare"] = time.perf_counter() - begin
    for (result, path, _), comparison in zip(ran, comparisons):
        result.comparison = comparison
        result.status = "pass" if comparison.ok else "fail"
        if not comparison.ok and localise_failures:
            begin = time.perf_counter()
            result.localisation = localise(oracle, path, x, fixed_directions=fixed_directions, criterion=criterion)
            result.seconds["localise"] = time.perf_counter() - begin
    seconds["total"] = time.perf_counter() - start
    return PathsReport(name or type(model).__name__, tuple(x.shape), len(oracle.graph.nodes), results, seconds)


def assert_paths(model, example_input, paths=CHEAP, **kwargs) -> PathsReport:
    """check_paths, raising AssertionError with the report when a path fails or errs."""
    report = check_paths(model, example_input, paths, **kwargs)
    if not report.ok:
        raise AssertionError("execution paths disagree with npconv's float64 oracle:\n" + str(report))
    return report


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).strip().split("\n")[0].split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def localise(oracle: Oracle, path, example_input, *, fixed_directions: int = 3, criterion: str = "probabilistic",
             max_rounds: int = 4) -> Localisation | None:
    """The first node of oracle's graph whose output, computed by `path` on a prefix of the
    graph, leaves its first-order bound (module docstring). None when no prefix fails (the
    disagreement is in how the path runs the whole model, not in any node's value)."""
    path = as_path(path)
    x = _tensor(example_input)
    prefixes = oracle.cache.get("prefixes")
    if prefixes is None:
        prefixes = oracle.cache["prefixes"] = Prefixes(oracle)
    candidates = prefixes.candidates()
    where = {name: i for i, name in enumerate(candidates)}
    cache: dict = {}
    probes = []

    def check(names: list) -> list:
        """Comparisons of the nodes `names`, computed by one prefix through the path."""
        todo = [n for n in names if n not in cache]
        if todo:
            module = prefixes.module(todo)
            try:
                out, _ = _run(path, module, x)
                outs = list(out) if len(todo) > 1 else [out]
                for name, value in zip(todo, outs):
                    cache[name] = oracle.compare(value, path.arithmetic, name, fixed=fixed_directions,
                                                 criterion=criterion)
            except Exception as error:  # noqa: BLE001 - a prefix the path cannot run counts as failing
                for name in todo:
                    cache[name] = Comparison(name, path.arithmetic, [], float("inf"), 0.0, criterion=criterion,
                                             note=f"the path could not run this prefix: {_one_line(error)}")
            for name in todo:
                probes.append((name, cache[name].worst_ratio))
        return [cache[n] for n in names]

    from ..graph.graph import Ref

    outputs = [r.name for r in (oracle.graph.output if isinstance(oracle.graph.output, tuple)
                                else (oracle.graph.output,)) if isinstance(r, Ref) and r.name in where]
    hi = max((where[name] for name in outputs), default=len(candidates) - 1)
    if hi < 0 or check([candidates[hi]])[0].ok:
        return None
    lo = -1
    culprit, inputs = None, []
    for _ in range(max_rounds):
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if check([candidates[mid]])[0].ok:
                lo = mid
            else:
                hi = mid
        culprit = candidates[hi]
        inputs = _input_nodes(oracle, culprit, where)
        results = check(inputs + [culprit]) if inputs else check([culprit])
        failing = [name for name, c in zip(inputs, results) if not c.ok]
        if not failing:
            break
        hi, lo = min(where[name] for name in failing), -1
    node = _named(oracle, culprit)
    comparison = cache[culprit]
    confirmed = all(cache[n].ok for n in inputs) and not comparison.ok
    return Localisation(node.name, node.op, node.module, node.module_type, node.source, comparison,
                        [cache[n] for n in inputs], probes, confirmed, prefixes.output_of(culprit))


def _input_nodes(oracle: Oracle, name: str, where: dict) -> list:
    """The candidate nodes whose values `name` reads (through getitem and views of tuples:
    the node that produced the tuple's inputs)."""
    from ..graph.graph import Ref

    node = oracle.graph.nodes[oracle.index[name]]
    if node.op == "getitem":
        source = node.args[0]
        node = oracle.graph.nodes[oracle.index[source.name]] if isinstance(source, Ref) else node
    found = []

    def visit(value):
        if isinstance(value, Ref):
            if value.name in where and value.name not in found:
                found.append(value.name)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    visit(node.args)
    visit(list(node.kwargs.values()))
    return found


def _named(oracle: Oracle, name: str):
    """The node to name for `name`: the producer of a getitem (BatchNorm, max-pool, split)."""
    from ..graph.graph import Ref

    node = oracle.graph.nodes[oracle.index[name]]
    if node.op == "getitem" and isinstance(node.args[0], Ref):
        return oracle.graph.nodes[oracle.index[node.args[0].name]]
    return node
