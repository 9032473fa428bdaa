"""The classic comparison: standard vs depthwise-separable 3x3 convolution.

32 -> 64 and 32 -> 128 channels, batch 4, 128 x 128, float32, padding 1: parameters, MACs
(counted by npconv), and times of PyTorch CPU, npconv fast, npconv reference, and PyTorch
CUDA when a GPU is present (synchronised, TF32 off). The separable form is depthwise 3x3
(32 channels) then pointwise 32 -> C_out, both without bias.

    python bench/classic.py

Writes bench/results/classic.{json,md}.
"""

from __future__ import annotations

import harness

T = harness.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import npconv  # noqa: E402

BATCH, SIZE, C_IN = 4, 128, 32


def measure(repeats: int = 10) -> dict:
    harness.start_pools(T)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, C_IN, SIZE, SIZE), dtype=np.float32)
    cuda = torch.cuda.is_available()
    rows = []
    for c_out in (64, 128):
        w = rng.standard_normal((c_out, C_IN, 3, 3), dtype=np.float32)
        dw = rng.standard_normal((C_IN, 1, 3, 3), dtype=np.float32)
        pw = rng.standard_normal((c_out, C_IN, 1, 1), dtype=np.float32)
        xt, wt, dwt, pwt = (torch.from_numpy(a) for a in (x, w, dw, pw))
        forms = {
            "standard": dict(
                npconv=lambda engine: npconv.conv2d(x, w, padding=1, engine=engine),
                torch=lambda a, b: torch.nn.functional.conv2d(a, b, padding=1),
                torch_args=(xt, wt), params=w.size),
            "separable": dict(
                npconv=lambda engine: npconv.depthwise_separable_conv2d(x, dw, pw, padding=1, engine=engine),
                torch=lambda a, b, c: torch.nn.functional.conv2d(
                    torch.nn.functional.conv2d(a, b, padding=1, groups=C_IN), c),
                torch_args=(xt, dwt, pwt), params=dw.size + pw.size),
        }
        for form, f in forms.items():
            with npconv.count() as tally:
                f["npconv"]("fast")
            with torch.no_grad():
                timed = harness.interleaved({"torch": lambda: f["torch"](*f["torch_args"]),
                                             "fast": lambda: f["npconv"]("fast")}, repeats)
                reference = harness.interleaved({"reference": lambda: f["npconv"]("reference")}, 1, warmup=1)
                gpu = None
                if cuda:
                    old = torch.backends.cudnn.allow_tf32
                    torch.backends.cudnn.allow_tf32 = False
                    args = [a.cuda() for a in f["torch_args"]]
                    run = lambda: (f["torch"](*args), torch.cuda.synchronize())  # noqa: E731
                    gpu = harness.interleaved({"cuda": run}, repeats, warmup=3)["cuda"]
                    torch.backends.cudnn.allow_tf32 = old
            rows.append({"c_out": c_out, "form": form, "params": int(f["params"]), "macs": tally.macs,
                         "torch": timed["torch"], "fast": timed["fast"], "reference": reference["reference"],
                         "cuda": gpu, "ratio_fast_torch": timed["fast"]["median_ms"] / timed["torch"]["median_ms"]})
            print(f"{form} 32->{c_out}: torch {timed['torch']['median_ms']:.2f} ms, fast {timed['fast']['median_ms']:.2f} ms, "
                  f"reference {reference['reference']['median_ms']:.0f} ms", flush=True)
    return {"machine": harness.machine(T), "rows": rows}


def table(result: dict) -> str:
    headers = ["conv 3x3, batch 4, 128x128", "params", "MACs (M)", "torch CPU ms", "npconv fast ms", "fast/torch",
               "npconv reference ms", "torch CUDA ms"]
    body = []
    for r in result["rows"]:
        body.append([f"{r['form']} 32->{r['c_out']}", r["params"], r["macs"] / 1e6, r["torch"]["median_ms"],
                     r["fast"]["median_ms"], round(r["ratio_fast_torch"], 2), r["reference"]["median_ms"],
                     "no GPU" if r["cuda"] is None else r["cuda"]["median_ms"]])
    for c_out in (64, 128):
        s, d = (next(r for r in result["rows"] if r["c_out"] == c_out and r["form"] == f) for f in ("standard", "separable"))
        body.append([f"separable / standard, 32->{c_out}", round(d["params"] / s["params"], 3),
                     round(d["macs"] / s["macs"], 3), round(d["torch"]["median_ms"] / s["torch"]["median_ms"], 2),
                     round(d["fast"]["median_ms"] / s["fast"]["median_ms"], 2), "",
                     round(d["reference"]["median_ms"] / s["reference"]["median_ms"], 2), ""])
    m = result["machine"]
    return (f"Standard vs depthwise-separable 3x3, float32, {m['threads']} threads (target for standard 32->64: "
            f"fast/torch <= 1.3); load average at the end: {m['load_average']}\n\n" + harness.markdown(headers, body))


if __name__ == "__main__":
    result = measure()
    harness.write("classic", result, table(result))
