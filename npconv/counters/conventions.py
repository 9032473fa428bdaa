"""Each popular FLOP counter's convention, written over what npconv counted (`CONVENTIONS`).

    prediction = CONVENTIONS["thop"].predict(facts)      # facts = npconv.counters.node_facts(...)
    prediction.total, prediction.own["features.0.bn"], prediction.findings()

A convention turns every node of a captured graph into `Part`s: an amount in the counter's
unit, attributed to the module the counter attributes it to, named by one of the
convention's `Term`s (each citing the counter's source where that rule lives). The amounts
come from the counts npconv's kernels executed for the node (`NodeFacts.counts`: macs,
bias_adds, bn_scale_shift, pool_divides, ...) and, where a counter's rule is written over
shapes rather than operations, from the node's shapes and its module's metadata (class,
parameters). Nothing here runs a counter; `npconv.counters.installed` does, and the tests
hold the two equal.

A Part with a `departure` marks where the counter departs from its own stated intent
(`npconv.counters.departures`): an amount counted twice, or an operation it means to count
and misses (amount 0, with what npconv executed there in `executed`).

Versions read (the pins of the `test` extra): torch 2.13 (torch/utils/flop_counter.py),
fvcore 0.1.5.post20221221, thop 0.1.1.post2209072238, ptflops 0.7.5, torchinfo 1.8.0.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from .facts import Facts, NodeFacts, Shape, numel

__all__ = ["CONVENTIONS", "Convention", "Finding", "Part", "Prediction", "Term"]

# ----------------------------------------------------------------------------- the ATen ops

CONV = "aten.convolution.default"
ADDMM = "aten.addmm.default"
MM = "aten.mm.default"
BN = "aten._native_batch_norm_legit_no_training.default"
AVG_POOL = "aten.avg_pool2d.default"
MAX_POOL = "aten.max_pool2d_with_indices.default"
ADAPTIVE = "aten._adaptive_avg_pool2d.default"
MEANS = ("aten.mean.dim", "aten.mean.default")
POOLS = (AVG_POOL, MAX_POOL, ADAPTIVE) + MEANS
ACTIVATIONS = ("aten.relu.default", "aten.hardtanh.default", "aten.clamp.default")

# npconv's counting categories that are arithmetic (comparisons and copies apart)
ARITHMETIC = ("macs", "bias_adds", "bn_scale_shift", "sigmoid_exps", "adds", "subs", "muls", "divides",
              "pool_adds", "pool_divides")
COMPARISONS = ("activation_compares", "pool_compares")


def _arithmetic(node: NodeFacts, comparisons: bool = False) -> int:
    kinds = ARITHMETIC + (COMPARISONS if comparisons else ())
    return sum(node.counts.get(k, 0) for k in kinds)


@functools.cache
def _nn():
    """torch.nn's classes by name (torch imported here, once)."""
    import torch.nn as nn

    return nn


def _classes(*names) -> frozenset:
    nn = _nn()
    return frozenset(getattr(nn, n) for n in names if hasattr(nn, n))


# ----------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Term:
    """One rule of a convention: what it counts, in words, and where the counter says so."""

    key: str
    text: str
    source: str
    departure: str | None = None


@dataclass(frozen=True)
class Part:
    """One amount a counter counts (or misses) for one node."""

    term: str
    amount: int
    module: str
    node: str
    what: str = ""               # the module class or op, for summaries ("ReLU", "mean.dim")
    departure: str | None = None
    executed: int = 0            # npconv's counted operations behind a departure (the ones the
                                 # counter counts twice, over-counts or misses)
    functional: bool = False     # ptflops: counted by a patched function (not divided by the batch)


@dataclass
class Finding:
    """A departure as found in one model: where, how often, by how much."""

    departure: str
    calls: int = 0
    excess: int = 0              # what the departure adds to the counter's total
    missed: int = 0              # what npconv executed where the counter counts 0
    what: dict = field(default_factory=dict)   # class or op -> calls

    def describe(self) -> str:
        """"counted twice: ReLU ×35, MaxPool2d ×1 (+1,234,567)"."""
        from .departures import DEPARTURES

        what = ", ".join(f"{k} ×{n}" for k, n in sorted(self.what.items(), key=lambda kv: (-kv[1], kv[0])))
        extra = [f"+{self.excess:,}"] if self.excess else []
        extra += [f"counted 0 where npconv executed {self.missed:,} ops"] if self.missed else []
        return f"{DEPARTURES[self.departure].title}: {what}" + (f" ({'; '.join(extra)})" if extra else "")

    def as_dict(self) -> dict:
        return {"departure": self.departure, "calls": self.calls, "excess": self.excess, "missed": self.missed,
                "where": dict(self.what)}


@dataclass
class Prediction:
    """A convention applied to one model: the total, per term, per module (own amounts, the
    module the counter attributes them to) and every part."""

    convention: Convention
    total: int
    by_term: dict
    own: dict
    parts: list
    extra_findings: list = field(default_factory=list)

    def findings(self) -> list[Finding]:
        found: dict[str, Finding] = {}
        for part in self.parts:
            if part.departure is None:
                continue
            f = found.setdefault(part.departure, Finding(part.departure))
            f.calls += 1
            if part.amount:
                f.excess += part.amount - part.executed
            else:
                f.missed += part.executed
            f.what[part.what] = f.what.get(part.what, 0) + 1
        return list(found.values()) + list(self.extra_findings)


@dataclass(frozen=True)
class Convention:
    """One counter's convention (module docstring). `parts(facts)` lists the Parts;
    `combine(parts, facts)` gives the total (the sum, unless the counter does otherwise)."""

    name: str
    label: str
    package: str
    unit: str
    summary: str
    terms: tuple
    parts: Callable
    granularity: str = "module"      # "module": per module; "top": the model's children only
    combine: Callable | None = None
    backward: bool = False           # counts a training step's backward

    def term(self, key: str) -> Term:
        return next(t for t in self.terms if t.key == key)

    def predict(self, facts: Facts) -> Prediction:
        parts = list(self.parts(facts))
        by_term, own = defaultdict(int), defaultdict(int)
        for part in parts:
            by_term[part.term] += part.amount
            own[part.module] += part.amount
        if self.combine is not None:
            total, extra = self.combine(parts, facts)
        else:
            total, extra = sum(p.amount for p in parts), []
        return Prediction(self, int(total), dict(by_term), dict(own), parts, extra)


# ----------------------------------------------------------------------------- helpers


def _cls(facts: Facts, node: NodeFacts):
    info = facts.modules.get(node.module)
    return None if info is None else info.cls


def _conv_parts(node: NodeFacts):
    """(x, w, bias, transposed, groups) of a convolution node."""
    x, w, b, _stride, _padding, _dilation, transposed, _output_padding, groups = node.args
    return x, w, b, bool(transposed), int(groups)


def _first_of_fn_calls(facts: Facts) -> dict:
    """node name -> the nodes of its Python-level call, for the first node of each call."""
    return {nodes[0].name: nodes for nodes in facts.fn_calls().values()}


def _fn_input_numel(nodes) -> int:
    """Elements of a Python-level call's first array argument: the first node's first."""
    shape = nodes[0].shape(0)
    return numel(shape)


def _what(facts: Facts, node: NodeFacts) -> str:
    info = facts.modules.get(node.module)
    return info.class_name if info is not None else node.op.split(".")[1]


# ----------------------------------------------------------------------------- FlopCounterMode

FCM_SOURCE = "torch/utils/flop_counter.py"


def _flop_counter_parts(facts: Facts):
    for node in facts.nodes:
        if node.op in (CONV, ADDMM, MM):
            yield Part("macs", 2 * node.counts.get("macs", 0), node.module, node.name, _what(facts, node))


FLOP_COUNTER = Convention(
    "flop_counter", "FlopCounterMode", "torch", "FLOPs",
    "2 × (convolution + matrix-product MACs); nothing else",
    (Term("macs", "2 × the MACs of every convolution (a transposed one per input element, as npconv's "
                  "scatter loops count) and matrix product (addmm, mm); bias adds, BatchNorm, activations, "
                  "pooling and element-wise ops count 0",
          f"{FCM_SOURCE}: conv_flop_count (`prod(conv_shape) * prod(filter_size) * batch_size * c_out * c_in * 2`, "
          "\"Computation for bias are ignored\"), mm_flop, addmm_flop (= mm_flop)"),
     Term("training_step", "a training step: 2 × the MACs of each convolution's and matrix product's forward, "
                           "input gradient (when the input needs one) and weight gradient; the backward of "
                           "BatchNorm, activations and pooling counts 0",
          f"{FCM_SOURCE}: conv_backward_flop (output_mask), mm_flop for a Linear's two gradient products"),
     Term("grad_weight_groups", "a grouped convolution's weight gradient is charged with C_in × C_out, not "
                                "C_in / groups × C_out: groups times the MACs executed",
          f"{FCM_SOURCE}: conv_backward_flop (`conv_flop_count(t(x_shape), t(grad_out_shape), "
          "t(grad_weight_shape), transposed=False)`)", departure="flop_counter.grouped_weight_gradient")),
    _flop_counter_parts, backward=True)


# ----------------------------------------------------------------------------- fvcore

FV = "fvcore/nn/"


def _fvcore_parts(facts: Facts):
    convs = _classes("Conv1d", "Conv2d", "Conv3d")
    firsts = _first_of_fn_calls(facts)
    for node in facts.nodes:
        info = facts.modules.get(node.module)
        if node.op == CONV:
            # a string padding reaches F.conv2d only with padding_mode "zeros" (nn.Conv2d pads
            # other modes itself and convolves with padding 0: aten::_convolution)
            if info is not None and info.cls in convs and info.padding_is_str and info.padding_mode == "zeros":
                yield Part("convolution_mode", 0, node.module, node.name, info.class_name,
                           departure="fvcore.convolution_mode", executed=node.counts.get("macs", 0))
            else:
                yield Part("macs", node.counts.get("macs", 0), node.module, node.name, _what(facts, node))
        elif node.op in (ADDMM, MM):
            yield Part("macs", node.counts.get("macs", 0), node.module, node.name, _what(facts, node))
        elif node.op == BN:
            affine = node.args[1] is not None
            yield Part("batch_norm", (2 if affine else 1) * node.counts.get("bn_scale_shift", 0), node.module,
                       node.name, _what(facts, node))
        elif node.fn_kind == "function.adaptive_avg_pool2d" and node.name in firsts:
            yield Part("adaptive_avg_pool2d", _fn_input_numel(firsts[node.name]), node.module, node.name,
                       _what(facts, node))


FVCORE = Convention(
    "fvcore", "fvcore", "fvcore", "MACs",
    "conv and linear MACs + 2 per BatchNorm element + the input elements of adaptive_avg_pool2d",
    (Term("macs", "MACs of every convolution (aten::_convolution; transposed per input element) and matrix "
                  "product (aten::linear, addmm, mm, matmul); bias adds count 0",
          f"{FV}jit_handles.py: conv_flop_count (\"Note only multiplication is counted. Computation for addition "
          "and bias is ignored\"), linear_flop_jit, addmm_flop_jit, matmul_flop_jit"),
     Term("batch_norm", "2 per element of an affine BatchNorm in eval mode (1 without affine)",
          f"{FV}jit_handles.py: batchnorm_flop_jit (`input_shape * (2 if has_affine else 1)`)"),
     Term("adaptive_avg_pool2d", "1 per input element of aten::adaptive_avg_pool2d (nn.AdaptiveAvgPool2d, "
                                 "F.adaptive_avg_pool2d); avg_pool2d, max_pool2d, mean, element-wise ops and "
                                 "activations are unsupported ops, counted 0 and warned about",
          f"{FV}flop_count.py: _DEFAULT_SUPPORTED_OPS "
          "(`\"aten::adaptive_avg_pool2d\": elementwise_flop_counter(1, 0)`)"),
     Term("convolution_mode", "a convolution with padding=\"same\" or \"valid\" (and padding_mode \"zeros\") traces "
                              "as aten::_convolution_mode, which has no handle: 0 (warned as an unsupported op)",
          f"{FV}flop_count.py: _DEFAULT_SUPPORTED_OPS (only \"aten::_convolution\")",
          departure="fvcore.convolution_mode")),
    _fvcore_parts)


# ----------------------------------------------------------------------------- thop

TH = "thop/"


@functools.cache
def _thop_types():
    conv = _classes("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    norm = _classes("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d",
                    "InstanceNorm3d", "SyncBatchNorm")
    avg = _classes("AvgPool1d", "AvgPool2d", "AvgPool3d")
    adaptive = _classes("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
    linear = _classes("Linear")
    zero = _classes("ZeroPad2d", "ReLU", "ReLU6", "LeakyReLU", "MaxPool1d", "MaxPool2d", "MaxPool3d",
                    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Dropout", "Sequential",
                    "PixelShuffle")
    other = _classes("PReLU", "Softmax", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "RNNCell",
                     "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM")
    return conv, norm, avg, adaptive, linear, conv | norm | avg | adaptive | linear | zero | other


def thop_adaptive_avg_pool(x: Shape, out: Shape) -> int:
    """thop's count_adap_avgpool in its own float64 arithmetic: int((prod(in_size / out_size)
    + 1) * out.numel()), the window taken as the ratio of sizes (in + out elements when the
    output size divides the input's)."""
    kernel = 1.0
    for i, o in zip(x[2:], out[2:]):
        kernel *= float(i) / float(o)
    return int((kernel + 1.0) * numel(out))


def _thop_parts(facts: Facts):
    conv, norm, avg, adaptive, linear, registered = _thop_types()
    for node in facts.nodes:
        info = facts.modules.get(node.module)
        cls = None if info is None else info.cls
        what = _what(facts, node)
        if cls in conv and node.op == CONV:
            x, w, _b, transposed, groups = _conv_parts(node)
            if transposed:
                amount = numel(node.out_shape) * (x[1] // groups) * numel(w[2:])
                yield Part("conv_transpose", amount, node.module, node.name, what,
                           departure="thop.transposed_per_output", executed=node.counts.get("macs", 0))
            else:
                yield Part("macs", node.counts.get("macs", 0), node.module, node.name, what)
        elif cls in linear and node.op in (ADDMM, MM):
            yield Part("macs", node.counts.get("macs", 0), node.module, node.name, what)
        elif cls in norm and node.op == BN:
            yield Part("norm", 2 * (2 if info.affine else 1) * node.counts.get("bn_scale_shift", 0), node.module,
                       node.name, what)
        elif cls in avg and node.op == AVG_POOL:
            yield Part("avg_pool", node.counts.get("pool_divides", 0), node.module, node.name, what)
        elif cls in adaptive and node.op in (ADAPTIVE,) + MEANS:
            yield Part("adaptive_avg_pool", thop_adaptive_avg_pool(node.shape(0), node.out_shape), node.module,
                       node.name, what)
        elif cls in registered or not _arithmetic(node):
            continue  # intended zero (ReLU, MaxPool2d, Dropout), or nothing computed
        elif info is not None and info.leaf:
            yield Part("missed_module", 0, node.module, node.name, what, departure="thop.missed_module",
                       executed=_arithmetic(node))
        elif node.op in POOLS + (CONV, ADDMM, MM):
            yield Part("functional", 0, node.module, node.name, node.op.split(".")[1],
                       departure="thop.functional", executed=_arithmetic(node))


THOP = Convention(
    "thop", "thop", "thop", "MACs",
    "conv and linear MACs + 4 per BatchNorm element + input and output elements of AdaptiveAvgPool2d "
    "+ output elements of AvgPool2d; ReLU, MaxPool and everything else 0",
    (Term("macs", "MACs of the exact types nn.Conv1d/2d/3d and nn.Linear: output elements × C_in/groups × kernel "
                  "elements, in_features × output elements; bias adds count 0",
          f"{TH}vision/basic_hooks.py: count_convNd -> vision/calc_func.py: calculate_conv2d_flops "
          "(`l_prod(output_size) * (in_c // g) * l_prod(kernel_size[2:])`); count_linear"),
     Term("norm", "4 per element of an affine BatchNorm (2 × 2: \"bn is by default fused in inference\"); "
                  "2 without affine",
          f"{TH}vision/basic_hooks.py: count_normalization (`flops = calculate_norm(x.numel())`, "
          "`flops *= 2` if affine; calc_func.py calculate_norm: `2 * input_size`)"),
     Term("adaptive_avg_pool", "(prod(in_size / out_size) + 1) per output element of nn.AdaptiveAvgPool2d, in "
                               "float64 and truncated: its input + output elements when the sizes divide",
          f"{TH}vision/basic_hooks.py: count_adap_avgpool; calc_func.py: calculate_adaptive_avg"),
     Term("avg_pool", "1 per output element of nn.AvgPool2d",
          f"{TH}vision/basic_hooks.py: count_avgpool; calc_func.py: calculate_avgpool"),
     Term("zero", "0 for nn.ReLU, ReLU6, LeakyReLU, MaxPool, Dropout (zero_ops, calculate_relu_flops: "
                  "\"x[x < 0] = 0\" is free); every op outside a module of a registered type (residual "
                  "adds, x.mean, F.*) is not seen",
          f"{TH}profile.py: register_hooks; dfs_count (only modules of a registered type count)"),
     Term("conv_transpose", "nn.ConvTranspose2d through the same count_convNd: output elements × C_in/groups × "
                            "kernel elements, as if each output were a full window",
          f"{TH}vision/basic_hooks.py: register_hooks[nn.ConvTranspose2d] = count_convNd",
          departure="thop.transposed_per_output"),
     Term("missed_module", "a leaf module of a type without a rule (nn.Hardswish, nn.SiLU, nn.Sigmoid, a "
                           "model's own activation, a subclass of nn.Conv2d) counts 0",
          f"{TH}profile.py: profile (`m_type in register_hooks`, exact type; report_missing: "
          "\"Cannot find rule for ... Treat it as zero Macs\")", departure="thop.missed_module"),
     Term("functional", "pooling (x.mean, F.adaptive_avg_pool2d, F.avg_pool2d), convolution or linear called "
                        "as a function counts 0, though the same op as a module counts",
          f"{TH}profile.py: profile (forward hooks on modules only)", departure="thop.functional")),
    _thop_parts)


# ----------------------------------------------------------------------------- ptflops, pytorch backend

PT = "ptflops/"

# the functions ptflops' pytorch backend patches (pytorch_engine.py patch_functional), counted
# 1 per input element (pytorch_ops.py FUNCTIONAL_MAPPING: _numel_functional_flops_hook)
PATCHED_FUNCTIONS = ("relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax",
                     "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
                     "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                     "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")


@functools.cache
def patched_functions() -> frozenset:
    """The torch_fn names of the functions ptflops patches: "function.relu" for F.relu (a
    Python function), "builtin_function_or_method.avg_pool2d" for F.avg_pool2d (a C
    builtin, torch._C._nn.avg_pool2d). Computed from torch.nn.functional itself, so that
    torch.relu ("builtin_function_or_method.relu", not patched) is told from F.relu; a
    builtin such as F.avg_pool1d is the same object as torch.avg_pool1d, whose calls ptflops
    does not patch but the capture cannot tell apart."""
    import torch.nn.functional as F

    return frozenset(f"{type(fn).__name__}.{fn.__name__}" for fn in
                     (getattr(F, name) for name in PATCHED_FUNCTIONS if hasattr(F, name)))


TENSOR_ELEMENTWISE = ("add", "mul")
TENSOR_MATMUL = ("matmul", "mm", "bmm")
TENSOR_ADDMM = ("addmm", "baddbmm")


@functools.cache
def _ptflops_types():
    conv = _classes("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    act = _classes("ReLU", "PReLU", "ELU", "LeakyReLU", "ReLU6", "GELU")
    pool = _classes("MaxPool1d", "AvgPool1d", "AvgPool2d", "MaxPool2d", "MaxPool3d", "AvgPool3d",
                    "AdaptiveMaxPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool2d", "AdaptiveAvgPool2d",
                    "AdaptiveMaxPool3d", "AdaptiveAvgPool3d")
    norm = _classes("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
                    "InstanceNorm3d", "GroupNorm", "LayerNorm")
    linear = _classes("Linear")
    other = _classes("Upsample", "RNN", "GRU", "LSTM", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention")
    return conv, act, pool, norm, linear, conv | act | pool | norm | linear | other


def _tensor_op(node: NodeFacts) -> str | None:
    """The ptflops-patched tensor op a node's call is, or None: torch.add / torch.mul / ...
    (builtin functions), and the methods x.add(y) / x.mul(y) / ... when called as methods.
    The captured graph records `x + y` and `x.add(y)` alike ("method_descriptor.add"), so a
    method counts as explicit when its source line spells ".add(" (a line that has both an
    explicit x.add(y) and a `+` of the same op would be counted twice)."""
    kind, _, name = node.fn_kind.partition(".")
    if name not in TENSOR_ELEMENTWISE + TENSOR_MATMUL + TENSOR_ADDMM:
        return None
    if kind == "builtin_function_or_method":
        return name
    if kind == "method_descriptor" and f".{name}(" in node.line:
        return name
    return None


def _ptflops_pytorch_parts(facts: Facts):
    conv, act, pool, norm, linear, hooked = _ptflops_types()
    firsts = _first_of_fn_calls(facts)
    patched = patched_functions()
    covered = set()      # nodes of a patched call
    for nodes in facts.fn_calls().values():
        if nodes[0].fn_kind in patched or _tensor_op(nodes[0]):
            covered.update(n.name for n in nodes)
    for node in facts.nodes:
        info = facts.modules.get(node.module)
        cls = None if info is None else info.cls
        what = _what(facts, node)
        # the module hooks (pytorch_ops.py MODULES_MAPPING), per call of a module of that exact type
        if cls in conv and node.op == CONV:
            yield Part("conv", node.counts.get("macs", 0) + node.counts.get("bias_adds", 0), node.module, node.name,
                       what)
        elif cls in linear and node.op in (ADDMM, MM):
            yield Part("linear", node.counts.get("macs", 0) + node.counts.get("bias_adds", 0), node.module,
                       node.name, what)
        elif cls in norm and node.op == BN:
            yield Part("norm", (2 if info.affine else 1) * node.counts.get("bn_scale_shift", 0), node.module,
                       node.name, what)
        elif cls in act and node.op in ACTIVATIONS:
            yield Part("activation", numel(node.out_shape), node.module, node.name, what)
        elif cls in pool and node.op in POOLS:
            yield Part("pool", numel(node.shape(0)), node.module, node.name, what)
        # the patched functions (patch_functional, patch_tensor_ops), once per call
        if node.name in firsts:
            nodes = firsts[node.name]
            double = cls in hooked and cls not in linear and cls not in conv
            departure = "ptflops.double_count" if double else None
            if node.fn_kind in patched:
                yield Part("functional", _fn_input_numel(nodes), node.module, node.name,
                           what if double else node.fn_kind.split(".")[1], departure=departure, functional=True)
            op = _tensor_op(node)
            if op in TENSOR_ELEMENTWISE:
                yield Part("tensor_op", numel(nodes[-1].out_shape), node.module, node.name, op, functional=True)
            elif op in TENSOR_MATMUL:
                yield Part("tensor_op", sum(n.counts.get("macs", 0) for n in nodes), node.module, node.name, op,
                           functional=True)
            elif op in TENSOR_ADDMM:
                bias = nodes[0].shape(0)
                yield Part("tensor_op", sum(n.counts.get("macs", 0) for n in nodes) + numel(bias), node.module,
                           node.name, op, functional=True)
        if (cls not in hooked and info is not None and info.leaf and node.name not in covered
                and _arithmetic(node, comparisons=True)):
            yield Part("missed_module", 0, node.module, node.name, what, departure="ptflops.missed_module",
                       executed=_arithmetic(node, comparisons=True))


def _ptflops_pytorch_combine(parts, facts: Facts):
    """get_flops_pytorch: the module hooks' sum divided by the batch (__batch_counter__, the
    root module's input length), then the patched functions' sum added undivided; int()."""
    modules = sum(p.amount for p in parts if not p.functional)
    functional = sum(p.amount for p in parts if p.functional)
    batch = max(facts.batch, 1)
    extra = []
    if batch > 1 and functional:
        calls = sum(1 for p in parts if p.functional and p.amount)
        extra.append(Finding("ptflops.batch", calls=calls, excess=functional - functional // batch,
                             what={f"patched calls, batch {batch}": calls}))
    return (modules + batch * functional) // batch, extra


PTFLOPS_PYTORCH = Convention(
    "ptflops_pytorch", "ptflops (pytorch)", "ptflops", "MACs",
    "per image: conv and linear MACs + bias adds + 2 per BatchNorm element + 1 per element of ReLU (twice: "
    "module and F.relu), ReLU6, pooling (twice) and F.relu6/F.silu calls",
    (Term("conv", "nn.Conv2d / ConvTranspose2d: MACs (transposed per input element) + bias adds",
          f"{PT}pytorch_ops.py: conv_flops_counter_hook (`overall_conv_flops + bias_flops`)"),
     Term("linear", "nn.Linear: MACs + bias adds",
          f"{PT}pytorch_ops.py: linear_flops_counter_hook (`(input_last_dim * output_last_dim + bias_flops)`)"),
     Term("norm", "2 per input element of an affine BatchNorm",
          f"{PT}pytorch_ops.py: bn_flops_counter_hook (`batch_flops *= 2` if affine)"),
     Term("activation", "1 per output element of nn.ReLU, ReLU6, ELU, LeakyReLU, PReLU, GELU (exact types)",
          f"{PT}pytorch_ops.py: relu_flops_counter_hook"),
     Term("pool", "1 per input element of nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d",
          f"{PT}pytorch_ops.py: pool_flops_counter_hook"),
     Term("functional", "1 per input element of every call of the patched F.relu, F.relu6, F.silu, F.gelu, "
                        "F.elu, F.prelu, F.softmax and F.*pool* (nn.SiLU counts through F.silu, a model's "
                        "Hardswish written with F.relu6 through F.relu6)",
          f"{PT}pytorch_engine.py: patch_functional; pytorch_ops.py: FUNCTIONAL_MAPPING, "
          "_numel_functional_flops_hook"),
     Term("tensor_op", "torch.add / torch.mul / x.add(y) / x.mul(y): output elements; torch.matmul / mm / bmm: "
                       "MACs; torch.addmm: MACs + bias elements (x + y and x * y are not patched)",
          f"{PT}pytorch_engine.py: patch_tensor_ops; pytorch_ops.py: TENSOR_OPS_MAPPING"),
     Term("batch", "the module hooks' sum is divided by the batch size (\"mean flops consumption per image\"), "
                   "the patched functions' sum is added undivided",
          f"{PT}pytorch_engine.py: get_flops_pytorch (`flops_count, params_count = "
          "flops_model.compute_average_flops_cost(); flops_count += sum(torch_functional_flops)`)",
          departure="ptflops.batch"),
     Term("double", "nn.ReLU and the pooling modules count twice: once by their module hook, once more through "
                    "the patched F.relu / F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d their forward calls",
          f"{PT}pytorch_engine.py: patch_functional (patched while the module hooks are on); "
          "torch/nn/modules/activation.py ReLU.forward (`F.relu(input, ...)`)", departure="ptflops.double_count"),
     Term("missed_module", "a leaf module neither hooked nor computed through a patched function counts 0: "
                           "nn.Hardswish, nn.Sigmoid, nn.Hardtanh, a subclass of nn.Conv2d",
          f"{PT}pytorch_engine.py: is_supported_instance (`type(module) in MODULES_MAPPING`; verbose: "
          "\"is treated as a zero-op\")", departure="ptflops.missed_module")),
    _ptflops_pytorch_parts, combine=_ptflops_pytorch_combine)


# ----------------------------------------------------------------------------- ptflops, aten backend


def _ptflops_aten_parts(facts: Facts):
    for node in facts.nodes:
        if node.op in (CONV, ADDMM):
            yield Part("macs_bias", node.counts.get("macs", 0) + node.counts.get("bias_adds", 0), node.module,
                       node.name, _what(facts, node))
        elif node.op == MM:
            yield Part("macs_bias", node.counts.get("macs", 0), node.module, node.name, _what(facts, node))


PTFLOPS_ATEN = Convention(
    "ptflops_aten", "ptflops (aten)", "ptflops", "MACs",
    "convolution and matrix-product MACs + their bias adds",
    (Term("macs_bias", "aten.convolution (transposed per input element) and aten.addmm / mm: MACs, plus the "
                       "bias adds of a convolution with bias and of addmm; nothing else",
          f"{PT}aten_ops.py: conv_flop_count (`if bias: flop += batch_size * out_shape[1] * prod(out_shape[2:])`), "
          "addmm_flop, matmul_flop; ATEN_OPS_MAPPING"),),
    _ptflops_aten_parts, granularity="top")


# ----------------------------------------------------------------------------- torchinfo

TI = "torchinfo/"


def _torchinfo_parts(facts: Facts):
    for call, nodes in facts.calls().items():
        info = facts.modules.get(nodes[0].module)
        if info is None or not info.leaf or not info.params:
            continue
        out = next((n.out_shape for n in reversed(nodes) if n.out_shape is not None), None)
        if out is None:
            continue
        conv = next((n for n in nodes if n.op == CONV), None)
        matmul = next((n for n in nodes if n.op in (ADDMM, MM)), None)
        for name, shape in info.params.items():
            if name in ("weight", "bias"):
                if "Conv" in info.class_name:
                    amount = numel(shape) * out[0] * numel(out[2:])
                    if conv is not None and name == "weight" and not conv.args[6]:
                        term, amount = "conv", conv.counts.get("macs", 0)
                    elif conv is not None and name == "bias":
                        term, amount = "conv", conv.counts.get("bias_adds", 0)
                    elif conv is not None and name == "weight":
                        yield Part("conv_transpose", amount, info.path, nodes[0].name, info.class_name,
                                   departure="torchinfo.transposed_per_output", executed=conv.counts.get("macs", 0))
                        continue
                    else:
                        term = "conv"
                elif matmul is not None and len(out) == 2:
                    term = "linear"
                    amount = matmul.counts.get("macs", 0) if name == "weight" else matmul.counts.get("bias_adds", 0)
                else:
                    term, amount = "per_sample", out[0] * numel(shape)
            elif "weight" in name or "bias" in name:
                term, amount = "per_sample", numel(out[:2]) * numel(shape)
            else:
                continue
            yield Part(term, amount, info.path, nodes[0].name, info.class_name)


TORCHINFO = Convention(
    "torchinfo", "torchinfo", "torchinfo", "MACs",
    "per leaf layer with weights: conv and linear MACs + bias adds; BatchNorm 2·C per sample",
    (Term("conv", "a leaf layer whose class name contains \"Conv\": each of its weight and bias tensors' elements "
                  "× batch × output positions (= the MACs of a convolution, and its bias adds)",
          f"{TI}layer_info.py: LayerInfo.calculate_macs (`cur_params * prod(self.output_size[:1] + "
          "self.output_size[2:])`)"),
     Term("linear", "nn.Linear: weight and bias elements × output_size[0] (= MACs + bias adds for a 2-d input)",
          f"{TI}layer_info.py: LayerInfo.calculate_macs (`self.output_size[0] * cur_params`)"),
     Term("per_sample", "any other leaf layer with parameters, BatchNorm2d included: its weight and bias elements × "
                        "output_size[0], i.e. 2·C per sample for BatchNorm, whatever H×W; layers without "
                        "parameters (activations, pooling) and ops outside leaf layers count 0",
          f"{TI}layer_info.py: LayerInfo.calculate_macs; model_statistics.py: total_mult_adds (leaf layers only)"),
     Term("conv_transpose", "nn.ConvTranspose2d through the same rule: weight elements × batch × output positions, "
                            "as if each output were a full window",
          f"{TI}layer_info.py: LayerInfo.calculate_macs (\"Conv\" in the class name)",
          departure="torchinfo.transposed_per_output")),
    _torchinfo_parts)


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (FLOP_COUNTER, FVCORE, THOP, PTFLOPS_PYTORCH, PTFLOPS_ATEN,
                                                          TORCHINFO)}
"""The counters, in the order the command prints them."""
