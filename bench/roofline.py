"""A roofline of this machine and where MobileNetV1's layers sit under it.

Measures the machine's peak compute (the best of a large float32 matrix product through
NumPy's BLAS and through PyTorch, GFLOP/s) and memory bandwidth (a 256 MiB array copy:
read + write bytes per second), then plots each layer of bench/results/layers.json at its
arithmetic intensity I = FLOPs / bytes (2 * MACs over the float32 bytes of input, weights and
output that must cross memory at least once) against the GFLOP/s it achieved, for PyTorch
and npconv fast. The roof is min(peak, I * bandwidth), drawn twice: with the DRAM bandwidth
(256 MiB copy) and with the L3 bandwidth (8 MiB copy). At batch 1 a layer's input and output
(at most 3.2 MB here) fit in the 32 MiB L3, so the L3 roof is the one that binds them.

Depthwise layers do 9 MACs per output pixel: I is about 2 FLOPs/byte, far left of the ridge
point peak / bandwidth, so their time is set by moving bytes and cutting MACs does not cut
time proportionally; pointwise layers do C_in MACs per output pixel and sit near the roof.

    python bench/roofline.py          (after bench/layers.py)

Writes bench/results/roofline.{json,md,png}.
"""

from __future__ import annotations

import json
import time

import harness

T = harness.configure()

import numpy as np  # noqa: E402
import torch  # noqa: E402


def best_of(fn, repeats=5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def machine_peaks() -> dict:
    harness.start_pools(T)
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    at = torch.from_numpy(a)
    flops = 2 * n**3
    numpy_gflops = flops / best_of(lambda: a @ a) / 1e9
    torch_gflops = flops / best_of(lambda: at @ at) / 1e9
    big = np.ones(64 * 2**20, np.float32)  # 256 MiB
    dst = np.empty_like(big)
    bandwidth = 2 * big.nbytes / best_of(lambda: np.copyto(dst, big), 3) / 1e9
    small, small_dst = big[:2 * 2**20], dst[:2 * 2**20]  # 8 MiB: stays in the L3 cache
    cache_bandwidth = 2 * small.nbytes / best_of(lambda: np.copyto(small_dst, small), 20) / 1e9
    return {"peak_gflops": max(numpy_gflops, torch_gflops), "numpy_sgemm_gflops": numpy_gflops,
            "torch_sgemm_gflops": torch_gflops, "copy_bandwidth_gbs": bandwidth,
            "cache_copy_bandwidth_gbs": cache_bandwidth}


def plot(peaks: dict, layers: list, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    intensity = np.logspace(-1, 3, 200)
    ax.loglog(intensity, np.minimum(peaks["peak_gflops"], intensity * peaks["copy_bandwidth_gbs"]), "k-", lw=2,
              label=f"roof: {peaks['peak_gflops']:.0f} GFLOP/s, DRAM {peaks['copy_bandwidth_gbs']:.0f} GB/s")
    ax.loglog(intensity, np.minimum(peaks["peak_gflops"], intensity * peaks["cache_copy_bandwidth_gbs"]), "k--", lw=1,
              label=f"roof from L3 (8 MiB copy): {peaks['cache_copy_bandwidth_gbs']:.0f} GB/s")
    for engine, marker in (("torch", "s"), ("fast", "o")):
        for kind, color in (("dw", "tab:blue"), ("pw", "tab:orange")):
            rs = [r for r in layers if r["kind"] == kind]
            xs = [2 * r["macs"] / r["bytes"] for r in rs]
            ys = [2 * r["macs"] / r[engine]["median_ms"] / 1e6 for r in rs]
            ax.scatter(xs, ys, marker=marker, color=color, facecolors="none" if engine == "torch" else color,
                       label=f"{'depthwise' if kind == 'dw' else 'pointwise'}, {'PyTorch' if engine == 'torch' else 'npconv fast'}")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of input + weights + output)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title("MobileNetV1 1.0-224 layers, batch 1, float32")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    peaks = machine_peaks()
    layers = json.loads((harness.RESULTS / "layers.json").read_text())["layers"]
    plot(peaks, layers, harness.RESULTS / "roofline.png")
    rows = [[f"{r['kind']} {r['c_in']}->{r['c_out']} @{r['size']} s{r['stride']}", round(2 * r["macs"] / r["bytes"], 2),
             2 * r["macs"] / r["torch"]["median_ms"] / 1e6, 2 * r["macs"] / r["fast"]["median_ms"] / 1e6,
             min(peaks["peak_gflops"], 2 * r["macs"] / r["bytes"] * peaks["copy_bandwidth_gbs"])] for r in layers]
    text = (f"Peak {peaks['peak_gflops']:.0f} GFLOP/s (sgemm 2048: numpy {peaks['numpy_sgemm_gflops']:.0f}, torch "
            f"{peaks['torch_sgemm_gflops']:.0f}), copy bandwidth {peaks['copy_bandwidth_gbs']:.1f} GB/s (DRAM), "
            f"{peaks['cache_copy_bandwidth_gbs']:.1f} GB/s (L3), {T} threads; "
            f"ridge at {peaks['peak_gflops'] / peaks['copy_bandwidth_gbs']:.0f} FLOP/byte\n\n"
            + harness.markdown(["layer", "FLOP/byte", "torch GFLOP/s", "fast GFLOP/s", "roof GFLOP/s"], rows))
    harness.write("roofline", {"machine": harness.machine(T), "peaks": peaks}, text)
