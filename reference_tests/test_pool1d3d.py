"""npconv.pooling's 1-D and 3-D max and average pooling (max_pool1d, max_pool3d, avg_pool1d,
avg_pool3d) against PyTorch on the CPU.

What is proved, over drawn shapes (batched, unbatched, empty batch) and arguments PyTorch
accepts (ints, lists of one, triples, stride None, ceil_mode, dilation, every divisor rule):
* max_pool1d / max_pool3d: values AND indices equal torch's bit for bit, NaN, ±Inf, ties and
  signed zeros included, with and without return_indices (torch's 1-D op takes another
  kernel for the values alone); float16 too.
* avg_pool1d / avg_pool3d: torch's result and npconv's own are within
  both_sides(u) · avg_pool1d_bound / avg_pool3d_bound of npconv's float64 result
  (npconv.bounds states the derivation, avg_pool2d's); float16 avg_pool1d (torch: the 2-D
  kernel) too. PyTorch's CPU has no float16 avg_pool3d; npconv's is held to the bound.
* The bounds are not vacuous: moving the reference by twice the bound is rejected everywhere.
* Counts (pool_compares, pool_adds, pool_divides, under the op's own name) equal
  npconv.formulas' closed forms.
* Argument errors: over unfiltered draws (ranks 0-6, empty sizes, non-positive and
  over-long kernel/stride/padding/dilation lists, zero divisors), npconv raises iff torch
  raises, ValueError for torch's RuntimeError, with torch's message word for word (which
  also pins the order of checks). max_pool1d is checked on both of torch's paths: with
  return_indices (max_pool2d's checks on the plane) and without (check_max_pool1d's own
  words).
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

FLOATS = [np.float16, np.float32, np.float64]
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
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _values(rng, shape, dtype, family: str) -> np.ndarray:
    """normal; wide (magnitudes 2^-12 .. 2^12); integers (ties and signed zeros); special
    (NaN, ±Inf, -0.0 and values near the dtype's largest sprinkled in)."""
    if family == "wide":
        x = rng.standard_normal(shape) * 2.0 ** rng.integers(-12, 13, size=shape)
    elif family == "integers":
        x = np.asarray(rng.integers(-2, 3, size=shape), dtype=np.float64)
        x[(x == 0) & (rng.random(shape) < 0.5)] = -0.0
    else:
        x = rng.standard_normal(shape)
    x = np.array(x, dtype=dtype, ndmin=0)
    if family == "special":
        r = rng.random(shape)
        x[r < 0.08] = np.nan
        x[(r >= 0.08) & (r < 0.16)] = np.inf
        x[(r >= 0.16) & (r < 0.24)] = -np.inf
        x[(r >= 0.24) & (r < 0.30)] = -0.0
        big = np.finfo(dtype).max / 4
        x[(r >= 0.30) & (r < 0.36)] = big
    return x


# ----------------------------------------------------------------------------- strategies


@st.composite
def pool_cases(draw, axes: int, dilated: bool):
    """(input shape, kwargs) that torch's pooling accepts: padding <= K/2, sizes that leave at
    least one output cell (and, for avg_pool3d, sizes >= the kernel: its own rule). kwargs mix
    ints, lists of one and tuples of `axes`, and stride None."""
    kernel, stride, padding, dilation, size = [], [], [], [], []
    ceil_mode = draw(st.booleans())
    for _ in range(axes):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3)) if dilated else 1
        s = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        span = d * (k - 1) + 1
        low = max(1, span - 2 * p - (s - 1 if ceil_mode else 0), 0 if dilated else k)
        n = draw(st.integers(low, low + 4))
        if formulas.pool_output_size(n, k, s, p, d, ceil_mode) < 1:
            n = max(n, span - 2 * p)
        kernel.append(k), stride.append(s), padding.append(p), dilation.append(d), size.append(n)
    channels = draw(st.integers(1, 3))
    batch = draw(st.sampled_from([None, 0, 1, 2]))
    shape = (channels, *size) if batch is None else (batch, channels, *size)

    def form(values, allow_none=False):
        if allow_none and values == kernel and draw(st.booleans()):
            return None
        if len(set(values)) == 1:
            return draw(st.sampled_from([values[0], [values[0]], tuple(values)]))
        return tuple(values)

    kwargs = dict(kernel_size=form(kernel), stride=form(stride, allow_none=True), padding=form(padding),
                  ceil_mode=ceil_mode)
    if dilated:
        kwargs["dilation"] = form(dilation)
    return shape, kwargs


def _nc(shape, axes):
    """(N, C, spatial sizes) of a batched or unbatched input."""
    if len(shape) == axes + 1:
        return 1, shape[0], shape[1:]
    return shape[0], shape[1], shape[2:]


def _draw_input(data, shape, dtype, families=FAMILIES):
    family = data.draw(st.sampled_from(families), label="family")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    return _values(rng, shape, dtype, family)


def _window(kw):
    return {k: kw[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}


def _spatial(size):
    return size[0] if len(size) == 1 else size


# ----------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("axes", [1, 3])
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_max_pool_values_and_indices_equal_torch(axes, dtype, data):
    shape, kw = data.draw(pool_cases(axes, dilated=True))
    x = _draw_input(data, shape, dtype)
    ours_fn, theirs_fn = getattr(pooling, f"max_pool{axes}d"), getattr(F, f"max_pool{axes}d")
    with npconv.count() as tally:
        y, idx = ours_fn(x, **kw, return_indices=True)
    ty, tidx = theirs_fn(_tensor(x), **kw, return_indices=True)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert y.shape == tuple(ty.shape) and idx.shape == tuple(tidx.shape)
    assert np.array_equal(_bits(y), _bits(ty)), (y, ty)
    assert np.array_equal(idx, tidx.numpy()), (idx, tidx)
    # the values-only entry points (torch's 1-D one runs a kernel of its own)
    assert np.array_equal(_bits(ours_fn(x, **kw)), _bits(theirs_fn(_tensor(x), **kw)))

    N, C, size = _nc(shape, axes)
    compares = getattr(formulas, f"max_pool{axes}d_compares")(N, C, _spatial(size), **kw)
    assert tally.by_op[f"max_pool{axes}d"].other["pool_compares"] == compares
    assert "max_pool2d" not in tally.by_op


def test_max_pool_nan_ties_and_empty_windows():
    """PyTorch's scan rule in 1-D and 3-D, pinned with hand-worked cases (values and flat indices)."""
    nan, inf = np.nan, np.inf
    cases = [
        (np.array([[[1.0, nan, 3.0, nan, 2.0]]]), dict(kernel_size=5), [nan], [3]),            # the last NaN
        (np.array([[[-0.0, 0.0, -0.0]]]), dict(kernel_size=3), [-0.0], [0]),                   # the first of equals
        (np.full((1, 1, 4), -inf), dict(kernel_size=3, stride=1, padding=1), [-inf] * 4, [0, 0, 1, 2]),
        # a dilated window stepping over the whole row (taps -1 and 2 of L = 2): -inf, index 2
        (np.arange(2.0).reshape(1, 1, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3), [-inf], [2]),
        # 3-D: the flat index t * H * W + h * W + w; a NaN deep in the volume wins
        (np.arange(8.0).reshape(1, 1, 2, 2, 2), dict(kernel_size=2), [7.0], [7]),
        (np.where(np.arange(8) == 5, nan, np.arange(8.0)).reshape(1, 2, 2, 2), dict(kernel_size=2), [nan], [5]),
        # 3-D window stepping over the whole depth: -inf and an index past the volume
        (np.arange(8.0).reshape(1, 1, 2, 2, 2), dict(kernel_size=(2, 1, 1), stride=1, padding=(1, 0, 0),
                                                    dilation=(3, 1, 1)), [-inf] * 4, [8, 9, 10, 11]),
    ]
    for x, kw, values, indices in cases:
        axes = x.ndim - 2 if x.ndim in (3, 5) else x.ndim - 1
        y, idx = getattr(pooling, f"max_pool{axes}d")(x, **kw, return_indices=True)
        ty, tidx = getattr(F, f"max_pool{axes}d")(_tensor(x), **kw, return_indices=True)
        assert np.array_equal(_bits(y), _bits(ty)) and np.array_equal(idx, tidx.numpy()), (x, kw)
        assert np.array_equal(_bits(y.reshape(-1)), _bits(np.array(values))), (y, values)
        assert idx.reshape(-1).tolist() == indices


# ----------------------------------------------------------------------------- average pooling


@st.composite
def avg_pool_cases(draw, axes: int):
    shape, kw = draw(pool_cases(axes, dilated=False))
    kw["count_include_pad"] = draw(st.booleans())
    if axes == 3:
        kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(-4, -1), st.integers(1, 12),
                                                st.just(2**25 + 1)))
    return shape, kw


def _avg_reference(axes, x, kw, dtype):
    """npconv's float64 result and the bound both results are held to."""
    reference = getattr(pooling, f"avg_pool{axes}d")(x.astype(np.float64), **kw)
    bound = getattr(bounds, f"avg_pool{axes}d_bound")(x, **kw, dtype=dtype)
    return reference, bound * bounds.both_sides(bounds.unit_roundoff(dtype))


@pytest.mark.parametrize("axes", [1, 3])
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_avg_pool_within_bound_of_torch(axes, dtype, data):
    shape, kw = data.draw(avg_pool_cases(axes))
    x = _draw_input(data, shape, dtype)
    with npconv.count() as tally:
        ours = getattr(pooling, f"avg_pool{axes}d")(x, **kw)
    reference, bound = _avg_reference(axes, x, kw, dtype)
    assert ours.dtype == dtype and ours.shape == reference.shape
    assert_within_bound(ours, reference, bound, what=f"npconv avg_pool{axes}d {np.dtype(dtype).name}")
    if not (axes == 3 and dtype == np.float16):  # PyTorch's CPU has no float16 avg_pool3d
        theirs = getattr(F, f"avg_pool{axes}d")(_tensor(x), **kw).numpy()
        assert theirs.shape == reference.shape
        assert_within_bound(theirs, reference, bound, what=f"torch avg_pool{axes}d {np.dtype(dtype).name}")

    N, C, size = _nc(shape, axes)
    counted = tally.by_op[f"avg_pool{axes}d"].other
    assert counted["pool_adds"] == getattr(formulas, f"avg_pool{axes}d_adds")(N, C, _spatial(size), **_window(kw))
    divides = getattr(formulas, f"avg_pool{axes}d_divides")(N, C, _spatial(size), **_window(kw))
    assert counted["pool_divides"] == divides == reference.size


def test_avg_pool_divisor_rules():
    """The three divisors in 1-D and 3-D: kernel 2, stride 2, padding 1, ceil_mode (a last
    window past the padded end), on 1..3 and on a 3x3x3 volume of ones (whose sums are the
    in-input counts)."""
    x = np.array([[[1.0, 2.0, 3.0]]])
    kw = dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)
    for extra, expected in [(dict(count_include_pad=True), [1 / 2, 5 / 2]),
                            (dict(count_include_pad=False), [1, 5 / 2])]:
        y = pooling.avg_pool1d(x, **kw, **extra)
        assert np.array_equal(y.reshape(-1), expected) and np.array_equal(y, F.avg_pool1d(_tensor(x), **kw, **extra))
    ones = np.ones((1, 1, 3, 3, 3))
    for extra in [dict(count_include_pad=True), dict(count_include_pad=False), dict(divisor_override=-3)]:
        y = pooling.avg_pool3d(ones, **kw, **extra)
        assert np.array_equal(y, F.avg_pool3d(_tensor(ones), **kw, **extra).numpy()), extra
    counts = np.multiply.outer(np.multiply.outer([1, 2], [1, 2]), [1, 2])  # in-input taps per window
    assert np.array_equal(pooling.avg_pool3d(ones, **kw, count_include_pad=False)[0, 0], np.ones((2, 2, 2)))
    assert np.array_equal(pooling.avg_pool3d(ones, **kw, divisor_override=-3)[0, 0], counts / -3.0)


@pytest.mark.parametrize("axes", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_bounds_reject_twice_the_bound(axes, dtype, data):
    """Every element of a reference moved by ±2·bound fails the check: the bound is resolvable
    at float64 precision, not so loose that any answer passes."""
    shape, kw = data.draw(avg_pool_cases(axes))
    x = _draw_input(data, shape, np.float64, ["normal", "wide"]).astype(dtype)
    reference, bound = _avg_reference(axes, x, kw, dtype)
    judged = np.isfinite(reference) & np.isfinite(bound)
    if not judged.any():
        return
    sign = np.where(np.random.default_rng(0).random(reference.shape) < 0.5, -1.0, 1.0)
    moved = reference + 2 * sign * bound
    assert np.all(np.abs(moved - reference)[judged] > bound[judged])
    with pytest.raises(AssertionError, match="exceed the error bound"):
        assert_within_bound(moved, reference, bound)


# ----------------------------------------------------------------------------- errors


def _int_list_args(longest: int):
    return st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 4), max_size=longest))


def _outcome(call):
    try:
        return call(), None
    except (RuntimeError, ValueError, IndexError) as e:
        return None, e


def _same_failure(ours, theirs):
    assert (ours is None) == (theirs is None), f"npconv: {ours!r}, torch: {theirs!r}"
    if theirs is not None:
        assert isinstance(ours, {RuntimeError: ValueError, IndexError: IndexError}[type(theirs)]), (ours, theirs)
        assert str(ours) == str(theirs).splitlines()[0], (ours, theirs)


@st.composite
def unfiltered_pool_args(draw, longest: int):
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=6)))
    return shape, dict(kernel_size=draw(_int_list_args(longest)),
                       stride=draw(st.one_of(st.none(), _int_list_args(longest))),
                       padding=draw(_int_list_args(longest)),
                       dilation=draw(_int_list_args(longest)),
                       ceil_mode=draw(st.booleans()),
                       divisor_override=draw(st.one_of(st.none(), st.integers(-1, 2))),
                       count_include_pad=draw(st.booleans()))


def _same_as_torch(ours_call, theirs_call, exact=True):
    theirs, torch_error = _outcome(theirs_call)
    ours, our_error = _outcome(ours_call)
    _same_failure(our_error, torch_error)
    if theirs is not None:
        theirs = theirs if isinstance(theirs, tuple) else (theirs,)
        ours = ours if isinstance(ours, tuple) else (ours,)
        for o, t in zip(ours, theirs, strict=True):
            assert o.shape == tuple(t.shape)
            assert np.array_equal(o, t.numpy()) if exact else np.allclose(o, t.numpy())


@pytest.mark.parametrize("axes", [1, 3])
@pytest.mark.parametrize("return_indices", [False, True])
@given(data=st.data())
def test_max_pool_raises_iff_torch_raises(axes, return_indices, data):
    shape, kw = data.draw(unfiltered_pool_args(axes + 1))
    x = np.ones(shape, np.float32)
    args = {k: kw[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    with torch.no_grad():  # torch's CPU path without indices (check_max_pool1d) is the no-grad one
        _same_as_torch(lambda: getattr(pooling, f"max_pool{axes}d")(x, **args, return_indices=return_indices),
                       lambda: getattr(F, f"max_pool{axes}d")(_tensor(x), **args, return_indices=return_indices))


@pytest.mark.parametrize("axes", [1, 3])
@given(data=st.data())
def test_avg_pool_raises_iff_torch_raises(axes, data):
    shape, kw = data.draw(unfiltered_pool_args(axes + 1))
    x = np.ones(shape, np.float32)
    args = {k: kw[k] for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")}
    if axes == 3:
        args["divisor_override"] = kw["divisor_override"]
    _same_as_torch(lambda: getattr(pooling, f"avg_pool{axes}d")(x, **args),
                   lambda: getattr(F, f"avg_pool{axes}d")(_tensor(x), **args), exact=False)


def test_max_pool1d_messages_follow_torchs_two_paths():
    """The same fault, worded by check_max_pool1d without indices and by max_pool2d's checks
    on the plane with them (torch's two CPU paths), and avg_pool3d's own rule that the input
    be at least the kernel, padding or not (max_pool3d pools the same input)."""
    x = np.zeros((1, 1, 2), np.float32)
    cases = [
        (dict(kernel_size=5, stride=1), "max_pool1d() Invalid computed output size: -2",
         "Given input size: (1x1x2). Calculated output size: (1x1x-2). Output size is too small"),
        (dict(kernel_size=2, dilation=0), "max_pool1d() dilation must be greater than zero, but got 0",
         "dilation should be greater than zero, but got dilationH: 1 dilationW: 0"),
        (dict(kernel_size=(2, 2)), "max_pool1d() kernel_size must be an int, list of ints or tuple of ints of "
                                   "size 1 but got size 2",
         "max_pool1d() argument 'kernel_size' should contain one int (got 2)"),
    ]
    for kw, without, with_indices in cases:
        for return_indices, message in ((False, without), (True, with_indices)):
            with pytest.raises(ValueError) as ours:
                pooling.max_pool1d(x, **kw, return_indices=return_indices)
            with torch.no_grad(), pytest.raises(RuntimeError) as theirs:
                F.max_pool1d(_tensor(x), **kw, return_indices=return_indices)
            assert str(ours.value) == str(theirs.value).splitlines()[0] == message
    v = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    assert pooling.max_pool3d(v, 3, padding=1).shape == (1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"^input image \(T: 2 H: 2 W: 2\) smaller than kernel size"):
        pooling.avg_pool3d(v, 3, padding=1)
    with pytest.raises(RuntimeError, match=r"^input image \(T: 2 H: 2 W: 2\) smaller than kernel size"):
        F.avg_pool3d(_tensor(v), 3, padding=1)


def test_non_integer_arguments_raise_type_error():
    x1, x3 = np.ones((1, 1, 4), np.float32), np.ones((1, 1, 4, 4, 4), np.float32)
    for kw in [dict(kernel_size=2.0), dict(kernel_size=True), dict(kernel_size=[2.0]),
               dict(kernel_size=2, padding=1.0)]:
        for x, axes in ((x1, 1), (x3, 3)):
            for kind in ("max", "avg"):
                with pytest.raises(TypeError):
                    getattr(F, f"{kind}_pool{axes}d")(_tensor(x), **kw)
                with pytest.raises(TypeError):
                    getattr(pooling, f"{kind}_pool{axes}d")(x, **kw)
    with pytest.raises(TypeError):
        F.avg_pool3d(_tensor(x3), 2, divisor_override=2.0)
    with pytest.raises(TypeError):
        pooling.avg_pool3d(x3, 2, divisor_override=2.0)
    with pytest.raises(TypeError):
        pooling.max_pool3d(x3.astype(np.int64), 2)
