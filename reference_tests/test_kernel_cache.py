"""No stale kernels: editing a file that a cached Numba kernel calls into changes what runs.

The fast tier's plane filler (npconv/fast/planes.py) calls `source_index` from
npconv/kernels/pad2d.py. With Numba's own cache keyed by each kernel's file only, editing
pad2d.py left planes.py's compiled code in use. npconv keys the cache by a hash of every
kernel source (npconv/_numba_cache.py); this test edits the callee in a copy of the package
and runs the caller in fresh processes before and after."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import numpy as np, npconv
x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)
y = npconv.conv2d(x, w, padding=1, groups=2, padding_mode="reflect", engine="fast")
print(repr(float(y.astype(np.float64).ravel() @ np.arange(y.size))), npconv._numba_cache.cache_dir())
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
    import npconv

    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)
    y = npconv.conv2d(x, w, padding=1, groups=2, padding_mode="replicate", engine="fast")
    return float(y.astype(np.float64).ravel() @ np.arange(y.size))
