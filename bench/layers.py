"""Per-layer times of MobileNetV1 1.0-224's depthwise and pointwise convolutions.

For each distinct layer shape (batch 1, float32): PyTorch CPU (`F.conv2d`, no_grad), npconv's
fast engine and npconv's reference engine, all through their public functional APIs, with
the same thread count. torch and fast are timed interleaved (harness.interleaved); the
reference, a hundred times slower, a few times apart. Ratios are npconv time / torch time.

    python bench/layers.py          (or bench/run_all.py for everything)

Writes bench/results/layers.{json,md}.
"""

from __future__ import annotations

import harness

T = harness.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import npconv  # noqa: E402

# (kind, C_in, C_out, input size, stride, how many times MobileNetV1 has it)
LAYERS = [
    ("dw", 32, 32, 112, 1, 1), ("pw", 32, 64, 112, 1, 1),
    ("dw", 64, 64, 112, 2, 1), ("pw", 64, 128, 56, 1, 1),
    ("dw", 128, 128, 56, 1, 1), ("pw", 128, 128, 56, 1, 1),
    ("dw", 128, 128, 56, 2, 1), ("pw", 128, 256, 28, 1, 1),
    ("dw", 256, 256, 28, 1, 1), ("pw", 256, 256, 28, 1, 1),
    ("dw", 256, 256, 28, 2, 1), ("pw", 256, 512, 14, 1, 1),
    ("dw", 512, 512, 14, 1, 5), ("pw", 512, 512, 14, 1, 5),
    ("dw", 512, 512, 14, 2, 1), ("pw", 512, 1024, 7, 1, 1),
    ("dw", 1024, 1024, 7, 1, 1), ("pw", 1024, 1024, 7, 1, 1),
]


def layer_arrays(kind, cin, cout, size, rng):
    x = rng.standard_normal((1, cin, size, size), dtype=np.float32)
    w = rng.standard_normal((cout, 1, 3, 3) if kind == "dw" else (cout, cin, 1, 1), dtype=np.float32)
    return x, w


def measure(repeats: int = 30, reference_repeats: int = 2) -> dict:
    harness.start_pools(T)
    rng = np.random.default_rng(0)
    rows = []
    for kind, cin, cout, size, stride, count in LAYERS:
        x, w = layer_arrays(kind, cin, cout, size, rng)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        if kind == "dw":
            torch_fn = lambda: torch.nn.functional.conv2d(xt, wt, None, stride, 1, 1, cin)  # noqa: E731
            npconv_fn = lambda engine: npconv.depthwise_conv2d(x, w, None, stride, 1, engine=engine)  # noqa: E731
        else:
            torch_fn = lambda: torch.nn.functional.conv2d(xt, wt)  # noqa: E731
            npconv_fn = lambda engine: npconv.pointwise_conv2d(x, w, engine=engine)  # noqa: E731
        with npconv.count() as tally:
            y = npconv_fn("fast")
        with torch.no_grad():
            timed = harness.interleaved({"torch": torch_fn, "fast": lambda: npconv_fn("fast")}, repeats)
            reference = harness.interleaved({"reference": lambda: npconv_fn("reference")}, reference_repeats, warmup=1)
        out = y.shape[2]
        rows.append({
            "kind": kind, "c_in": cin, "c_out": cout, "size": size, "stride": stride, "out_size": out,
            "count_in_model": count, "macs": tally.macs,
            "bytes": 4 * (x.size + w.size + y.size),
            "torch": timed["torch"], "fast": timed["fast"], "reference": reference["reference"],
            "ratio_fast_torch": timed["fast"]["median_ms"] / timed["torch"]["median_ms"],
        })
        print(f"{kind} {cin}->{cout} @{size} s{stride}: torch {timed['torch']['median_ms']:.3f} ms, "
              f"fast {timed['fast']['median_ms']:.3f} ms, reference {reference['reference']['median_ms']:.1f} ms", flush=True)
    return {"machine": harness.machine(T) | {"numba_threading_layer": harness.threading_layer()}, "layers": rows}


def table(result: dict) -> str:
    headers = ["layer", "MACs (M)", "torch ms", "fast ms", "fast/torch", "reference ms", "fast GFLOP/s", "target"]
    body = []
    for r in result["layers"]:
        name = (f"dw {r['c_in']} @{r['size']} s{r['stride']}" if r["kind"] == "dw"
                else f"pw {r['c_in']}->{r['c_out']} @{r['size']}") + (f" (x{r['count_in_model']})" if r["count_in_model"] > 1 else "")
        target = 0.67 if r["kind"] == "dw" else 1.0
        ratio = r["ratio_fast_torch"]
        body.append([name, r["macs"] / 1e6, r["torch"]["median_ms"], r["fast"]["median_ms"], round(ratio, 2),
                     r["reference"]["median_ms"], 2 * r["macs"] / r["fast"]["median_ms"] / 1e6,
                     f"<= {target} {'met' if ratio <= target else 'NOT met'}"])
    for kind in ("dw", "pw"):
        rs = [r for r in result["layers"] if r["kind"] == kind]
        tt = sum(r["torch"]["median_ms"] * r["count_in_model"] for r in rs)
        tf = sum(r["fast"]["median_ms"] * r["count_in_model"] for r in rs)
        tr = sum(r["reference"]["median_ms"] * r["count_in_model"] for r in rs)
        body.append([f"all {kind} layers of V1", sum(r["macs"] * r["count_in_model"] for r in rs) / 1e6, tt, tf,
                     round(tf / tt, 2), tr, "", ""])
    m = result["machine"]
    return (f"MobileNetV1 1.0-224 layers, batch 1, float32, {m['threads']} threads; medians of interleaved runs "
            f"(load average at the end: {m['load_average']})\n\n" + harness.markdown(headers, body))


if __name__ == "__main__":
    result = measure()
    harness.write("layers", result, table(result))
