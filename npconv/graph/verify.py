"""Node-by-node verification of a captured graph against PyTorch.

    report = npconv.graph.verify.verify(torch_model, x)      # x: a float32 NumPy input
    report.ok, report.failures, report.worst(report.checks32)

1. PyTorch runs the exported graph's own nodes (the same ATen calls eager mode makes, after
   decomposition) in float32 and again in float64 (parameters widened), keeping every node's
   output.
2. Each node is checked on PyTorch's *own* inputs to it: npconv evaluates the node in float64
   on those inputs (widened exactly), and PyTorch's output must lie within the node's rounding
   bound (npconv.graph.ops, npconv.bounds) times `bounds.both_sides(u)`; an exact op (view,
   cat, relu, clamp, max-pool, ...) is evaluated by npconv in PyTorch's dtype and must match
   bit for bit, NaN positions included. No error is carried from node to node, so the bound
   is as sharp at node 300 as at node 1: passing says every step PyTorch took is npconv's
   step, up to the rounding that step allows.
3. Counting: npconv runs the whole graph on its own kernels (float32), counting per module;
   the counts equal the closed forms node by node, the MACs equal FlopCounterMode/2 per
   module and in total, and the parameters the graph uses equal sum(numel) of the model.

npconv's side (the float64 evaluations and bound magnitudes of step 2, the counted run of
step 3, the float64 run below) is on the fast engine by default, on one thread (`one_thread`),
and on the readable reference loop nests with engine="reference": a bound holds for any
summation order and the fast kernels count in their own loops, so the engine changes the
time, not the verdicts (reference_tests/test_graph.py holds the two equal).

End to end, npconv's own float32 and float64 runs are compared with the eager model's output
and the differences reported, not judged: a worst-case bound propagated through a deep
network is vacuous (10^18 times the output for MobileNetV1), so the node checks are the test.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from .. import counting
from .. import engine as engines
from ..nn.module import to_numpy
from ..oracle import bounds
from .graph import Graph, resolve
from .ops import OPS

__all__ = ["STEP_OWNERS", "TIME_PARTS", "NodeCheck", "VerifyReport", "check_nodes", "one_thread", "time_parts",
           "torch_trace", "verify"]


@dataclass
class NodeCheck:
    """One node's check: PyTorch's output against npconv's evaluation on PyTorch's inputs.
    ratio = max |diff| / bound (<= 1 passes); exact ops give 0 (equal) or inf."""

    name: str
    op: str
    module: str
    kind: str
    max_error: float
    ratio: float
    exact: bool
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


def _to_numpy(value):
    """A node's torch output as NumPy (tuples and lists of them element by element)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy(v) for v in value)
    return to_numpy(value) if hasattr(value, "detach") else value


def torch_trace(graph: Graph, x, dtype=None) -> dict:
    """PyTorch's output of every node of `graph` (captured with npconv.capture) on input x,
    as NumPy arrays; with `dtype` (a torch dtype) the floating parameters and the input are
    converted to it first. Keys: the input's and the nodes' names, plus "(output)"."""
    import torch

    program = graph.program
    convert = (lambda t: t.to(dtype) if dtype is not None and t.is_floating_point() else t)  # noqa: E731
    env = {}
    for name in graph.parameters.keys() | graph.buffers.keys():
        source = program.state_dict if graph.fqn[name] in program.state_dict else program.constants
        env[name] = convert(source[graph.fqn[name]])
    x = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    env[graph.inputs[0]] = convert(x)
    out = {graph.inputs[0]: _to_numpy(env[graph.inputs[0]])}
    with torch.no_grad():
        for fx_node in program.graph.nodes:
            if fx_node.op == "call_function":
                args = torch.fx.node.map_arg(fx_node.args, lambda n: env[n.name])
                kwargs = torch.fx.node.map_arg(fx_node.kwargs, lambda n: env[n.name])
                env[fx_node.name] = fx_node.target(*args, **kwargs)
                out[fx_node.name] = _to_numpy(env[fx_node.name])
    out["(output)"] = _to_numpy(resolve(graph.output, env))
    return out


def _widen(value):
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64, copy=False)  # a float64 input is used as it is: no op writes its inputs
    if isinstance(value, (tuple, list)):
        return type(value)(_widen(v) for v in value)
    return value


def _measure(actual, expected, bound) -> tuple[float, float]:
    """(max |actual − expected| over finite positions, max of that / bound); inf when the
    shapes differ or NaN/Inf positions or signs differ."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return float("inf"), float("inf")
    if bound is None:  # exact
        same = actual.dtype == expected.dtype and (
            np.array_equal(actual, expected)  # the common case, without the NaN masks
            or np.array_equal(actual, expected, equal_nan=actual.dtype.kind == "f"))
        if same:
            return 0.0, 0.0
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        finite = np.isfinite(a) & np.isfinite(e)
        return (float(np.abs(a - e)[finite].max()) if finite.any() else float("inf")), float("inf")
    bound = np.broadcast_to(np.asarray(bound, np.float64), expected.shape)
    if actual.size:
        # Fast path: every difference finite (so both sides are finite everywhere) and every
        # bound positive, where the general case below gives the same two numbers. A float32
        # side is widened inside the subtraction (exactly), not copied first.
        with np.errstate(all="ignore"):
            err = np.abs(np.subtract(actual, expected, dtype=np.float64))
            worst_error = err.max()
            if np.isfinite(worst_error) and bound.min() > 0:
                return float(worst_error), float(np.divide(err, bound, out=err).max())
    a, e = actual.astype(np.float64, copy=False), expected.astype(np.float64, copy=False)
    finite = np.isfinite(a) & np.isfinite(e)
    same_class = bool(np.all(finite | (np.isnan(a) & np.isnan(e)) | (a == e)))
    err = np.abs(a - e, where=finite, out=np.zeros_like(e))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bound > 0, err / bound, np.where(err > 0, np.inf, 0.0))
    worst = float(ratio.max()) if ratio.size else 0.0
    return (float(err.max()) if err.size else 0.0), (worst if same_class else float("inf"))


def _pairs(actual, expected, bound, factor: float) -> list:
    """(PyTorch's, npconv's, bound) per output of a node; bound None: exact. A node with
    several outputs has a bound per output, and an output whose bound is None under a bounded
    op is one nothing reads (BatchNorm's saved statistics in eval mode): not compared."""
    if not isinstance(actual, (tuple, list)):
        return [(actual, expected, None if bound is None else factor * bound)]
    if bound is None:
        return list(zip(actual, expected, [None] * len(actual)))
    return [(a, e, factor * b) for a, e, b in zip(actual, expected, bound) if b is not None]


def check_nodes(graph: Graph, trace: dict, u: float, engine: str | None = None) -> list[NodeCheck]:
    """Part 2 of the module docstring for PyTorch's `trace` (torch_trace) computed with unit
    roundoff u, npconv's side on `engine` (None: the current one). Either engine is sound here:
    a float64 evaluation in any summation order stays within γ_n(2⁻⁵³)·M of the exact value,
    and every bound already carries that term (`bounds.both_sides`); the magnitude M = |W| ⋆ |x|
    (+ |b|) of a bound is a sum of non-negative terms, so its own float64 rounding is within
    γ_n(2⁻⁵³)·M in any order too, and the engine changes neither argument."""
    dtype = {bounds.U32: np.float32, bounds.U64: np.float64, bounds.U16: np.float16}[u]
    env = dict(graph.parameters)
    env.update(graph.buffers)
    env = {k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in env.items()}
    env.update(trace)
    checks = []
    use = engines.use(engine) if engine is not None else contextlib.nullcontext()
    with counting.paused(), use:
        for node in graph.nodes:
            spec = OPS[node.op]
            args, kwargs = resolve(node.args, env), resolve(node.kwargs, env)
            actual = trace[node.name]
            if spec.bound is None:  # exact: evaluated in PyTorch's dtype, compared bit for bit
                expected, bound = spec.run(*args, **kwargs), None
            else:                   # evaluated in float64, within the node's bound
                args, kwargs = _widen(args), _widen(kwargs)
                expected, bound = spec.run(*args, **kwargs), spec.bound(dtype, *args, **kwargs)
            pairs = _pairs(actual, expected, bound, bounds.both_sides(u))
            worst_error, worst_ratio = 0.0, 0.0
            for a, e, b in pairs:
                error, ratio = _measure(a, e, b)
                worst_error, worst_ratio = max(worst_error, error), max(worst_ratio, ratio)
            checks.append(NodeCheck(node.name, node.op, node.module, node.module_type, worst_error, worst_ratio,
                                    spec.bound is None))
    return checks


@contextlib.contextmanager
def one_thread(engine: str):
    """npconv's side of verify on one thread when `engine` is "fast": Numba's pool set to one
    thread and OpenBLAS's limited to one (through threadpoolctl). On a
    shared or small machine a pool's fork-join waits for a descheduled worker (a scheduler
    slice, milliseconds, per call: bench/README.md, "Thread pools"), and verify makes many
    small calls; one thread also leaves PyTorch's pool alone. The reference kernels are
    single-threaded already: nothing changes for them."""
    if engine != "fast":
        yield
        return
    import numba

    from threadpoolctl import threadpool_limits

    blas = threadpool_limits(1, user_api="blas")
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with blas:
            yield
    finally:
        numba.set_num_threads(before)


@dataclass
class VerifyReport:
    """What `verify` found; `ok` when everything agrees (see `failures`)."""

    name: str
    input_shape: tuple
    graph: Graph
    summary: object                  # npconv.summary.Summary with the FlopCounterMode column
    checks32: list                   # NodeCheck per node, PyTorch float32
    checks64: list                   # NodeCheck per node, PyTorch float64
    end_to_end: dict
    times: dict                      # seconds per step (STEP_OWNERS) and the forward medians
    failures: list = field(default_factory=list)
    engine: str = "fast"             # the npconv engine of npconv's side (checks, counts, float64 run)
    cpu_times: dict = field(default_factory=dict)  # CPU seconds of the process (all threads) per step

    @property
    def ok(self) -> bool:
        return not self.failures

    @staticmethod
    def worst(checks):
        return max(checks, key=lambda c: c.ratio, default=None)

    def module_checks(self, checks) -> dict:
        """module name -> its worst NodeCheck."""
        worst = {}
        for c in checks:
            if c.module not in worst or c.ratio > worst[c.module].ratio:
                worst[c.module] = c
        return worst

    def as_dict(self) -> dict:
        def worst(checks):
            c = self.worst(checks)
            return None if c is None else {"node": c.name, "op": c.op, "layer": c.module, "type": c.kind,
                                           "max_error": c.max_error, "error_over_bound": c.ratio}
        return {
            "model": self.name,
            "input_shape": list(self.input_shape),
            "ok": self.ok,
            "failures": list(self.failures),
            "layer_by_layer": {"float32": worst(self.checks32), "float64": worst(self.checks64),
                               "steps": len(self.checks32)},
            "nodes": [{"node": a.name, "op": a.op, "layer": a.module, "exact": a.exact,
                       "float32_error_over_bound": a.ratio, "float64_error_over_bound": b.ratio}
                      for a, b in zip(self.checks32, self.checks64)],
            "end_to_end": self.end_to_end,
            "oracle_engine": self.engine,
            "times_s": dict(self.times),
            "time_parts_s": time_parts(self.times),
            "cpu_times_s": dict(self.cpu_times),
            "summary": self.summary.as_dict(),
        }


# Who does the work of each timed step of verify: PyTorch (the system under test), npconv, or
# neither ("setup": the command's own start, which `npconv verify` measures; verify() leaves
# those None).
STEP_OWNERS = {
    "import": "setup",         # process start to the command running: Python, NumPy, Numba, npconv, torch
    "build": "setup",          # building the model and its seeded input
    "numba_start": "setup",    # Numba's once-per-process start at the first compiled call (numba_start)
    "export": "torch",         # torch.export and core ATen decompositions (npconv.capture)
    "torch_nodes": "torch",    # PyTorch runs every exported node, float32 and float64
    "checks": "npconv",        # npconv evaluates every node on PyTorch's inputs, float64
    "flop_counter": "torch",   # FlopCounterMode on the model
    "count": "npconv",         # npconv runs the graph counting (float32), and once in float64
    "torch_eager": "torch",    # the model's eager forward, float32 and float64
}

# The parts a reader asks about, in order: each the sum of its steps (None while one is missing).
TIME_PARTS = {
    "import": ("import", "numba_start"),
    "build": ("build",),
    "capture": ("export",),
    "torch": ("torch_nodes", "flop_counter", "torch_eager"),
    "npconv": ("checks", "count"),
}


def numba_start() -> None:
    """Start Numba in this process, if it has not started: at the first call of a compiled
    function it imports and registers its typing and lowering modules (numba.np.*, which
    imports scipy.linalg where SciPy is installed), once per process, whichever kernel comes
    first. verify makes that first call here, on a one-element array, and times it as a step
    of its own, so that the checks' and the count's times are npconv's work and not Numba's
    start (loading each kernel npconv runs from Numba's cache stays in the step that runs it)."""
    from ..kernels.add import add

    one = np.zeros(1)
    add(one, one, np.empty(1))


class _Clock:
    """`with clock(step):` records the step's wall seconds in `times` and the process's CPU
    seconds (all its threads) in `cpu_times`."""

    def __init__(self, times: dict, cpu_times: dict):
        self.times, self.cpu_times = times, cpu_times

    @contextlib.contextmanager
    def __call__(self, step: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.times[step] = time.perf_counter() - wall
            self.cpu_times[step] = time.process_time() - cpu


def time_parts(times: dict) -> dict:
    """Seconds per part of TIME_PARTS from a report's `times` (None for a part with a step
    not timed)."""
    out = {}
    for part, steps in TIME_PARTS.items():
        values = [times.get(step) for step in steps]
        out[part] = None if any(v is None for v in values) else sum(values)
    return out


def verify(torch_model, x, *, name: str | None = None, progress=None, timing: bool = True,
           graph: Graph | None = None, strict: bool = False, engine: str = "fast") -> VerifyReport:
    """Verify npconv against `torch_model` (any nn.Module torch.export captures, put in eval
    mode) on input `x` (a float32 NumPy array): the module docstring's checks, plus
    (timing=True) the median time of one forward pass in PyTorch and on each npconv engine,
    interleaved. `progress(description)` is called before each step. `engine` is the npconv
    engine of all of npconv's work: the float64 side of the node checks (check_nodes says why
    either engine is sound), the counted float32 run (the fast kernels return the counts their
    own loops made, tested equal to the reference's) and the end-to-end float64 run; on "fast"
    it runs on one thread (`one_thread`). "reference" is the readable loop nests, slower."""
    import copy

    import torch

    from .. import engine as engines
    from ..cost.summary import flop_counter_by_module, graph_summary
    from .capture import capture

    engine = engines.resolve(engine)
    step = progress or (lambda description: None)
    name = name or type(torch_model).__name__
    x = np.ascontiguousarray(x, dtype=np.float32)
    times = {key: None for key in STEP_OWNERS}
    cpu_times = {key: None for key in STEP_OWNERS}
    clock = _Clock(times, cpu_times)
    torch_model = torch_model.eval()

    if graph is None:
        step("capturing the model with torch.export")
        with clock("export"):
            graph = capture(torch_model, x, name=name, strict=strict)

    step("PyTorch runs every node, float32 and float64")
    with clock("torch_nodes"):
        trace32 = torch_trace(graph, x)
        trace64 = torch_trace(graph, x.astype(np.float64), dtype=torch.float64)

    step(f"node by node: each PyTorch node against npconv ({engine} engine) on the same inputs")
    with clock("numba_start"):
        numba_start()
    with clock("checks"), one_thread(engine):
        checks32 = check_nodes(graph, trace32, bounds.U32, engine)
        checks64 = check_nodes(graph, trace64, bounds.U64, engine)

    step("FlopCounterMode on the model; npconv runs the graph on its kernels, counting")
    with clock("flop_counter"):
        flops = flop_counter_by_module(torch_model, x.shape)
    with clock("count"), one_thread(engine):
        cost = graph_summary(graph, x, torch_model=torch_model, flops=flops, engine=engine)
        y_n64 = graph.astype(np.float64).run(x.astype(np.float64), engine=engine)

    failures = [f"formula mismatch: {line}" for line in cost.mismatches]
    failures += [f"PyTorch disagrees: {line}" for line in cost.disagreements]
    for label, checks in (("float32", checks32), ("float64", checks64)):
        for c in checks:
            if not c.ok:
                what = f"{c.name} = {c.op} in {c.module or '(model)'} ({c.kind})"
                failures.append(f"{label}: {what} differs from npconv by {c.max_error:.3e}, "
                                + ("an exact op" if c.exact else f"{c.ratio:.3g}x its rounding bound"))

    with clock("torch_eager"), torch.no_grad():
        y_t32 = torch_model(torch.from_numpy(x)).numpy()
        y_t64 = copy.deepcopy(torch_model).double()(torch.from_numpy(x.astype(np.float64))).numpy()
    y_n32 = np.asarray(cost.output)
    scale = float(np.abs(y_n64).max()) if y_n64.size else 0.0

    def diff(a, b):
        d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        return float(d.max()) if d.size else 0.0

    end_to_end = {
        "float32": {"max_abs_y": scale, "max_abs_error_torch_vs_npconv64": diff(y_t32, y_n64),
                    "max_abs_error_npconv_vs_npconv64": diff(y_n32, y_n64),
                    "max_abs_error_torch32_vs_npconv32": diff(y_t32, y_n32),
                    "max_abs_error_eager_vs_graph": diff(y_t32, trace32["(output)"])},
        "float64": {"max_abs_y": scale, "max_abs_error_torch_vs_npconv64": diff(y_t64, y_n64),
                    "max_abs_error_eager_vs_graph": diff(y_t64, trace64["(output)"])},
    }
    times.update({"torch": None, "reference": None, "fast": None, "torch_threads": None})
    if timing:
        step("timing forward passes: PyTorch and each npconv engine, interleaved")
        times.update(_forward_times(torch_model, graph, x))
    return VerifyReport(name, tuple(x.shape), graph, cost, checks32, checks64, end_to_end, times, failures, engine,
                        cpu_times)


def _forward_times(torch_model, graph: Graph, x, repeats: int = 5) -> dict:
    import torch

    def run_torch():
        with torch.no_grad():
            torch_model(torch.from_numpy(x))

    runs = {"torch": run_torch, "reference": lambda: graph.run(x, engine="reference"),
            "fast": lambda: graph.run(x, engine="fast")}
    runs["fast"]()  # JIT compilation and weight packing happen once, outside the timing
    samples = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            samples[key].append(time.perf_counter() - start)
    out = {key: statistics.median(values) for key, values in samples.items()}
    out.update({f"{key}_spread": (min(values), max(values)) for key, values in samples.items()})
    out["torch_threads"] = torch.get_num_threads()
    return out
