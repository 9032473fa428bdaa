"""Counters explained: every popular FLOP counter's number, reproduced from what npconv
counted, and where each departs from its own convention.

    from npconv.counters import explain
    report = explain(torch_model, x)             # x: a NumPy input; the model in eval mode
    for row in report.rows:                      # FlopCounterMode, fvcore, thop, ptflops (pytorch
        print(row.label, row.predicted,          # and aten backends), torchinfo
              row.reported, row.equal, row.differences, [f.describe() for f in row.findings])

How: the model is captured (npconv.capture) and run once on npconv's reference kernels, each
node counted on its own (`facts.node_facts`). Each counter's convention (`conventions`) is a
formula over those counted categories per node (MACs, bias adds, BatchNorm elements, pooling
divides, ...) and the node's shapes and module metadata (the module's exact class, its
parameters), attributed to the module the counter attributes it to. The prediction is then
held against what the counter reports when installed (`installed`), in total and per module.
`departures` lists where a counter departs from its own stated intent, each with a minimal
reproduction; the predictions include them, and mark them.

`explain_training_step` does the same for a training step, for the counter that counts
backward (FlopCounterMode), from npconv's counted forward and backward MACs.

The command: `npconv summary MODEL --counters [--backward] [--json]` (docs/counters.md).
"""

from .conventions import CONVENTIONS, Convention, Finding, Part, Prediction, Term
from .departures import DEPARTURES, Departure
from .facts import Facts, ModuleInfo, NodeFacts, node_facts
from .report import (CounterRow, CountersReport, compare_modules, explain, explain_training_step, predict,
                     training_step_prediction)

__all__ = ["CONVENTIONS", "DEPARTURES", "Convention", "CounterRow", "CountersReport", "Departure", "Facts", "Finding",
           "ModuleInfo", "NodeFacts", "Part", "Prediction", "Term", "compare_modules", "explain",
           "explain_training_step", "node_facts", "predict", "training_step_prediction"]
