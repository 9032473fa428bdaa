"""Whole-model forward times: MobileNetV1 1.0-224 and MobileNetV2 1.0-224, eval, batch 1.

Contenders, same weights (npconv's state_dict loaded into the PyTorch twins of
reference_tests/), same thread count, interleaved:
    torch           the PyTorch twin, model.eval(), torch.no_grad()
    fast            npconv's model under `npconv.engine.use("fast")`: convolutions on the fast
                    tier, BatchNorm / ReLU6 / pooling on their reference kernels
    fast fused      the same, with Conv2d + BatchNorm2d + ReLU6 fused (bench/fused.py)
    reference       npconv's model on the reference engine (a few runs only)
The largest |difference| between npconv's output and torch's is printed as a sanity check
(the proofs are in reference_tests/). Peak memory: tracemalloc's peak for npconv's forward
(NumPy allocations) against torch's CPU allocator peak where it reports one.

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
from fused import fused  # noqa: E402

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

        def fast_fused():
            with fused(model):
                return model(x)

        with torch.no_grad():
            expected = twin(xt).numpy()
            difference = {"fast": float(np.abs(fast() - expected).max()),
                          "fast_fused": float(np.abs(fast_fused() - expected).max())}
            timed = harness.interleaved({"torch": lambda: twin(xt), "fast": fast, "fast_fused": fast_fused}, repeats)
            reference = harness.interleaved({"reference": lambda: model(x)}, reference_repeats, warmup=0)
        rows.append({"model": name, **timed, **reference, "max_abs_difference_to_torch": difference,
                     "ratio_fast_torch": timed["fast"]["median_ms"] / timed["torch"]["median_ms"],
                     "ratio_fused_torch": timed["fast_fused"]["median_ms"] / timed["torch"]["median_ms"],
                     "peak_memory": peak_memory(model, twin, x, xt)})
        print(name, {k: round(v["median_ms"], 2) for k, v in timed.items()}, difference, flush=True)
    return {"machine": harness.machine(T), "rows": rows}


def peak_memory(model, twin, x, xt) -> dict:
    """Peak bytes allocated during one forward: npconv by tracemalloc (NumPy reports its
    allocations to it), torch by its CPU memory profiler's peak of self allocations."""
    import tracemalloc

    tracemalloc.start()
    with fused(model):
        model(x)
    npconv_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    torch_peak = None
    try:
        from torch.profiler import ProfilerActivity, profile

        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            twin(xt)
        events = [e for e in prof.key_averages() if e.cpu_memory_usage > 0]
        torch_peak = max((e.cpu_memory_usage for e in events), default=None)
    except Exception as error:  # the profiler is optional evidence, not a requirement
        torch_peak = f"unavailable: {error}"
    return {"npconv_fused_peak_bytes": npconv_peak, "torch_largest_op_allocation_bytes": torch_peak}


def table(result: dict) -> str:
    headers = ["model (eval, batch 1, 224)", "torch ms", "fast ms", "fast/torch", "fast fused ms", "fused/torch",
               "reference ms", "npconv peak MiB"]
    body = [[r["model"], r["torch"]["median_ms"], r["fast"]["median_ms"], round(r["ratio_fast_torch"], 2),
             r["fast_fused"]["median_ms"], round(r["ratio_fused_torch"], 2), r["reference"]["median_ms"],
             round(r["peak_memory"]["npconv_fused_peak_bytes"] / 2**20, 1)] for r in result["rows"]]
    m = result["machine"]
    return (f"Whole models, float32, {m['threads']} threads (target: fast/torch <= 1.0); load average at the end: "
            f"{m['load_average']}\n\n" + harness.markdown(headers, body))


if __name__ == "__main__":
    result = measure()
    harness.write("models", result, table(result))
