"""npconv.conv2d against PyTorch's nn.Conv2d, over drawn configurations.

What is proved, for every drawn configuration (stride, padding incl. "same"/"valid", the four
padding modes, dilation, groups, bias, batch of 0, unbatched input):
* float64 and float32: |torch - npconv_float64| <= the rigorous bound of npconv.tolerance
  (gamma_n(u) * sum|x||w| + ...), on CPU and, when present, CUDA with TF32 off;
* float16 (CPU): the same bound with float32 accumulation and one final rounding;
* the npconv result in the input's own dtype obeys the same bound (it is an honest
  float32 computation, not a float64 one rounded at the end - see test_float32_is_float32);
* integer-valued inputs with exactly representable sums: bit-for-bit equal;
* NaN/+-Inf planted in the input land in the same output positions, with the same values.
"""

import numpy as np
import pytest
import torch
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st
from torch_conv import torch_conv2d

import npconv
from npconv.strategies import Conv2dConfig, conv2d_arrays, conv2d_configs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_matches_torch_within_error_bound(device, dtype, data):
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, dtype), label="arrays")
    expected = torch_conv2d(cfg, x, w, b, device)
    npconv.assert_close_to_reference(expected, x, w, b, **cfg.kwargs())
    ours = npconv.conv2d(x, w, b, **cfg.kwargs())
    assert ours.dtype == x.dtype and ours.shape == expected.shape
    npconv.assert_close_to_reference(ours, x, w, b, **cfg.kwargs())


@given(data=st.data())
def test_float16_matches_torch_within_error_bound(data):
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float16, values="normal"), label="arrays")
    expected = torch_conv2d(cfg, x, w, b)
    ours = npconv.conv2d(x, w, b, **cfg.kwargs())
    assert ours.dtype == np.float16
    npconv.assert_close_to_reference(expected, x, w, b, **cfg.kwargs())
    npconv.assert_close_to_reference(ours, x, w, b, **cfg.kwargs())


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@given(data=st.data())
def test_integer_inputs_are_exact(dtype, data):
    cfg = data.draw(conv2d_configs(), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, dtype, values="integers"), label="arrays")
    # |x|, |w|, |b| <= 4 and at most 4*4*4 = 64 taps: sums stay far below 2^11.
    expected = torch_conv2d(cfg, x, w, b)
    ours = npconv.conv2d(x, w, b, **cfg.kwargs())
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_nan_and_inf_land_where_torch_puts_them(device, dtype, data):
    cfg = data.draw(conv2d_configs(allow_empty_batch=False), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, dtype, values="special"), label="arrays")
    expected = torch_conv2d(cfg, x, w, b, device)
    ours = npconv.conv2d(x, w, b, **cfg.kwargs())
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(expected))
    npconv.assert_close_to_reference(expected, x, w, b, **cfg.kwargs())


@given(data=st.data())
def test_float32_is_float32(data):
    """Computed in float32, not in float64 and rounded: on 'wide' data over many taps the
    float32 result differs from the correctly rounded float64 result somewhere."""
    cfg = Conv2dConfig(batch=1, in_channels=64, out_channels=4, groups=1, height=6, width=6,
                       kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32, values="normal"))
    ours = npconv.conv2d(x, w, b, **cfg.kwargs())
    rounded = npconv.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                            **cfg.kwargs()).astype(np.float32)
    assert not np.array_equal(ours, rounded)


@given(data=st.data())
def test_non_contiguous_input_gives_the_same_result(data):
    cfg = data.draw(conv2d_configs(allow_unbatched=False), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32), label="arrays")
    expected = npconv.conv2d(x, w, b, **cfg.kwargs())
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    strided = np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)[:, :, ::2, ::3]
    reversed_twice = np.ascontiguousarray(x[:, ::-1])[:, ::-1]
    w_fortran = np.asfortranarray(w)
    assert x.size <= 1 or not strided.flags.c_contiguous
    for view in (channels_last, strided, reversed_twice):
        np.testing.assert_array_equal(npconv.conv2d(view, w, b, **cfg.kwargs()), expected)
    np.testing.assert_array_equal(npconv.conv2d(x, w_fortran, b, **cfg.kwargs()), expected)


@given(data=st.data())
def test_unbatched_input_is_a_batch_of_one(data):
    cfg = data.draw(conv2d_configs(allow_unbatched=False, allow_empty_batch=False), label="config")
    x, w, b = data.draw(conv2d_arrays(cfg, np.float32), label="arrays")
    batched = npconv.conv2d(x[:1], w, b, **cfg.kwargs())
    np.testing.assert_array_equal(npconv.conv2d(x[0], w, b, **cfg.kwargs()), batched[0])


def test_batch_of_zero_has_the_right_shape():
    x = np.zeros((0, 4, 5, 5), np.float32)
    w = np.ones((6, 2, 3, 3), np.float32)
    y = npconv.conv2d(x, w, stride=2, padding=1, groups=2)
    assert y.shape == tuple(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                                       stride=2, padding=1, groups=2).shape)


@pytest.mark.parametrize("device", DEVICES)
def test_inf_weight_times_zero_padding_is_nan_in_both(device):
    """Both compute the dense sum over the padded input: an infinite weight meets a padding
    zero at the border, inf * 0 = NaN. (A kernel that skipped padding taps would give inf.)"""
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    w[0, 0, 0, 0] = np.inf
    ours = npconv.conv2d(x, w, padding=1)
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x).to(device), torch.from_numpy(w).to(device),
                                        padding=1).cpu().numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[0, 0, 0]).all() and np.isinf(ours[0, 0, 1:, 1:]).all()
