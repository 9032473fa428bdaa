"""Regenerate the pytorchcv zoo table of docs/graph.md: every acceptance model captured with
torch.export and verified node by node (float32 and float64), with the time each step took.

    python docs/zoo_table.py [--size 64] [--write]

Run from the repository root; needs the test extra (pytorchcv). Times are one run each on
the machine it ran on, stated as such in the table's caption."""

from __future__ import annotations

import math
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


def _down(ratio: float) -> str:
    """Three decimals rounded down, so that 0.99996 does not print as a failing-looking 1.000."""
    return f"{math.floor(ratio * 1000) / 1000:.3f}"


def table(size: int) -> str:
    import torch

    from npconv.verify import verify_model
    from zoo import ZOO, pytorchcv_model

    lines = [f"Input 1×3×{size}×{size}, seeded weights, BatchNorm statistics made non-trivial "
             f"(`reference_tests/zoo.py`); torch {torch.__version__}, {os.cpu_count()} cores "
             f"({platform.machine()}), one run each, so the seconds are indicative.", "",
             "| model | nodes | exact | export s | verify s | worst f32 node (err/bound) | worst f64 | MACs = FCM/2 "
             "| params = numel | ok |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ZOO:
        model = pytorchcv_model(name, size)
        x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
        start = time.perf_counter()
        report = verify_model(model, x, name=name, timing=False)
        total = time.perf_counter() - start
        w32, w64 = report.worst(report.checks32), report.worst(report.checks64)
        t = report.summary.total
        macs = f"{t['macs']:,}" + ("" if t["macs"] == t["flop_counter_macs"] else f" ≠ {t['flop_counter_macs']:,}")
        params = f"{t['params']:,}" + ("" if t["params"] == t["torch_params"] else f" ≠ {t['torch_params']:,}")
        lines.append(f"| {name} | {len(report.checks32)} | {sum(c.exact for c in report.checks32)} "
                     f"| {report.times['export']:.1f} | {total - report.times['export']:.1f} "
                     f"| {_down(w32.ratio)} ({w32.op.split('.')[1]} in `{w32.module}`) | {_down(w64.ratio)} "
                     f"| {macs} | {params} | {'✓' if report.ok else '✗ ' + report.failures[0]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    size = 64
    if "--size" in sys.argv:
        i = sys.argv.index("--size")
        size = int(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    main("Regenerate the pytorchcv zoo table of docs/graph.md.", ROOT / "docs" / "graph.md",
         f"<!-- zoo {size} start -->", f"<!-- zoo {size} end -->", lambda: table(size))
