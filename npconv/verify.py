"""Does a PyTorch model compute what npconv computes? `npconv verify`, as a library.

    report = npconv.verify.verify_model(torch_twin, x)      # x: a NumPy float32 input
    report.ok, report.failures

Three questions, each answered with a bound derived below, never a tuned tolerance:

1. Layer by layer (the verdict). PyTorch runs the twin in float32 and again in float64,
   with hooks recording every module's input and every leaf layer's output. Walking npconv's model in its
   forward order, each leaf layer runs in float64 on PyTorch's *own* input to that layer,
   and PyTorch's output must lie within that one layer's rounding bound of it; between
   leaves, the input PyTorch fed the next layer must be what npconv's composition (the
   sequence, a residual add, a flatten, a pooling) makes of PyTorch's previous outputs,
   again within the rounding of that one step. No error is carried from layer to layer,
   so the bound stays as sharp at layer 50 as at layer 1, and passing says: every step
   PyTorch took is npconv's step, up to the rounding that step allows.
2. End to end: npconv's own forward (float32, and float64) against PyTorch's on the same
   input. The largest differences are reported with the worst-case bound propagated
   through the whole network (`network_error_bound`). That bound is rigorous but grows
   roughly by sqrt(n) per layer (it assumes no cancellation, and BatchNorm rescales the
   cancelled signal back to O(1)): a few layers keep it informative, a full MobileNet makes
   it astronomically loose, and the report says how many times |y| it spans.
3. Counting: counted MACs == formula == FlopCounterMode / 2 per layer, and parameters ==
   the twin's sum(numel) per layer and in total (`npconv.summary`).

Rounding bound of one layer (input x̂ exact for the check; u the working unit roundoff,
n the number of terms per output, tiny the smallest normal float32):

  Conv2d, ConvTranspose2d, Linear (n = (C_in/g)·kH·kW, or in_features, + 1 with a bias)
      |ŷ − y| <= γ_n(u) · (|W| ⋆ |x̂| + |b|) + n · tiny,    γ_n = n u / (1 − n u)
    ⋆ is the layer's own operation, run on absolute values in float64 by npconv's kernels
    (padding modes included). Higham, Accuracy and Stability of Numerical Algorithms,
    eq. 3.5: any evaluation tree of an n-term inner product rounds each term at most n
    times. GEMM + col2im for a transposed convolution is one such tree.
  BatchNorm2d (eval), y = α(x − μ) + β, α = γ / sqrt(σ² + eps)
      |ŷ − y| <= γ_8(u) · (|α| (|x̂| + |μ|) + |β|) + 8 · tiny
    Either order PyTorch or npconv uses (x·α̂ + (β − μ·α̂), or (x − μ)·invstd·γ + β) puts at
    most 7 roundings on a term (eps add, sqrt, reciprocal, scale, then three more); the 8th
    covers a float64-then-float32 double rounding.
  AdaptiveAvgPool2d, windows of at most m values: |ŷ − y| <= γ_{m+1}(u) · avg(|x̂|)
    (m − 1 adds then a divide, or a reciprocal and a multiply).
  residual add: |ŷ − y| <= γ_1(u) · (|a| + |b|).
  ReLU, ReLU6, Identity, Flatten, Dropout (eval): exact.

PyTorch in float32 against npconv's float64 reference: bound b₃₂ + b₆₄ with b₆₄ <= 2⁻²⁹ b₃₂
(for every n, γ_n(2⁻⁵³) / γ_n(2⁻²⁴) <= 2⁻²⁹). PyTorch in float64 against npconv in float64:
2 · b₆₄, both sides rounding.

End-to-end propagation (`network_error_bound`): with E a bound on |x̂ − x| at a layer's
input and v npconv's float64 value there, |x̂| <= |v| + 2E; each layer adds its rounding
bound above evaluated on M = |v| + 2E and carries the input's error exactly: + |W| ⋆ E for
the linear layers, + |α| E for BatchNorm, avg(E) for pooling, E_a + E_b for an add, E
through ReLU/ReLU6 (1-Lipschitz). float64: E₆₄ = 2⁻²⁹ E₃₂ (the propagation is linear in
the γ's).
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from . import counting, ops
from .functional import conv2d
from .transpose import conv_transpose2d

__all__ = ["LayerCheck", "NetworkBound", "VerifyReport", "network_error_bound", "verify_model"]

U32 = 2.0**-24
U64 = 2.0**-53
TINY32 = float(np.finfo(np.float32).tiny)
F64_PER_F32 = 2.0**-29  # max over n of gamma_n(2^-53) / gamma_n(2^-24)


def gamma(n: int, u: float = U32) -> float:
    """Higham's γ_n = n u / (1 − n u) (inf when n u >= 1)."""
    nu = n * u
    return float("inf") if nu >= 1 else nu / (1 - nu)


def _abs64(a):
    return None if a is None else np.abs(np.asarray(a, dtype=np.float64))


def _window(size: int, out: int) -> int:
    return max(((i + 1) * size + out - 1) // out - (i * size) // out for i in range(out))


def _pool_size(module_or_size, shape) -> tuple[int, int]:
    size = module_or_size
    oh, ow = (size, size) if isinstance(size, int) else size
    return (shape[-2] if oh is None else oh), (shape[-1] if ow is None else ow)


def _leaf_bound(module, kind: str, v, e, u: float):
    """Bound on the error of one leaf layer's output, for input value v with error bound e
    (e = 0: the rounding of this layer alone), working unit roundoff u (module docstring)."""
    m = np.abs(v) + 2 * e
    if kind in ("Conv2d", "ConvTranspose2d"):
        w, b = _abs64(module.weight), _abs64(module.bias)
        if kind == "Conv2d":
            args = (module.stride, module.padding, module.dilation, module.groups, module.padding_mode)
            op, n = conv2d, w.shape[1] * w.shape[2] * w.shape[3]
        else:
            args = (module.stride, module.padding, module.output_padding, module.groups, module.dilation)
            op, n = conv_transpose2d, w.shape[0] // module.groups * w.shape[2] * w.shape[3]
        n += 0 if b is None else 1
        bound = gamma(n, u) * op(m, w, b, *args) + n * TINY32
        return bound + op(e, w, None, *args) if e.any() else bound
    if kind == "Linear":
        w, b = _abs64(module.weight), _abs64(module.bias)
        n = w.shape[1] + (0 if b is None else 1)
        bound = gamma(n, u) * ops.linear(m, w, b) + n * TINY32
        return bound + ops.linear(e, w, None) if e.any() else bound
    if kind == "BatchNorm2d":
        if module.running_var is None or module.running_mean is None:
            raise TypeError("no error bound for a BatchNorm2d without running statistics (it normalises by the batch)")
        var = np.asarray(module.running_var, np.float64)
        weight = np.ones_like(var) if module.weight is None else np.asarray(module.weight, np.float64)
        bias = np.zeros_like(var) if module.bias is None else np.asarray(module.bias, np.float64)
        alpha = np.abs(weight / np.sqrt(var + module.eps)) * (1 + 8 * U64)  # |α|, rounded up
        shape = (1, -1, 1, 1)
        alpha = alpha.reshape(shape)
        mean = np.abs(np.asarray(module.running_mean, np.float64)).reshape(shape)
        return gamma(8, u) * (alpha * (m + mean) + np.abs(bias).reshape(shape)) + alpha * e + 8 * TINY32
    if kind == "AdaptiveAvgPool2d":
        oh, ow = _pool_size(module.output_size, v.shape)
        window = _window(v.shape[-2], oh) * _window(v.shape[-1], ow)
        return gamma(window + 1, u) * ops.adaptive_avg_pool2d(m, (oh, ow)) + ops.adaptive_avg_pool2d(e, (oh, ow))
    if kind in ("ReLU", "ReLU6", "Identity", "Dropout"):
        return e
    if kind == "Flatten":
        return ops.flatten(e, module.start_dim, module.end_dim)
    raise TypeError(f"no error bound known for layer type {kind}")


@dataclass
class LayerCheck:
    """One step of the layer-by-layer check: PyTorch's output of a leaf layer (or the input
    it fed the next layer, for a composition step) against npconv's float64 value from
    PyTorch's own input. ratio = max |diff| / bound (<= 1 passes)."""

    name: str
    kind: str
    max_error: float
    ratio: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


class _Walk:
    """Runs an npconv model's layers one by one in float64, in its forward's order (that of
    the tutorial's, npconv's MobileNetV1 and torchvision's classes), carrying a value and a
    bound. With `forced` (leaf name -> PyTorch's (input, output) as float64), every leaf
    runs on PyTorch's own input and its output is checked (module docstring, part 1);
    without, the bound propagates end to end (part 2)."""

    def __init__(self, u: float, forced: dict | None = None):
        self.u = u
        self.forced = forced
        # float32 PyTorch vs float64 npconv: b32 + b64 <= (1 + 2^-29) b32; float64 vs float64: 2 b64
        self.both_sides = (1 + F64_PER_F32) if u == U32 else 2.0
        self.checks: list[LayerCheck] = []
        self.growth: list[tuple[str, str, float]] = []  # unforced: (name, kind, max E / max |v|)

    def check(self, name, kind, actual, expected, bound, note=""):
        if actual.shape != expected.shape:
            self.checks.append(LayerCheck(name, kind, float("inf"), float("inf"),
                                          f"shape {tuple(actual.shape)} != npconv's {tuple(expected.shape)}"))
            return
        err = np.abs(actual - expected)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bound > 0, err / bound, np.where(err > 0, np.inf, 0.0))
        finite = np.isfinite(expected) & np.isfinite(actual)
        same_nonfinite = bool(np.all(finite | (np.isnan(expected) & np.isnan(actual)) | (expected == actual)))
        worst = float(ratio[finite].max()) if finite.any() else 0.0
        self.checks.append(LayerCheck(name, kind, float(err[finite].max()) if finite.any() else 0.0,
                                      worst if same_nonfinite else float("inf"), note))

    def anchor(self, module, kind, name, v, e):
        """Forced walk, entering a module: PyTorch's input to it must be what npconv's
        composition made of PyTorch's earlier outputs (within e); from here on the walk
        continues from PyTorch's own input, so no rounding is carried further."""
        if self.forced is None or not name:
            return v, e
        if name not in self.forced:
            raise TypeError(f"layer '{name}' ({kind}) did not run in the PyTorch twin")
        t_in = self.forced[name][0]
        if e.any() or t_in.shape != v.shape or not np.array_equal(t_in, v):
            self.check(name, kind, t_in, v, self.both_sides * e, note="input")
        return t_in, np.zeros_like(t_in)

    def leaf(self, module, kind, name, v, e):
        if self.forced is None:
            out = module(v)
            e = _leaf_bound(module, kind, v, e, self.u)
            self.growth.append((name, kind, float(e.max() / max(np.abs(out).max(), TINY32)) if out.size else 0.0))
            return out, e
        t_out = self.forced[name][1]
        reference = module(v)
        bound = self.both_sides * _leaf_bound(module, kind, v, e, self.u)
        self.check(name, kind, t_out, reference, bound)
        return t_out, np.zeros_like(t_out)

    def add(self, name, a, ea, b, eb):
        out = ops.add(a, b)
        rounding = gamma(1, self.u) * (np.abs(a) + 2 * ea + np.abs(b) + 2 * eb)
        if self.forced is None:
            e = ea + eb + rounding
            self.growth.append((name, "residual add", float(e.max() / max(np.abs(out).max(), TINY32))))
            return out, e
        return out, rounding  # checked where PyTorch feeds it on (the next input, or the output)

    def pool(self, v, e):
        window = v.shape[-2] * v.shape[-1]
        out = ops.adaptive_avg_pool2d(v, (1, 1))
        rounding = gamma(window + 1, self.u) * ops.adaptive_avg_pool2d(np.abs(v) + 2 * e, (1, 1))
        return out, rounding + (ops.adaptive_avg_pool2d(e, (1, 1)) if self.forced is None else 0.0)

    def run(self, module, name, v, e):
        kind = type(module).__name__
        children = dict(module.named_children())

        def child(key, v, e):
            return self.run(children[key], f"{name}.{key}" if name else key, v, e)

        v, e = self.anchor(module, kind, name, v, e)
        if not children:
            return self.leaf(module, kind, name, v, e)
        if kind in ("Sequential", "Conv2dNormActivation"):
            for key in children:
                v, e = child(key, v, e)
            return v, e
        if kind == "DepthwiseSeparableConv":
            return child("pointwise", *child("depthwise", v, e))
        if kind == "MobileNetBlock":
            return child("pw_conv", *child("dw_conv", v, e))
        if kind == "HybridBlock":
            return child("upsample", *child("mid", *child("downsample", v, e)))
        if kind == "InvertedResidual":
            c, ec = child("conv", v, e)
            if getattr(module, "use_residual", getattr(module, "use_res_connect", False)):
                return self.add(name, v, e, c, ec)
            return c, ec
        if kind == "TinyMobileNet":
            v, e = child("features", v, e)
            return child("classifier", ops.flatten(v, 1), ops.flatten(e, 1))
        if kind == "MobileNetV1":
            v, e = child("avgpool", *child("features", v, e))
            return child("classifier", ops.flatten(v, 1), ops.flatten(e, 1))
        if kind == "MobileNetV2":
            v, e = self.pool(*child("features", v, e))
            return child("classifier", ops.flatten(v, 1), ops.flatten(e, 1))
        raise TypeError(f"no forward order known for {kind} at '{name or '(model)'}'")


@dataclass
class NetworkBound:
    """npconv's float64 output `value` and the elementwise float32 error bound `e32` of the
    output (float64 arrays); e64 = 2⁻²⁹ · e32. `growth`: max bound / max |value| after each
    layer."""

    value: np.ndarray
    e32: np.ndarray
    growth: list

    @property
    def e64(self) -> np.ndarray:
        return F64_PER_F32 * self.e32


def network_error_bound(model64, x) -> NetworkBound:
    """npconv's float64 output of `model64` (an npconv model in float64, eval mode) on `x`
    (widened exactly to float64) and the end-to-end float32 error bound of any evaluation
    of the same network (module docstring, part 2). Counting is paused."""
    x = np.asarray(x, dtype=np.float64)
    walk = _Walk(U32)
    with counting.paused():
        value, e32 = walk.run(model64, "", x, np.zeros_like(x))
    return NetworkBound(value, e32, walk.growth)


def layer_checks(model64, captured: dict, x, y, u: float) -> list[LayerCheck]:
    """Part 1 of the module docstring: `captured` maps each leaf layer's name to PyTorch's
    (input, output) arrays, `x` and `y` are PyTorch's network input and output, `u` the unit
    roundoff PyTorch worked in. Returns one LayerCheck per leaf, per composition step that
    fed a layer, and one for the network's output."""
    walk = _Walk(u, {k: (np.asarray(i, np.float64), None if o is None else np.asarray(o, np.float64))
                     for k, (i, o) in captured.items()})
    x = np.asarray(x, dtype=np.float64)
    with counting.paused():
        value, e = walk.run(model64, "", x, np.zeros_like(x))
    walk.check("(output)", type(model64).__name__, np.asarray(y, np.float64), value, walk.both_sides * e,
               note="output")
    return walk.checks


# ----------------------------------------------------------------------------- the verify run


def _capture(torch_model, x):
    """Run `torch_model` on tensor x, recording every module's input and every leaf module's
    output as NumPy arrays (inputs cloned before the forward, so in-place activations do not
    alter them)."""
    import torch

    store: dict[str, list] = {}
    handles = []
    for name, module in torch_model.named_modules():

        def pre(mod, args, name=name):
            store[name] = [args[0].detach().clone().numpy(), None]

        def post(mod, args, out, name=name):
            store[name][1] = out.detach().clone().numpy()

        handles.append(module.register_forward_pre_hook(pre))
        if next(module.children(), None) is None:
            handles.append(module.register_forward_hook(post))
    try:
        with torch.no_grad():
            y = torch_model(x)
    finally:
        for handle in handles:
            handle.remove()
    return y.numpy(), store


@dataclass
class VerifyReport:
    """What `verify_model` found; `ok` when everything agrees (see `failures`)."""

    name: str
    input_shape: tuple
    summary: object                  # npconv.summary.Summary, FlopCounterMode column filled
    checks32: list                   # LayerCheck, PyTorch float32 layer by layer
    checks64: list                   # LayerCheck, PyTorch float64 layer by layer
    end_to_end: dict                 # "float32" / "float64": max errors and the propagated bound
    walk_matches_model: bool         # the checker's forward order reproduces npconv's forward bit for bit
    times: dict                      # seconds per forward: "torch", "reference", "fast" (None if absent)
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def worst(self, checks) -> LayerCheck | None:
        return max(checks, key=lambda c: c.ratio, default=None)

    def as_dict(self) -> dict:
        def worst(checks):
            c = self.worst(checks)
            return None if c is None else {"layer": c.name, "type": c.kind, "max_error": c.max_error,
                                           "error_over_bound": c.ratio}
        return {
            "model": self.name,
            "input_shape": list(self.input_shape),
            "ok": self.ok,
            "failures": list(self.failures),
            "layer_by_layer": {"float32": worst(self.checks32), "float64": worst(self.checks64),
                               "steps": len(self.checks32)},
            "end_to_end": self.end_to_end,
            "walk_matches_model": self.walk_matches_model,
            "times_s": dict(self.times),
            "summary": self.summary.as_dict(),
        }


def _fast_engine():
    """`npconv.engine.use("fast")` where the fast tier exists, else None."""
    try:
        from . import engine
    except ImportError:
        return None
    if not hasattr(engine, "use") or "fast" not in getattr(engine, "ENGINES", ()):
        return None
    return lambda: engine.use("fast")


def verify_model(torch_model, x, *, name: str | None = None, progress=None, timing: bool = True) -> VerifyReport:
    """Verify npconv against `torch_model` (a PyTorch model in eval mode made of layers and
    classes `npconv.convert.from_torch` knows) on input `x` (a float32 NumPy array): the
    module docstring's three checks, plus (timing=True) the median time of one forward pass
    in PyTorch and on each npconv engine, interleaved. `progress(description)` is called
    before each step. torch is imported here."""
    import torch

    from .convert import from_torch
    from .summary import summary

    step = progress or (lambda description: None)
    name = name or type(torch_model).__name__
    x = np.ascontiguousarray(x, dtype=np.float32)
    failures: list[str] = []

    step("converting the PyTorch model to npconv")
    torch_model = torch_model.eval()
    net32 = from_torch(torch_model)
    twin64 = copy.deepcopy(torch_model).double().eval()
    net64 = from_torch(twin64)

    step("PyTorch forward, float32 and float64, recording every layer")
    y_t32, captured32 = _capture(torch_model, torch.from_numpy(x))
    y_t64, captured64 = _capture(twin64, torch.from_numpy(x.astype(np.float64)))

    step("npconv forward (reference kernels), counting every layer; FlopCounterMode on the twin")
    cost = summary(net32, input=x, torch_model=torch_model, name=name)
    y_n32 = cost.output
    for line in cost.mismatches:
        failures.append(f"formula mismatch: {line}")
    for line in cost.disagreements:
        failures.append(f"PyTorch disagrees: {line}")

    step("layer by layer: every PyTorch float32 layer against npconv on the same input")
    checks32 = layer_checks(net64, captured32, x, y_t32, U32)
    step("layer by layer: every PyTorch float64 layer against npconv on the same input")
    checks64 = layer_checks(net64, captured64, x, y_t64, U64)
    for label, checks in (("float32", checks32), ("float64", checks64)):
        for c in checks:
            if not c.ok:
                what = f"{c.name} ({c.kind}{', ' + c.note if c.note else ''})"
                failures.append(f"{label}: {what} differs from npconv by {c.max_error:.3e}, "
                                f"{c.ratio:.3g}x its rounding bound")

    step("end to end: npconv float64 forward and the propagated error bound")
    y_n64 = net64(x.astype(np.float64))
    bound = network_error_bound(net64, x)
    walk_matches = bool(np.array_equal(bound.value, y_n64, equal_nan=True))
    if not walk_matches:
        failures.append("the checker's forward order does not reproduce npconv's float64 forward bit for bit")
    scale = float(np.abs(y_n64).max()) if y_n64.size else 0.0
    end_to_end = {}
    for label, pairs, e in (
        ("float32", {"torch_vs_npconv64": y_t32, "npconv_vs_npconv64": y_n32, "torch_vs_npconv": None},
         bound.e32 * (1 + F64_PER_F32)),
        ("float64", {"torch_vs_npconv64": y_t64}, 2 * bound.e64),
    ):
        entry = {"max_abs_y": scale, "bound_max": float(e.max()) if e.size else 0.0,
                 "bound_over_max_abs_y": float(e.max() / scale) if scale else None}
        for key, y in pairs.items():
            if key == "torch_vs_npconv":
                diff = np.abs(y_t32.astype(np.float64) - y_n32.astype(np.float64))
                entry["max_abs_error_torch32_vs_npconv32"] = float(diff.max()) if diff.size else 0.0
                continue
            diff = np.abs(np.asarray(y, np.float64) - y_n64)
            entry[f"max_abs_error_{key}"] = float(diff.max()) if diff.size else 0.0
            if not np.all(diff <= e):
                failures.append(f"{label} end to end: {key} exceeds the propagated bound")
        end_to_end[label] = entry

    if not timing:
        return VerifyReport(name, tuple(x.shape), cost, checks32, checks64, end_to_end, walk_matches,
                            {"torch": None, "reference": None, "fast": None, "torch_threads": None}, failures)
    step("timing forward passes: PyTorch and each npconv engine, interleaved")
    runs = {"torch": lambda: _no_grad(torch, torch_model, x), "reference": lambda: net32(x)}
    fast = _fast_engine()
    if fast is not None:
        def run_fast():
            with fast():
                return net32(x)
        run_fast()  # JIT compilation and weight packing happen once, outside the timing
        runs["fast"] = run_fast
    samples = {key: [] for key in runs}
    for _ in range(3):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            samples[key].append(time.perf_counter() - start)
    times = {key: statistics.median(values) for key, values in samples.items()}
    times.setdefault("fast", None)
    times["torch_threads"] = torch.get_num_threads()
    return VerifyReport(name, tuple(x.shape), cost, checks32, checks64, end_to_end, walk_matches, times, failures)


def _no_grad(torch, model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x))
