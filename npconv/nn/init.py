"""Deterministic parameter initialisation with PyTorch's default distributions.

PyTorch draws from its global generator; npconv draws from a NumPy `Generator`. Every
layer takes `rng`: None (the package's default generator, reset by `manual_seed`), an int
seed, or a `numpy.random.Generator`. Same seed and same construction order, same weights.
The values differ from PyTorch's (another random stream); the distributions are the same:

    Conv2d, ConvTranspose2d, Linear weight   kaiming_uniform(a = sqrt(5)):
        gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),  bound = sqrt(3) * gain / sqrt(fan_in)
             = 1 / sqrt(fan_in)                  -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    their bias                               U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (0 when fan_in = 0)
    BatchNorm2d                              weight 1, bias 0, running_mean 0, running_var 1

fan_in and fan_out follow torch.nn.init._calculate_fan_in_and_fan_out: for a weight of shape
(d0, d1, kH, kW), fan_in = d1 * kH * kW and fan_out = d0 * kH * kW. For Conv2d that is
(C_in / groups) * kH * kW in; for ConvTranspose2d, whose weight is (C_in, C_out / groups, kH,
kW), it is (C_out / groups) * kH * kW, as in PyTorch.

A dry build. Inside `with init.dry():` every initialiser here (uniform, kaiming_uniform,
bias_uniform, kaiming_normal_fan_out, normal, zeros, ones) returns a `placeholder`: an array
of the right shape and dtype that takes no memory (read-only, every stride 0, over one
shared zero), and draws nothing; `spawn` (a layer's own generator, Dropout's) draws nothing
either, and `Module.register_parameter` / `register_buffer` keep any other array a
constructor makes (BatchNorm2d's np.ones(C)) as a placeholder too. A model's constructor run
inside it builds the model's real structure with every array in place and none kept or
drawn, so `sum(p.size for p in model.parameters())` counts what a real build would allocate
-- npconv.memory's check before a model is built. Arguments are validated exactly as outside
(same errors); the default generator's state is untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

_default_generator = np.random.default_rng(0)
_dry: contextvars.ContextVar[bool] = contextvars.ContextVar("npconv_init_dry", default=False)


@contextlib.contextmanager
def dry():
    """Inside, the initialisers return placeholders and draw nothing (module docstring)."""
    token = _dry.set(True)
    try:
        yield
    finally:
        _dry.reset(token)


def is_dry() -> bool:
    """True inside `dry()`."""
    return _dry.get()


_ZERO = bytes(64)  # one zero of any dtype, shared by every placeholder


def placeholder(shape, dtype) -> np.ndarray:
    """An array of `shape` and `dtype` that takes no memory: one zero, read-only, every stride
    0 (`.size` and `.nbytes` are those of the real array)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return np.ndarray(shape, dtype, buffer=_ZERO, strides=(0,) * len(shape))


def manual_seed(seed: int) -> None:
    """Reset the default generator, as `torch.manual_seed` does for PyTorch's."""
    global _default_generator
    _default_generator = np.random.default_rng(seed)


def generator(rng=None) -> np.random.Generator:
    """The Generator to draw from: `rng` itself, a new one seeded with the int `rng`, or the
    default one when rng is None."""
    if rng is None:
        return _default_generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, not {type(rng).__name__}")


def spawn(rng=None) -> np.random.Generator:
    """A layer's own Generator, seeded by one draw from `generator(rng)` (Dropout's mask
    stream); inside `dry()` a fixed one, nothing drawn."""
    parent = generator(rng)
    if _dry.get():
        return np.random.default_rng(0)
    return np.random.default_rng(parent.integers(2**63))


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`, PyTorch's rule (module docstring)."""
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def uniform(shape, bound: float, rng: np.random.Generator, dtype) -> np.ndarray:
    """U(-bound, bound) in `dtype` (drawn in float64, then rounded)."""
    if _dry.get():
        return placeholder(shape, dtype)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, rng: np.random.Generator, dtype, a: float = math.sqrt(5)) -> np.ndarray:
    """He et al. 2015 uniform init for a leaky-ReLU slope `a`, fan_in mode, as
    `torch.nn.init.kaiming_uniform_`: U(-b, b), b = sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in)."""
    fan_in, _ = fan_in_and_fan_out(tuple(shape))
    if fan_in == 0:
        return zeros(shape, dtype)
    gain = math.sqrt(2.0 / (1 + a * a))
    return uniform(shape, math.sqrt(3.0) * gain / math.sqrt(fan_in), rng, dtype)


def bias_uniform(weight_shape, out_features: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in."""
    fan_in, _ = fan_in_and_fan_out(tuple(weight_shape))
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform((out_features,), bound, rng, dtype)


def kaiming_normal_fan_out(shape, rng: np.random.Generator, dtype) -> np.ndarray:
    """`torch.nn.init.kaiming_normal_(w, mode="fan_out")` for ReLU: N(0, 2 / fan_out)
    (torchvision's MobileNetV2 convolutions)."""
    _, fan_out = fan_in_and_fan_out(tuple(shape))
    std = math.sqrt(2.0) / math.sqrt(fan_out)
    if _dry.get():
        return placeholder(shape, dtype)
    return rng.normal(0.0, std, size=shape).astype(dtype)


def normal(shape, std: float, rng: np.random.Generator, dtype) -> np.ndarray:
    """N(0, std^2) in `dtype`."""
    if _dry.get():
        return placeholder(shape, dtype)
    return rng.normal(0.0, std, size=shape).astype(dtype)


def zeros(shape, dtype) -> np.ndarray:
    """Zeros in `dtype` (`torch.nn.init.zeros_`); a placeholder inside `dry()`."""
    return placeholder(shape, dtype) if _dry.get() else np.zeros(shape, dtype=dtype)


def ones(shape, dtype) -> np.ndarray:
    """Ones in `dtype` (`torch.nn.init.ones_`); a placeholder inside `dry()`."""
    return placeholder(shape, dtype) if _dry.get() else np.ones(shape, dtype=dtype)
