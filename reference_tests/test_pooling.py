"""npconv.pooling (max_pool2d, avg_pool2d, mean: the pooling ops of exported CNN graphs)
against PyTorch on the CPU.

What is proved, over drawn shapes (batched, unbatched, empty batch) and arguments PyTorch accepts:
* max_pool2d: values AND indices equal torch's bit for bit, NaN, ±Inf, ties and signed zeros
  included (the rule is `(value > max) || isnan(value)`, npconv/kernels/max_pool2d.py), with
  and without return_indices; its bound is 0.
* avg_pool2d (every divisor rule, ceil_mode, count_include_pad, divisor_override) and mean
  (any dims, negative, keepdim): torch float32 is within (1 + 2^-29) · avg_pool2d_bound /
  mean_bound(float32) of npconv's float64 result, torch float64 within 2 · bound(float64)
  (npconv.bounds states the derivations); npconv's own float32/float64 results too.
* The bounds are not vacuous: moving the reference by twice the bound is rejected everywhere.
* Counts (pool_compares, pool_adds, pool_divides) equal npconv.formulas' closed forms.
* Argument errors: over unfiltered draws (ranks 0-5, empty sizes, non-positive and
  over-long kernel/stride/padding/dilation lists, zero divisors, duplicate and out-of-range
  dims), npconv raises iff torch raises, ValueError for torch's RuntimeError, IndexError for
  its IndexError, with torch's message word for word (which also pins the order of checks).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv import bounds, formulas, pooling
from npconv.tolerance import assert_within_bound

FLOATS = [np.float32, np.float64]
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
FAMILIES = ["normal", "wide", "integers", "special"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """torch single-threaded here: on a small shared machine its worker threads only spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, order="C"))


def _bits(a) -> np.ndarray:
    a = np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _values(rng, shape, dtype, family: str) -> np.ndarray:
    """normal; wide (magnitudes 2^-20 .. 2^20); integers (ties and signed zeros); special
    (NaN, ±Inf, -0.0 and values near the dtype's largest sprinkled in). Always an ndarray."""
    return np.array(_raw_values(rng, shape, dtype, family), dtype=dtype, ndmin=0)


def _raw_values(rng, shape, dtype, family: str):
    if family == "wide":
        return (rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 21, size=shape)).astype(dtype)
    if family == "integers":
        x = np.asarray(rng.integers(-2, 3, size=shape), dtype=dtype)
        x[(x == 0) & (rng.random(shape) < 0.5)] = -0.0
        return x
    x = np.asarray(rng.standard_normal(shape), dtype=dtype)
    if family == "special":
        r = rng.random(shape)
        big = np.finfo(dtype).max / 4
        x[r < 0.08] = np.nan
        x[(r >= 0.08) & (r < 0.16)] = np.inf
        x[(r >= 0.16) & (r < 0.24)] = -np.inf
        x[(r >= 0.24) & (r < 0.30)] = -0.0
        x[(r >= 0.30) & (r < 0.36)] = big * np.sign(x[(r >= 0.30) & (r < 0.36)] + 0.5)
    return x


# ----------------------------------------------------------------------------- strategies


@st.composite
def pool_cases(draw, dilated: bool):
    """(input shape, kwargs) that torch's pooling accepts: padding <= K/2, sizes that leave
    at least one output cell. kwargs mix ints, pairs and stride None."""
    kernel, stride, padding, dilation, size = [], [], [], [], []
    ceil_mode = draw(st.booleans())
    for _ in range(2):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3)) if dilated else 1
        s = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        span = d * (k - 1) + 1
        low = max(1, span - 2 * p - (s - 1 if ceil_mode else 0))
        n = draw(st.integers(low, low + 5))
        if formulas.pool_output_size(n, k, s, p, d, ceil_mode) < 1:
            n = max(n, span - 2 * p)
        kernel.append(k), stride.append(s), padding.append(p), dilation.append(d), size.append(n)
    channels = draw(st.integers(1, 3))
    batch = draw(st.sampled_from([None, 0, 1, 2]))
    shape = (channels, *size) if batch is None else (batch, channels, *size)

    def form(pair, allow_none=False):
        if allow_none and pair == kernel and draw(st.booleans()):
            return None
        if pair[0] == pair[1] and draw(st.booleans()):
            return pair[0]
        return tuple(pair)

    kwargs = dict(kernel_size=form(kernel), stride=form(stride, allow_none=True), padding=form(padding),
                  ceil_mode=ceil_mode)
    if dilated:
        kwargs["dilation"] = form(dilation)
    return shape, kwargs


def _nc_hw(shape):
    return (1, shape[0], shape[1:]) if len(shape) == 3 else (shape[0], shape[1], shape[2:])


def _draw_input(data, shape, dtype, families=FAMILIES):
    family = data.draw(st.sampled_from(families), label="family")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    return _values(rng, shape, dtype, family)


# ----------------------------------------------------------------------------- max_pool2d


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_max_pool2d_values_and_indices_equal_torch(dtype, data):
    shape, kw = data.draw(pool_cases(dilated=True))
    x = _draw_input(data, shape, dtype)
    with npconv.count() as tally:
        y, idx = pooling.max_pool2d(x, **kw, return_indices=True)
    ty, tidx = F.max_pool2d(_tensor(x), **kw, return_indices=True)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert y.shape == tuple(ty.shape) and idx.shape == tuple(tidx.shape)
    assert np.array_equal(_bits(y), _bits(ty)), (y, ty)
    assert np.array_equal(idx, tidx.numpy()), (idx, tidx)
    # the values-only entry points (torch's may take another path)
    assert np.array_equal(_bits(pooling.max_pool2d(x, **kw)), _bits(F.max_pool2d(_tensor(x), **kw)))
    assert_within_bound(ty, y, bounds.max_pool2d_bound(x, **kw, dtype=dtype), what="max_pool2d")

    N, C, size = _nc_hw(shape)
    assert tally.by_op["max_pool2d"].other["pool_compares"] == formulas.max_pool2d_compares(N, C, size, **kw)
    assert y.shape[-2:] == _output_size(size, kw)


def _output_size(size, kw):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    k = pair(kw["kernel_size"])
    s = k if kw["stride"] is None else pair(kw["stride"])
    p, d = pair(kw["padding"]), pair(kw.get("dilation", 1))
    return tuple(formulas.pool_output_size(size[i], k[i], s[i], p[i], d[i], kw["ceil_mode"]) for i in range(2))


def test_max_pool2d_nan_ties_and_empty_windows():
    """PyTorch's scan rule, pinned with hand-worked cases (values and flat indices)."""
    nan, inf = np.nan, np.inf
    cases = [
        # the last NaN of the window is reported
        (np.array([[[[1.0, nan, 3.0, nan, 2.0]]]]), dict(kernel_size=(1, 5)), [nan], [3]),
        # of equal maxima the first; -0.0 == 0.0, the first is kept
        (np.array([[[[1.0, 3.0, 3.0, 2.0]]]]), dict(kernel_size=(1, 4)), [3.0], [1]),
        (np.array([[[[-0.0, 0.0, -0.0]]]]), dict(kernel_size=(1, 3)), [-0.0], [0]),
        # all -inf: the first in-input tap (padding is never chosen)
        (np.full((1, 1, 1, 4), -inf), dict(kernel_size=(1, 3), stride=1, padding=(0, 1)), [-inf] * 4, [0, 0, 1, 2]),
        # a dilated window stepping over the whole input (taps -1 and 2 of H = 2): -inf, and
        # the index of the first non-negative tap row, 2 * W + w, lies past the plane
        (np.arange(6.0).reshape(1, 1, 2, 3), dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(3, 1)),
         [-inf] * 3, [6, 7, 8]),
    ]
    for x, kw, values, indices in cases:
        with npconv.count() as tally:
            y, idx = pooling.max_pool2d(x, **kw, return_indices=True)
        ty, tidx = F.max_pool2d(_tensor(x), **kw, return_indices=True)
        assert np.array_equal(_bits(y), _bits(ty)) and np.array_equal(idx, tidx.numpy())
        assert np.array_equal(_bits(y.reshape(-1)), _bits(np.array(values))), (y, values)
        assert idx.reshape(-1).tolist() == indices
        N, C, size = _nc_hw(x.shape)
        assert tally.by_op["max_pool2d"].other["pool_compares"] == formulas.max_pool2d_compares(N, C, size, **kw)


# ----------------------------------------------------------------------------- avg_pool2d


@st.composite
def avg_pool_cases(draw):
    shape, kw = draw(pool_cases(dilated=False))
    kw["count_include_pad"] = draw(st.booleans())
    kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(-4, -1), st.integers(1, 12),
                                            st.just(2**25 + 1)))
    return shape, kw


def _window_kwargs(kw):
    return {k: kw[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_avg_pool2d_within_bound_of_torch(dtype, data):
    shape, kw = data.draw(avg_pool_cases())
    x = _draw_input(data, shape, dtype)
    with npconv.count() as tally:
        reference = pooling.avg_pool2d(x.astype(np.float64), **kw)
    ours = pooling.avg_pool2d(x, **kw)
    theirs = F.avg_pool2d(_tensor(x), **kw).numpy()
    assert ours.dtype == dtype and ours.shape == theirs.shape == reference.shape
    assert reference.shape[-2:] == _output_size(_nc_hw(shape)[2], kw)
    bound = bounds.avg_pool2d_bound(x, **kw, dtype=dtype) * bounds.both_sides(bounds.unit_roundoff(dtype))
    assert_within_bound(theirs, reference, bound, what=f"torch avg_pool2d {np.dtype(dtype).name}")
    assert_within_bound(ours, reference, bound, what=f"npconv avg_pool2d {np.dtype(dtype).name}")

    N, C, size = _nc_hw(shape)
    counted = tally.by_op["avg_pool2d"].other
    assert counted["pool_adds"] == formulas.avg_pool2d_adds(N, C, size, **_window_kwargs(kw))
    assert counted["pool_divides"] == formulas.avg_pool2d_divides(N, C, size, **_window_kwargs(kw)) == reference.size


def test_avg_pool2d_divisor_rules_and_rounded_divisor():
    """The three divisors on a 3x3 input, kernel 2, stride 2, padding 1, ceil_mode (a last
    window past the padded end), and a divisor_override that float32 rounds (2^25 + 1 -> 2^25)."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    kw = dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)
    for extra, divisors in [(dict(count_include_pad=True), [4, 4, 4, 4]),      # windows cut at the padded end
                            (dict(count_include_pad=False), [1, 2, 2, 4]),
                            (dict(divisor_override=-3), [-3, -3, -3, -3])]:
        sums = np.array([1.0, 2 + 3, 4 + 7, 5 + 6 + 8 + 9])
        y = pooling.avg_pool2d(x, **kw, **extra)
        assert np.array_equal(y.reshape(-1), sums / np.array(divisors, float)), (extra, y)
        assert np.array_equal(y, F.avg_pool2d(_tensor(x), **kw, **extra).numpy())
    x32 = np.full((1, 1, 1, 1), 2.0**25, np.float32)
    ours32 = pooling.avg_pool2d(x32, 1, divisor_override=2**25 + 1)
    theirs32 = F.avg_pool2d(_tensor(x32), 1, divisor_override=2**25 + 1).numpy()
    assert ours32.item() == theirs32.item() == 1.0  # the divisor rounded to 2^25 in float32
    exact = pooling.avg_pool2d(x32.astype(np.float64), 1, divisor_override=2**25 + 1)
    bound = bounds.avg_pool2d_bound(x32, 1, divisor_override=2**25 + 1, dtype=np.float32)
    assert 0 < abs(theirs32.item() - exact.item()) <= bound.item()


# ----------------------------------------------------------------------------- mean


@st.composite
def mean_cases(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 0]), min_size=ndim, max_size=ndim)))
    form = draw(st.sampled_from(["int", "list", "none", "empty"]))
    if form == "none":
        dim = None
    elif form == "empty":
        dim = []
    else:
        span = max(ndim, 1)
        dims = draw(st.lists(st.integers(0, span - 1), min_size=1, max_size=span, unique=True))
        dims = [d - span if draw(st.booleans()) else d for d in dims]
        dim = dims[0] if form == "int" else (tuple(dims) if draw(st.booleans()) else dims)
    return shape, dim, draw(st.booleans())


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data(), case=mean_cases())
def test_mean_within_bound_of_torch(dtype, data, case):
    shape, dim, keepdim = case
    x = _draw_input(data, shape, dtype)
    with npconv.count() as tally:
        reference = pooling.mean(x.astype(np.float64), dim, keepdim)
    ours = pooling.mean(x, dim, keepdim)
    theirs = torch.mean(_tensor(x), dim, keepdim=keepdim).numpy()
    assert ours.dtype == dtype and ours.shape == theirs.shape == reference.shape
    bound = bounds.mean_bound(x, dim, keepdim, dtype) * bounds.both_sides(bounds.unit_roundoff(dtype))
    assert_within_bound(theirs, reference, bound, what=f"torch mean {np.dtype(dtype).name}")
    assert_within_bound(ours, reference, bound, what=f"npconv mean {np.dtype(dtype).name}")
    counted = tally.by_op["mean"].other
    assert counted["pool_adds"] == formulas.mean_adds(shape, dim) == x.size
    assert counted["pool_divides"] == formulas.mean_divides(shape, dim) == reference.size


def test_mean_global_pool_and_squeeze_excitation_forms():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5))
    for dim, keepdim in [([-1, -2], True), ([-1, -2], False), ((2, 3), True), (1, False), ([], False), (None, True)]:
        ours = pooling.mean(x, dim, keepdim)
        theirs = torch.mean(_tensor(x), dim, keepdim=keepdim).numpy()
        assert_within_bound(ours, theirs, 2 * bounds.mean_bound(x, dim, keepdim, np.float64))
    assert np.isnan(pooling.mean(np.zeros((0, 3)), 0)).all() and pooling.mean(np.zeros((0, 3)), 1).shape == (0,)


# ----------------------------------------------------------------------------- non-vacuous bounds


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_bounds_reject_twice_the_bound(dtype, data):
    """Every element of a reference moved by ±2·bound fails the check: the bound is resolvable
    at float64 precision, not so loose that any answer passes."""
    shape, kw = data.draw(avg_pool_cases())
    mshape, dim, keepdim = data.draw(mean_cases())
    x = _draw_input(data, shape, np.float64, ["normal", "wide"]).astype(dtype)
    xm = _draw_input(data, mshape, np.float64, ["normal", "wide"]).astype(dtype)
    factor = bounds.both_sides(bounds.unit_roundoff(dtype))
    cases = [(pooling.avg_pool2d(x.astype(np.float64), **kw), bounds.avg_pool2d_bound(x, **kw, dtype=dtype)),
             (pooling.mean(xm.astype(np.float64), dim, keepdim), bounds.mean_bound(xm, dim, keepdim, dtype))]
    rng = np.random.default_rng(0)
    for reference, bound in cases:
        judged = np.isfinite(reference) & np.isfinite(bound)
        if not judged.any():
            continue
        bound = factor * bound
        sign = np.where(rng.random(reference.shape) < 0.5, -1.0, 1.0)
        moved = reference + 2 * sign * bound
        assert np.all(np.abs(moved - reference)[judged] > bound[judged])
        with pytest.raises(AssertionError, match="exceed the error bound"):
            assert_within_bound(moved, reference, bound)


# ----------------------------------------------------------------------------- errors


def _int_list_args():
    return st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 4), max_size=3))


def _as_list(v):
    return [v] if isinstance(v, int) else list(v)


def _outcome(call, errors):
    try:
        return call(), None
    except errors as e:
        return None, e


def _same_failure(ours, theirs):
    assert (ours is None) == (theirs is None), f"npconv: {ours!r}, torch: {theirs!r}"
    if theirs is not None:
        expected = {RuntimeError: ValueError, IndexError: IndexError}[type(theirs)]
        assert isinstance(ours, expected), (ours, theirs)
        assert str(ours) == str(theirs).splitlines()[0], (ours, theirs)


@st.composite
def unfiltered_pool_args(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=5)))
    return shape, dict(kernel_size=draw(_int_list_args()),
                       stride=draw(st.one_of(st.none(), _int_list_args())),
                       padding=draw(_int_list_args()),
                       dilation=draw(_int_list_args()),
                       ceil_mode=draw(st.booleans()),
                       divisor_override=draw(st.one_of(st.none(), st.integers(-1, 2))),
                       count_include_pad=draw(st.booleans()))


@given(case=unfiltered_pool_args())
def test_max_pool2d_raises_iff_torch_raises(case):
    shape, kw = case
    x = np.ones(shape, np.float32)
    theirs, torch_error = _outcome(lambda: torch.ops.aten.max_pool2d_with_indices(
        _tensor(x), _as_list(kw["kernel_size"]), [] if kw["stride"] is None else _as_list(kw["stride"]),
        _as_list(kw["padding"]), _as_list(kw["dilation"]), kw["ceil_mode"]), (RuntimeError, IndexError))
    ours, our_error = _outcome(lambda: pooling.max_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                                                          kw["dilation"], kw["ceil_mode"], return_indices=True),
                               (ValueError, IndexError))
    _same_failure(our_error, torch_error)
    if theirs is not None:
        assert np.array_equal(_bits(ours[0]), _bits(theirs[0])) and np.array_equal(ours[1], theirs[1].numpy())


@given(case=unfiltered_pool_args())
def test_avg_pool2d_raises_iff_torch_raises(case):
    shape, kw = case
    x = np.ones(shape, np.float32)
    theirs, torch_error = _outcome(lambda: torch.ops.aten.avg_pool2d(
        _tensor(x), _as_list(kw["kernel_size"]), [] if kw["stride"] is None else _as_list(kw["stride"]),
        _as_list(kw["padding"]), kw["ceil_mode"], kw["count_include_pad"], kw["divisor_override"]),
        (RuntimeError, IndexError))
    ours, our_error = _outcome(lambda: pooling.avg_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                                                          kw["ceil_mode"], kw["count_include_pad"],
                                                          kw["divisor_override"]), (ValueError, IndexError))
    _same_failure(our_error, torch_error)
    if theirs is not None:
        assert np.array_equal(ours, theirs.numpy())


@given(ndim=st.integers(0, 3), dim=st.one_of(st.integers(-5, 5), st.lists(st.integers(-5, 5), max_size=3)),
       keepdim=st.booleans())
def test_mean_raises_iff_torch_raises(ndim, dim, keepdim):
    x = np.ones((2,) * ndim, np.float32)
    theirs, torch_error = _outcome(lambda: torch.mean(_tensor(x), dim, keepdim=keepdim), (RuntimeError, IndexError))
    ours, our_error = _outcome(lambda: pooling.mean(x, dim, keepdim), (ValueError, IndexError))
    _same_failure(our_error, torch_error)
    if theirs is not None:
        assert np.array_equal(ours, theirs.numpy())


def test_non_integer_arguments_raise_type_error():
    x = np.ones((1, 1, 4, 4), np.float32)
    for kw in [dict(kernel_size=2.0), dict(kernel_size=True), dict(kernel_size=(2, 2.0)),
               dict(kernel_size=2, padding=1.0)]:
        with pytest.raises(TypeError):
            F.max_pool2d(_tensor(x), **kw)
        with pytest.raises(TypeError):
            pooling.max_pool2d(x, **kw)
        with pytest.raises(TypeError):
            F.avg_pool2d(_tensor(x), **kw)
        with pytest.raises(TypeError):
            pooling.avg_pool2d(x, **kw)
    for dim in [1.0, True, [1, 2.0]]:
        with pytest.raises(TypeError):
            torch.mean(_tensor(x), dim)
        with pytest.raises(TypeError):
            pooling.mean(x, dim)
    with pytest.raises(TypeError):
        pooling.max_pool2d(x.astype(np.int64), 2)
