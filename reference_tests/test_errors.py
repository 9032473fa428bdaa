"""Bad input gets a clear error, exactly when PyTorch (nn.Conv2d semantics) rejects it.

Property: over drawn configurations - valid ones and ones with exactly one rule broken -
npconv.conv2d raises ValueError/TypeError if and only if nn.Conv2d (construction or call)
raises, and the message names the broken rule's subject.
"""

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch_conv import torch_raises

import npconv
from npconv.strategies import Conv2dConfig, conv2d_arrays, conv2d_configs, invalid_conv2d_configs

# What the message must mention, per broken rule (npconv's wording follows PyTorch's).
MENTIONS = {
    "stride_not_positive": "stride",
    "padding_negative": "padding",
    "dilation_below_one": "dilation",
    "groups_not_positive": "groups",
    "groups_not_dividing_out_channels": "divisible",
    "channel_mismatch": "channels",
    "kernel_larger_than_padded_input": "Kernel size",
    "same_with_stride": "strided",
    "unknown_padding_string": "padding string",
    "unknown_padding_mode": "padding_mode",
    "reflect_padding_too_wide": "Padding size",
    "circular_padding_too_wide": "wrapping",
    "input_ndim": "3D (unbatched) or 4D",
}


def _npconv_raises(cfg, x, w, b):
    try:
        npconv.conv2d(x, w, b, **cfg.kwargs())
    except (ValueError, TypeError) as e:
        return e
    return None


def _arrays(cfg, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.input_shape).astype(np.float32)
    w = rng.standard_normal(cfg.weight_shape if cfg.groups > 0 and cfg.out_channels > 0 else (1, 1, 1, 1))
    b = rng.standard_normal(max(cfg.out_channels, 0)) if cfg.bias else None
    return x, w.astype(np.float32), None if b is None else b.astype(np.float32)


@given(cfg=invalid_conv2d_configs())
def test_invalid_configurations_raise_like_torch(cfg):
    x, w, b = _arrays(cfg)
    ours, theirs = _npconv_raises(cfg, x, w, b), torch_raises(cfg, x, w, b)
    assert theirs is not None, f"the strategy drew a configuration torch accepts: {cfg}"
    assert ours is not None, f"torch raised {theirs!r}, npconv did not"
    assert MENTIONS[cfg.broken] in str(ours), f"{cfg.broken}: message {ours} does not mention it"


def test_fewer_output_channels_than_groups_is_refused_for_the_weight_size():
    """The thorough profile drew 1 output channel for groups=2 under the "not dividing" rule:
    what fails first there, in PyTorch's functional conv2d and in npconv, is the weight's size,
    so the strategy now draws more output channels than groups for that rule (an example kept
    here: its message is the size check's)."""
    cfg = Conv2dConfig(batch=1, in_channels=2, out_channels=1, groups=2, height=1, width=1, kernel_size=(1, 1),
                       stride=(1, 1), padding=(0, 0), dilation=(1, 1), padding_mode="zeros", bias=False)
    x, w, b = _arrays(cfg)
    message = "Given groups=2, expected weight to be at least 2 at dimension 0, but got weight of size [1, 1, 1, 1] instead"
    with pytest.raises(ValueError, match=re.escape(message)):
        npconv.conv2d(x, w, b, **cfg.kwargs())
    with pytest.raises(RuntimeError, match=re.escape(message)):
        torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, stride=cfg.stride,
                                   padding=cfg.padding, dilation=cfg.dilation, groups=cfg.groups)


@given(data=st.data())
def test_valid_configurations_raise_in_neither(data):
    cfg = data.draw(conv2d_configs())
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32))
    assert _npconv_raises(cfg, x, w, b) is None
    assert torch_raises(cfg, x, w, b) is None


@given(data=st.data())
def test_raises_exactly_when_torch_does_over_unconstrained_configurations(data):
    """Mix sizes with no validity constraint at all and compare the verdicts."""
    in_channels = data.draw(st.integers(1, 4))
    groups = data.draw(st.integers(-1, 4))
    out_channels = data.draw(st.integers(1, 6))
    kernel = (data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)))
    shape = (data.draw(st.integers(0, 2)), in_channels, data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    weight_in = data.draw(st.integers(1, 4))
    kwargs = dict(
        stride=(data.draw(st.integers(-1, 3)), data.draw(st.integers(-1, 3))),
        padding=data.draw(st.one_of(st.tuples(st.integers(-1, 6), st.integers(-1, 6)), st.sampled_from(["same", "valid"]))),
        dilation=(data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))),
        groups=groups,
        padding_mode=data.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_channels, weight_in) + kernel).astype(np.float32)

    class Cfg:  # the fields torch_raises reads
        pass

    cfg = Cfg()
    cfg.in_channels, cfg.out_channels, cfg.kernel_size = in_channels, out_channels, kernel
    cfg.kwargs = lambda: kwargs
    ours = _npconv_raises(cfg, x, w, None)
    # nn.Conv2d checks in_channels % groups at construction; F.conv2d checks the weight. Use
    # the channel count the weight implies so that both see the same call.
    cfg.in_channels = weight_in * groups if groups > 0 else in_channels
    theirs = torch_raises(cfg, x, w, None)
    if shape[0] == 0 and 0 in kwargs["dilation"] and theirs is None:
        # PyTorch skips its dilation check on an empty batch (test_torch_accepts_dilation_zero_
        # on_an_empty_batch); npconv rejects the argument whatever the batch size.
        assert isinstance(ours, ValueError) and "dilation" in str(ours)
        return
    assert (ours is None) == (theirs is None), f"npconv: {ours!r}; torch: {theirs!r}"


def test_torch_accepts_dilation_zero_on_an_empty_batch():
    """Found by the thorough profile: with N = 0, F.conv2d accepts dilation 0 (and then uses a
    kernel span of 1), although it rejects it for N >= 1. npconv rejects it for every N. If this
    test fails, PyTorch changed and the special case in the property above can go."""
    import torch

    x = torch.zeros(0, 4, 2, 2)
    w = torch.zeros(2, 4, 3, 3)
    assert torch.nn.functional.conv2d(x, w, dilation=0).shape == (0, 2, 2, 2)
    with pytest.raises(RuntimeError, match="dilation should be greater than zero"):
        torch.nn.functional.conv2d(torch.zeros(1, 4, 2, 2), w, dilation=0)
    with pytest.raises(ValueError, match="dilation should be greater than zero"):
        npconv.conv2d(x.numpy(), w.numpy(), dilation=0)


def test_type_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        npconv.conv2d(x.tolist(), w)
    with pytest.raises(TypeError, match="floating-point"):
        npconv.conv2d(x.astype(np.int64), w.astype(np.int64))
    with pytest.raises(TypeError, match="expected scalar type Float but found Double"):
        npconv.conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="bias type"):
        npconv.conv2d(x, w, np.zeros(3, np.float64))
    with pytest.raises(TypeError, match="stride"):
        npconv.conv2d(x, w, stride=1.5)
    with pytest.raises(TypeError, match="padding"):
        npconv.conv2d(x, w, padding=(1.0, 1))
    with pytest.raises(TypeError, match="groups"):
        npconv.conv2d(x, w, groups=1.0)
    with pytest.raises(TypeError, match="stride"):
        npconv.conv2d(x, w, stride=True)
    with pytest.raises(ValueError, match="list of 2 values"):
        npconv.conv2d(x, w, dilation=(1, 1, 1))
    with pytest.raises(ValueError, match="list of 2 values"):
        npconv.conv2d(x, w, stride=[])
    # a one-element list means both dimensions, as in PyTorch
    np.testing.assert_array_equal(npconv.conv2d(x, w, stride=[2], padding=(1,)), npconv.conv2d(x, w, stride=2, padding=1))
    with pytest.raises(ValueError, match="4-dimensional weight"):
        npconv.conv2d(x, w[0])
    with pytest.raises(ValueError, match="bias to be 1-dimensional with 3 elements"):
        npconv.conv2d(x, w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="kernel size should be greater than zero"):
        npconv.conv2d(x, np.zeros((3, 2, 0, 3), np.float32))


def test_special_case_errors():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"\(C_in \* M, 1, kH, kW\)"):
        npconv.depthwise_conv2d(x, np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="divisible by 4"):
        npconv.depthwise_conv2d(x, np.zeros((6, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(C_out, C_in, 1, 1\)"):
        npconv.pointwise_conv2d(x, np.zeros((4, 4, 3, 3), np.float32))
