"""Conv2d -> BatchNorm2d -> ReLU6 fused on the fast engine (npconv/nn/fusion.py).

What is proved:
* values: over generated convolutions (depthwise and not, every stride, dilation, padding and
  padding mode the strategies draw, float32 and float64, with and without bias, affine BN and
  ReLU6), a Sequential run on the fast engine is fused, and its output is within the bound of
  the fused arithmetic (test_fast.fused_expectation) of the float64 reference with the
  module's own BatchNorm folded: the layers' arguments reach the kernel as the layers would
  use them;
* counts: the tally by layer and by op equals the reference engine's, layer for layer, here
  and on a whole MobileNetV2;
* when not to fuse: training, a recorded backward, hooks, uncovered convolutions, float16,
  and inputs the layers refuse run unfused, with the unfused errors and messages.
"""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import npconv
import npconv.fast
import npconv.nn.fusion
from npconv import nn
from npconv.models import MobileNetV2
from npconv.tolerance import assert_within_bound
from test_fast import FUSED_CONFIGS, fused_expectation


@contextlib.contextmanager
def fused_calls():
    """A list that gets one entry per fused call made inside the block."""
    calls = []
    original = npconv.nn.fusion.run

    def spy(parent, layers, input, **kwargs):
        calls.append([type(layer).__name__ for layer in layers])
        return original(parent, layers, input, **kwargs)

    npconv.nn.fusion.run = spy
    try:
        yield calls
    finally:
        npconv.nn.fusion.run = original


def _block(cfg, dtype, relu6: bool, affine: bool, rng) -> nn.Sequential:
    conv = nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation,
                     cfg.groups, cfg.bias, cfg.padding_mode, dtype=dtype)
    conv.weight = rng.standard_normal(cfg.weight_shape).astype(dtype)
    if cfg.bias:
        conv.bias = rng.standard_normal(cfg.out_channels).astype(dtype)
    bn = nn.BatchNorm2d(cfg.out_channels, eps=1e-3, affine=affine, dtype=dtype)
    bn.running_mean = rng.standard_normal(cfg.out_channels).astype(dtype)
    bn.running_var = rng.uniform(0.1, 4, cfg.out_channels).astype(dtype)
    if affine:
        bn.weight = rng.standard_normal(cfg.out_channels).astype(dtype)
        bn.bias = rng.standard_normal(cfg.out_channels).astype(dtype)
    layers = [conv, bn] + ([nn.ReLU6()] if relu6 else [])
    return nn.Sequential(*layers).eval()


def _tallies(model, x, engine):
    with npconv.engine.use(engine), npconv.count() as tally:
        y = model(x)
    by_layer = {layer: counts.as_dict() for layer, counts in tally.by_layer.items()}
    by_op = {op: counts.as_dict() for op, counts in tally.by_op.items()}
    return y, by_layer, by_op


@given(cfg=FUSED_CONFIGS, dtype=st.sampled_from((np.float32, np.float64)), relu6=st.booleans(),
       affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_a_fused_block_is_within_the_fused_bound_and_counts_like_the_reference(cfg, dtype, relu6, affine, seed):
    rng = np.random.default_rng(seed)
    model = _block(cfg, dtype, relu6, affine, rng)
    x = (3 * rng.standard_normal(cfg.input_shape)).astype(dtype)
    with fused_calls() as calls:
        fused, fused_layers, fused_ops = _tallies(model, x, "fast")
    assert calls == [["Conv2d", "BatchNorm2d"] + (["ReLU6"] if relu6 else [])]
    _, reference_layers, reference_ops = _tallies(model, x, "reference")
    assert fused_layers == reference_layers and fused_ops == reference_ops

    conv, bn = model[0], model[1]
    scale, shift = npconv.fast.batch_norm_scale_shift(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps,
                                                      dtype)
    exact, bound = fused_expectation(cfg, x, conv.weight, conv.bias, scale, shift, relu6)
    assert fused.dtype == x.dtype
    assert_within_bound(fused, exact, bound, what="a fused Sequential")


def test_mobilenet_v2_fuses_every_run_and_counts_layer_for_layer_like_the_reference():
    model = MobileNetV2(width_mult=0.5, num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    runs = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    with fused_calls() as calls:
        fast, fast_layers, fast_ops = _tallies(model, x, "fast")
    assert len(calls) == runs > 0
    reference, reference_layers, reference_ops = _tallies(model, x, "reference")
    assert fast_layers == reference_layers and fast_ops == reference_ops
    assert fast.shape == reference.shape


_CFG = dict(in_channels=4, out_channels=4, kernel_size=3, padding=1)


def _unfused(model, x):
    """model(x) on the fast engine with no fused call, and the same on the reference engine:
    both results, or both errors' messages."""
    outcomes = []
    for engine in ("fast", "reference"):
        with fused_calls() as calls, npconv.engine.use(engine):
            try:
                outcomes.append(model(x))
            except (ValueError, TypeError) as error:
                outcomes.append(str(error))
        assert calls == [], engine
    return outcomes


def test_what_is_not_fused_runs_unfused_with_the_unfused_errors():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 6, 6), dtype=np.float32)

    def block(**conv):
        return nn.Sequential(nn.Conv2d(**{**_CFG, **conv}), nn.BatchNorm2d(4), nn.ReLU6()).eval()

    training = block().train()
    fast, reference = _unfused(training, x)
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)   # batch statistics: both engines ran

    hooked = block()
    seen = []
    hooked[1].register_forward_hook(lambda module, args, output: seen.append(output.shape))
    _unfused(hooked, x)
    assert seen == [(1, 4, 6, 6)] * 2                                  # the hook saw its own layer, twice

    _unfused(block(groups=2), x)                                         # grouped: not in the fast tier
    _unfused(block(), x.astype(np.float16))                              # float16: widened, not fused

    fast_error, reference_error = _unfused(block(), x[0])               # unbatched: BatchNorm2d refuses it
    assert fast_error == reference_error and "expected 4D input" in fast_error

    mismatch = nn.Sequential(nn.Conv2d(**_CFG), nn.BatchNorm2d(5), nn.ReLU6()).eval()
    fast_error, reference_error = _unfused(mismatch, x)
    assert fast_error == reference_error and "5 channels" in fast_error

    with nn.enable_grad():
        _unfused(block(), x)                                             # a backward may follow: keep the inputs
