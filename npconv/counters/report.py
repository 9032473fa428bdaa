"""Predicted beside reported, per counter: `explain` (a forward pass) and
`explain_training_step` (FlopCounterMode over a training step).

    report = explain(torch_model, x)               # captures, counts, predicts, runs the counters
    for row in report.rows:
        row.label, row.predicted, row.reported, row.equal, row.differences, row.findings

`row.differences` names the first layers where the counter's own per-module figures differ
from the prediction: the modules, in execution order, whose figure differs while none of
their children's does (for ptflops' aten backend, which reports only the model's children,
at that granularity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conventions import CONVENTIONS, Prediction
from .facts import Facts, node_facts
from .installed import Reported, _inclusive, installed, reported as run_reporter

__all__ = ["CounterRow", "CountersReport", "compare_modules", "counters_grid", "counters_markdown", "counters_notes",
           "explain",
           "explain_training_step", "predict", "training_step_prediction"]

MAX_DIFFERENCES = 3


@dataclass
class CounterRow:
    """One counter on one model: npconv's prediction from its convention, the counter's own
    figure (None when not installed), where they differ, and its departures as found."""

    name: str
    label: str
    unit: str
    predicted: int
    reported: int | float | None
    differences: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    error: str | None = None
    by_term: dict = field(default_factory=dict)     # the prediction per rule of the convention

    @property
    def equal(self) -> bool | None:
        if self.reported is None:
            return None
        return self.predicted == self.reported and not self.differences

    def as_dict(self) -> dict:
        return {"predicted": self.predicted, "reported": self.reported, "equal": self.equal, "unit": self.unit,
                "label": self.label, "first_differences": list(self.differences),
                "departures": [f.as_dict() | {"text": f.describe()} for f in self.findings],
                "predicted_by_rule": dict(self.by_term),
                **({"error": self.error} if self.error else {})}


@dataclass
class CountersReport:
    """Every counter on one model (module docstring)."""

    model: str
    input_shape: tuple
    step: str                       # "forward" or "training step"
    rows: list

    @property
    def ok(self) -> bool:
        """Every installed counter reported exactly what npconv predicts."""
        return all(row.equal is not False for row in self.rows)

    @property
    def mismatches(self) -> list:
        return [row for row in self.rows if row.equal is False]

    def as_dict(self) -> dict:
        return {row.name: row.as_dict() for row in self.rows}


def predict(facts: Facts, names=None) -> dict:
    """name -> Prediction for each convention (all of CONVENTIONS by default)."""
    return {name: CONVENTIONS[name].predict(facts) for name in (names or CONVENTIONS)}


def compare_modules(own: dict, reported: Reported, order: list, granularity: str = "module") -> list[str]:
    """The first layers where `reported.by_module` differs from the prediction's own amounts
    (module docstring); each "path: predicted P, reported R"."""
    predicted = _inclusive(own, {})
    if granularity == "top":
        paths = [p for p in reported.by_module if "." not in p]
    else:
        paths = list(dict.fromkeys(list(reported.by_module) + list(predicted)))
    differ = {p for p in paths if predicted.get(p, 0) != reported.by_module.get(p, 0)}
    deepest = [p for p in differ if not any(q != p and (p == "" or q.startswith(p + ".")) for q in differ)]
    rank = {path: i for i, path in enumerate(order)}
    deepest.sort(key=lambda p: (rank.get(p, len(rank)), p))
    return [f"{p or '(model)'}: predicted {predicted.get(p, 0):,}, reported {_fmt(reported.by_module.get(p, 0))}"
            for p in deepest[:MAX_DIFFERENCES]]


def _fmt(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


def _row(prediction: Prediction, result: Reported | None, order: list, error: str | None = None) -> CounterRow:
    convention = prediction.convention
    row = CounterRow(convention.name, convention.label, convention.unit, prediction.total,
                     None if result is None else result.total, findings=prediction.findings(), error=error,
                     by_term=dict(prediction.by_term))
    if result is not None:
        row.differences = compare_modules(prediction.own, result, order, convention.granularity)
        if not row.differences and prediction.total != result.total:
            row.differences = [f"(total): predicted {prediction.total:,}, reported {_fmt(result.total)}"]
    return row


def explain(torch_model, x, *, graph=None, counters=None, run_counters: bool = True, name: str | None = None,
            facts: Facts | None = None) -> CountersReport:
    """Each counter's convention applied to what npconv counted on `torch_model` (eval mode)
    for input `x` (a NumPy array; its shape is what matters), beside what the counter itself
    reports when installed (run_counters=False: predictions only). `graph`: the model's
    npconv.capture on x, if already captured; `counters`: names from CONVENTIONS."""
    from ..graph import capture

    x = np.asarray(x)
    torch_model.eval()
    if facts is None:
        if graph is None:
            graph = capture(torch_model, x)
        facts = node_facts(graph, x, torch_model)
    order = facts.module_order()
    rows = []
    for key, prediction in predict(facts, counters).items():
        result, error = None, None
        if run_counters and installed(prediction.convention.package):
            try:
                result = run_reporter(key, torch_model, x)
            except Exception as exc:  # noqa: BLE001 - a counter failing on a model is reported, not fatal
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        rows.append(_row(prediction, result, order, error))
    return CountersReport(name or type(torch_model).__name__, tuple(x.shape), "forward", rows)


# ----------------------------------------------------------------------------- a training step


def training_step_prediction(npconv_model, input_shape, *, seed: int = 0):
    """FlopCounterMode's figure for a training step, predicted from the MACs npconv's loops
    count in `npconv_model`'s forward and backward (npconv.cost.backward.backward_cost_table)
    and each layer's groups: 2 × (forward + grad_input + groups × grad_weight) per
    convolution (FlopCounterMode's conv_backward_flop charges the weight gradient's
    conv_flop_count with the full C_in × C_out: `groups` times the MACs executed), 2 ×
    (forward + grad_input + grad_weight) per Linear. Returns (Prediction, backward rows)."""
    from ..cost.backward import backward_cost_table
    from ..nn import Conv2d, ConvTranspose2d
    from .conventions import FLOP_COUNTER, Part

    rows = backward_cost_table(npconv_model, input_shape, seed=seed)
    modules = dict(npconv_model.named_modules())
    parts = []
    for row in rows[:-1]:
        module = modules[row.layer]
        groups = module.groups if isinstance(module, (Conv2d, ConvTranspose2d)) else 1
        parts.append(Part("training_step", 2 * row.forward, row.layer, row.layer, row.kind))
        if row.grad_input is not None:
            parts.append(Part("training_step", 2 * row.grad_input, row.layer, row.layer, row.kind))
        parts.append(Part("training_step", 2 * row.grad_weight, row.layer, row.layer, row.kind))
        if groups > 1:
            parts.append(Part("grad_weight_groups", 2 * row.grad_weight * (groups - 1), row.layer, row.layer,
                              f"{type(module).__name__} groups={groups}",
                              departure="flop_counter.grouped_weight_gradient"))
    by_term, own = {}, {}
    for part in parts:
        by_term[part.term] = by_term.get(part.term, 0) + part.amount
        own[part.module] = own.get(part.module, 0) + part.amount
    return Prediction(FLOP_COUNTER, sum(p.amount for p in parts), by_term, own, parts), rows


def explain_training_step(npconv_model, torch_model, input_shape, *, seed: int = 0,
                          run_counters: bool = True, name: str | None = None) -> CountersReport:
    """A training step (forward and backward, both models in training mode) for the counters
    that count backward: FlopCounterMode. `torch_model` is the PyTorch twin of the npconv
    model (the same module tree)."""
    from ..cost.backward import _seeded_gradient, _training_copy
    from .installed import flop_counter_training_step

    prediction, _rows = training_step_prediction(npconv_model, input_shape, seed=seed)
    result = None
    if run_counters:
        x = np.random.default_rng(seed).standard_normal(tuple(input_shape)).astype(np.float32)
        twin = _training_copy(torch_model).float()
        import torch

        with torch.no_grad():
            shape = twin(torch.from_numpy(x)).shape
        gy = _seeded_gradient(seed)(np.zeros(tuple(shape), np.float32))
        result = flop_counter_training_step(twin, x, gy)
    order = list(dict(npconv_model.named_modules()))
    return CountersReport(name or type(npconv_model).__name__, tuple(input_shape), "training step",
                          [_row(prediction, result, order)])


# ----------------------------------------------------------------------------- the command's table

UNITS_NOTE = ("FlopCounterMode counts FLOPs, 2 per multiply-add; the others 1 per multiply-add (fvcore calls them "
              "flops, torchinfo mult-adds).")


def counters_grid(report: CountersReport, title: str):
    """The command's table (npconv.tables.Grid): one row per counter, npconv's prediction
    from its convention, the counter's own figure, whether they agree, and where they first
    differ."""
    from ..tables import Col, Grid, escape

    grid = Grid([Col("counter", "name", "left"), Col("unit", "text", "left"), Col("predicted"), Col("reported"),
                 Col("", "text", "left"), Col("differs first at", "long", "left", label=True, min_width=14)],
                title=title)
    for row in report.rows:
        if row.error:
            reported, mark, where = "[bold red]failed[/]", "", escape(row.error)
        elif row.reported is None:
            reported, mark, where = "[dim]not installed[/]", "", ""
        else:
            reported = _fmt(row.reported)
            mark = "[green]=[/]" if row.equal else "[bold red]≠[/]"
            where = escape("; ".join(row.differences))
        grid.add_row(escape(row.label), escape(row.unit), f"{row.predicted:,}", reported, mark, where)
    return grid


def counters_notes(report: CountersReport) -> list[str]:
    """Rich-markup lines after the table: the units, then each departure found, by counter."""
    from ..tables import escape

    lines = [f"[dim]{UNITS_NOTE} Predicted: each counter's convention over what npconv's kernels counted, node "
             f"by node (docs/counters.md).[/]"]
    for row in report.rows:
        for finding in row.findings:
            lines.append(f"[yellow]departure[/] {escape(row.label)}: {escape(finding.describe())}")
    return lines


def counters_markdown(report: CountersReport) -> str:
    """The table and the departures as Markdown."""
    shape = "×".join(map(str, report.input_shape))
    lines = [f"**FLOP counters, {report.step}**, {report.model}, input {shape}", "",
             "| counter | unit | predicted | reported | equal | differs first at |", "|---|---|---|---|---|---|"]
    for row in report.rows:
        reported = "failed: " + row.error if row.error else ("not installed" if row.reported is None
                                                           else _fmt(row.reported))
        equal = "" if row.equal is None else ("✓" if row.equal else "✗")
        lines.append(f"| {row.label} | {row.unit} | {row.predicted:,} | {reported} | {equal} | "
                     f"{'; '.join(row.differences)} |")
    lines += ["", UNITS_NOTE]
    departures = [f"- {row.label}: {finding.describe()}" for row in report.rows for finding in row.findings]
    if departures:
        lines += ["", "Departures from the counters' own intent:", ""] + departures
    return "\n".join(lines) + "\n"
