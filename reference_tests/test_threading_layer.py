"""The fast engine's thread pool in a plain process (npconv/_threads.py, bench/plain.py).

Importing npconv asks Numba for a threading layer that does not spin (TBB, then workqueue,
OpenMP last) unless the user chose one; these run in fresh interpreters, since the layer is a
process-wide choice that cannot change once Numba's pool has started."""

import os
import subprocess
import sys

import pytest

PROBE = """
import numpy as np, numba, npconv
y = npconv.depthwise_conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32), padding=1, engine="fast")
assert float(y[0, 0, 2, 2]) == 9.0 and float(y[0, 0, 0, 0]) == 4.0
print(numba.threading_layer(), " ".join(numba.config.THREADING_LAYER_PRIORITY))
"""


# Numba's own pool started by a parallel function, without npconv
START_NUMBA = ("import numba, numpy as np\n@numba.njit(parallel=True)\ndef f(a):\n    for i in numba.prange(a.size):\n"
               "        a[i] = i\nf(np.zeros(4))\n")


def _run(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter whose NUMBA_THREADING_* settings are only `env_extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")} | env_extra
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


def _layer(env_extra: dict, before: str = "") -> tuple[str, str]:
    done = _run(before + PROBE, env_extra)
    assert done.returncode == 0, done.stderr[-2000:]
    layer, priority = done.stdout.split(maxsplit=1)
    return layer, priority.strip()


def _available(layer: str) -> bool:
    return _run(START_NUMBA, {"NUMBA_THREADING_LAYER": layer}).returncode == 0


def test_npconv_puts_the_layers_that_do_not_spin_first():
    layer, priority = _layer({})
    assert priority == "tbb workqueue omp"
    assert layer == ("tbb" if _available("tbb") else "workqueue")
    assert layer != "omp"


@pytest.mark.parametrize("how", ["NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "config"])
def test_a_layer_the_user_chose_is_kept(how):
    if how == "config":
        layer, priority = _layer({}, before="import numba\nnumba.config.THREADING_LAYER = 'workqueue'\n")
        assert (layer, priority) == ("workqueue", "tbb omp workqueue")
    elif how == "NUMBA_THREADING_LAYER":
        assert _layer({how: "workqueue"}) == ("workqueue", "tbb omp workqueue")
    else:
        assert _layer({how: "workqueue omp tbb"}) == ("workqueue", "workqueue omp tbb")


def test_a_pool_already_running_is_left_alone():
    layer, priority = _layer({}, before=START_NUMBA + "started = numba.threading_layer()\n")
    assert priority == "tbb omp workqueue"  # Numba's own default, untouched
