"""Whole-model forward times: MobileNetV1 1.0-224 and MobileNetV2 1.0-224, eval, batch 1.

Contenders, same weights (npconv's state_dict loaded into the PyTorch twins of
reference_tests/), same thread count, interleaved:
    torch           the PyTorch twin, model.eval(), torch.no_grad()
    fast            npconv's model under `npconv.engine.use("fast")`: convolutions on the fast
                    tier, each Conv2d + BatchNorm2d + ReLU6 run fused into one kernel call
                    (npconv/nn/fusion.py), pooling and the rest on their reference kernels
    reference       npconv's model on the reference engine (a few runs only)
The largest |difference| between npconv's output and torch's is printed as a sanity check
(the proofs are in reference_tests/). Peak memory: the resident memory one forward adds above
what was already resident, each framework in its own process (`peak_memory`).

    python bench/models.py

Writes bench/results/models.{json,md}. Skips a model npconv.models does not have.
"""

from __future__ import annotations

import sys
from pathlib import Path

import harness

T = harness.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import npconv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference_tests"))


def _pairs():
    try:
        from npconv.models import MobileNetV1, MobileNetV2
    except ImportError as error:
        print(f"bench/models.py: npconv.models not available ({error}); nothing to time")
        return []
    pairs = []
    try:
        from torch_twins import MobileNetV1 as TorchV1

        pairs.append(("MobileNetV1 1.0-224", MobileNetV1(), TorchV1()))
    except ImportError as error:
        print(f"no torch twin for MobileNetV1: {error}")
    try:
        from torchvision_twin import MobileNetV2 as TorchV2

        pairs.append(("MobileNetV2 1.0-224", MobileNetV2(), TorchV2()))
    except ImportError as error:
        print(f"no torch twin for MobileNetV2: {error}")
    return pairs


def measure(repeats: int = 10, reference_repeats: int = 1) -> dict:
    harness.start_pools(T)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    xt = torch.from_numpy(x)
    rows = []
    for name, model, twin in _pairs():
        model.eval()
        twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()})
        twin.eval()

        def fast():
            with npconv.engine.use("fast"):
                return model(x)

        with torch.no_grad():
            expected = twin(xt).numpy()
            difference = {"fast": float(np.abs(fast() - expected).max())}
            timed = harness.interleaved({"torch": lambda: twin(xt), "fast": fast}, repeats)
            reference = harness.interleaved({"reference": lambda: model(x)}, reference_repeats, warmup=0)
        rows.append({"model": name, **timed, **reference, "max_abs_difference_to_torch": difference,
                     "ratio_fast_torch": timed["fast"]["median_ms"] / timed["torch"]["median_ms"],
                     "peak_memory": peak_memory(name)})
        print(name, {k: round(v["median_ms"], 2) for k, v in timed.items()}, difference, flush=True)
    return {"machine": harness.machine(T), "rows": rows}


MEMORY_PROBE = r"""
import sys, harness
T = harness.configure()
sys.path.insert(0, "../reference_tests")
import numpy as np, torch, npconv
harness.start_pools(T)
which, name = sys.argv[1], sys.argv[2]

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))

small = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
big = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
if which == "torch":
    from torch_twins import MobileNetV1
    from torchvision_twin import MobileNetV2
    model = (MobileNetV1 if "V1" in name else MobileNetV2)().eval()
    def forward(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))
else:
    from npconv.models import MobileNetV1, MobileNetV2
    model = (MobileNetV1 if "V1" in name else MobileNetV2)().eval()
    def forward(x):
        with npconv.engine.use("fast"):
            return model(x)
forward(small)  # compiles what needs compiling, on a 32 x 32 input: no 224-sized buffer is left behind
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident size (VmHWM) to the current one
before = status("VmRSS")
forward(big)
print((status("VmHWM") - before) * 1024)
"""


def peak_memory(name: str) -> dict:
    """Peak resident memory added by one 224 x 224 forward pass, in a fresh process per
    framework, after a warm-up pass on a 32 x 32 input (JIT compilation, thread pools, without
    leaving 224-sized buffers in the allocators): the kernel's VmHWM is reset
    (/proc/self/clear_refs) just before the pass, so the number is the pass's own high-water
    mark above what was resident (weights, libraries). Linux only; None elsewhere."""
    import subprocess

    out = {}
    for which in ("npconv_fast", "torch"):
        try:
            done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, which, name], cwd=Path(__file__).resolve().parent,
                                  capture_output=True, text=True, timeout=300)
            out[which + "_peak_bytes"] = int(done.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            out[which + "_peak_bytes"] = None
    return out


def table(result: dict) -> str:
    headers = ["model (eval, batch 1, 224)", "torch ms", "fast ms", "fast/torch", "reference ms",
               "forward peak MiB: npconv fast / torch"]
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:.1f}"  # noqa: E731
    body = [[r["model"], r["torch"]["median_ms"], r["fast"]["median_ms"], round(r["ratio_fast_torch"], 2),
             r["reference"]["median_ms"],
             f"{mib(r['peak_memory']['npconv_fast_peak_bytes'])} / {mib(r['peak_memory']['torch_peak_bytes'])}"]
            for r in result["rows"]]
    m = result["machine"]
    return (f"Whole models, float32, {m['threads']} threads (target: fast/torch <= 1.0); load average at the end: "
            f"{m['load_average']}\n\n" + harness.markdown(headers, body))


if __name__ == "__main__":
    result = measure()
    harness.write("models", result, table(result))
