"""Regenerate the warm timing table of `npconv verify` in docs/cli.md ("How long verify takes").

    python docs/verify_timing.py [--write] [--repeats 3] [--models tiny_mobilenet,mobilenet_v1,mobilenet_v2]
                                 [--reference tiny_mobilenet]

Each row is one model (and npconv engine) run as a user runs it, `python -m npconv verify
MODEL --no-timing --json`, in a fresh process: once to fill Numba's cache (not counted),
then `--repeats` times; every figure is the median of those runs, step by step as the
command reports them under `times_s` and `cpu_times_s` (npconv.graph.verify.STEP_OWNERS),
and the whole command's wall time as this script measures it around the process. The
models in `--reference` get a second row with `--engine reference` (npconv's side on the
readable loop nests instead of the fast kernels). The load average (1 minute) is read
before and after every run; the machine is described in the caption. Run from the
repository root."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))

from generated_section import main  # noqa: E402

DOC = ROOT / "docs" / "cli.md"
START, END = "<!-- verify timing start -->", "<!-- verify timing end -->"
ENV = dict(os.environ, PYTHONWARNINGS="ignore")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run(model: str, engine: str) -> dict:
    """One `npconv verify` process: its JSON report, the wall seconds around it, and the load
    average before and after."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "npconv", "verify", model, "--no-timing", "--json",
                             "--engine", engine], cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"npconv verify {model} --engine {engine} failed:\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return {"report": report, "wall": wall, "load": (load_before, os.getloadavg()[0])}


def _median(runs: list, key) -> float:
    return statistics.median(key(run) for run in runs)


def measure(model: str, engine: str, repeats: int) -> dict:
    _run(model, engine)  # fills Numba's cache for this model's kernels: not counted
    runs = [_run(model, engine) for _ in range(repeats)]
    first = runs[0]["report"]

    def step(name, table="times_s"):
        return _median(runs, lambda run: run["report"][table][name])

    row = {name: step(name) for name in first["times_s"] if first["times_s"][name] is not None}
    row["npconv_cpu"] = _median(runs, lambda run: run["report"]["cpu_times_s"]["checks"]
                                + run["report"]["cpu_times_s"]["count"])
    row["npconv"] = _median(runs, lambda run: run["report"]["time_parts_s"]["npconv"])
    row["torch_part"] = _median(runs, lambda run: run["report"]["time_parts_s"]["torch"])
    row["wall"] = _median(runs, lambda run: run["wall"])
    row["loads"] = [load for run in runs for load in run["load"]]
    row["nodes"] = first["layer_by_layer"]["steps"]
    row["macs"] = first["summary"]["total"]["macs"]
    row["ok"] = all(run["report"]["ok"] for run in runs)
    return row


def table(models: list, reference: list, repeats: int) -> str:
    import numba
    import torch

    rows = []
    for model in models:
        for engine in ["fast"] + (["reference"] if model in reference else []):
            print(f"measuring {model} ({engine})", file=sys.stderr)
            rows.append((model, engine, measure(model, engine, repeats)))
    loads = [load for _, _, row in rows for load in row["loads"]]
    lines = [
        f"Warm runs: `python -m npconv verify MODEL --no-timing --json` at the default input "
        f"(1×3×224×224), once to fill Numba's cache, then the median of {repeats} fresh processes; "
        f"seconds. Machine: {os.cpu_count()} cores ({_cpu_name()}), shared with other work: the "
        f"1-minute load average was {min(loads):.1f}-{max(loads):.1f} during these runs (each row's "
        f"range in its last column; on {os.cpu_count()} cores a load above {os.cpu_count()} means "
        f"runs wait for a core, and every figure stretches with it). torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numba {numba.__version__}, Python {platform.python_version()}. "
        f"Regenerate with `python docs/verify_timing.py --write`.",
        "",
        "| model | npconv engine | nodes | import (of it Numba's start) | build | capture | PyTorch: nodes + "
        "FlopCounterMode + eager | npconv: checks + count | npconv CPU s | whole command | ok | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, engine, r in rows:
        lines.append(
            f"| {model} | {engine} | {r['nodes']} | {r['import'] + r['numba_start']:.2f} ({r['numba_start']:.2f}) "
            f"| {r['build']:.2f} | {r['export']:.2f} | **{r['torch_part']:.2f}** = {r['torch_nodes']:.2f} + "
            f"{r['flop_counter']:.2f} + {r['torch_eager']:.2f} | **{r['npconv']:.2f}** = {r['checks']:.2f} + "
            f"{r['count']:.2f} | {r['npconv_cpu']:.2f} | {r['wall']:.1f} | {'✓' if r['ok'] else '✗'} "
            f"| {min(r['loads']):.1f}-{max(r['loads']):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="tiny_mobilenet,mobilenet_v1,mobilenet_v2")
    parser.add_argument("--reference", default="tiny_mobilenet",
                        help="models that get a second row with --engine reference ('' for none)")
    options, rest = parser.parse_known_args()
    sys.argv[1:] = rest
    models = [m for m in options.models.split(",") if m]
    reference = [m for m in options.reference.split(",") if m]
    main("Regenerate the warm timing table of npconv verify in docs/cli.md.", DOC, START, END,
         lambda: table(models, reference, options.repeats))
