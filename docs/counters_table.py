"""Regenerate docs/counters.md's generated sections.

    python docs/counters_table.py [--size 224] [--write]       # the tables: every acceptance model
    python docs/counters_table.py conventions [--write]        # the conventions and departures

The tables: for the seventeen pytorchcv models of reference_tests/zoo.py and the tutorial's
TinyMobileNet, each counter's total as npconv predicts it from the counter's convention over
what npconv's kernels counted, checked against what the installed counter reports (✓ when
the same integer); the departures found in each model; FlopCounterMode over a TinyMobileNet
training step. Run from the repository root with the test extra installed (pytorchcv and
the pinned counters); at 224×224 it takes several minutes on two cores.

The conventions section is written from npconv.counters.CONVENTIONS and DEPARTURES, so the
page says what the code models."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "reference_tests"))
sys.path.insert(0, str(ROOT / "docs"))

from generated_section import main  # noqa: E402

# the counters in the order of the figures (the smallest convention first)
ORDER = ("flop_counter", "fvcore", "ptflops_aten", "torchinfo", "ptflops_pytorch", "thop")
EXAMPLE = "mobilenetv2_w1"   # the model whose totals are taken apart rule by rule


def _versions() -> str:
    from importlib.metadata import version

    import torch

    parts = [f"torch {torch.__version__}"]
    for package in ("fvcore", "thop", "ptflops", "torchinfo"):
        try:
            parts.append(f"{package} {version(package)}")
        except Exception:  # noqa: BLE001 - a missing package is said so in the table
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def _models(size: int):
    """(name, torch model) of every acceptance model: the zoo, then TinyMobileNet."""
    from npconv.oracle import twins
    from zoo import ZOO, pytorchcv_model

    for name in ZOO:
        yield name, pytorchcv_model(name, size)
    yield "TinyMobileNet", twins.build("TinyMobileNet", seed=0, calibration_shape=(2, 3, size, size))


def _cell(row, name: str) -> str:
    """The predicted figure (FlopCounterMode's halved: MACs like the others) and ✓ when the
    counter reports exactly that."""
    half = name == "flop_counter"
    value = row.predicted // 2 if half else row.predicted
    if row.reported is None:
        return f"{value:,} (not installed)"
    if row.equal:
        return f"{value:,} ✓"
    reported = row.reported / 2 if half else row.reported
    return f"{value:,} ✗ reported {reported:,}"


def tables(size: int) -> str:
    import torch

    from npconv import models
    from npconv.counters import CONVENTIONS, DEPARTURES, explain, explain_training_step
    from npconv.oracle import twins

    torch.set_num_threads(1)   # many small forward passes: one thread is faster on a shared machine
    head = ["model"] + [("FlopCounterMode / 2" if n == "flop_counter" else CONVENTIONS[n].label) for n in ORDER]
    lines = [f"Input 1×3×{size}×{size}; {_versions()}; {os.cpu_count()} cores ({platform.machine()}). "
             "Each cell is npconv's prediction from the counter's convention over what its kernels counted, "
             "in multiply-accumulates (FlopCounterMode's FLOPs halved); ✓: the installed counter reports "
             "exactly that integer.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    found, seconds, example = [], 0.0, {}
    for name, model in _models(size):
        start = time.perf_counter()
        x = np.zeros((1, 3, size, size), np.float32)
        report = explain(model, x, name=name)
        seconds += time.perf_counter() - start
        rows = {row.name: row for row in report.rows}
        if name == EXAMPLE:
            example = rows
        lines.append(f"| {name} | " + " | ".join(_cell(rows[n], n) for n in ORDER) + " |")
        for n in ORDER:
            for finding in rows[n].findings:
                found.append((name, CONVENTIONS[n].label, finding))
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    lines += ["", f"All {len(_models_names())} models captured, counted node by node and every counter run in "
                  f"{seconds:.0f} s.", ""]

    lines += [f"{EXAMPLE} rule by rule: each counter's total as the sum of its convention's rules (the keys of "
              "the conventions' tables above), so that every difference between two columns is a rule one "
              "counter has and the other has not:", "", "| counter | rule | predicted |", "|---|---|---|"]
    for n in ORDER:
        for key, amount in example[n].by_term.items():
            lines.append(f"| {CONVENTIONS[n].label} ({CONVENTIONS[n].unit}) | `{key}` | {amount:,} |")
        lines.append(f"| {CONVENTIONS[n].label} ({CONVENTIONS[n].unit}) | **total** | **{example[n].predicted:,}** |")
    lines += [""]

    lines += ["Departures found in these models (\"+N\": what the departure adds to the counter's total; "
              "\"counted 0 where npconv executed N ops\": what the counter misses):", "",
              "| model | counter | departure | where (calls) | effect |", "|---|---|---|---|---|"]
    for model, counter, finding in found:
        where = ", ".join(f"{k} ×{n}" for k, n in sorted(finding.what.items(), key=lambda kv: (-kv[1], kv[0])))
        effect = f"+{finding.excess:,}" if finding.excess else f"counted 0 where npconv executed {finding.missed:,} ops"
        lines.append(f"| {model} | {counter} | [{DEPARTURES[finding.departure].title}](#{_anchor(finding.departure)}) "
                     f"| {where} | {effect} |")

    npconv_model = models.TinyMobileNet(rng=0)
    twin = twins.build("TinyMobileNet", seed=0, calibration_shape=(2, 3, size, size))
    step = explain_training_step(npconv_model, twin, (1, 3, size, size), name="TinyMobileNet")
    (row,) = step.rows
    finding = row.findings[0] if row.findings else None
    lines += ["", f"A TinyMobileNet training step at 1×3×{size}×{size} (forward and backward in training mode, "
                  "L = sum(output · g)), FlopCounterMode in FLOPs:", "",
              "| counter | predicted | reported | equal | departure |", "|---|---|---|---|---|",
              f"| FlopCounterMode | {row.predicted:,} | {row.reported:,} | {'✓' if row.equal else '✗'} | "
              + (finding.describe() if finding else "") + " |"]
    return "\n".join(lines)


def _models_names():
    from zoo import ZOO

    return list(ZOO) + ["TinyMobileNet"]


def _heading(key: str) -> str:
    from npconv.counters import DEPARTURES

    return f"{DEPARTURES[key].counter}: {DEPARTURES[key].title}"


def _anchor(key: str) -> str:
    """The id mkdocs' toc extension gives the departure's heading."""
    from markdown.extensions.toc import slugify

    return slugify(_heading(key), "-")


def _code(text: str) -> str:
    """`text` as a code span that may hold backticks (and no table-breaking pipe)."""
    return "`` " + text.replace("|", "/") + " ``"


def conventions() -> str:
    from npconv.counters import CONVENTIONS, DEPARTURES

    lines = []
    for name in ORDER:
        c = CONVENTIONS[name]
        lines += [f"### {c.label}", "", f"**{c.summary}** ({c.unit}; attributed "
                  + ("to the model's top-level children only" if c.granularity == "top" else "per module")
                  + ").", "", "| rule | what it counts | where the counter says so |", "|---|---|---|"]
        for term in c.terms:
            text = term.text.replace("|", "\\|")
            if term.departure:
                text = f"**departure** ([{DEPARTURES[term.departure].title}](#{_anchor(term.departure)})): {text}"
            lines.append(f"| `{term.key}` | {text} | {_code(term.source)} |")
        lines.append("")
    lines += ["## Departures", "",
              "Each is modelled exactly (the prediction includes it, so predicted == reported) and marked, so the "
              "command names it with its effect on the model at hand. Each reproduction runs in "
              "`reference_tests/test_counters.py`.", ""]
    for key, d in DEPARTURES.items():
        lines += [f"### {_heading(key)}", "", d.text, "", f"Source: {_code(d.source)}.", "",
                  "```python", d.reproduction.rstrip(), "```", ""]
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    doc = ROOT / "docs" / "counters.md"
    if len(sys.argv) > 1 and sys.argv[1] == "conventions":
        del sys.argv[1]
        main("Regenerate the conventions of docs/counters.md.", doc, "<!-- conventions start -->",
             "<!-- conventions end -->", conventions)
    else:
        size = 224
        if "--size" in sys.argv:
            i = sys.argv.index("--size")
            size = int(sys.argv[i + 1])
            del sys.argv[i:i + 2]
        main("Regenerate the counters tables of docs/counters.md.", doc, f"<!-- counters {size} start -->",
             f"<!-- counters {size} end -->", lambda: tables(size))
