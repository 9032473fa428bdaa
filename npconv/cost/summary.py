"""Per-layer cost of a model: what npconv's kernels executed, held against closed forms.

    s = npconv.summary.summary(npconv.models.MobileNetV1(), (1, 3, 224, 224))
    s.total["macs"], s.total["params"]      # 568,740,352 MACs, 4,231,976 parameters
    s.ok                                    # every counted figure equals its formula
    print(s.to_markdown())

One forward pass of zeros (counts do not depend on values) runs inside `npconv.count()`
on the reference kernels, with a forward hook on every module for the duration recording
its input and output shapes. Each row is one module that ran: every leaf layer, plus any
container whose own forward computed something (a residual add, MobileNetV2's functional
pooling). For each row:

* params: the module's own parameter elements, weights / bias / BatchNorm (weight + bias)
  apart; BatchNorm running statistics are buffers, not parameters.
* counted: MACs, padding MACs, bias adds and the other operations by kind, as the kernels'
  loops counted them (`npconv.counting`).
* formula: the same figures from closed forms (`npconv.formulas` and the per-layer rules
  below), from the layer's arguments and its recorded input shape.
  Any difference is a formula mismatch: `Summary.ok` is False and it is listed loudly.
* bytes: the least a layer must move: its input read once, its parameters (and BatchNorm's
  running statistics) read once, its output written once, at the dtype's size. A reshape
  (Flatten) or an eval-mode Dropout moves nothing. A residual add reads two arrays and
  writes one.
* intensity: MACs per byte (for layers with MACs), the x-axis of a roofline plot.
* with `torch_model` (the PyTorch twin, same module tree): the module's own figure from
  `torch.utils.flop_counter.FlopCounterMode` divided by 2 (it reports 2 * MACs), and the
  twin's own `sum(p.numel())`; every disagreement is listed with its factor.

Formulas for the non-MAC kinds (one per element unless said):
  BatchNorm2d (eval)   bn_scale_shift = N*C*H*W
  ReLU                 activation_compares = numel;  ReLU6: 2 * numel (max with 0, min with 6)
  AdaptiveAvgPool2d    pool_adds = N*C*sum over output cells of the window size,
                       pool_divides = N*C*OH*OW
  Linear               macs = rows*out*in, bias_adds = rows*out
  ChannelShuffle       shuffle_copies = numel
  residual add         residual_adds = numel of the block's output
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

import numpy as np

from .. import counting
from . import formulas
from ..geometry import conv2d_geometry
from ..nn.hooks import hooked
from ..functional.conv_transpose import conv_transpose2d_geometry

__all__ = ["CONVENTIONS", "LayerRow", "Summary", "flop_counter_by_module", "summary"]

CONVENTIONS = {
    "macs": "multiply-accumulates of Conv2d, ConvTranspose2d and Linear as npconv's reference kernels "
            "execute them: every tap of a dense kernel over the padded input (padding taps included; "
            "'padding_macs' says how many), transposed convolutions counted per scatter "
            "(N*C_in*H*W*C_out/g*kH*kW, cropped ones included; 'inside_macs' apart)",
    "flops": "2 * MACs",
    "not_in_macs": "bias adds, BatchNorm scale/shift, activation comparisons, pooling adds and divides, "
                   "residual adds: listed apart by kind",
    "params": "every parameter element: convolution and linear weights, biases, BatchNorm weight and bias "
              "(= sum(p.numel()) in PyTorch); BatchNorm running statistics are buffers and not counted",
    "bytes": "minimum bytes moved per layer: input and parameters (and BatchNorm running statistics) read "
             "once, output written once, at the dtype's size",
    "intensity": "MACs per byte moved",
    "flop_counter": "torch.utils.flop_counter.FlopCounterMode on the PyTorch twin, divided by 2: it counts "
                    "2 * MACs of convolutions and matrix products and ignores bias adds and every other op",
}

_OTHER_LABELS = {
    "bias_adds": "bias",
    "bn_scale_shift": "bn",
    "activation_compares": "cmp",
    "pool_adds": "pool+",
    "pool_divides": "pool/",
    "residual_adds": "res+",
    "inside_macs": "inside",
    "shuffle_copies": "shuffle",
    "dropout_multiplies": "drop",
}


@dataclass
class LayerRow:
    """One module's figures (module docstring). Shapes are tuples; counts are ints."""

    name: str
    type: str
    input_shape: tuple | None
    output_shape: tuple | None
    weight_params: int = 0
    bias_params: int = 0
    bn_params: int = 0
    counted: dict = field(default_factory=dict)   # kind -> count (macs, padding_macs, bias_adds, other kinds)
    formula: dict | None = None                   # kind -> closed form; None: no formula for this row
    bytes: int = 0
    flop_counter_macs: int | None = None
    torch_params: int | None = None
    mismatches: list = field(default_factory=list)      # counted != formula, one line each
    disagreements: list = field(default_factory=list)   # FlopCounterMode / torch numel, one line each

    @property
    def params(self) -> int:
        return self.weight_params + self.bias_params + self.bn_params

    @property
    def macs(self) -> int:
        return self.counted.get("macs", 0)

    @property
    def intensity(self) -> float | None:
        return self.macs / self.bytes if self.macs and self.bytes else None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "params": {"weight": self.weight_params, "bias": self.bias_params, "bn": self.bn_params,
                       "total": self.params},
            "macs": self.macs,
            "formula_macs": None if self.formula is None else self.formula.get("macs", 0),
            "padding_macs": self.counted.get("padding_macs", 0),
            "counted": dict(self.counted),
            "formula": None if self.formula is None else dict(self.formula),
            "bytes": self.bytes,
            "intensity": self.intensity,
            "flop_counter_macs": self.flop_counter_macs,
            "torch_params": self.torch_params,
            "mismatches": list(self.mismatches),
            "disagreements": list(self.disagreements),
        }


@dataclass
class Summary:
    """Rows, totals and verdicts of `summary()`."""

    model: str
    input_shape: tuple
    dtype: str
    rows: list
    total: dict
    unchecked: list          # "name: kind" counted where no formula is known (reported, not failed)
    flop_counter: bool       # whether the FlopCounterMode column was filled
    output: object = None    # the model's output on the input it ran on

    @property
    def mismatches(self) -> list:
        return [f"{row.name or '(model)'}: {m}" for row in self.rows for m in row.mismatches]

    @property
    def disagreements(self) -> list:
        return [f"{row.name or '(model)'}: {d}" for row in self.rows for d in row.disagreements]

    @property
    def ok(self) -> bool:
        """Every counted figure equals its formula, and (with a twin) FlopCounterMode / 2 and the
        twin's parameter counts equal npconv's."""
        return not self.mismatches and not self.disagreements

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "conventions": dict(CONVENTIONS),
            "total": dict(self.total),
            "layers": [row.as_dict() for row in self.rows],
            "formula_mismatches": self.mismatches,
            "flop_counter_disagreements": self.disagreements,
            "unchecked": list(self.unchecked),
            "ok": self.ok,
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.as_dict(), **kwargs)

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table with every column, then the totals and conventions."""
        fc = self.flop_counter
        head = ["layer", "type", "output", "weights", "bias", "BN", "MACs", "formula MACs", "padding MACs",
                "other ops", "bytes", "MAC/B"] + (["FlopCounterMode/2"] if fc else [])
        lines = [f"**{self.model}**, input {tuple(self.input_shape)}, {self.dtype}", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            formula = "—" if row.formula is None else f"{row.formula.get('macs', 0):,}"
            cells = [f"`{row.name or '(model)'}`", row.type, _shape(row.output_shape), f"{row.weight_params:,}",
                     f"{row.bias_params:,}", f"{row.bn_params:,}", f"{row.macs:,}", formula,
                     f"{row.counted.get('padding_macs', 0):,}", _other_ops(row.counted) or "",
                     f"{row.bytes:,}", _intensity(row.intensity)]
            if fc:
                cells.append("—" if row.flop_counter_macs is None else f"{row.flop_counter_macs:,}")
            if row.mismatches or row.disagreements:
                cells[0] += " **MISMATCH**"
            lines.append("| " + " | ".join(cells) + " |")
        t = self.total
        lines += ["", f"Total: {t['params']:,} parameters ({t['weight_params']:,} weights, {t['bias_params']:,} "
                      f"bias, {t['bn_params']:,} BatchNorm), {t['macs']:,} MACs = {t['flops']:,} FLOPs, "
                      f"{t['padding_macs']:,} of the MACs on padding, {t['bytes']:,} bytes moved at least.",
                  ""]
        if self.mismatches:
            lines += ["**Formula mismatches:**", ""] + [f"- {m}" for m in self.mismatches] + [""]
        if self.disagreements:
            lines += ["**Disagreements with PyTorch:**", ""] + [f"- {d}" for d in self.disagreements] + [""]
        lines += ["Conventions:", ""] + [f"- {key}: {text}" for key, text in CONVENTIONS.items()]
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- formatting


def _shape(shape) -> str:
    return "" if not shape else "×".join(str(s) for s in shape)


def _compact(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def _intensity(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _other_ops(counted: dict) -> str:
    parts = []
    for kind, n in counted.items():
        if kind in ("macs", "padding_macs", "calls") or not n:
            continue
        parts.append(f"{_OTHER_LABELS.get(kind, kind)} {_compact(n)}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- recording the forward


@contextlib.contextmanager
def _recording(model):
    """Forward hooks on every module for the duration, recording (input shape, output
    shape) of each call by module identity."""
    calls: dict[int, list] = {}

    def record(name, module, args, output):
        first = args[0] if args else None
        calls.setdefault(id(module), []).append(
            (tuple(first.shape) if hasattr(first, "shape") else None,
             tuple(output.shape) if hasattr(output, "shape") else None))

    with hooked(model, post=record):
        yield calls


def _engine_reference():
    """Run on the reference kernels (the counted loops a reader reads), whatever the
    current engine, where the engine switch exists."""
    try:
        from .. import engine
    except ImportError:  # pragma: no cover - before the fast tier landed
        return contextlib.nullcontext()
    return engine.use("reference") if hasattr(engine, "use") else contextlib.nullcontext()


# ----------------------------------------------------------------------------- formulas per layer


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def _leaf_formula(module, kind: str, input_shape, output_shape) -> dict | None:
    """Closed forms for one call of a leaf layer (module docstring), or None when unknown."""
    if kind == "Conv2d":
        g = conv2d_geometry(input_shape, module.weight.shape, None if module.bias is None else module.bias.shape,
                            module.stride, module.padding, module.dilation, module.groups, module.padding_mode)
        return {
            "macs": formulas.conv2d_macs(g.batch, g.in_channels, g.out_channels, (g.out_h, g.out_w),
                                         (g.kernel_h, g.kernel_w), g.groups),
            "padding_macs": formulas.conv2d_padding_macs(g),
            "bias_adds": formulas.conv2d_bias_adds(g.batch, g.out_channels, (g.out_h, g.out_w), g.has_bias),
        }
    if kind == "ConvTranspose2d":
        g = conv_transpose2d_geometry(input_shape, module.weight.shape,
                                      None if module.bias is None else module.bias.shape, module.stride,
                                      module.padding, module.output_padding, module.groups, module.dilation)
        batch = 1 if len(input_shape) == 3 else input_shape[0]
        in_channels, h, w = input_shape[-3:]
        out_channels, oh, ow = output_shape[-3:]
        return {
            "macs": formulas.conv_transpose2d_macs(batch, in_channels, out_channels, (h, w), module.kernel_size,
                                                   module.groups),
            "inside_macs": formulas.conv_transpose2d_inside_macs(g),
            "bias_adds": batch * out_channels * oh * ow if module.bias is not None else 0,
        }
    if kind == "Linear":
        rows = _numel(input_shape[:-1])
        return {"macs": rows * module.out_features * module.in_features,
                "bias_adds": rows * module.out_features if module.bias is not None else 0}
    if kind == "BatchNorm2d":  # summary() runs in eval mode: running statistics, no batch statistics
        return {"bn_scale_shift": _numel(output_shape)}
    if kind == "ReLU":
        return {"activation_compares": _numel(output_shape)}
    if kind == "ReLU6":
        return {"activation_compares": 2 * _numel(output_shape)}
    if kind == "AdaptiveAvgPool2d":
        return _pool_formula(input_shape, output_shape)
    if kind == "ChannelShuffle":
        return {"shuffle_copies": _numel(output_shape)}
    if kind in ("Flatten", "Identity", "Dropout"):  # Dropout in eval mode is the identity
        return {}
    return None


def _pool_formula(input_shape, output_shape) -> dict:
    planes = _numel(input_shape[:-2])
    return {"pool_adds": formulas.adaptive_avg_pool2d_adds(1, planes, input_shape[-2:], output_shape[-2:]),
            "pool_divides": formulas.adaptive_avg_pool2d_divides(1, planes, output_shape[-2:])}


def _container_formula(module, calls: dict) -> dict | None:
    """What a container's own forward computes, from the container itself: its
    `own_cost(input_shape, output_shape, child_shapes)` (a residual add, a global pool, a
    concatenation), child_shapes mapping each child's name to its first call's (input,
    output) shapes. A container without `own_cost` computes nothing itself ({}); a container
    with counts of its own but no `own_cost` has no formula (None: reported as unchecked)."""
    record = calls.get(id(module))
    if record is None:
        return None
    if not hasattr(module, "own_cost"):
        return None
    children = {name: calls[id(child)][0] for name, child in module.named_children() if id(child) in calls}
    return module.own_cost(*record[0], children)


# bytes a container's own op moves per counted operation: reads and writes (a residual add
# reads two values and writes one; a pool reads each value once and writes each mean once;
# a copy reads and writes)
_BYTES_PER_OP = {"residual_adds": 3, "pool_adds": 1, "pool_divides": 1, "copies": 2, "shuffle_copies": 2}


def _container_bytes(module, counted: dict, calls: dict, itemsize: int) -> int:
    return itemsize * sum(n * _BYTES_PER_OP.get(kind, 0) for kind, n in counted.items())


def _leaf_bytes(module, kind: str, input_shape, output_shape, itemsize: int) -> int:
    if kind in ("Flatten", "Identity", "Dropout"):  # a reshape, or (eval mode) the input itself
        return 0
    state = sum(a.size for a in module.__dict__["_parameters"].values() if a is not None)
    if kind == "BatchNorm2d":
        state += sum(a.size for a in module.__dict__["_buffers"].values() if a is not None and a.ndim == 1)
    return (_numel(input_shape) + state + _numel(output_shape)) * itemsize


def _own_params(module, kind: str) -> tuple[int, int, int]:
    """(weights, bias, BatchNorm) elements among the module's own parameters."""
    params = module.__dict__["_parameters"]
    if kind == "BatchNorm2d":
        return 0, 0, sum(a.size for a in params.values() if a is not None)
    bias = params.get("bias")
    bias = 0 if bias is None else bias.size
    return sum(a.size for name, a in params.items() if a is not None and name != "bias"), bias, 0


def _compare(counted: dict, formula: dict) -> list[str]:
    lines = []
    for kind in sorted(set(counted) | set(formula)):
        if kind == "calls":
            continue
        c, f = counted.get(kind, 0), formula.get(kind, 0)
        if c != f:
            lines.append(f"{kind} counted {c:,} != formula {f:,}")
    return lines


# ----------------------------------------------------------------------------- FlopCounterMode


def flop_counter_by_module(torch_model, input_shape, dtype=None) -> dict[str, int]:
    """FlopCounterMode's total FLOPs per module of `torch_model` on a zeros input, keyed by
    qualified name ("" for the root, "features.3.dw_conv.0", ...), children included.

    FlopCounterMode keys its per-module table by the module path prefixed with the root's
    class name ("TinyMobileNet.features.0"), the root itself by its class name, plus
    "Global" (checked on torch 2.13); the prefix is stripped here."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    root = type(torch_model).__name__
    dtype = dtype or next((p.dtype for p in torch_model.parameters()), torch.float32)  # float32 without parameters
    x = torch.zeros(tuple(input_shape), dtype=dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        torch_model(x)
    flops: dict[str, int] = {}
    for key, by_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        if key == root:
            name = ""
        elif key.startswith(root + "."):
            name = key[len(root) + 1:]
        else:
            continue
        flops[name] = int(sum(by_op.values()))
    flops.setdefault("", int(counter.get_total_flops()))
    return flops


def _factor(ours: int, theirs: int) -> str:
    if ours == 0 or theirs == 0:
        return "one side is 0"
    ratio = theirs / ours
    return f"factor {ratio:.6g}"


# ----------------------------------------------------------------------------- summary


def summary(model, input_shape=None, *, dtype=np.float32, input=None, torch_model=None,
            name: str | None = None) -> Summary:
    """Per-layer cost of `model` (an npconv Module) on an input of `input_shape` (module
    docstring). The model runs once, in eval mode (restored afterwards), on the reference
    kernels, on zeros of `dtype` -- or on `input` when given (its shape and dtype then; the
    output is kept in `Summary.output`). `torch_model`: the PyTorch twin with the same
    module tree, for the FlopCounterMode and parameter columns (torch imported only then).

    Raises what the model raises for a bad input (e.g. a ValueError naming the layer)."""
    if input is not None:
        input = np.asarray(input)
        input_shape, dtype = input.shape, input.dtype
    if input_shape is None:
        raise TypeError("summary(): give input_shape or input")
    dtype = np.dtype(dtype)
    input_shape = tuple(int(s) for s in input_shape)
    named = list(model.named_modules())
    modes = [(module, module.training) for _, module in named]
    model.eval()
    try:
        with _recording(model) as calls, _engine_reference(), counting.count() as tally:
            output = model(np.zeros(input_shape, dtype=dtype) if input is None else input)
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)

    rows: list[LayerRow] = []
    unchecked: list[str] = []
    for qualified, module in named:
        kind = type(module).__name__
        leaf = not any(True for _ in module.children())
        record = calls.get(id(module))
        counts = tally.by_layer.get(qualified)
        counted = {} if counts is None else {k: v for k, v in counts.as_dict().items() if k != "calls"}
        counted = {k: v for k, v in counted.items() if v}
        if record is None:
            continue  # not called (e.g. an unused branch)
        if not leaf and not counted:
            continue  # a container that only called its children
        input_shape_m, output_shape_m = record[0]
        if leaf:
            formula = None
            if len(record) == 1:
                formula = _leaf_formula(module, kind, input_shape_m, output_shape_m)
            weights, bias, bn = _own_params(module, kind)
            nbytes = sum(_leaf_bytes(module, kind, i, o, dtype.itemsize) for i, o in record)
        else:
            formula = _container_formula(module, calls)
            weights, bias, bn = _own_params(module, kind)
            nbytes = _container_bytes(module, counted, calls, dtype.itemsize)
        row = LayerRow(qualified, kind, input_shape_m, output_shape_m, weights, bias, bn, counted, formula, nbytes)
        if formula is None:
            unchecked += [f"{qualified or '(model)'}: {k}" for k in counted]
        else:
            row.mismatches = _compare(counted, {k: v for k, v in formula.items() if v or k in counted})
        rows.append(row)

    flop_counter = torch_model is not None
    total_fc = None
    torch_total_params = None
    if flop_counter:
        total_fc, torch_total_params = _add_torch_columns(rows, torch_model, input_shape,
                                                          int(sum(p.size for p in model.parameters())))

    total_params = int(sum(p.size for p in model.parameters()))
    total = _totals(rows, tally, total_params, total_fc, torch_total_params)
    rows_params = total["weight_params"] + total["bias_params"] + total["bn_params"]
    result = Summary(name or type(model).__name__, input_shape, dtype.name, rows, total, unchecked, flop_counter,
                     output)
    if rows_params != total_params:  # a parameter outside every row (a module that never ran)
        result.rows.append(LayerRow("(not run)", "parameters of modules that did not run", None, None,
                                    weight_params=total_params - rows_params))
    return result


def _totals(rows, tally, params: int, flop_counter_macs, torch_params) -> dict:
    """The whole model's figures: the rows' parameters and bytes summed, the tally's counts."""
    return {
        "params": params,
        "weight_params": sum(r.weight_params for r in rows),
        "bias_params": sum(r.bias_params for r in rows),
        "bn_params": sum(r.bn_params for r in rows),
        "macs": int(tally.macs),
        "flops": 2 * int(tally.macs),
        "padding_macs": int(tally.padding_macs),
        "bias_adds": int(tally.bias_adds),
        "other": {k: int(v) for k, v in tally.other.items() if v},
        "bytes": sum(r.bytes for r in rows),
        "flop_counter_macs": flop_counter_macs,
        "torch_params": torch_params,
    }


def _flop_counter_total(rows, flops: dict) -> int:
    """FlopCounterMode's whole-model figure / 2; a "(total)" row is added to `rows` when it
    differs from the rows' counted MACs."""
    total_fc = flops.get("", 0) // 2
    counted = sum(r.macs for r in rows)
    if total_fc != counted:
        rows.append(LayerRow("(total)", "FlopCounterMode total", None, None, flop_counter_macs=total_fc,
                             disagreements=[f"FlopCounterMode/2 total {total_fc:,} != counted {counted:,} "
                                            f"({_factor(counted, total_fc)})"]))
    return total_fc


def _add_torch_columns(rows, torch_model, input_shape, params: int, flops: dict | None = None) -> tuple[int, int]:
    """Fill flop_counter_macs, torch_params and disagreements row by row from the PyTorch
    model (the twin of an npconv model, or the model a graph was captured from), whose
    module names are the rows' names; `params` is npconv's total. FlopCounterMode's figure
    for a module includes its children, so a row gets its module's figure less its
    children's. `flops`: flop_counter_by_module's result, when the caller ran it already.
    Returns (FlopCounterMode total / 2, the PyTorch model's sum(numel))."""
    if flops is None:
        flops = flop_counter_by_module(torch_model, input_shape)
    torch_modules = dict(torch_model.named_modules())
    for row in rows:
        module = torch_modules.get(row.name)
        if module is None:
            row.disagreements.append("no module of this name in the PyTorch model")
            continue
        children = [f"{row.name}.{c}" if row.name else c for c, _ in module.named_children()]
        own_flops = flops.get(row.name, 0) - sum(flops.get(c, 0) for c in children)
        if own_flops % 2:
            row.disagreements.append(f"FlopCounterMode reports an odd {own_flops:,} FLOPs")
        row.flop_counter_macs = own_flops // 2
        if row.flop_counter_macs != row.macs:
            row.disagreements.append(
                f"FlopCounterMode/2 = {row.flop_counter_macs:,} != counted {row.macs:,} MACs "
                f"({_factor(row.macs, row.flop_counter_macs)})")
        row.torch_params = int(sum(p.numel() for p in module.parameters(recurse=False)))
        if row.torch_params != row.params:
            row.disagreements.append(f"the PyTorch model has {row.torch_params:,} parameters here, "
                                     f"npconv {row.params:,}")
    total_fc = _flop_counter_total(rows, flops)
    torch_total = int(sum(p.numel() for p in torch_model.parameters()))
    if torch_total != params:
        rows.append(LayerRow("(total)", "parameters", None, None, torch_params=torch_total,
                             disagreements=[f"sum(numel) of the PyTorch model {torch_total:,} != npconv's "
                                            f"{params:,}"]))
    return total_fc, torch_total


# ----------------------------------------------------------------------------- captured graphs


def _node_bytes(spec, args, out) -> int:
    """Least bytes a node moves: its array arguments read once, its output written once;
    nothing for an op that only re-indexes (views count nothing)."""
    if spec.view:
        return 0
    arrays = [a for a in _flat(args) if isinstance(a, np.ndarray)] + [o for o in _flat(out) if isinstance(o, np.ndarray)]
    return int(sum(a.nbytes for a in arrays))


def _flat(value):
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _flat(v)
    else:
        yield value


def graph_summary(graph, x, *, torch_model=None, name: str | None = None, flops: dict | None = None,
                  engine: str = "reference") -> Summary:
    """Per-module cost of a captured graph (npconv.capture) on input `x`: one counted run on
    `engine`'s kernels (the reference by default; the fast kernels count in their own loops,
    tested equal to the reference's), one row per module that a node or a parameter belongs to, with
    its own counts (its nodes'), the closed forms of npconv.graph.ops summed over its nodes,
    its own parameters, and (torch_model given) FlopCounterMode/2 and sum(numel) per module
    and in total (`flops`: flop_counter_by_module(torch_model, x.shape), if already run)."""
    from ..graph.graph import resolve
    from ..graph.ops import OPS

    x = np.asarray(x)
    trace: dict = {}
    with counting.count() as tally:
        output = graph.run(x, trace=trace, engine=engine)
    env = graph.environment((x,))
    env.update(trace)

    order = list(dict.fromkeys([node.module for node in graph.nodes]
                               + [graph.fqn[p].rpartition(".")[0] for p in graph.parameters]))
    rows = {m: LayerRow(m, graph.modules.get(m, ""), None, None, formula={}) for m in order}
    for node in graph.nodes:
        spec = OPS[node.op]
        args, kwargs, out = resolve(node.args, env), resolve(node.kwargs, env), env[node.name]
        row = rows[node.module]
        for kind, n in spec.formula(out, *args, **kwargs).items():
            row.formula[kind] = row.formula.get(kind, 0) + int(n)
        row.bytes += _node_bytes(spec, args, out)
        first = next((a for a in _flat(args) if isinstance(a, np.ndarray)), None)
        if row.input_shape is None and first is not None:
            row.input_shape = tuple(first.shape)
        if isinstance(out, np.ndarray):
            row.output_shape = tuple(out.shape)
    for param, array in graph.parameters.items():
        module, _, attribute = graph.fqn[param].rpartition(".")
        row = rows[module]
        if "BatchNorm" in row.type:
            row.bn_params += array.size
        elif attribute == "bias":
            row.bias_params += array.size
        else:
            row.weight_params += array.size
    for row in rows.values():
        counts = tally.by_layer.get(row.name)
        counted = {} if counts is None else {k: v for k, v in counts.as_dict().items() if k != "calls" and v}
        row.counted = counted
        row.mismatches = _compare(counted, {k: v for k, v in row.formula.items() if v or k in counted})
    rows = list(rows.values())

    total_fc = torch_total = None
    if torch_model is not None:
        total_fc, torch_total = _add_torch_columns(rows, torch_model, x.shape, graph.param_count, flops)
    total = _totals(rows, tally, graph.param_count, total_fc, torch_total)
    return Summary(name or graph.name, tuple(x.shape), x.dtype.name, rows, total, [], torch_model is not None,
                   output)
