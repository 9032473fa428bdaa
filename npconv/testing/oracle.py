"""One oracle for every path: npconv's float64 evaluation of the captured graph, and two
linearised bounds on how far a path's output may lie from it: (*), first-order, and (**),
probabilistic.

    oracle = Oracle(model, x)                       # capture, npconv float64, torch float64 autograd
    cmp = oracle.compare(y_path, FLOAT32)           # end to end, a few projections c·y
    cmp.ok, cmp.worst_ratio

The bound (docs/paths.md). A path computes every node k as v̂_k = f_k(v̂_in) + e_k with a
local error |e_k| <= b_k (npconv.testing.arithmetic.local_bounds: the node's rounding bound in
the path's arithmetic). To first order in the unit roundoff, the output error is
y_path − y = Σ_k (∂y/∂v_k)·e_k, so for any fixed direction c

    |c·(y_path − y)|  <=  Σ_k Σ_i |∂(c·y)/∂v_k,i| · b_k,i  +  O(u²)                  (*)

with the derivatives taken at the exact (float64) values: torch autograd through the
exported program run in float64. Unlike a worst-case bound propagated node to node (10¹⁸×
the output for a deep network: it multiplies |W| magnitudes layer after layer), (*) keeps the
signs of the network's Jacobian: it is not vacuous (about 10⁻³ of the output for the zoo).
It is exact to first order and covers rounding at every node; it neglects O(u²) terms
(products of two nodes' errors) and assumes each non-smooth op (ReLU, clamp, max pooling)
stays on the same side of its kink or tie as the exact computation — an input within its
error of a kink can move the output by up to that error, which (*) does not count. The
float64 reference's own error, the same sum with u = 2⁻⁵³, is added as the factor
`bounds.both_sides(2⁻²⁴)` = 1 + 2⁻²⁹.

(*) is rigorous to first order but puts every rounding of every element at its worst and all
of them in phase: for a float32 CNN it is typically 10³–10⁴ times the error a path really
makes, so a fault must exceed a few 10⁻³ of the output to break it in a network of ten
layers. The probabilistic bound (**) (Higham and Mary, "A new approach to probabilistic
rounding error analysis", SIAM J. Sci. Comput. 41(5), 2019) keeps at their worst the
roundings that are shared between output elements or not plausibly random (a BatchNorm's
per-channel scale, a folded or bfloat16-rounded weight, exp, division: LocalBound.shared) and
sums in quadrature the roundings that are each element's own (every product and partial sum
of a convolution's or matrix product's inner product, add, subtract, multiply, an output
rounded to bfloat16: LocalBound.variance, u²·Σ a_j² per element):

    |c·(y_path − y)|  <=  Σ_k Σ_i |∂(c·y)/∂v_k,i|·shared_k,i
                          + λ·sqrt(Σ_k Σ_i (∂(c·y)/∂v_k,i)²·variance_k,i)                 (**)

which holds, to first order, with probability at least 1 − 2·exp(−λ²/2) (2.5·10⁻¹⁴ for
λ = 8, `PROBABILISTIC_LAMBDA`) when the element-own roundings are mean-independent random
variables (Azuma-Hoeffding), the model of Higham and Mary. It is not a guarantee for every
input; a failure under (**) alone says "very probably wrong", one under (*) "wrong".

Since (*) and (**) hold for every c at once, c may be chosen after seeing the path's output: besides
fixed directions (the largest output, a few evenly spaced outputs, a ±1 pattern), the
comparison uses the one-hot of the output with the largest relative difference and the sign
pattern of the difference, which makes |c·(y_path − y)| = Σ|y_path − y|.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import engine as engines
from ..graph.graph import Ref
from ..graph.ops import OPS
from ..oracle import bounds
from .arithmetic import Arithmetic, local_bounds

__all__ = ["CRITERIA", "PROBABILISTIC_LAMBDA", "Comparison", "Direction", "Oracle"]

CRITERIA = ("first-order", "probabilistic")

# λ of the probabilistic bound (**): by the Azuma-Hoeffding inequality a sum Σ a_j δ_j of
# mean-independent roundings |δ_j| <= u exceeds λ·u·sqrt(Σ a_j²) with probability at most
# 2·exp(−λ²/2) = 2.5e-14 for λ = 8, per direction checked.
PROBABILISTIC_LAMBDA = 8.0


@dataclass
class Direction:
    """One projection c·y: `label` says how it was chosen; `ratio` = |c·(y_path − y)| / bound
    (the first-order bound (*)), `probabilistic_ratio` the same over the probabilistic bound (**)."""

    label: str
    observed: float
    bound: float
    ratio: float
    top: list = field(default_factory=list)   # (node name, share of the bound) of the largest terms
    probabilistic_bound: float = float("inf")
    probabilistic_ratio: float = 0.0

    def ratio_for(self, criterion: str) -> float:
        return self.ratio if criterion == "first-order" else self.probabilistic_ratio


@dataclass
class Comparison:
    """A path's output against the oracle's: `ok` when every direction's ratio is <= 1."""

    target: str                      # "(output)" or the node a prefix returns
    arithmetic: Arithmetic
    directions: list
    max_abs_error: float
    max_abs_value: float
    note: str = ""
    criterion: str = "probabilistic"   # which bound decides ok: "first-order" (*) or "probabilistic" (**)

    @property
    def worst(self) -> Direction | None:
        return max(self.directions, key=lambda d: d.ratio_for(self.criterion), default=None)

    @property
    def worst_ratio(self) -> float:
        """The largest ratio under the comparison's criterion (inf for a shape or NaN mismatch)."""
        worst = self.worst
        return float("inf") if self.note else (0.0 if worst is None else worst.ratio_for(self.criterion))

    @property
    def first_order_ratio(self) -> float:
        return float("inf") if self.note else max((d.ratio for d in self.directions), default=0.0)

    @property
    def probabilistic_ratio(self) -> float:
        return float("inf") if self.note else max((d.probabilistic_ratio for d in self.directions), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst_ratio <= 1.0

    def __str__(self) -> str:
        if self.note:
            return f"{self.target}: {self.note}"
        w = self.worst
        bound = w.bound if self.criterion == "first-order" else w.probabilistic_bound
        return (f"{self.target}: |c·(y_path − y)| / {self.criterion} bound = {w.ratio_for(self.criterion):.3g} "
                f"({w.label}: {w.observed:.3e} / {bound:.3e}; first-order {self.first_order_ratio:.3g}, "
                f"probabilistic {self.probabilistic_ratio:.3g}); max |y_path − y| = {self.max_abs_error:.3e}, "
                f"max |y| = {self.max_abs_value:.3e} [{self.arithmetic}]")


def _flat(value) -> list:
    """A (nested) tuple of outputs as a flat list."""
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _numpy64(value) -> np.ndarray:
    """A tensor (any dtype, device or memory format) or array as a float64 array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.double()
        value = value.contiguous().numpy()
    return np.asarray(value, np.float64)


class Oracle:
    """npconv's float64 evaluation of `model` on `example_input`, and the bounds (*) and (**)
    (module docstring) of any path's output, or of any node's output for a prefix of the
    graph. `graph`: an npconv.capture of the model (captured here when None); `engine`:
    npconv's engine for the float64 evaluation (either is sound: npconv.graph.verify.check_nodes)."""

    def __init__(self, model, example_input, *, graph=None, engine: str = "fast"):
        import torch

        from ..graph.capture import capture

        self.model = model.eval()
        x = example_input.detach().cpu().numpy() if isinstance(example_input, torch.Tensor) else example_input
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.graph = graph if graph is not None else capture(model, self.x)
        self.engine = engine
        self.index = {node.name: i for i, node in enumerate(self.graph.nodes)}
        graph64 = self.graph.astype(np.float64)
        trace: dict = {}
        x64 = self.x.astype(np.float64)
        with engines.use(engine):
            output = graph64.run(x64, trace=trace)
        self.values = graph64.environment([x64])
        self.values.update(trace)
        self.output = [np.asarray(v, np.float64) for v in _flat(output)]
        self._local: dict = {}
        self._torch = None
        self.parameter_gradients = False   # set when a rounding node depends on parameters alone
        self.cache: dict = {}   # what users of the oracle build once per model (check.localise: Prefixes)

    # ------------------------------------------------------------------ values and bounds

    def value(self, target: str | None = None) -> list:
        """The exact (float64) outputs of the model (target None) or of node `target`."""
        if target is None:
            return self.output
        return [np.asarray(_primary(self.values[target]), np.float64)]

    def local_bounds(self, arithmetic: Arithmetic) -> dict:
        """node name -> b_k under `arithmetic` (npconv.testing.arithmetic.local_bounds), cached."""
        if arithmetic not in self._local:
            with engines.use(self.engine):
                self._local[arithmetic] = local_bounds(self.graph, self.values, arithmetic)
        return self._local[arithmetic]

    # ------------------------------------------------------------------ float64 autograd

    def _forward64(self):
        """The exported program run in float64 with autograd on: name -> tensor."""
        if self._torch is not None:
            return self._torch
        import torch
        from torch.export.graph_signature import InputKind

        program = self.graph.program
        kinds = {spec.arg.name: spec.kind for spec in program.graph_signature.input_specs}
        env = {}
        for name in self.graph.parameters.keys() | self.graph.buffers.keys():
            key = self.graph.fqn[name]
            source = program.state_dict if key in program.state_dict else program.constants
            t = source[key].detach()
            if t.is_floating_point():
                t = t.to(torch.float64)
                if self.parameter_gradients and kinds.get(name) == InputKind.PARAMETER:
                    t = t.clone().requires_grad_(True)
            env[name] = t
        env[self.graph.inputs[0]] = torch.from_numpy(self.x.astype(np.float64)).requires_grad_(True)
        with torch.enable_grad():
            for fx_node in program.graph.nodes:
                if fx_node.op == "call_function":
                    args = torch.fx.node.map_arg(fx_node.args, lambda n: env[n.name])
                    kwargs = torch.fx.node.map_arg(fx_node.kwargs, lambda n: env[n.name])
                    env[fx_node.name] = fx_node.target(*args, **kwargs)
        if not self.parameter_gradients and any(
                isinstance(_primary(env[n.name]), torch.Tensor) and _primary(env[n.name]).is_floating_point()
                and not _primary(env[n.name]).requires_grad for n in self.graph.nodes if OPS[n.op].bound is not None):
            self.parameter_gradients = True   # a rounding node computed from parameters alone: track them too
            return self._forward64()
        self._torch = env
        return env

    def gradients(self, cs: list, target: str | None = None, *, batch: int = 16) -> list:
        """For each direction c of `cs` (a list of arrays shaped as `value(target)`), a dict
        node name -> |∂(c·v)/∂v_k| (float64, node k's output shape) over the rounding nodes k
        that v depends on; v is the model's output (target None) or node `target`'s. The
        directions go through one batched backward pass (`batch` at a time; one by one where
        an op has no batching rule)."""
        import torch

        env = self._forward64()
        if target is None:
            outs = [env[r.name] if isinstance(r, Ref) else r for r in _flat(self.graph.output)]
            limit = len(self.graph.nodes)
        else:
            outs = [_primary(env[target])]
            limit = self.index[target] + 1
        names = [n.name for n in self.graph.nodes[:limit] if OPS[n.op].bound is not None]
        names = [name for name in names if isinstance(_primary(env[name]), torch.Tensor)
                 and _primary(env[name]).requires_grad]
        inputs = [_primary(env[name]) for name in names]
        pairs = [(o, k) for k, o in enumerate(outs) if isinstance(o, torch.Tensor) and o.requires_grad]
        if not names or not pairs:
            return [{} for _ in cs]
        results = []
        for start in range(0, len(cs), batch):
            chunk = cs[start:start + batch]
            stacked = [torch.from_numpy(np.stack([np.asarray(c[k], np.float64) for c in chunk])) for _, k in pairs]
            try:
                grads = torch.autograd.grad([o for o, _ in pairs], inputs, grad_outputs=stacked, retain_graph=True,
                                            allow_unused=True, is_grads_batched=True)
                per = [[None if g is None else g[d] for g in grads] for d in range(len(chunk))]
            except (RuntimeError, NotImplementedError):  # an op without a batching rule: one at a time
                per = [torch.autograd.grad([o for o, _ in pairs], inputs, grad_outputs=[s[d] for s in stacked],
                                           retain_graph=True, allow_unused=True) for d in range(len(chunk))]
            for grads in per:
                results.append({name: np.abs(g.detach().numpy()) for name, g in zip(names, grads) if g is not None})
        return results

    def bound(self, c: list, arithmetic: Arithmetic, target: str | None = None, *, top: int = 3):
        """(first-order bound, probabilistic bound, the `top` largest terms of the first as
        (node name, share)) for direction `c` (module docstring: (*) and (**)), each times
        both_sides(2⁻²⁴) for the float64 reference's own error."""
        return self._bound(self.gradients([c], target)[0], arithmetic, top)

    def _bound(self, gradient: dict, arithmetic: Arithmetic, top: int = 3):
        local = self.local_bounds(arithmetic)
        terms, shared, variance = {}, 0.0, 0.0
        for name, g in gradient.items():
            b = local.get(name)
            if b is None:
                continue
            terms[name] = float(np.sum(g * b.worst))
            if np.any(b.shared):
                shared += float(np.sum(g * b.shared))
            if np.any(b.variance):
                variance += float(np.sum(g * g * b.variance))
        factor = bounds.both_sides(bounds.U32)
        total = sum(terms.values()) * factor
        # (*) holds whenever (**) is used, so the smaller of the two is the probabilistic bound
        probabilistic = min(total, (shared + PROBABILISTIC_LAMBDA * float(np.sqrt(variance))) * factor)
        largest = sorted(terms.items(), key=lambda kv: -kv[1])[:top]
        return total, probabilistic, [(name, value * factor / total if total else 0.0) for name, value in largest]

    # ------------------------------------------------------------------ comparing a path

    def directions(self, target: str | None = None, actual: list | None = None, *, fixed: int = 3,
                   seed: int = 0) -> list:
        """(label, c) pairs: the one-hot of the largest exact output and of `fixed` − 1 evenly
        spaced outputs, a ±1 pattern; and, given the path's `actual` outputs, the one-hot of the
        largest relative difference and the sign pattern of the difference."""
        exact = self.value(target)
        sizes = [e.size for e in exact]
        flat = np.concatenate([e.ravel() for e in exact]) if exact else np.zeros(0)
        n = flat.size

        def split(vector):
            parts, start = [], 0
            for e, size in zip(exact, sizes):
                parts.append(vector[start:start + size].reshape(e.shape))
                start += size
            return parts

        def one_hot(i):
            v = np.zeros(n)
            v[i] = 1.0
            return split(v)

        out = []
        if n == 0:
            return out
        chosen = [int(np.argmax(np.abs(flat)))]
        for i in np.linspace(0, n - 1, num=max(fixed - 1, 0) + 2)[1:-1].astype(int):
            if int(i) not in chosen:
                chosen.append(int(i))
        if n <= fixed:
            chosen = list(range(n))
        for i in chosen:
            out.append((f"one-hot of output {_position(i, exact)}", one_hot(i)))
        if n > fixed:
            signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=n)
            out.append(("±1 pattern", split(signs)))
        if actual is not None:
            act = np.concatenate([a.ravel() for a in actual])
            diff = act - flat
            if np.any(diff != 0):
                scale = np.abs(flat) + np.mean(np.abs(flat))
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(scale > 0, np.abs(diff) / scale, np.abs(diff))
                i = int(np.argmax(rel))
                if i not in chosen:
                    out.append((f"one-hot of output {_position(i, exact)} (largest relative difference)", one_hot(i)))
                out.append(("sign of the difference", split(np.sign(diff))))
        return out

    def compare(self, actual, arithmetic: Arithmetic, target: str | None = None, *, fixed: int = 3,
                criterion: str = "probabilistic") -> Comparison:
        """A path's outputs (tensors or arrays, nested tuples flattened) against the exact
        outputs of the model (target None) or of node `target`, in every direction of
        `directions`, each within `bound` under `arithmetic`; `criterion` ("first-order" or
        "probabilistic") decides `ok`, both ratios are kept."""
        return self.compare_many([(actual, arithmetic)], target, fixed=fixed, criterion=criterion)[0]

    def compare_many(self, items: list, target: str | None = None, *, fixed: int = 3,
                     criterion: str = "probabilistic") -> list:
        """`compare` for several (actual, arithmetic) pairs at once: the directions of all of
        them go through one batched backward pass, the fixed ones once."""
        if criterion not in CRITERIA:
            raise ValueError(f"criterion {criterion!r}: one of {CRITERIA}")
        exact = self.value(target)
        label = "(output)" if target is None else target
        scale = max((float(np.abs(e).max()) for e in exact if e.size), default=0.0)
        comparisons, pending = [None] * len(items), []
        for j, (actual, arithmetic) in enumerate(items):
            actual = [_numpy64(a) for a in _flat(actual)]
            if len(actual) != len(exact) or any(a.shape != e.shape for a, e in zip(actual, exact)):
                comparisons[j] = Comparison(label, arithmetic, [], float("inf"), scale, criterion=criterion,
                                            note=f"shapes {[a.shape for a in actual]} differ from "
                                                 f"{[e.shape for e in exact]}")
                continue
            finite = all(np.array_equal(np.isfinite(a), np.isfinite(e)) for a, e in zip(actual, exact))
            if not finite or not all(np.all(np.isfinite(e)) for e in exact):
                comparisons[j] = Comparison(label, arithmetic, [], float("inf"), scale, criterion=criterion,
                                            note="NaN or Inf where the exact value is finite (or a non-finite "
                                                 "exact value, which this bound does not judge)")
                continue
            pending.append((j, actual, arithmetic))
        if not pending:
            return comparisons
        common = self.directions(target, fixed=fixed)
        own = {j: self.directions(target, actual, fixed=fixed)[len(common):] for j, actual, _ in pending}
        everything = [c for _, c in common] + [c for j in own for _, c in own[j]]
        gradients = self.gradients(everything, target)
        shared_gradients, rest = gradients[:len(common)], gradients[len(common):]
        for j, actual, arithmetic in pending:
            mine = rest[:len(own[j])]
            rest = rest[len(own[j]):]
            results = []
            for (name, c), gradient in zip(common + own[j], shared_gradients + mine):
                observed = abs(sum(float(np.sum(ci * (a - e))) for ci, a, e in zip(c, actual, exact)))
                total, probabilistic, top = self._bound(gradient, arithmetic)
                results.append(Direction(name, observed, total, _ratio(observed, total), top, probabilistic,
                                         _ratio(observed, probabilistic)))
            max_error = max((float(np.abs(a - e).max()) for a, e in zip(actual, exact) if e.size), default=0.0)
            comparisons[j] = Comparison(label, arithmetic, results, max_error, scale, criterion=criterion)
        return comparisons


def _primary(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _ratio(observed: float, bound: float) -> float:
    return observed / bound if bound > 0 else (0.0 if observed == 0 else float("inf"))


def _position(i: int, exact: list) -> str:
    for k, e in enumerate(exact):
        if i < e.size:
            index = tuple(int(j) for j in np.unravel_index(i, e.shape))
            return f"{list(index)}" if len(exact) == 1 else f"{k}:{list(index)}"
        i -= e.size
    return str(i)

