"""Moving arrays and weights between npconv and PyTorch twins in the layer and model tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from error_bounds import Bounded
from npconv.nn.hooks import hooked
from npconv.tolerance import assert_within_bound

TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}


def tensor(a: np.ndarray, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.array(a, order="C")).to(device)  # (ascontiguousarray makes 0-d arrays 1-d)


def numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def run_torch(module: torch.nn.Module, x: np.ndarray, device="cpu", **kwargs) -> np.ndarray:
    """module(x) on `device` (the module is moved there and back), as NumPy."""
    module.to(device)
    try:
        with torch.no_grad():
            return numpy(module(tensor(x, device), **kwargs))
    finally:
        module.to("cpu")


def randomize_(module: torch.nn.Module, rng: np.random.Generator, dtype=np.float32) -> torch.nn.Module:
    """Give every layer of a torch module tree random values in `dtype` that keep
    activations of order one through a deep network, in place:

        Conv2d / ConvTranspose2d / Linear weight  N(0, 2 / fan_in) (He et al. 2015), bias N(0, 0.1^2)
        BatchNorm2d  weight U(0.5, 1.5), bias N(0, 0.2^2), running_mean N(0, 0.2^2),
                     running_var U(0.5, 2), num_batches_tracked 0..5

    so the running statistics are not the trivial 0 and 1 of a fresh layer.
    """
    module.to(TORCH_DTYPES[np.dtype(dtype)])
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                w = m.weight
                fan_in = w.shape[1] * math.prod(w.shape[2:]) if w.dim() > 1 else w.shape[0]
                if isinstance(m, torch.nn.ConvTranspose2d):
                    fan_in = (m.in_channels // m.groups) * math.prod(w.shape[2:])
                std = math.sqrt(2.0 / max(fan_in, 1))
                w.copy_(torch.from_numpy(rng.normal(0, std, w.shape).astype(dtype)))
                if m.bias is not None:
                    m.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, m.bias.shape).astype(dtype)))
            elif isinstance(m, torch.nn.BatchNorm2d):
                C = m.num_features
                if m.weight is not None:
                    m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, C).astype(dtype)))
                    m.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, C).astype(dtype)))
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.2, C).astype(dtype)))
                    m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, C).astype(dtype)))
                    m.num_batches_tracked.fill_(int(rng.integers(0, 6)))
    return module


def assert_bounded(actual, bounded: Bounded, what: str) -> None:
    """`actual` (NumPy or torch) within `bounded.error` of `bounded.value`."""
    if isinstance(actual, torch.Tensor):
        actual = numpy(actual)
    assert_within_bound(actual, bounded.value, bounded.error, what=what)


MEANINGFUL = 0.1


def assert_not_vacuous(bounded: Bounded, what: str, limit: float = MEANINGFUL) -> None:
    """The bound must be small against the values it bounds, or the comparison proves little:
    its largest entry below `limit` (a tenth) times the largest reference magnitude, so that
    any error of a tenth of the output's scale would be caught. (A per-element relative
    criterion cannot be used: outputs that cancel to near zero have bounds as large as
    themselves. In practice float32 bounds are ~1e-4 of the scale, float64 ones ~1e-13.)"""
    scale = float(np.max(np.abs(bounded.value), initial=0.0))
    if scale > 0:
        worst = float(np.max(bounded.error, initial=0.0))
        assert worst <= limit * scale, f"{what}: bound {worst:.3g} is not small against |values| <= {scale:.3g}"


def observe_torch(module: torch.nn.Module, x: np.ndarray, device="cpu"):
    """Run a torch module tree once; return (output, Observed) with every leaf's input and
    output, copied as they were (the twins' in-place ReLU6 would otherwise overwrite the
    preceding BatchNorm's output), and the state_dict after the run."""
    from error_bounds import Observed

    io: dict = {}

    def before(name, m, args):
        io[name] = [numpy(args[0].clone()), None]

    def after(name, m, args, out):
        io[name][1] = numpy(out.clone())

    with hooked(module, pre=before, post=after, leaves_only=True):
        output = run_torch(module, x, device)
    state = {k: numpy(v) for k, v in module.state_dict().items()}
    return output, Observed({k: tuple(v) for k, v in io.items()}, state)


def observe_npconv(module, x: np.ndarray):
    """The same for an npconv module tree."""
    from error_bounds import Observed

    io: dict = {}

    def before(name, m, args):
        io[name] = [np.array(args[0]), None]

    def after(name, m, args, out):
        io[name][1] = np.array(out)

    with hooked(module, pre=before, post=after, leaves_only=True):
        output = module(x)
    return output, Observed({k: tuple(v) for k, v in io.items()}, dict(module.state_dict()))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run torch single-threaded in these modules. On a small shared machine, torch's
    intra-op worker threads spin-wait for cores other processes hold: a MobileNetV2 forward
    took 0.3-5 s with 2 threads and 0.02 s with 1. Results are unaffected in what is tested:
    every bound here holds for any summation order. (Import this fixture into a test module
    to apply it there.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
