"""No stale kernels: editing a file that a cached Numba kernel calls into changes what runs.

The fast tier's plane filler (npconv/fast/planes.py) calls `source_index` from
npconv/kernels/pad2d.py. With Numba's own cache keyed by each kernel's file only, editing
pad2d.py left planes.py's compiled code in use. npconv keys the cache by a hash of every
kernel source (npconv/_numba_cache.py); this test edits the callee in a copy of the package
and runs the caller in fresh processes before and after.

The caller run is planes.py's `fill_all` itself, the cached kernel that calls `source_index`,
not a whole `npconv.conv2d`: a cold compile of the parallel depthwise kernel around it took
15 s a process, and proves nothing more about how the cache is keyed."""

import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

# A 6x6 plane padded by 1 on each side into an 8x8 sub-plane (stride 1), in `mode`: the fill a
# depthwise convolution with padding=1 makes; printed as one number that tells fills apart.
FILL = """
import numpy as np
from npconv.fast.planes import fill_all
from npconv.kernels.pad2d import MODE_CODES
x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
flat = np.zeros(8 * 8 + 8, np.float32)
fill_all(x, 0, 1, 1, 1, 8, 8, 1, 1, 8, 8, MODE_CODES[{mode!r}], flat)
total = float(flat.astype(np.float64) @ np.arange(flat.size))
"""
RUN = FILL.format(mode="reflect") + """
import npconv
print(repr(total), npconv._numba_cache.cache_dir())
"""


def _run(package_parent: Path, cache: Path) -> tuple[float, str]:
    env = {"PYTHONPATH": str(package_parent), "NPCONV_NUMBA_CACHE": str(cache), "PATH": "/usr/bin:/bin",
           "HOME": str(cache)}
    result = subprocess.run([sys.executable, "-c", RUN], cwd=package_parent, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    total, where = result.stdout.split()
    return float(total), where


def test_editing_a_callee_in_another_file_recompiles_its_callers(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "npconv", copy / "npconv", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    before, first_dir = _run(copy, cache)
    again, same_dir = _run(copy, cache)          # cached: the same directory, the same result
    assert (again, same_dir) == (before, first_dir)
    assert any(Path(first_dir).rglob("*planes*.nbi")), "planes.py's kernels were not cached"

    pad2d = copy / "npconv" / "kernels" / "pad2d.py"
    source = pad2d.read_text()
    mutated = source.replace("return -k if k < 0 else 2 * (size - 1) - k", "return 0 if k < 0 else size - 1")
    assert mutated != source
    pad2d.write_text(mutated)                    # reflect now replicates; planes.py is untouched
    after, new_dir = _run(copy, cache)
    assert new_dir != first_dir
    assert after != before

    # the mutated callee computes what replicate padding computes, through the fresh cache
    reference = _replicate_total()
    assert after == reference


def _replicate_total() -> float:
    scope = {}
    exec(FILL.format(mode="replicate"), scope)
    return scope["total"]
