"""npconv.pad against torch.nn.functional.pad, and the convolutions' padding built on it.

Property, over drawn calls (input rank 0-5 with empty axes, pads of any length including odd
and too long ones, negative pads, the four modes and an unknown one, fill values from the
whole float range with NaN, infinities, -0.0 and values beyond the dtype's range, float16 /
float32 / float64 inputs holding NaN and -0.0, contiguous or not):
* npconv.pad raises exactly when F.pad raises, with the matching type (PyTorch's
  RuntimeError is npconv's ValueError; TypeError and NotImplementedError are the same);
* otherwise the outputs are equal bit for bit, of the same shape and dtype, and npconv
  counted one copy per output element.
Two calls PyTorch accepts are refused on purpose, both pinned in test_torch_divergences.py:
circular padding that PyTorch fills from uninitialised memory, and reflect padding for which
PyTorch returns a tensor with a negative size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import npconv
from npconv.geometry import PAD_MODES
from npconv.graph.ops import OPS

DTYPES = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class PadCall:
    shape: tuple[int, ...]
    pad: tuple[int, ...]
    mode: str = "constant"
    value: float | None = None
    dtype: type = np.float32
    seed: int = 0
    transposed: bool = False  # a non-contiguous view (the last two axes swapped)

    def input(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        shape = self.shape[:-2] + self.shape[:-3:-1] if self.transposed else self.shape
        x = rng.standard_normal(shape).astype(self.dtype)
        if x.size:
            flat = x.reshape(-1)
            flat[rng.integers(0, x.size)] = -0.0
            if rng.random() < 0.3:
                flat[rng.integers(0, x.size)] = np.nan
        return np.swapaxes(x, -1, -2) if self.transposed else x


@st.composite
def pad_calls(draw) -> PadCall:
    """Three calls in four are plausible ones (a rank the mode accepts, non-empty axes but for
    a batch, pads about the size of their axis, no value but for constant mode), the rest
    anything at all."""
    mode = draw(st.sampled_from(PAD_MODES * 4 + ("wrap",)))
    if draw(st.integers(0, 3)):
        k = draw(st.integers(1, 3))
        ndim = draw(st.integers(k, 5) if mode == "constant" else st.sampled_from([k + 1, k + 2]))
        batch = draw(st.integers(0, 3)) if ndim == k + 2 else draw(st.integers(1, 3))
        shape = (batch,) + tuple(draw(st.lists(st.integers(1, 5), min_size=ndim - 1, max_size=ndim - 1)))
        shape = shape[len(shape) - ndim:]
        length = 2 * k
        reach = 0 if mode == "reflect" else 1  # reflect: pads below the size, mostly
        pad = tuple(draw(st.integers(-size - 1, size - 1 + reach)) for size in shape[::-1][:k] for _ in "ba")
        value = (draw(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))) if mode == "constant"
                 else draw(st.sampled_from([None, None, None, 0.0])))
    else:
        ndim = draw(st.integers(0, 5))
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
        kind = draw(st.sampled_from(["axes"] * 6 + ["odd", "too long"]))
        if kind == "odd":
            length = draw(st.sampled_from([1, 3, 5, 7]))
        elif kind == "too long":
            length = 2 * ndim + 2 * draw(st.integers(1, 2))
        else:
            length = 2 * draw(st.integers(0, min(ndim, 3) if draw(st.integers(0, 9)) else ndim))
        value = draw(st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, 7.5]),
                               st.floats(allow_nan=True, allow_infinity=True)))
        pad = tuple(draw(st.lists(st.integers(-5, 5), min_size=length, max_size=length)))
    return PadCall(shape, pad, mode, value, draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**16)),
                   ndim >= 2 and draw(st.booleans()))


def _outcome(fn):
    try:
        return fn(), None
    except Exception as error:  # noqa: BLE001 - every rejection counts
        return None, error


def _expected_type(torch_error: Exception) -> type:
    if isinstance(torch_error, NotImplementedError):
        return NotImplementedError
    if isinstance(torch_error, TypeError):
        return TypeError
    return ValueError


def _torch_reads_uninitialised(call: PadCall) -> bool:
    """Circular padding with a non-empty output whose positive pad on some axis exceeds what
    the other side's crop leaves of it: PyTorch copies from parts of its output it has not
    written yet (test_torch_divergences.py)."""
    if call.mode != "circular" or len(call.pad) % 2:
        return False
    k = len(call.pad) // 2
    sizes = call.shape[len(call.shape) - k:]
    pairs = [(call.pad[2 * i], call.pad[2 * i + 1]) for i in range(k)][::-1]  # outermost first
    out = call.shape[:len(call.shape) - k] + tuple(s + b + a for s, (b, a) in zip(sizes, pairs))
    left = [s - max(-b, 0) - max(-a, 0) for s, (b, a) in zip(sizes, pairs)]
    return min(out, default=1) > 0 and any(b > c or a > c for (b, a), c in zip(pairs, left))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@given(call=pad_calls())
@example(call=PadCall((2, 5), (-3, -2))).via("a crop down to nothing: an empty output")
@example(call=PadCall((2, 5), (-3, -3))).via("a crop beyond the axis: narrow() fails")
@example(call=PadCall((2, 5), (-2, -2, 1, 0), value=3.0)).via("crop one axis, pad the other")
@example(call=PadCall((1, 2, 3, 2, 2), (1, 0, 0, 1, -1, 1, 1, 0), value=2.0)).via("four axes, constant")
@example(call=PadCall((5,), (1, 1), "reflect"))
@example(call=PadCall((2, 5), (1, 1, 1, 1), "circular")).via("2 axes need a 3-D or 4-D input")
@example(call=PadCall((2, 3, 5), (1, 1, 1, 1, 1, 1), "replicate")).via("3 axes need a 4-D or 5-D input")
@example(call=PadCall((2, 5), (1, 1), "reflect", 0.0)).via("a zero value is no value")
@example(call=PadCall((2, 5), (1, 1), "reflect", float("nan")))
@example(call=PadCall((2, 5), (-6, 4), "reflect")).via("a crop past the axis, reflected about its far end")
@example(call=PadCall((2, 5), (-5, 4), "reflect"))
@example(call=PadCall((1, 3, 5), (-3, -2, 0, 0), "reflect")).via("2 axes: one empty output axis is enough")
@example(call=PadCall((1, 3, 5), (-3, -3, 0, 0), "reflect")).via("a negative output axis")
@example(call=PadCall((0, 1, 3, 5), (-3, -3, 0, 0), "reflect")).via("PyTorch: a tensor of size -1")
@example(call=PadCall((1, 1, 3, 5), (-3, -2, 0, 0, -1, 0), "replicate"))
@example(call=PadCall((1, 1), (1, 1), "reflect")).via("reflect a size-1 axis: no")
@example(call=PadCall((0, 2, 3, 5), (1, 1, 1, 1), "reflect")).via("an empty batch is fine")
@example(call=PadCall((2, 0, 3, 5), (1, 1, 1, 1), "replicate")).via("empty channels are not")
@example(call=PadCall((2, 5), (-6, 1), "replicate"))
@example(call=PadCall((2, 5), (5, 5), "circular")).via("circular: one full wrap")
@example(call=PadCall((2, 5), (6, 5), "circular"))
@example(call=PadCall((2, 5), (-2, 3), "circular")).via("circular: crop, then tile what is left")
@example(call=PadCall((2, 5), (4, -1), "circular"))
@example(call=PadCall((2, 5), (5, -1), "circular")).via("PyTorch: uninitialised memory")
@example(call=PadCall((2, 5), (-5, 1), "circular")).via("PyTorch: uninitialised memory")
@example(call=PadCall((2, 5), (-6, 1), "circular")).via("an empty output: nothing uninitialised")
@example(call=PadCall((1, 3), (1, -4), "circular")).via("overlapping crops: PyTorch's slices do not fit")
@example(call=PadCall((1, 3), (1, -5), "circular")).via("... unless the source slice has one element")
@example(call=PadCall((2, 0), (0, 0), "circular"))
@example(call=PadCall((2, 0), (1, 1), "circular"))
@example(call=PadCall((2, 5), (1, 1), "wrap"))
@example(call=PadCall((1, 1), (1, 0), value=1 + 2.0**-11 + 2.0**-40, dtype=np.float16)).via(
    "float16 fill: rounded to float32 first, as c10::Half is made")
@example(call=PadCall((1, 1), (1, 0), value=65519.0, dtype=np.float16)).via("rounds to 65504, still an overflow")
@example(call=PadCall((1, 1), (1, 0), value=3.5e38)).via("beyond float32: an error")
@example(call=PadCall((1,), (1, -1), value=65505.0, dtype=np.float16)).via(
    "PyTorch's fill_ of a one-element float16 tensor skips the overflow check")
@example(call=PadCall((0,), (1, 0), value=1e300, dtype=np.float16))
@example(call=PadCall((0,), (1, 0), value=1e300, dtype=np.float32))
@example(call=PadCall((2, 5), (-1, -1), value=1e300)).via("a pure crop never converts the value")
@example(call=PadCall((0, 5), (1, 1), value=1e300)).via("an empty output still converts it")
@example(call=PadCall((2, 5), (1, 1), value=float("-inf"), dtype=np.float16))
@example(call=PadCall((), ())).via("a 0-d input, no padding")
@example(call=PadCall((), (1, 1)))
def test_pad_matches_torch(call):
    x = call.input()
    theirs, torch_error = _outcome(lambda: F.pad(torch.from_numpy(x), call.pad, call.mode, call.value))
    with npconv.count() as tally:
        ours, our_error = _outcome(lambda: npconv.pad(x, call.pad, call.mode, call.value))
    if torch_error is not None:
        assert our_error is not None, f"torch raised {torch_error!r}, npconv returned {ours.shape}"
        assert isinstance(our_error, _expected_type(torch_error)), f"npconv: {our_error!r}; torch: {torch_error!r}"
        return
    if _torch_reads_uninitialised(call):
        assert isinstance(our_error, ValueError) and "uninitialised" in str(our_error), our_error
        return
    if min(theirs.shape, default=0) < 0:
        assert isinstance(our_error, ValueError) and "negative dimension" in str(our_error), our_error
        return
    assert our_error is None, f"torch returned {tuple(theirs.shape)}, npconv raised {our_error!r}"
    assert _same_bits(ours, theirs.numpy()), (ours, theirs)
    assert tally.by_op["pad"].other["copies"] == ours.size


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("args, error, match", [
    (((1.0, 1),), TypeError, "found element of type float at pos 0"),
    (((True, 1),), TypeError, "found element of type bool at pos 0"),
    ((1,), TypeError, "must be tuple of ints, not int"),
    ((np.array([1, 1]),), TypeError, "not ndarray"),
    (((1, 1), None), TypeError, "'mode' .* must be str, not NoneType"),
    (((1, 1), "constant", "a"), TypeError, "'value' .* must be float, not str"),
    (((1, 1), "Reflect"), NotImplementedError, "Unrecognised padding mode Reflect"),
    (((1, 1, 1),), ValueError, "Padding length must be divisible by 2"),
    (((1,) * 6,), ValueError, "less than or equal to two times the input dimension"),
    (((1, 1), "replicate", 0.5), ValueError, "doesn't take in value argument"),
    (((6, 0), "circular"), ValueError, "wrapping around more than once"),
    (((5, 0), "reflect"), ValueError, r"Argument #4: Padding size should be less than .* dimension 1"),
])
def test_bad_arguments_raise_like_torch(args, error, match):
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(error, match=match):
        npconv.pad(x, *args)
    with pytest.raises((error, RuntimeError)):
        F.pad(torch.from_numpy(x), *args)


def test_pad_keeps_numpy_integer_pads_and_lists():
    x = np.arange(10, dtype=np.float64).reshape(2, 5)
    expected = F.pad(torch.from_numpy(x), (1, 2), value=-1.0).numpy()
    np.testing.assert_array_equal(npconv.pad(x, [np.int64(1), np.int32(2)], value=-1.0), expected)
    np.testing.assert_array_equal(npconv.pad(x, torch.Size([1, 2]), value=-1.0), expected)


# ----------------------------------------------------------------------------- users


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_padding_mode_is_pad_then_an_unpadded_convolution(mode):
    """nn.Conv2d's padding_mode: F.pad with (left, right, top, bottom), then padding 0; npconv
    the same, bit for bit, 'same' (odd pixel at the bottom/right) included."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, 4, 3)).astype(np.float32)
    pad_mode = "constant" if mode == "zeros" else mode
    for padding, pads in (((2, 1), (1, 1, 2, 2)), ("same", (1, 1, 1, 2))):
        direct = npconv.conv2d(x, w, padding=padding, padding_mode=mode)
        two_steps = npconv.conv2d(npconv.pad(x, pads, pad_mode), w)
        np.testing.assert_array_equal(direct, two_steps)


def test_conv2d_padding_is_not_counted_as_copies():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    with npconv.count() as tally:
        npconv.conv2d(x, w, padding=1, padding_mode="reflect")
    assert set(tally.by_op) == {"conv2d"} and "copies" not in tally.other


@pytest.mark.parametrize("name, shape, args, mode", [
    ("aten.constant_pad_nd.default", (2, 3, 3, 4), ((1, -1, 0, 2), 2.5), "constant"),
    ("aten.reflection_pad1d.default", (3, 3, 4), ((2, 1),), "reflect"),
    ("aten.reflection_pad2d.default", (2, 3, 3, 4), ((2, 1, 0, 2),), "reflect"),
    ("aten.reflection_pad3d.default", (1, 2, 3, 3, 4), ((1, 1, 0, 2, 1, 0),), "reflect"),
    ("aten.replication_pad1d.default", (3, 4), ((3, 0),), "replicate"),
    ("aten.replication_pad2d.default", (3, 3, 4), ((2, 1, 0, 3),), "replicate"),
    ("aten.replication_pad3d.default", (2, 3, 3, 4), ((1, 1, 0, 2, 1, 0),), "replicate"),
])
def test_graph_pad_ops_run_npconv_pad(name, shape, args, mode):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    spec = OPS[name]
    with npconv.count() as tally:
        y = spec.run(x, *args)
    expected = F.pad(torch.from_numpy(x), args[0], mode, *args[1:]).numpy()
    assert _same_bits(y, expected)
    assert tally.by_op["pad"].other["copies"] == y.size == spec.formula(y, x, *args)["copies"]
    with pytest.raises(ValueError, match="Padding size should be less than"):
        OPS["aten.reflection_pad2d.default"].run(np.zeros((1, 3, 4), np.float32), (4, 0, 0, 0))
