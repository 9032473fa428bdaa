"""The fast engine in a plain process, and under a competing load.

Every other bench script calls `harness.configure()`, which sets the thread pools' environment
before numpy, numba and torch load. A user's process does not: it runs `import torch, npconv`
and perhaps `torch.set_num_threads(T)`. This script measures that process. Each measurement
runs in a fresh interpreter that sets no environment variable and does, in this order:

    import numpy, torch, npconv, numba
    torch.set_num_threads(T); numba.set_num_threads(T)
    threadpoolctl.threadpool_limits(T, user_api="blas")      # NumPy's OpenBLAS at T threads too
    harness.warm_allocator()         # glibc's allocator as a model run leaves it (harness.py)

and then times PyTorch (`torch.no_grad()`) and npconv's fast engine interleaved
(harness.interleaved: medians after warm-up, the order rotating every round) on:

    every distinct depthwise and pointwise layer of MobileNetV1 1.0-224 (bench/layers.py)
    the standard 3x3 convolution 32->64, batch 4, 128x128 (bench/classic.py)
    MobileNetV1 and MobileNetV2 1.0-224, batch 1, eval (bench/models.py's twins)

at T = 1 and T = 2, each configuration in `--runs` fresh processes (default 3), to show the
spread between processes as well as within one. `--load` adds a competing load for the whole
measurement: a busy loop in another process (bounded: it stops after --load-seconds, or when
this script ends), which keeps one of this machine's cores busy as another user's job would.

Then it times each library alone, its calls back to back (column "each alone"), each after
30 ms of its own calls untimed: interleaved, every npconv call follows a PyTorch call, whose
OpenMP workers spin for about 9 ms after it and share the cores with npconv's threads; alone,
neither follows the other, nor runs while the other's workers spin. (Until December 2026 the
alone timing began right after the other library's last call: for the layers, all of it fell
in that window. A 50 ms pause instead timed a cold CPU: this VM takes milliseconds to come
back to speed after an idle spell.)

    python bench/plain.py                 writes bench/results/plain.{json,md}
    python bench/plain.py --load          writes bench/results/load.{json,md}

Ratios are npconv fast time / torch time. Numba's threading layer is whatever npconv chose at
import (npconv/_threads.py) and is recorded with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
T = int(sys.argv[1])
import numpy as np, torch, npconv, numba, threadpoolctl
sys.path.insert(0, "BENCH"); sys.path.insert(0, "TESTS")
torch.set_num_threads(T); numba.set_num_threads(T)
threadpoolctl.threadpool_limits(T, user_api="blas")
import harness
harness.warm_allocator()   # as a model run leaves it (the models below are built before any timing, too)
from layers import LAYERS, layer_arrays

rng = np.random.default_rng(0)
cases = []
for kind, cin, cout, size, stride, count in LAYERS:
    x, w = layer_arrays(kind, cin, cout, size, rng)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    if kind == "dw":
        cases.append((f"dw {cin} @{size} s{stride}", "depthwise",
                      lambda xt=xt, wt=wt, s=stride, c=cin: torch.nn.functional.conv2d(xt, wt, None, s, 1, 1, c),
                      lambda x=x, w=w, s=stride: npconv.depthwise_conv2d(x, w, None, s, 1, engine="fast")))
    else:
        cases.append((f"pw {cin}->{cout} @{size}", "pointwise",
                      lambda xt=xt, wt=wt: torch.nn.functional.conv2d(xt, wt),
                      lambda x=x, w=w: npconv.pointwise_conv2d(x, w, engine="fast")))
x = rng.standard_normal((4, 32, 128, 128), dtype=np.float32)
w = rng.standard_normal((64, 32, 3, 3), dtype=np.float32)
xt, wt = torch.from_numpy(x), torch.from_numpy(w)
cases.append(("standard 3x3 32->64, batch 4, 128x128", "standard",
              lambda: torch.nn.functional.conv2d(xt, wt, padding=1), lambda: npconv.conv2d(x, w, padding=1, engine="fast")))
from npconv.models import MobileNetV1, MobileNetV2
from torch_twins import MobileNetV1 as TorchV1
from torchvision_twin import MobileNetV2 as TorchV2
image = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
image_t = torch.from_numpy(image)
for name, model, twin in (("MobileNetV1 1.0-224", MobileNetV1(), TorchV1()), ("MobileNetV2 1.0-224", MobileNetV2(), TorchV2())):
    model.eval()
    twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()})
    twin.eval()
    def fast(model=model):
        with npconv.engine.use("fast"):
            return model(image)
    cases.append((name, name.split()[0], lambda twin=twin: twin(image_t), fast))
rows = []
with torch.no_grad():
    for name, kind, torch_fn, fast_fn in cases:
        model = kind.startswith("MobileNet")
        repeats, warmup = (12, 2) if model else (30, 3)
        timed = harness.interleaved({"torch": torch_fn, "fast": fast_fn}, repeats, warmup=warmup)
        # each alone: its calls back to back, after 30 ms of them untimed, longer than the other
        # library's workers spin after its last call (PyTorch's libgomp workers about 9 ms: 30
        # calls of a small layer fit in that window); a pause instead would time a cold CPU
        alone = {}
        for key, fn in (("torch", torch_fn), ("fast", fast_fn)):
            until = time.perf_counter() + 0.03
            while time.perf_counter() < until:
                fn()
            alone[key] = harness.interleaved({key: fn}, repeats, warmup=warmup)[key]["median_ms"]
        rows.append({"case": name, "kind": kind, "torch_ms": timed["torch"]["median_ms"], "fast_ms": timed["fast"]["median_ms"],
                     "torch_p90_ms": timed["torch"]["p90_ms"], "fast_p90_ms": timed["fast"]["p90_ms"],
                     "torch_alone_ms": alone["torch"], "fast_alone_ms": alone["fast"]})
print(json.dumps({"threads": T, "numba_threading_layer": numba.threading_layer(),
                  "blas": [d.get("internal_api") + " " + str(d.get("num_threads")) for d in threadpoolctl.threadpool_info()],
                  "rows": rows}))
""".replace("BENCH", str(HERE)).replace("TESTS", str(HERE.parent / "reference_tests"))

# the workloads' targets (bench/README.md): npconv fast / torch at most
TARGETS = {"depthwise": 0.67, "pointwise": 1.0, "standard": 1.3, "MobileNetV1": 1.0, "MobileNetV2": 1.0}


def busy_loop(seconds: float) -> subprocess.Popen:
    """Another process that keeps one core busy for `seconds` (bounded), as a competing job."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def run_child(T: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NPCONV_BENCH", "OMP_", "GOMP_", "OPENBLAS_", "NUMBA_NUM"))}
    done = subprocess.run([sys.executable, "-c", CHILD, str(T)], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> list[dict]:
    """Per case: the ratio fast/torch of each run (its medians), then the median and range over runs."""
    out = []
    for i, row in enumerate(runs[0]["rows"]):
        ratios = [run["rows"][i]["fast_ms"] / run["rows"][i]["torch_ms"] for run in runs]
        alone = [run["rows"][i]["fast_alone_ms"] / run["rows"][i]["torch_alone_ms"] for run in runs]
        out.append({"case": row["case"], "kind": row["kind"],
                    "torch_ms": statistics.median(run["rows"][i]["torch_ms"] for run in runs),
                    "fast_ms": statistics.median(run["rows"][i]["fast_ms"] for run in runs),
                    "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                    "alone_ratio": statistics.median(alone)})
    return out


def table(results: dict, load: bool) -> str:
    from harness import markdown

    lines = []
    for T, runs in results["threads"].items():
        rows = summarise(runs)
        layer = runs[0]["numba_threading_layer"]
        worst, worst_alone = {}, {}
        for r in rows:
            worst[r["kind"]] = max(worst.get(r["kind"], 0.0), r["ratio"])
            worst_alone[r["kind"]] = max(worst_alone.get(r["kind"], 0.0), r["alone_ratio"])
        lines.append(f"\n{'Under a competing load (a busy loop on one core), ' if load else 'Plain process, '}"
                     f"{T} thread{'s' if int(T) > 1 else ''}: npconv fast / torch, median over {len(runs)} processes "
                     f"[range]; Numba threading layer {layer}; load average at the end {results['load_average']}\n")
        body = [[r["case"], round(r["torch_ms"], 3), round(r["fast_ms"], 3),
                 f"{r['ratio']:.2f} [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]", f"{r['alone_ratio']:.2f}"] for r in rows]
        lines.append(markdown(["case", "torch ms", "fast ms", "fast/torch", "each alone"], body))
        lines.append("\n" + markdown(["workload", "worst fast/torch", "each alone", "target"],
                                     [[k, round(v, 2), round(worst_alone[k], 2), f"<= {TARGETS[k]}"]
                                      for k, v in worst.items()]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", action="store_true", help="measure under a busy loop on one core")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per thread count (default 3)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--load-seconds", type=float, default=1800, help="upper bound on the busy loop's life")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    loop = busy_loop(args.load_seconds) if args.load else None
    try:
        began = time.time()
        results = {"threads": {}}
        for T in (int(t) for t in args.threads.split(",")):
            results["threads"][str(T)] = [run_child(T) for _ in range(args.runs)]
            print(f"T={T}: done", file=sys.stderr, flush=True)
        results["load_average"] = tuple(round(v, 2) for v in os.getloadavg())
        results["seconds"] = round(time.time() - began)
    finally:
        if loop is not None:
            loop.kill()
    name = "load" if args.load else "plain"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results, args.load)
    (out / f"{name}.md").write_text(text.lstrip() + "\n")
    print(text)


if __name__ == "__main__":
    main()
