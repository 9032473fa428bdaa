"""Hypothesis profiles and shared fixtures for the reference tests.

Profiles, chosen by the environment variable NPCONV_HYPOTHESIS_PROFILE:
    ci        (default) derandomized, few examples: a green main stays green, CI stays fast
    dev       random, a few more examples, for local work
    thorough  random, >= 2,000 examples per property, no deadline: exploration
              (properties that run a whole network each example - test_models, test_from_torch's
              known-classes property, test_train - take a fifth or a third of the profile's count)
A failure found while exploring becomes an @example or a regression test before the fix.

NPCONV_HYPOTHESIS_DB, when set, is the example database of the dev and thorough profiles: a directory or a
redis:// URL that all workers of a campaign share, so a failure found by one replays on all
(npconv.strategies.example_database; docs/testing.md).
"""

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_EXPLORING = dict(_COMMON)  # the random profiles; derandomized ones use no database (Hypothesis forbids it)
if os.environ.get("NPCONV_HYPOTHESIS_DB"):  # a directory or redis:// URL shared by a campaign's workers
    from npconv.strategies import example_database

    _EXPLORING["database"] = example_database(os.environ["NPCONV_HYPOTHESIS_DB"])

settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=100, print_blob=True, **_EXPLORING)
settings.register_profile("thorough", max_examples=2000, print_blob=True, **_EXPLORING)
settings.load_profile(os.environ.get("NPCONV_HYPOTHESIS_PROFILE", "ci"))


@functools.cache
def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device. Asked when a CUDA test is set up, not
    when this file is imported: pytest-xdist's controller imports it before it starts the
    workers and collects no test, and importing torch there held up the workers' start by
    1.5 s (about 1% of CI's run)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device; skipped where torch sees none")


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is not None and not cuda_available():
        pytest.skip("no CUDA device")


@pytest.fixture(scope="session", autouse=True)
def _cores_shared_among_workers():
    """Under pytest-xdist, each worker computes on its share of the cores (one each with
    `-n auto`), for PyTorch, Numba and BLAS alike. Each pool sizes itself to the whole machine,
    so with two workers on two cores four compute threads, and the spinning idle workers of
    three pools, fought over two cores. Results do not depend on it: every bound holds for any
    summation order, and the tests that need one order set it themselves."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    share = max(1, (os.cpu_count() or 1) // workers)
    numba_threads = numba.get_num_threads()
    numba.set_num_threads(min(share, numba_threads))
    try:
        import torch
    except ImportError:
        torch = None
    torch_threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(share)
    with threadpool_limits(share):
        yield
    numba.set_num_threads(numba_threads)
    if torch:
        torch.set_num_threads(torch_threads)


@pytest.fixture(scope="session", autouse=True)
def _no_tf32():
    """TF32 would round conv inputs to 10 mantissa bits on CUDA; the float32 bound assumes it is off."""
    try:
        import torch
    except ImportError:
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
