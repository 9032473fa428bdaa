"""How Numba's OpenMP pool, OpenBLAS's pool and PyTorch's OpenMP pool interact.

Runs the same small experiment in fresh processes under several thread configurations:
an interleaved loop of PyTorch and npconv fast (a depthwise layer on Numba's pool and a
pointwise layer on OpenBLAS's), and reports each one's median and p90 time. With the
libraries' defaults (spin-waiting pools) the pool that is idle keeps a core busy spinning
while the other works, and the other's fork-join then waits for the scheduler: medians
and tails blow up by milliseconds. bench/harness.py's configuration (passive waiting,
OpenBLAS's spin timeout at its minimum) is the "configured" row.

    python bench/threads.py

Writes bench/results/threads.{json,md}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import harness

HERE = Path(__file__).resolve().parent

PROBE = r"""
import harness
T = harness.configure()
import json, numpy as np, torch, npconv
harness.start_pools(T)
rng = np.random.default_rng(0)
xd = rng.standard_normal((1, 128, 56, 56), dtype=np.float32); wd = rng.standard_normal((128, 1, 3, 3), dtype=np.float32)
xp = rng.standard_normal((1, 256, 28, 28), dtype=np.float32); wp = rng.standard_normal((256, 256, 1, 1), dtype=np.float32)
td, tdw, tp, tpw = (torch.from_numpy(a) for a in (xd, wd, xp, wp))
with torch.no_grad():
    r = harness.interleaved({
        "torch dw": lambda: torch.nn.functional.conv2d(td, tdw, None, 1, 1, 1, 128),
        "fast dw": lambda: npconv.depthwise_conv2d(xd, wd, None, 1, 1, engine="fast"),
        "torch pw": lambda: torch.nn.functional.conv2d(tp, tpw),
        "fast pw": lambda: npconv.pointwise_conv2d(xp, wp, engine="fast"),
    }, 60, warmup=3)
print(json.dumps(r))
"""

CONFIGS = {
    "defaults (spinning pools), 2 threads": {"NPCONV_BENCH_SPIN": "1", "NPCONV_BENCH_THREADS": "2"},
    "configured (passive pools), 2 threads": {"NPCONV_BENCH_THREADS": "2"},
    "short spin (GOMP_SPINCOUNT=10000), 2 threads": {"NPCONV_BENCH_THREADS": "2", "NPCONV_BENCH_SPINCOUNT": "10000"},
    "configured, 1 thread": {"NPCONV_BENCH_THREADS": "1"},
}


def measure() -> dict:
    out = {}
    for name, env in CONFIGS.items():
        full = {k: v for k, v in os.environ.items()
                if k not in ("NPCONV_BENCH_SPIN", "NPCONV_BENCH_THREADS", "NPCONV_BENCH_SPINCOUNT")} | env
        done = subprocess.run([sys.executable, "-c", PROBE], cwd=HERE, env=full, capture_output=True, text=True,
                              timeout=300)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        out[name] = json.loads(lines[-1]) if lines else {"error": done.stderr[-2000:]}
        print(name, {k: round(v["median_ms"], 3) for k, v in out[name].items() if isinstance(v, dict)}, flush=True)
    return out


def table(result: dict) -> str:
    headers = ["configuration"] + [f"{k} median / p90 ms" for k in ("torch dw", "fast dw", "torch pw", "fast pw")]
    body = []
    for name, r in result["configs"].items():
        if "error" in r:
            body.append([name, "error", "", "", ""])
            continue
        body.append([name] + [f"{r[k]['median_ms']:.3f} / {r[k]['p90_ms']:.3f}" for k in
                              ("torch dw", "fast dw", "torch pw", "fast pw")])
    return (f"Thread pools, interleaved torch / npconv fast: dw 128@56, pw 256->256@28, batch 1 (load average at the "
            f"end: {result['load_average']})\n\n" + harness.markdown(headers, body))


if __name__ == "__main__":
    configs = measure()
    result = {"configs": configs, "load_average": os.getloadavg()}
    harness.write("threads", result, table(result))
