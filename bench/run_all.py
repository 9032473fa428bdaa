"""Every benchmark, in order, each in a fresh process (so each configures its thread pools
before numpy, numba and torch load): thread pools, per-layer MobileNetV1, the classic
standard-vs-separable comparison, the roofline, whole models. About 3-4 minutes. The plain
process (bench/plain.py, and --load) is not run from here: it takes about 2 minutes each.

    python bench/run_all.py                      # all cores
    NPCONV_BENCH_THREADS=1 python bench/run_all.py

Results: bench/results/*.json, *.md, roofline.png (bench/results/<T>-thread/ when T is not
the number of cores); summary.md concatenates the tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import harness

HERE = Path(__file__).resolve().parent
SCRIPTS = ["threads.py", "layers.py", "classic.py", "roofline.py", "models.py"]


def main() -> int:
    began = time.perf_counter()
    failed = []
    for script in SCRIPTS:
        print(f"== bench/{script}", flush=True)
        if subprocess.run([sys.executable, script], cwd=HERE).returncode != 0:
            failed.append(script)
    threads = int(os.environ.get("NPCONV_BENCH_THREADS", 0)) or os.cpu_count() or 1
    results = harness.results_dir(threads)
    parts = [(results / f"{name}.md").read_text()
             for name in ("layers", "classic", "models", "plain", "load", "roofline", "threads")
             if (results / f"{name}.md").exists()]
    (results / "summary.md").write_text("\n".join(parts))
    print(f"== done in {time.perf_counter() - began:.0f} s" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
