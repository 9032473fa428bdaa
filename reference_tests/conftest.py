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


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


CUDA = _cuda_available()

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]


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
