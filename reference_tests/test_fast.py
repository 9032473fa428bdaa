"""The fast tier (npconv/fast) against the reference kernel (npconv/kernels).

What is proved, over generated configurations (every kernel size, stride, dilation, padding,
padding mode, channel multiplier, batch and dtype the fast tier claims):

* values: the fast result is within the rigorous error bound of the float64 reference,
  |fast - ref64| <= bound_from_magnitude(M, n, dtype) with M = sum |x||w| + |b| (the float64
  reference kernel run on absolute values) and n the inner-product length. The bound holds
  for any summation order (Higham, eq. 3.5), so it is the right yardstick for BLAS's blocked
  order and for the depthwise kernel's; NaN / Inf positions must match exactly;
* counts: the tallies of the two engines are equal, op by op and kind by kind;
* fused BatchNorm + ReLU6: within bound_from_magnitude(|s| M + |t|, n + 2, dtype) of
  clamp(ref64 * s + t) (derivation in npconv/fast/__init__.py), counts equal to those of the
  reference pipeline conv -> ops.batch_norm2d -> ops.relu6;
* dispatch: configurations the fast tier claims reach it, the others (grouped convolution with
  1 < groups < C_in, empty arrays) fall back to the reference kernel with identical results;
  `engine=` and `npconv.engine.use` resolve as documented, bad engines are rejected.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import npconv
import npconv.engine
import npconv.fast
import npconv.fast.linear
import npconv.kernels.pad2d
from npconv import ops
from npconv.geometry import conv2d_geometry
from npconv.strategies import VALUE_FAMILIES, Conv2dConfig, conv2d_arrays, conv2d_configs
from npconv.tolerance import assert_within_bound, bound_from_magnitude, conv2d_magnitude

DTYPES = (np.float16, np.float32, np.float64)


def _geometry(cfg: Conv2dConfig):
    return conv2d_geometry(cfg.input_shape, cfg.weight_shape, (cfg.out_channels,) if cfg.bias else None, **cfg.kwargs())


def _by_op(tally) -> dict:
    return {op: counts.as_dict() for op, counts in tally.by_op.items()}


def _run(engine, x, w, b, cfg):
    with npconv.count() as tally:
        y = npconv.conv2d(x, w, b, **cfg.kwargs(), engine=engine)
    return y, tally


def _exact_and_bound(cfg: Conv2dConfig, x, w, b):
    """The float64 reference of conv2d(x, w, b) and the rounding bound of a result in x's dtype:
    bound_from_magnitude(M, n), not judged (inf) where M passes the dtype's largest number."""
    as64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    exact = npconv.conv2d(as64(x), as64(w), as64(b), **cfg.kwargs(), engine="reference")
    magnitude = conv2d_magnitude(x, w, b, **cfg.kwargs())
    n = (cfg.in_channels // cfg.groups) * cfg.kernel_size[0] * cfg.kernel_size[1] + (1 if cfg.bias else 0)
    return exact, _rounding_bound(magnitude, n, x.dtype)


def _rounding_bound(magnitude, n, dtype):
    """bound_from_magnitude(M, n, dtype), not judged (inf) where M passes the dtype's largest
    number (there the result may overflow to Inf where the exact value does not)."""
    bound = bound_from_magnitude(magnitude, n, dtype)
    return np.where(np.isfinite(magnitude) & (magnitude > float(np.finfo(dtype).max)), np.inf, bound)


def _check_against_reference(cfg: Conv2dConfig, x, w, b):
    """fast within the bound of the float64 reference; counts equal to the reference's."""
    fast, fast_tally = _run("fast", x, w, b, cfg)
    reference, reference_tally = _run("reference", x, w, b, cfg)
    assert fast.dtype == x.dtype and fast.shape == reference.shape
    exact, bound = _exact_and_bound(cfg, x, w, b)
    assert_within_bound(fast, exact, bound, what=f"fast {npconv.fast.covers(_geometry(cfg), np.float32)}")
    assert _by_op(fast_tally) == _by_op(reference_tally)


# One configuration per fast kernel and stride family, always run (also the regressions).
_DEPTHWISE_S2 = Conv2dConfig(1, 3, 6, 3, 9, 8, (3, 3), (2, 2), (1, 1), (1, 1), "zeros", True)
_DEPTHWISE_REFLECT = Conv2dConfig(2, 2, 2, 2, 5, 6, (3, 3), (1, 1), (2, 1), (1, 1), "reflect", False)
_DEPTHWISE_DILATED = Conv2dConfig(1, 2, 4, 2, 7, 7, (2, 3), (3, 2), (1, 2), (2, 3), "circular", True)
_DEPTHWISE_VALID = Conv2dConfig(1, 2, 2, 2, 6, 7, (3, 3), (1, 1), (0, 0), (1, 1), "zeros", True)  # the wide grid
_DEPTHWISE_SAME_5X5 = Conv2dConfig(2, 2, 4, 2, 7, 6, (5, 5), (1, 1), (2, 2), (1, 1), "zeros", True)  # narrow
_DEPTHWISE_S2_EVEN = Conv2dConfig(2, 3, 3, 3, 8, 10, (3, 3), (2, 2), (1, 1), (1, 1), "zeros", True)
_DEPTHWISE_SAME_3X3 = Conv2dConfig(1, 3, 6, 3, 7, 7, (3, 3), (1, 1), (1, 1), (1, 1), "zeros", True)
_DEPTHWISE_SAME_3X3_WIDE = Conv2dConfig(1, 2, 4, 2, 9, 20, (3, 3), (1, 1), (1, 1), (1, 1), "zeros", True)
_POINTWISE_STRIDED = Conv2dConfig(2, 3, 5, 1, 7, 6, (1, 1), (2, 3), (0, 0), (1, 1), "zeros", True)
_STANDARD = Conv2dConfig(2, 3, 4, 1, 8, 9, (3, 3), (1, 1), (1, 1), (1, 1), "zeros", True)
_STANDARD_STRIDED = Conv2dConfig(1, 2, 3, 1, 9, 9, (3, 2), (2, 3), (2, 1), (2, 1), "replicate", False)


_CLAIMED = {  # what each fast kernel claims, as strategy arguments
    "depthwise": dict(depthwise=True, max_size=10, max_stride=3),
    "pointwise_and_standard": dict(depthwise=False, max_size=10, max_kernel=4),
}


@pytest.mark.parametrize("kind", sorted(_CLAIMED))
@given(data=st.data())
def test_fast_within_bound_of_reference_and_counts_equal(kind, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    cfg = data.draw(conv2d_configs(**_CLAIMED[kind]))
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=dtype))
    _check_against_reference(cfg, x, w, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg", [_DEPTHWISE_S2, _DEPTHWISE_REFLECT, _DEPTHWISE_DILATED, _DEPTHWISE_VALID, _DEPTHWISE_SAME_5X5,
            _DEPTHWISE_S2_EVEN, _DEPTHWISE_SAME_3X3_WIDE, _POINTWISE_STRIDED, _STANDARD, _STANDARD_STRIDED]
)
def test_fast_on_fixed_configurations(cfg, dtype):
    """Each kernel's special paths (stride 2 planes, reflect and circular padding, dilation,
    strided pointwise, row-packed standard) on every dtype, whatever the derandomized draws hit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cfg.input_shape).astype(dtype)
    w = rng.standard_normal(cfg.weight_shape).astype(dtype)
    b = rng.standard_normal(cfg.out_channels).astype(dtype) if cfg.bias else None
    _check_against_reference(cfg, x, w, b)


@given(cfg=st.one_of(conv2d_configs(depthwise=True, max_size=8), conv2d_configs(depthwise=False, max_size=8)),
       data=st.data())
def test_non_finite_inputs_give_the_reference_nan_and_inf_positions(cfg, data):
    """NaN / Inf planted in the input: a sum containing NaN, or both infinities, is NaN in any
    order, one with a single infinity is that infinity; so positions and signs must match."""
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=np.float32, values="special"))
    as64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    fast, fast_tally = _run("fast", x, w, b, cfg)
    exact, reference_tally = _run("reference", as64(x), as64(w), as64(b), cfg)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(exact))
    np.testing.assert_array_equal(np.isposinf(fast), np.isposinf(exact))
    np.testing.assert_array_equal(np.isneginf(fast), np.isneginf(exact))
    _check_against_reference(cfg, x, w, b)  # and the finite outputs within the bound


@pytest.mark.parametrize("cfg", [_DEPTHWISE_S2, _STANDARD], ids=["depthwise", "standard"])
def test_infinite_weight_makes_nan_where_it_meets_zero_padding(cfg):
    """Every tap is executed, padding taps too: 0 * inf = NaN at the border, as in the
    reference kernel (and PyTorch)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(cfg.input_shape).astype(np.float32)
    w = rng.standard_normal(cfg.weight_shape).astype(np.float32)
    w[..., 0, 0] = np.inf
    fast, _ = _run("fast", x, w, None, cfg)
    reference, _ = _run("reference", x, w, None, cfg)
    assert np.isnan(reference).any()
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(reference))
    np.testing.assert_array_equal(np.isposinf(fast), np.isposinf(reference))


@given(cfg=conv2d_configs(depthwise=True, max_size=9, allow_empty_batch=False), data=st.data(),
       threads=st.integers(1, 5))
def test_depthwise_result_does_not_depend_on_the_thread_count(cfg, data, threads):
    """Each output is summed by one task in a fixed order: splitting the channels differently
    gives the same bits."""
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=np.float32))
    g = _geometry(cfg)
    x4 = x[np.newaxis] if cfg.unbatched else x
    one, counts_one = npconv.fast.conv2d(x4, w, b, g, threads=1)
    many, counts_many = npconv.fast.conv2d(x4, w, b, g, threads=threads)
    np.testing.assert_array_equal(one, many)
    assert counts_one == counts_many


def _depthwise_on_grid(grid, x, w, b, scale, shift, relu6, cfg):
    """npconv/fast/depthwise.py's kernel computing the way named, for all of x's channels, on
    one thread: "stride1" or "stride2" (`stride1_channels`, `stride2_channels`: taps straight
    from x) or "narrow" (`narrow_channels`, MobileNet's layers too) where `layout` takes it,
    "wide" (`channels`) always (`layout` picks the others only for zero padding, so asked with
    another mode it gives the wide grid, which `channels` then fills with zeros).
    Returns (y, counts, whether the way asked for was used)."""
    from npconv.fast import depthwise

    g = _geometry(cfg)
    w3 = w.reshape(g.out_channels, g.kernel_h, g.kernel_w)
    y = np.empty((g.batch, g.out_channels, g.out_h, g.out_w), x.dtype)
    grid_layout = depthwise.layout(g.height, g.width, g.out_h, g.out_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
                                   g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, 1 if grid == "wide" else 0,
                                   grid in ("stride1", "stride2"))
    empty = np.zeros(0, x.dtype)
    epilogue = (empty if b is None else b, b is not None, scale, shift, True, x.dtype.type(0), x.dtype.type(6), relu6)
    steps = (g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.height + g.pad_top + g.pad_bottom,
             g.width + g.pad_left + g.pad_right, 0)
    counts = depthwise.run(x, w3, epilogue, y, steps, grid_layout, 1)
    return y, counts, grid_layout[0] == grid


@given(cfg=conv2d_configs(depthwise=True, max_size=9, allow_unbatched=False, allow_empty_batch=False),
       data=st.data(), relu6=st.booleans())
def test_depthwise_narrow_and_wide_grids_give_the_same_bits_and_counts(cfg, data, relu6):
    """With zero padding, where `planes.narrow_fits` allows, the depthwise kernel computes on the
    narrow grid (the output's own plane, padding columns masked to zero) instead of the wide one
    (padded sub-planes, then a crop), and MobileNet's layers from x itself
    (`stride1_channels` from 14 columns on, `stride2_channels`). All sum the same products in
    the same order and run the same epilogue: the same bits, NaN and Inf included, and the same counts."""
    cfg = dataclasses.replace(cfg, padding_mode="zeros")
    dtype = data.draw(st.sampled_from((np.float32, np.float64)))
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=dtype, values=data.draw(st.sampled_from(("normal", "special")))))
    assume(_grids_agree(cfg, x, w, b, relu6))


def _grids_agree(cfg, x, w, b, relu6) -> bool:
    """Asserts that the narrow grid and the taps straight from x (stride 1 and 2) agree with the
    wide grid (bits and counts) where `layout` takes them; returns whether any did (False:
    nothing compared)."""
    scale = np.linspace(-1.5, 2, cfg.out_channels).astype(x.dtype)
    shift = np.linspace(-1, 1, cfg.out_channels).astype(x.dtype)
    wide, wide_counts, _ = _depthwise_on_grid("wide", x, w, b, scale, shift, relu6, cfg)
    compared = False
    for grid in ("narrow", "stride1", "stride2"):
        y, counts, used = _depthwise_on_grid(grid, x, w, b, scale, shift, relu6, cfg)
        if used:
            np.testing.assert_array_equal(y, wide, err_msg=grid)
            assert counts == wide_counts, grid
            compared = True
    return compared




@pytest.mark.parametrize("values", ["normal", "special"])
@pytest.mark.parametrize("cfg", [_DEPTHWISE_SAME_3X3, _DEPTHWISE_SAME_3X3_WIDE, _DEPTHWISE_S2, _DEPTHWISE_S2_EVEN,
                                 _DEPTHWISE_SAME_5X5],
                         ids=["3x3", "3x3-wide", "3x3-s2", "3x3-s2-even", "5x5"])
def test_depthwise_grids_agree_on_mobilenet_like_layers(cfg, values):
    """The derandomized draws above are small and rarely 3x3: MobileNet's two layer shapes (3x3
    "same" at stride 1 and 2, with a channel multiplier; at stride 2 on an odd and on an even
    plane) and a
    5x5 one, every border column masked, NaN and Inf among the values."""
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(cfg.input_shape).astype(dtype)
        w = rng.standard_normal(cfg.weight_shape).astype(dtype)
        if values == "special":
            x.flat[rng.choice(x.size, 6, replace=False)] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30]
            w[:, :, 0, 0] = np.inf
        b = rng.standard_normal(cfg.out_channels).astype(dtype)
        for relu6 in (False, True):
            assert _grids_agree(cfg, x, w, b, relu6)


@pytest.mark.parametrize("cfg, kind", [(_DEPTHWISE_S2, "stride2"), (_DEPTHWISE_SAME_3X3_WIDE, "stride1"),
                                       (_DEPTHWISE_SAME_3X3, "narrow"), (_DEPTHWISE_SAME_5X5, "narrow"),
                                       (_DEPTHWISE_VALID, "wide"), (_DEPTHWISE_REFLECT, "wide")],
                         ids=["s2-same", "3x3-wide", "3x3-7x7", "5x5-same", "valid", "reflect"])
def test_fixed_depthwise_configurations_run_every_way(cfg, kind):
    """test_fast_on_fixed_configurations runs each way of the depthwise kernel on every dtype:
    these configurations take the way they are listed with."""
    from npconv.fast import depthwise

    g = _geometry(cfg)
    mode = npconv.kernels.pad2d.MODE_CODES[cfg.padding_mode]
    assert depthwise.layout(g.height, g.width, g.out_h, g.out_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
                            g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, mode)[0] == kind


@given(height=st.integers(1, 6), width=st.integers(1, 72), stride=st.sampled_from((1, 2)),
       kernel=st.sampled_from(((3, 1, 1), (1, 0, 1), (3, 2, 2), (5, 2, 1), (2, 1, 1))),
       channels=st.integers(1, 3), multiplier=st.integers(1, 2), dtype=st.sampled_from((np.float32, np.float64)),
       values=st.sampled_from(("normal", "special")), data=st.data())
def test_rows_of_any_width_agree_on_every_way(height, width, stride, kernel, channels, multiplier, dtype, values,
                                              data):
    """MobileNet's 3x3 layers read x in blocks of LANES outputs (`vectors.taps3x3_stride1` from
    14 columns on, `taps3x3_stride2`), and at stride 2 the narrow grid splits each input row
    into its column phases LANES outputs a phase at a time (`planes.stride2_blocks`,
    `vectors.split_pairs`); the suite's other draws are at most 9 wide, one partial block a
    row. Here rows of 1 to 72 pixels (full blocks, partial ones, several a row, odd and even
    widths and heights, a channel multiplier), for kernels that keep the narrow grid, every
    way against the wide grid's own row-by-row copy: the same bits and counts."""
    size, padding, dilation = kernel
    cfg = Conv2dConfig(1, channels, channels * multiplier, channels, height, width, (size, size), (stride, stride),
                       (padding, padding), (dilation, dilation), "zeros", True)
    assume(min(_geometry(cfg).out_h, _geometry(cfg).out_w) > 0)
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=dtype, values=values))
    # (at stride 1 a row too narrow for the kernel keeps the wide grid: nothing to compare)
    assume(_grids_agree(cfg, x, w, b, relu6=data.draw(st.booleans())))


@given(data=st.data(), dtype=st.sampled_from((np.float32, np.float64)))
def test_split_pairs_writes_the_pairs_asked_for_and_nothing_else(data, dtype):
    """`vectors.split_pairs(src, s0, dst, e0, o0, ne, no)`: dst[e0 + t] = src[s0 + 2t] for
    t < ne and dst[o0 + t] = src[s0 + 2t + 1] for t < no, reading src[s0 : s0 + ne + no]
    only (here the run may end at the array's last element) and leaving every other element
    of dst as it was; `split_pairs_full` the same for ne = no = LANES."""
    from numba import njit

    from npconv.fast.vectors import LANES, split_pairs, split_pairs_full

    @njit(cache=False)
    def split(src, s0, dst, e0, o0, ne, no, full):
        u = np.uint64
        if full:
            split_pairs_full(src, u(s0), dst, u(e0), u(o0))
        else:
            split_pairs(src, u(s0), dst, u(e0), u(o0), u(ne), u(no))

    full = data.draw(st.booleans())
    ne = LANES if full else data.draw(st.integers(0, LANES))
    no = LANES if full else data.draw(st.integers(max(0, ne - 1), ne))
    src = np.arange(1, data.draw(st.integers(ne + no, 3 * LANES)) + 1, dtype=dtype)
    s0 = data.draw(st.integers(0, src.size - (ne + no)))
    dst = np.full(4 * LANES, -1, dtype)
    e0 = data.draw(st.integers(0, LANES))
    o0 = data.draw(st.integers(e0 + ne, 3 * LANES))          # the two runs apart
    expected = dst.copy()
    expected[e0:e0 + ne] = src[s0:s0 + 2 * ne:2]
    expected[o0:o0 + no] = src[s0 + 1:s0 + 1 + 2 * no:2]
    split(src, s0, dst, e0, o0, ne, no, full)
    np.testing.assert_array_equal(dst, expected)


@given(cfg=conv2d_configs(depthwise=False, max_groups=1, max_size=9, allow_empty_batch=False), data=st.data(),
       threads=st.integers(2, 5), pool=st.sampled_from(("numba", "npconv")))
def test_standard_and_pointwise_within_bound_and_counts_alike_at_any_thread_count(cfg, data, threads, pool):
    """The standard kernel's blocks of output rows, and the GEMMs' blocks of output (split here
    even when small), run on Numba's pool, or on npconv's own where NumPy's BLAS has no
    64-bit cblas gemm (`pool`): on any number of threads each output is still one inner
    product of the same n terms, within the bound of the float64 reference, and the counts
    are those of one thread; the standard kernel's blocks do not depend on the thread count,
    so on one pool its result is the same bits (the two pools sum a block's KW products
    differently, and NumPy may not call BLAS for a tiny product: their bits may differ).
    (The suite's workers run at one thread each, conftest.py, so this is where more threads
    are exercised.)"""
    from npconv.fast import blas, gemm

    x, w, b = data.draw(conv2d_arrays(cfg, dtype=np.float32))
    g = _geometry(cfg)
    x4 = x[np.newaxis] if cfg.unbatched else x
    saved = gemm.MIN_MACS, gemm.MIN_MACS_OWN_POOL, blas.AVAILABLE
    gemm.MIN_MACS = gemm.MIN_MACS_OWN_POOL = 0
    blas.AVAILABLE = blas.AVAILABLE and pool == "numba"
    try:
        many, counts_many = npconv.fast.conv2d(x4, w, b, g, threads=threads)
        one, counts_one = npconv.fast.conv2d(x4, w, b, g, threads=1)   # the same pool: its bits are compared
    finally:
        gemm.MIN_MACS, gemm.MIN_MACS_OWN_POOL, blas.AVAILABLE = saved
    exact, bound = _exact_and_bound(cfg, x4, w, b)
    assert_within_bound(many, exact, bound,
                        what=f"fast {npconv.fast.covers(g, np.float32)}, {threads} threads")
    assert counts_many == counts_one
    if npconv.fast.covers(g, np.float32) == "standard":   # its blocks do not depend on the thread count
        np.testing.assert_array_equal(many, one)


@pytest.mark.parametrize("pool", ["numba", "npconv"])
def test_standard_bits_do_not_depend_on_the_thread_count_on_either_pool(pool):
    """Found by the thorough profile (regression test for the property above, which compared
    two threads on npconv's own pool with one thread on Numba's): a 2x1 kernel, dilation 3, on
    a 4x1 plane. NumPy's matmul and the kernel's own BLAS call summed its two terms into
    different bits; on one pool the thread count changes nothing."""
    from npconv.fast import blas

    if pool == "numba" and not blas.AVAILABLE:
        pytest.skip("NumPy's BLAS has no 64-bit-integer cblas gemm here")
    x = np.array([0.18905339, -0.5227485, -0.41306356, -2.4414673, 1.7997074, 1.1441659, -0.32542282, 0.7738066],
                 np.float32).reshape(2, 1, 4, 1)
    w = np.array([0.28121066, -0.5538228], np.float32).reshape(1, 1, 2, 1)
    g = conv2d_geometry(x.shape, w.shape, None, 1, "valid", (3, 1), 1, "zeros")
    saved = blas.AVAILABLE
    blas.AVAILABLE = saved and pool == "numba"
    try:
        runs = [npconv.fast.conv2d(x, w, None, g, threads=threads) for threads in (1, 2, 3)]
    finally:
        blas.AVAILABLE = saved
    for y, counts in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        assert counts == runs[0][1]


def test_standard_result_does_not_depend_on_the_thread_count():
    """Found by the thorough profile (as a depthwise configuration with one channel, which the
    standard kernel computes): when the standard kernel's blocks of rows shrank with more
    threads, BLAS was asked for narrower products and summed this 4-tap output in another
    order, one ulp away."""
    cfg = Conv2dConfig(1, 1, 1, 1, 3, 1, (4, 1), (1, 1), "same", (1, 1), "zeros", False)
    x = np.array([0.12573022, -0.13210486, 0.64042264], np.float32).reshape(1, 1, 3, 1)
    w = np.array([0.10490011, -0.5356694, 0.36159506, 1.304], np.float32).reshape(1, 1, 4, 1)
    g = _geometry(cfg)
    assert npconv.fast.covers(g, np.float32) == "standard"
    one, counts_one = npconv.fast.conv2d(x, w, None, g, threads=1)
    for threads in (2, 3, 5):
        many, counts_many = npconv.fast.conv2d(x, w, None, g, threads=threads)
        np.testing.assert_array_equal(many, one)
        assert counts_many == counts_one


# ----------------------------------------------------------------------------------------
# Fused convolution + BatchNorm + ReLU6
# ----------------------------------------------------------------------------------------


# what the fused kernel covers, batched and non-empty (also drawn by test_fusion.py)
FUSED_CONFIGS = st.one_of(
    conv2d_configs(depthwise=True, max_size=8, allow_unbatched=False, allow_empty_batch=False),
    conv2d_configs(depthwise=False, max_size=8, allow_unbatched=False, allow_empty_batch=False),
)


@given(cfg=FUSED_CONFIGS, dtype=st.sampled_from((np.float32, np.float64)), relu6=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_fused_bn_relu6_within_derived_bound_and_counts_match_the_reference_pipeline(cfg, dtype, relu6, seed):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(cfg.input_shape)).astype(dtype)
    w = rng.standard_normal(cfg.weight_shape).astype(dtype)
    b = rng.standard_normal(cfg.out_channels).astype(dtype) if cfg.bias else None
    C = cfg.out_channels
    mean, var = rng.standard_normal(C).astype(dtype), rng.uniform(0.1, 4, C).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    scale, shift = npconv.fast.batch_norm_scale_shift(mean, var, gamma, beta, eps=1e-5, dtype=dtype)

    with npconv.count() as fused_tally:
        fused = npconv.fast.conv2d_bn_relu6(x, w, b, scale, shift, **cfg.kwargs(), relu6=relu6)

    exact, bound = fused_expectation(cfg, x, w, b, scale, shift, relu6)
    assert_within_bound(fused, exact, bound, what="fused conv + BN + ReLU6")

    # Counts: the same ops, kinds and numbers as the reference pipeline.
    kind = npconv.fast.covers(_geometry(cfg), dtype)
    with npconv.count() as reference_tally:
        if kind == "depthwise":
            y = npconv.depthwise_conv2d(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.padding_mode,
                                        engine="reference")
        elif kind == "pointwise":
            y = npconv.pointwise_conv2d(x, w, b, cfg.stride, engine="reference")
        else:
            y = npconv.conv2d(x, w, b, **cfg.kwargs(), engine="reference")
        y = ops.batch_norm2d(y, mean, var, gamma, beta, training=False, eps=1e-5)
        if relu6:
            ops.relu6(y)
    assert _by_op(fused_tally) == _by_op(reference_tally)


def fused_expectation(cfg: Conv2dConfig, x, w, b, scale, shift, relu6: bool):
    """(exact, bound) for a fused convolution + BatchNorm (as scale, shift) + ReLU6: the exact
    affine map of the float64 reference, then the clamp (1-Lipschitz), and the bound
    bound_from_magnitude(|s| M + |t|, n + 2) derived in npconv/fast/__init__.py."""
    as64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    exact = npconv.conv2d(as64(x), as64(w), as64(b), **cfg.kwargs(), engine="reference")
    s64, t64 = scale.astype(np.float64)[:, None, None], shift.astype(np.float64)[:, None, None]
    exact = exact * s64 + t64
    if relu6:
        exact = np.clip(exact, 0, 6)
    magnitude = conv2d_magnitude(x, w, b, **cfg.kwargs())
    n = (cfg.in_channels // cfg.groups) * cfg.kernel_size[0] * cfg.kernel_size[1] + (1 if cfg.bias else 0)
    return exact, bound_from_magnitude(np.abs(s64) * magnitude + np.abs(t64), n + 2, x.dtype)


def test_fused_rejects_what_it_does_not_cover_and_bad_parameters():
    x = np.ones((1, 4, 5, 5), np.float32)
    grouped = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="does not cover"):
        npconv.fast.conv2d_bn_relu6(x, grouped, groups=2)
    with pytest.raises(ValueError, match="scale should contain 4 elements"):
        npconv.fast.conv2d_bn_relu6(x, np.ones((4, 4, 1, 1), np.float32), scale=np.ones(3, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        npconv.fast.conv2d_bn_relu6(x.astype(np.float16), np.ones((4, 4, 1, 1), np.float16))


# ----------------------------------------------------------------------------------------
# Dispatch and fallback
# ----------------------------------------------------------------------------------------


@pytest.fixture
def fast_calls(monkeypatch):
    """Spy on npconv.fast.conv2d: the list of geometries it was asked to compute."""
    calls = []
    real = npconv.fast.conv2d

    def spy(x, w, b, geometry, **kwargs):
        calls.append(geometry)
        return real(x, w, b, geometry, **kwargs)

    monkeypatch.setattr(npconv.fast, "conv2d", spy)
    return calls


@given(cfg=conv2d_configs(max_size=8, max_groups=4), data=st.data())
def test_uncovered_configurations_fall_back_to_the_reference(cfg, data):
    """Grouped convolution (1 < groups < C_in) and empty arrays are not the fast tier's: the
    "fast" engine must give exactly the reference's bits and counts."""
    g = _geometry(cfg)
    x, w, b = data.draw(conv2d_arrays(cfg, dtype=np.float32))
    kind = npconv.fast.covers(g, np.float32)
    grouped = 1 < cfg.groups < cfg.in_channels
    empty = min(cfg.batch, g.out_h, g.out_w) == 0
    assert (kind is None) == (grouped or empty)
    if kind is None:
        fast, fast_tally = _run("fast", x, w, b, cfg)
        reference, reference_tally = _run("reference", x, w, b, cfg)
        np.testing.assert_array_equal(fast, reference)
        assert _by_op(fast_tally) == _by_op(reference_tally)


def test_engine_selection_reaches_the_fast_tier_only_when_asked(fast_calls):
    x = np.ones((1, 3, 6, 6), np.float32)
    w = np.ones((3, 1, 3, 3), np.float32)
    grouped = np.ones((6, 1, 3, 3), np.float32)
    assert npconv.engine.current() == npconv.engine.DEFAULT == "reference"
    npconv.depthwise_conv2d(x, w)
    assert fast_calls == []
    npconv.depthwise_conv2d(x, w, engine="fast")
    assert len(fast_calls) == 1
    with npconv.engine.use("fast"):
        assert npconv.engine.current() == "fast"
        npconv.conv2d(x, np.ones((4, 3, 1, 1), np.float32))
        npconv.pointwise_conv2d(x, np.ones((4, 3), np.float32))
        assert len(fast_calls) == 3
        npconv.conv2d(x, grouped[:, :, :, :], groups=3)  # depthwise with multiplier 2: covered
        assert len(fast_calls) == 4
        npconv.conv2d(np.ones((1, 4, 6, 6), np.float32), np.ones((4, 2, 3, 3), np.float32), groups=2)
        assert len(fast_calls) == 4  # grouped: fell back
        with npconv.engine.use("reference"):
            npconv.depthwise_separable_conv2d(x, w, np.ones((4, 3, 1, 1), np.float32))
            assert len(fast_calls) == 4
        npconv.depthwise_separable_conv2d(x, w, np.ones((4, 3, 1, 1), np.float32), engine="reference")
        assert len(fast_calls) == 4
        npconv.depthwise_separable_conv2d(x, w, np.ones((4, 3, 1, 1), np.float32))
        assert len(fast_calls) == 6
    assert npconv.engine.current() == "reference"


def test_bad_engine_is_rejected_with_a_clear_message():
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"engine must be one of \('reference', 'fast'\) or None, but got engine='gpu'"):
        npconv.conv2d(x, w, engine="gpu")
    with pytest.raises(TypeError, match="engine must be one of"):
        npconv.conv2d(x, w, engine=1)
    with pytest.raises(ValueError, match="engine must be one of"):
        with npconv.engine.use("Fast"):
            pass


def test_float16_goes_through_the_fast_tier_widened_to_float32(fast_calls):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float16)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    y = npconv.conv2d(x, w, padding=1, engine="fast")
    assert y.dtype == np.float16 and len(fast_calls) == 1 and fast_calls[0].in_channels == 2


# The fully connected layer (npconv/fast/linear.py)
# ----------------------------------------------------------------------------------------


@st.composite
def linear_arrays(draw, values=None):
    """(x (*lead, IN), w (OUT, IN), b (OUT,) or None) of float32 or float64, any side empty
    or not, values of every family (`special` plants NaN and +-Inf in x)."""
    lead = draw(st.lists(st.integers(0, 4), min_size=0, max_size=2))
    in_features, out_features = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    shape = SimpleNamespace(input_shape=(*lead, in_features), weight_shape=(out_features, in_features),
                            out_channels=out_features, bias=draw(st.booleans()))
    dtype = draw(st.sampled_from((np.float32, np.float64)))
    family = values or draw(st.sampled_from(VALUE_FAMILIES))
    return draw(conv2d_arrays(shape, dtype=dtype, values=family))


@given(arrays=linear_arrays(), threads=st.integers(1, 3))
def test_fast_linear_within_bound_of_reference_and_counts_equal(arrays, threads):
    """One BLAS product (split over `threads`) plus the bias: within bound_from_magnitude(M,
    IN + 1) of the float64 reference, NaN and Inf where the reference has them, and the
    reference's counts; empty arrays stay on the reference kernel, with its bits."""
    x, w, b = arrays
    with npconv.count() as reference_tally:
        reference = ops.linear(x, w, b)
    with npconv.count() as fast_tally:
        fast = _with_threads(threads, lambda: ops.linear(x, w, b, engine="fast"))
    assert fast.dtype == x.dtype and fast.shape == reference.shape
    assert _by_op(fast_tally) == _by_op(reference_tally)
    assert_within_bound(fast, *_linear_exact_and_bound(x, w, b), what="fast linear")
    if not npconv.fast.linear.covers(x.reshape(int(np.prod(x.shape[:-1])), w.shape[1]), w):
        np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize("rows, in_features, out_features", [(1, 1024, 1000), (600, 512, 8)],
                         ids=["classifier: blocks of output features", "tall batch: blocks of rows"])
def test_fast_linear_split_over_two_threads_within_bound(rows, in_features, out_features, monkeypatch):
    """`gemm.matmul` splits the product (with MIN_MACS at 0: at its default these products,
    like the drawn ones above, stay on one thread): blocks of W^T's columns (a strided view of
    W) or of x's rows, each its own BLAS call."""
    monkeypatch.setattr(npconv.fast.gemm, "MIN_MACS", 0)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((rows, in_features)).astype(np.float32)
    w = rng.standard_normal((out_features, in_features)).astype(np.float32)
    b = rng.standard_normal(out_features).astype(np.float32)
    assert len(npconv.fast.gemm.blocks(rows, out_features, 2)) == 2
    fast = _with_threads(2, lambda: ops.linear(x, w, b, engine="fast"))
    assert_within_bound(fast, *_linear_exact_and_bound(x, w, b), what="fast linear")


def _linear_exact_and_bound(x, w, b):
    """The float64 reference of x @ w.T + b and the rounding bound of x's dtype around it
    (IN products and the bias per output)."""
    as64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    exact = ops.linear(as64(x), as64(w), as64(b))
    magnitude = ops.linear(np.abs(as64(x)), np.abs(as64(w)), None if b is None else np.abs(as64(b)))
    return exact, _rounding_bound(magnitude, w.shape[1] + (b is not None), x.dtype)


def _with_threads(threads, fn):
    import numba

    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn()
    finally:
        numba.set_num_threads(saved)


@pytest.mark.parametrize("op", ["pointwise", "linear"])
def test_read_only_inputs_give_the_writable_inputs_result(op, monkeypatch):
    """Arrays a user cannot write to (np.frombuffer, a memory map, flags.writeable = False)
    reach the fast kernels as they are (np.ascontiguousarray does not copy them). Found in
    review: the split product's kernel, compiled once for arrays of any layout with
    compilation then disabled, had no definition for read-only operands and raised TypeError
    (regression test). The other fast kernels compile a read-only version on first use, as
    every Numba dispatcher does; that costs 5-10 s of compiling each, so it is not run here."""
    from npconv.fast import gemm

    monkeypatch.setattr(gemm, "MIN_MACS", 0)    # split the products, on two threads
    rng = np.random.default_rng(3)
    x_shape, w_shape = {"pointwise": ((1, 24, 9, 9), (40, 24, 1, 1)), "linear": ((6, 48), (40, 48))}[op]
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    run = {"pointwise": lambda x, w: npconv.pointwise_conv2d(x, w, engine="fast"),
           "linear": lambda x, w: ops.linear(x, w, engine="fast")}[op]
    writable = _with_threads(2, lambda: run(x, w))
    x.flags.writeable = w.flags.writeable = False
    np.testing.assert_array_equal(_with_threads(2, lambda: run(x, w)), writable)


def test_linear_reaches_the_fast_tier_only_when_asked(monkeypatch):
    calls = []
    real = npconv.fast.linear.linear
    monkeypatch.setattr(npconv.fast.linear, "linear", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    ops.linear(x, w)
    assert calls == []
    ops.linear(x, w, engine="fast")
    with npconv.engine.use("fast"):
        ops.linear(x[0], w, np.ones(4, np.float32))        # 1-D input: one row
        ops.linear(np.ones((0, 3), np.float32), w)         # empty: the reference kernel
        ops.linear(x.astype(np.float16), w.astype(np.float16))  # widened to float32 first
    assert calls == [(2, 3), (1, 3), (2, 3)]


# The products of the pointwise and standard kernels (npconv/fast/gemm.py)
# ----------------------------------------------------------------------------------------


@given(
    shape=st.tuples(st.integers(1, 80), st.integers(1, 40), st.integers(1, 300)),
    threads=st.integers(1, 4),
    strided_out=st.booleans(),
    transposed_b=st.booleans(),
    dtype=st.sampled_from((np.float32, np.float64)),
    pool=st.sampled_from(("numba", "npconv")),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_products_are_within_the_inner_product_bound_and_restore_blas_threads(shape, threads, strided_out,
                                                                                     transposed_b, dtype, pool, seed):
    """gemm.matmul splits by rows or by columns, never by k: every output is one inner
    product of length K, within bound_from_magnitude(|A| |B|, K) of the float64 product,
    whatever the thread count, whether out's rows are a view into a wider array, whether b is
    a transposed view (the fast linear's W^T), and on either pool: Numba's (`split_product`,
    BLAS called from the kernel) or npconv's own (the fallback where NumPy's BLAS has no
    64-bit cblas gemm); BLAS's own thread count is what it was before the call."""
    from npconv.fast import blas, gemm

    if pool == "numba" and not blas.AVAILABLE:
        pytest.skip("NumPy's BLAS has no 64-bit-integer cblas gemm here")
    M, K, L = shape
    saved = gemm.MIN_MACS, gemm.MIN_MACS_OWN_POOL, blas.AVAILABLE
    gemm.MIN_MACS = gemm.MIN_MACS_OWN_POOL = 0   # split even these small products
    blas.AVAILABLE = pool == "numba"
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((L, K)).astype(dtype).T if transposed_b else rng.standard_normal((K, L)).astype(dtype)
    out = np.full((M, L + 7), np.nan, dtype)[:, 3:3 + L] if strided_out else np.empty((M, L), dtype)
    before = [lib.get_num_threads() for lib in gemm._blas_libraries()]
    try:
        assert (gemm._numba_layouts(a, b, out) is not None) == (pool == "numba")
        gemm.matmul(a, b, out, threads)
    finally:
        gemm.MIN_MACS, gemm.MIN_MACS_OWN_POOL, blas.AVAILABLE = saved
    assert [lib.get_num_threads() for lib in gemm._blas_libraries()] == before
    exact = a.astype(np.float64) @ b.astype(np.float64)
    magnitude = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert_within_bound(out, exact, bound_from_magnitude(magnitude, K, dtype), what=f"gemm.matmul, {threads} threads")


def test_a_function_called_through_its_address_returns_what_a_direct_call_does():
    """npconv/fast/calls.py: `address` compiles a function for its arguments' canonical types
    (arrays C-contiguous and writable) and `call` reaches it from a Numba kernel. The result is
    the direct call's, for a read-only argument too; a kernel that would pass an array that is
    not C-contiguous is refused when it is compiled, before any call through an address."""
    import numba
    from numba import njit

    from npconv.fast.calls import address, call

    @njit
    def partial_sums(a, first, last):
        total = a.dtype.type(0)
        for i in range(first, last):
            total += a[i]
        return int(total), first, last, a.shape[0], a.size - (last - first)

    @njit
    def through(work, a, first, last):
        return call(work, (a,), first, last)

    a = np.arange(10, dtype=np.float64) ** 2
    read_only = a.copy()
    read_only.flags.writeable = False
    work = address(partial_sums, (a,), key="test")
    assert address(partial_sums, (read_only,), key="test") == work      # looked up, not compiled again
    for array in (a, read_only):
        assert through(work, array, 2, 7) == partial_sums(a, 2, 7) == (4 + 9 + 16 + 25 + 36, 2, 7, 10, 5)
    with pytest.raises(numba.core.errors.TypingError, match="not C-contiguous"):
        through(work, a[::2], 0, 1)
