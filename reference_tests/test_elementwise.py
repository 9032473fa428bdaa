"""npconv.elementwise (hardtanh, clamp, sigmoid, add, sub, mul, div) against PyTorch (CPU).

What is proved, over drawn shapes that broadcast (0-d, size-1 and empty dimensions included),
Python-number operands in either position, and values spanning the dtype (subnormals, +-0,
+-inf and NaN included), for float16, float32 and float64:
* clamp and hardtanh equal torch bit for bit (NaN positions and the sign of zero included),
  for any limits: either absent, +-inf, NaN, min > max (clamp gives max; F.hardtanh raises,
  and so does npconv).
* add, sub (any alpha), mul, div: torch's result and npconv's result in the dtype are both
  within (1 + 2^-29) * bound of npconv's float64 result (2 * bound for float64; the bound is
  npconv.bounds' add_bound / sub_bound / mul_bound / div_bound, derived there), NaN and
  +-inf positions matching exactly; with alpha = 1 npconv equals torch bit for bit (one
  correctly rounded IEEE operation each), which also pins down how a Python number is
  converted (PyTorch's float16 quirks included).
* sigmoid: the same comparison with npconv.bounds.sigmoid_bound, which assumes an exp of at
  most SIGMOID_EXP_ULPS = 1 ulp error; that assumption is measured here on ~2.2 million float32
  inputs for torch.exp (MKL's vsExp on this build), for Sleef's expf8_u10 (the exp of torch's
  vectorised sigmoid, called directly from libtorch_cpu) and for libm's expf (the scalar
  path, and npconv's), and in float64 against mpmath.
* Counts equal the closed forms of npconv.formulas (elementwise_count, clamp_compares,
  sigmoid_exps, alpha_muls).
* Bad arguments raise ValueError/TypeError naming the problem, with PyTorch's wording where
  PyTorch rejects the same call; the bounds are not vacuous (twice the bound is rejected).
"""

import ctypes
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit, types
from numba.extending import intrinsic
from twin_utils import one_torch_thread

import npconv
from npconv import bounds, elementwise, formulas
from npconv.kernels import sigmoid as sigmoid_kernel
from npconv.tolerance import assert_within_bound

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module

DTYPES = [np.float16, np.float32, np.float64]
TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}
WIDTH = {np.dtype(np.float16): 16, np.dtype(np.float32): 32, np.dtype(np.float64): 64}
ARITHMETIC = ["add", "sub", "mul", "div"]
BOUNDS = {"add": bounds.add_bound, "sub": bounds.sub_bound, "mul": bounds.mul_bound, "div": bounds.div_bound}
COUNT_KIND = {"add": "adds", "sub": "subs", "mul": "muls", "div": "divides"}
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0]


# ----------------------------------------------------------------------------- helpers


def _torch(v):
    """A NumPy array as a CPU tensor (0-d kept 0-d); a Python number unchanged."""
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.array(v, order="C"))
    return v


def _numpy(t):
    return t.detach().cpu().numpy()


def _assert_same_bits(actual, expected, what):
    """Equal bit patterns (so -0.0 != 0.0), except that any NaN matches any NaN."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (
        f"{what}: {actual.dtype}{actual.shape} vs {expected.dtype}{expected.shape}")
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: NaN positions")
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[actual.dtype.itemsize]
    keep = ~np.isnan(actual)
    np.testing.assert_array_equal(actual.view(uint)[keep], expected.view(uint)[keep], err_msg=f"{what}: bits")


def _values(dtype, specials=True, min_dims=0):
    """Array elements spanning the dtype: ordinary sizes, the whole range (subnormals too),
    and the special values."""
    w = WIDTH[np.dtype(dtype)]
    kinds = [st.floats(-1e3, 1e3, width=w), st.floats(allow_nan=False, allow_infinity=False, width=w)]
    if specials:
        kinds.append(st.sampled_from(SPECIALS))
    return st.one_of(*kinds)


def _number(dtype, specials=True):
    """A Python float operand. float16 draws float32 values: PyTorch converts a double to
    float16 through float32 (two roundings; npconv does the same), and float32 numbers keep
    that path trivially exact-to-compare while still exercising float32 -> float16 rounding."""
    w = 32 if np.dtype(dtype) == np.float16 else 64
    kinds = [st.floats(-1e3, 1e3, width=w), st.floats(allow_nan=False, allow_infinity=False, width=w)]
    if specials:
        kinds.append(st.sampled_from(SPECIALS))
    return st.one_of(*kinds)


def _as_used(value, dtype, op, position):
    """The value a Python number has inside the computation, by PyTorch's rules: rounded to the
    dtype, except the second operand (b) of mul and div on float16, taken in float32; float16
    rounding goes through float32."""
    dtype = np.dtype(dtype)
    if not isinstance(value, float):
        return value
    with np.errstate(over="ignore"):
        if dtype == np.float16:
            in_float32 = np.float32(value)
            return float(in_float32) if (op in ("mul", "div") and position == "b") else float(np.float16(in_float32))
        return float(dtype.type(value))


@st.composite
def operand_pairs(draw, dtype, specials=True):
    """(a, b, result shape): two arrays of mutually broadcastable shapes, or one array and a
    Python number in either position."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4))
    shape_a, shape_b = shapes.input_shapes
    kind = draw(st.sampled_from(["arrays", "arrays", "a_number", "b_number"]))
    elements = _values(dtype, specials)
    a = draw(hnp.arrays(dtype, shape_a, elements=elements))
    b = draw(hnp.arrays(dtype, shape_b, elements=elements))
    if kind == "a_number":
        return draw(_number(dtype, specials)), b, b.shape
    if kind == "b_number":
        return a, draw(_number(dtype, specials)), a.shape
    return a, b, shapes.result_shape


def _run_torch(op, a, b, alpha):
    fn = getattr(torch, op)
    kwargs = {"alpha": alpha} if op in ("add", "sub") else {}
    return _numpy(fn(_torch(a), _torch(b), **kwargs))


def _run_npconv(op, a, b, alpha):
    fn = getattr(elementwise, op)
    return fn(a, b, alpha=alpha) if op in ("add", "sub") else fn(a, b)


def _wide(v):
    return v.astype(np.float64) if isinstance(v, np.ndarray) else v


# ----------------------------------------------------------------------------- add, sub, mul, div


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ARITHMETIC)
@given(data=st.data())
def test_arithmetic_matches_torch_within_bound(op, dtype, data):
    dtype = np.dtype(dtype)
    a, b, shape = data.draw(operand_pairs(dtype), label="operands")
    alpha = 1
    if op in ("add", "sub"):
        # alphas exact in every dtype (the bound takes alpha as exact)
        alpha = data.draw(st.one_of(st.sampled_from([1, 1.0, 2, -1, 0, 0.5]), st.floats(-8, 8, width=16)),
                          label="alpha")
    _check_arithmetic(op, dtype, a, b, alpha, shape)


def _check_arithmetic(op, dtype, a, b, alpha, shape):
    """torch's and npconv's `op` on a, b (alpha for add and sub) in `dtype`: both within the
    bound of npconv's float64 result, bit-equal to each other at alpha = 1, counted as the
    closed forms say."""
    with npconv.count() as tally:
        ours = _run_npconv(op, a, b, alpha)
    theirs = _run_torch(op, a, b, alpha)
    assert ours.dtype == theirs.dtype == dtype
    assert ours.shape == theirs.shape == tuple(shape)

    # the reference: npconv in float64 on the operands as the computation sees them
    a_used, b_used = _as_used(a, dtype, op, "a"), _as_used(b, dtype, op, "b")
    with npconv.counting.paused():
        reference = _run_npconv(op, _wide(a_used), _wide(b_used), alpha)
    bound_args = (a_used, b_used, dtype) + ((alpha,) if op in ("add", "sub") else ())
    bound = BOUNDS[op](*bound_args) * bounds.both_sides(bounds.unit_roundoff(dtype))
    assert bound.shape == reference.shape
    assert_within_bound(theirs, reference, bound, what=f"torch.{op} {dtype}")
    assert_within_bound(ours, reference, bound, what=f"npconv.{op} {dtype}")
    if alpha == 1:
        _assert_same_bits(ours, theirs, f"{op} {dtype}: npconv vs torch")

    n = formulas.elementwise_count(shape)
    counts = tally.by_op[op].other
    assert counts[COUNT_KIND[op]] == n
    if op in ("add", "sub"):
        assert counts["muls"] == formulas.alpha_muls(n, alpha)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["add", "sub"])
def test_an_alpha_product_that_overflows_beside_an_infinity(op, dtype):
    """Found by the thorough profile: torch.add(-inf, 2**1023, alpha=2) in float64 is -inf,
    npconv's is NaN. PyTorch's CPU kernel fuses a + alpha*b, so alpha*b = 2**1024 is never
    rounded and -inf survives; npconv rounds alpha*b to +inf first, and -inf + inf is NaN.
    float32 is the same; in float16 the two swap (PyTorch rounds alpha*b to float16 first,
    npconv computes in float32). With a Python number for b, PyTorch does both in one call,
    element by element (docs/findings.md, finding 26). Both orders are legitimate, so where
    alpha*b may overflow the dtype beside an infinite a, the bound leaves the position
    unjudged, as it already did beside a finite one. The other positions are judged: a NaN
    stays NaN, a finite a gives the infinity both orders agree on, and alpha*b that fits leaves
    a's infinity."""
    dtype = np.dtype(dtype)
    big = 2.0 ** (int(np.finfo(dtype).maxexp) - 1)              # alpha * big overflows the dtype
    a = np.array([-np.inf, np.inf, np.nan, 1.0, -np.inf, np.inf], dtype)
    b = np.array([big, big, big, big, 1.0, 1.0], dtype)
    _check_arithmetic(op, dtype, a, b, 2, a.shape)
    bound = BOUNDS[op](a, b, dtype, 2)
    assert bound[:2].tolist() == [np.inf, np.inf] and bound[2] == bound[4] == bound[5] == 0
    infinities = np.full(15, -np.inf if op == "add" else np.inf, dtype)   # b a number: mixed orders
    _check_arithmetic(op, dtype, infinities, big, 2, infinities.shape)


@pytest.mark.parametrize("op", ARITHMETIC)
def test_squeeze_excitation_broadcast(op):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 5, 5)).astype(np.float32)
    s = (rng.random((2, 8, 1, 1)) + 0.5).astype(np.float32)
    with npconv.count() as tally:
        ours = _run_npconv(op, x, s, 1)
    _assert_same_bits(ours, _run_torch(op, x, s, 1), op)
    assert tally.by_op[op].other[COUNT_KIND[op]] == formulas.elementwise_count((2, 8, 5, 5)) == 400


def test_division_by_zero_and_alpha_counts():
    a = np.array([1.0, -1.0, 0.0, 2.0], np.float32)
    b = np.array([0.0, 0.0, 0.0, -0.0], np.float32)
    _assert_same_bits(elementwise.div(a, b), _numpy(torch.div(_torch(a), _torch(b))), "div by zero")
    with npconv.count() as tally:
        elementwise.sub(a, 3.0, alpha=2)
        elementwise.add(a, a, alpha=1.0)
    assert tally.by_op["sub"].other["muls"] == 4 and tally.by_op["sub"].other["subs"] == 4
    assert tally.by_op["add"].other["muls"] == 0 and tally.by_op["add"].other["adds"] == 4


# ----------------------------------------------------------------------------- clamp, hardtanh


def _limits(dtype):
    """A clamp limit: finite in the dtype's range (float16 from float32 values, see _number),
    +-inf or NaN."""
    dtype = np.dtype(dtype)
    big = float(np.finfo(dtype).max)
    w = 32 if dtype == np.float16 else 64
    return st.one_of(st.floats(-8, 8, width=w), st.floats(-big, big, width=w),
                     st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0]))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_clamp_equals_torch_bit_for_bit(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    x = data.draw(hnp.arrays(dtype, shape, elements=_values(dtype)), label="x")
    low = data.draw(st.one_of(st.none(), _limits(dtype)), label="min")
    high = data.draw(st.one_of(st.none(), _limits(dtype)), label="max")
    if low is None and high is None:
        with pytest.raises(ValueError, match="At least one of 'min' or 'max' must not be None"):
            elementwise.clamp(x, low, high)
        with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
            torch.clamp(_torch(x), low, high)
        return
    with npconv.count() as tally:
        ours = elementwise.clamp(x, min=low, max=high)
    theirs = _numpy(torch.clamp(_torch(x), min=low, max=high))
    _assert_same_bits(ours, theirs, f"clamp({low}, {high}) {np.dtype(dtype)}")
    nan_limit = any(v is not None and math.isnan(v) for v in (low, high))
    assert tally.by_op["clamp"].other["activation_compares"] == formulas.clamp_compares(
        x.size, low is not None, high is not None, nan_limit)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_hardtanh_equals_torch_bit_for_bit(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    x = data.draw(hnp.arrays(dtype, shape, elements=_values(dtype)), label="x")
    low = data.draw(st.one_of(st.just(-1.0), _limits(dtype)), label="min_val")
    high = data.draw(st.one_of(st.just(1.0), _limits(dtype)), label="max_val")
    if low > high:
        with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
            elementwise.hardtanh(x, low, high)
        with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
            torch.nn.functional.hardtanh(_torch(x), low, high)
        return
    with npconv.count() as tally:
        ours = elementwise.hardtanh(x, low, high)
    _assert_same_bits(ours, _numpy(torch.nn.functional.hardtanh(_torch(x), low, high)), f"hardtanh({low}, {high})")
    _assert_same_bits(ours, _numpy(torch.ops.aten.hardtanh(_torch(x), low, high)), "aten.hardtanh")
    nan_limit = math.isnan(low) or math.isnan(high)
    compares = tally.by_op["hardtanh"].other["activation_compares"]
    assert compares == formulas.clamp_compares(x.size, True, True, nan_limit)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_clamp_min_above_max_nan_and_signed_zeros(dtype):
    x = np.concatenate([np.linspace(-3, 3, 45), [np.nan, -np.inf, np.inf, -0.0, 0.0]]).astype(dtype)
    with npconv.count() as tally:
        ours = elementwise.clamp(x, 2.0, -1.0)
    assert np.all(ours[~np.isnan(x)] == -1) and np.isnan(ours[np.isnan(x)]).all()  # max everywhere; NaN stays
    _assert_same_bits(ours, _numpy(torch.clamp(_torch(x), 2.0, -1.0)), "clamp min > max")
    # aten.hardtanh does not check min_val <= max_val (F.hardtanh does): it is clamp
    _assert_same_bits(ours, _numpy(torch.ops.aten.hardtanh(_torch(x), 2.0, -1.0)), "aten.hardtanh min > max")
    assert tally.by_op["clamp"].other["activation_compares"] == 2 * x.size
    for low, high in [(0.0, None), (None, -0.0), (-0.0, 0.0), (0.0, -0.0)]:  # a value equal to a limit is kept
        _assert_same_bits(elementwise.clamp(x, low, high), _numpy(torch.clamp(_torch(x), low, high)), "zeros")
    with npconv.count() as tally:
        _assert_same_bits(elementwise.clamp(x, min=np.nan), _numpy(torch.clamp(_torch(x), min=np.nan)), "NaN min")
    assert tally.by_op["clamp"].other["activation_compares"] == formulas.clamp_compares(x.size, True, False, True) == 0
    _assert_same_bits(elementwise.hardtanh(x), _numpy(torch.nn.functional.hardtanh(_torch(x))), "hardtanh defaults")


# ----------------------------------------------------------------------------- sigmoid


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_sigmoid_matches_torch_within_bound(dtype, data):
    dtype = np.dtype(dtype)
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=20))
    w = WIDTH[dtype]
    elements = st.one_of(st.floats(-30, 30, width=w), st.floats(-120, 120, width=w), _values(dtype))
    x = data.draw(hnp.arrays(dtype, shape, elements=elements), label="x")
    with npconv.count() as tally:
        ours = elementwise.sigmoid(x)
    theirs = _numpy(torch.sigmoid(_torch(x)))
    with npconv.counting.paused():
        reference = elementwise.sigmoid(x.astype(np.float64))
    bound = bounds.sigmoid_bound(x, dtype) * bounds.both_sides(bounds.unit_roundoff(dtype))
    assert ours.dtype == theirs.dtype == dtype and ours.shape == theirs.shape == x.shape
    assert_within_bound(theirs, reference, bound, what=f"torch.sigmoid {dtype}")
    assert_within_bound(ours, reference, bound, what=f"npconv.sigmoid {dtype}")
    assert tally.by_op["sigmoid"].other["sigmoid_exps"] == formulas.sigmoid_exps(x.size)


def test_float32_sigmoid_kernel_stays_in_float32():
    """The float32 specialisation must not widen to float64 (a Python number in Numba float32
    arithmetic would): its LLVM IR calls the float32 exp and has no double at all."""
    fresh = njit(sigmoid_kernel.sigmoid.py_func)  # the same source, uncached (cached code cannot be inspected)
    x = np.linspace(-4, 4, 9, dtype=np.float32)
    fresh(x, np.empty_like(x))
    ir = fresh.inspect_llvm(fresh.signatures[0])
    assert "@llvm.exp.f32" in ir
    assert "double" not in ir and "fpext" not in ir


# ----------------------------------------------------------------------------- the exp assumption, measured


def _ulp(y, dtype):
    """ulp of the exact value y (float64 array) in `dtype`: 2^(e - p + 1) for 2^e <= |y| < 2^(e+1),
    never below the subnormal spacing."""
    info = np.finfo(dtype)
    _, e = np.frexp(np.abs(y))  # |y| = m 2^e, 0.5 <= m < 1
    return np.ldexp(1.0, np.maximum(e - 1, info.minexp) - info.nmant)


@njit
def _libm_exp(x, y):
    # x, y: (L,)   Numba's math.exp in x's own precision (expf for float32): npconv's exp
    for k in range(x.shape[0]):
        y[k] = math.exp(x[k])


def _exp_by_libm(x):
    y = np.empty_like(x)
    _libm_exp(x, y)
    return y


def _sleef_exp(name, width, element):
    """A function running Sleef's vector exp `name` over a 1-D array: the routine torch's
    Vectorized<T>::exp calls (aten/src/ATen/cpu/vec/vec256/vec256_float.h), taken from
    libtorch_cpu, which exports it, and called from a Numba intrinsic with a <width x element>
    argument (passed in a ymm register, so AVX2 is required). None where that is unavailable."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return None
    try:
        import llvmlite.binding as llvm
        from llvmlite import ir

        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        llvm.add_symbol(name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)
    except (ImportError, OSError, AttributeError):
        return None
    vector = ir.VectorType({"float": ir.FloatType(), "double": ir.DoubleType()}[element], width)

    @intrinsic
    def vexp(typingctx, source, target):
        def codegen(context, builder, signature, args):
            fn = builder.module.globals.get(name)
            if fn is None:
                fn = ir.Function(builder.module, ir.FunctionType(vector, [vector]), name)
            value = builder.load(builder.inttoptr(args[0], vector.as_pointer()), align=1)
            builder.store(builder.call(fn, [value]), builder.inttoptr(args[1], vector.as_pointer()), align=1)
        return types.void(source, target), codegen

    @njit
    def run(x, y):
        # x, y: (L,) with L a multiple of width
        for i in range(0, x.shape[0], width):
            vexp(x[i:].ctypes.data, y[i:].ctypes.data)

    def apply(x):
        padded = np.concatenate([x, np.zeros((-len(x)) % width, x.dtype)])
        y = np.empty_like(padded)
        run(padded, y)
        return y[:len(x)]

    return apply


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def test_exp_and_sigmoid_ulp_error_float32_dense_sample():
    """Every 1021st float32 bit pattern in [-90, 90] (2.2 million inputs) against float64 math
    (whose own error, under 2^-29 float32 ulps, is negligible).

    exp, max ulp error <= SIGMOID_EXP_ULPS for: torch.exp (MKL's vsExp on an MKL build: not
    the exp sigmoid uses), Sleef_expf8_u10 (the exp of torch's vectorised sigmoid) and libm's
    expf (torch's scalar sigmoid loop calls std::exp; npconv's kernel calls it too).
    sigmoid: torch's vectorised and scalar (strided input) paths and npconv's float32 kernel
    within sigmoid_bound; torch's vectorised path equal to reciprocal(1 + Sleef(-x)) bit for
    bit, the model the bound is derived for."""
    top = int(np.array(90.0, np.float32).view(np.int32))
    positive = np.arange(0, top + 1, 1021, dtype=np.int32).view(np.float32)
    x = np.concatenate([-positive[::-1], positive])
    x64 = x.astype(np.float64)
    measured = {}

    exact = np.exp(x64)
    normal = (exact >= np.finfo(np.float32).tiny) & (exact <= np.finfo(np.float32).max)
    sleef = _sleef_exp("Sleef_expf8_u10", 8, "float")
    exps = {"torch.exp": _numpy(torch.exp(torch.from_numpy(x))), "libm expf": _exp_by_libm(x)}
    if sleef is not None:
        exps["Sleef_expf8_u10"] = sleef(x)
    for name, values in exps.items():
        measured[name] = float((np.abs(values.astype(np.float64) - exact) / _ulp(exact, np.float32))[normal].max())

    s = _sigmoid64(x64)
    bound = bounds.sigmoid_bound(x64, np.float32) * bounds.both_sides(bounds.U32)
    judged = s >= np.finfo(np.float32).tiny
    contiguous = torch.from_numpy(x)
    strided = torch.from_numpy(np.repeat(x, 2))[::2]  # not contiguous: torch's scalar loop, std::exp
    sigmoids = {"torch.sigmoid vectorised": _numpy(torch.sigmoid(contiguous)),
                "torch.sigmoid scalar": _numpy(torch.sigmoid(strided)),
                "npconv.sigmoid": elementwise.sigmoid(x)}
    for name, values in sigmoids.items():
        assert_within_bound(values, s, bound, what=name)
        err = np.abs(values.astype(np.float64) - s)
        measured[name] = float((err / _ulp(s, np.float32))[judged].max())
        measured[name + " / bound"] = float(np.max(err / bound))
    if sleef is not None:
        one = np.float32(1)
        _assert_same_bits(sigmoids["torch.sigmoid vectorised"], one / (one + sleef(-x)), "the sigmoid model")
    print("\nfloat32, max error in ulps (or as a fraction of the bound):",
          {k: round(v, 4) for k, v in measured.items()})
    for name in exps:
        assert measured[name] <= bounds.SIGMOID_EXP_ULPS, f"{name}: {measured[name]} ulp > {bounds.SIGMOID_EXP_ULPS}"


def test_float64_exp_and_sigmoid_against_mpmath():
    """float64: torch.exp, Sleef_expd4_u10 and libm's exp within SIGMOID_EXP_ULPS of exp, and
    torch's sigmoid (both paths) and npconv's within sigmoid_bound, on 4,000 inputs in
    [-40, 40] and 200 in [-700, 700], the errors measured in mpmath at 50 digits."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-40, 40, 4000), rng.uniform(-700, 700, 200)])
    sleef = _sleef_exp("Sleef_expd4_u10", 4, "double")
    exps = {"torch.exp": _numpy(torch.exp(torch.from_numpy(x))), "libm exp": _exp_by_libm(x)}
    if sleef is not None:
        exps["Sleef_expd4_u10"] = sleef(x)
    sigmoids = {"torch.sigmoid vectorised": _numpy(torch.sigmoid(torch.from_numpy(x))),
                "torch.sigmoid scalar": _numpy(torch.sigmoid(torch.from_numpy(np.repeat(x, 2))[::2])),
                "npconv.sigmoid": elementwise.sigmoid(x)}
    measured = dict.fromkeys(list(exps) + list(sigmoids), 0.0)
    with mpmath.workdps(50):
        for i, v in enumerate(x):
            e = mpmath.exp(mpmath.mpf(v))
            s = 1 / (1 + mpmath.exp(-mpmath.mpf(v)))
            for name, values in exps.items():
                if float(e) >= np.finfo(np.float64).tiny:
                    ulp = mpmath.mpf(float(_ulp(np.float64(e), np.float64)))
                    measured[name] = max(measured[name], float(abs(mpmath.mpf(values[i]) - e) / ulp))
            ulp = mpmath.mpf(float(_ulp(np.float64(s), np.float64)))
            for name, values in sigmoids.items():
                measured[name] = max(measured[name], float(abs(mpmath.mpf(values[i]) - s) / ulp))
    reference = _sigmoid64(x)  # within a few float64 ulps: the both-sides factor 2 covers it
    bound = bounds.sigmoid_bound(x, np.float64) * bounds.both_sides(bounds.U64)
    for name, values in sigmoids.items():
        assert_within_bound(values, reference, bound, what=name)
    print("\nfloat64, max error in ulps:", {k: round(v, 4) for k, v in measured.items()})
    for name in exps:
        assert measured[name] <= bounds.SIGMOID_EXP_ULPS, f"{name}: {measured[name]} ulp > {bounds.SIGMOID_EXP_ULPS}"
    for name in sigmoids:  # gamma_4(u) s allows at least 2 ulps of s
        assert measured[name] <= 2, name


# ----------------------------------------------------------------------------- bounds are not vacuous


@pytest.mark.parametrize("op", ARITHMETIC + ["sigmoid"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bounds_are_not_vacuous(op, dtype):
    """The bound is a few units of roundoff of the magnitudes it bounds (at most 5 u), torch is
    inside it, and (float16, float32) a result moved by twice the bound is rejected. (In
    float64 the comparison itself rounds at the scale of the bound, so only the size is
    checked there.)"""
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((4, 6)) * 2.0 ** rng.integers(-4, 5, (4, 6))).astype(dtype)
    b = ((rng.random(6) + 0.5) * 2.0 ** rng.integers(-4, 5, 6) * rng.choice([-1, 1], 6)).astype(dtype)
    u = bounds.unit_roundoff(dtype)
    if op == "sigmoid":
        reference, bound = elementwise.sigmoid(a.astype(np.float64)), bounds.sigmoid_bound(a, dtype)
        actual, scale = _numpy(torch.sigmoid(_torch(a))), np.abs(reference)
    else:
        alpha = (3.0,) if op in ("add", "sub") else ()
        reference = _run_npconv(op, a.astype(np.float64), b.astype(np.float64), 3.0)
        bound = BOUNDS[op](a, b, dtype, *alpha)
        actual = _run_torch(op, a, b, 3.0)
        scale = np.abs(a) + np.abs(3.0 * b) if alpha else np.abs(reference)
    assert np.all(bound > 0) and np.all(np.isfinite(bound))
    assert np.all(bound <= 5 * u * scale + 2 * bounds.tiny(dtype)), "the bound is loose"
    assert_within_bound(actual, reference, bound * bounds.both_sides(u), what=op)
    if np.dtype(dtype) != np.float64:
        for sign in (1, -1):
            with pytest.raises(AssertionError, match="exceed the error bound"):
                assert_within_bound(reference + sign * 2 * bound, reference, bound, what=op)


def test_bound_conventions():
    f32 = np.float32
    # non-finite inputs and zero divisors fix the IEEE result: bound 0 (must match exactly)
    assert bounds.add_bound(np.inf, 1.0, f32) == 0 and bounds.mul_bound(np.nan, 1.0, f32) == 0
    assert bounds.div_bound(1.0, 0.0, f32) == 0 and bounds.sigmoid_bound(-np.inf, f32) == 0
    # possible overflow: not judged
    assert bounds.mul_bound(3e38, 2.0, f32) == np.inf and bounds.add_bound(3e38, 3e38, f32) == np.inf
    assert bounds.div_bound(1.0, 1e-40, f32) == np.inf  # 1 / b overflows in the reciprocal form
    # shapes broadcast
    assert bounds.add_bound(np.ones((2, 1)), np.ones(3), f32).shape == (2, 3)
    # alpha's multiply adds gamma_1 |alpha b| + (1 + u) tiny
    g1 = bounds.gamma(1, bounds.U32)
    assert bounds.add_bound(1.0, 1.0, f32, alpha=2) > bounds.add_bound(1.0, 2.0, f32) + g1 * 2 * 0.999


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("op", ARITHMETIC)
def test_bad_arguments_are_rejected(op):
    fn = getattr(elementwise, op)
    tfn = getattr(torch, op)
    a, b = np.ones((2, 3), np.float32), np.ones((4,), np.float32)
    message = r"The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1"
    with pytest.raises(ValueError, match=message):
        fn(a, b)
    with pytest.raises(RuntimeError, match=message):
        tfn(_torch(a), _torch(b))
    empty = r"The size of tensor a \(0\) must match the size of tensor b \(3\) at non-singleton dimension 0"
    with pytest.raises(ValueError, match=empty):  # 0 broadcasts only against 0 or 1
        fn(np.ones((0, 1), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(RuntimeError, match=empty):
        tfn(torch.ones(0, 1), torch.ones(3, 2))
    with pytest.raises(TypeError, match="must have one dtype, but got float32 and float64"):
        fn(np.ones(3, np.float32), np.ones(3, np.float64))
    assert tfn(torch.ones(3), torch.ones(3, dtype=torch.float64)).dtype == torch.float64  # torch promotes
    with pytest.raises(TypeError, match="argument 'a' must be a numpy.ndarray or a real number, not str"):
        fn("x", np.ones(3))
    with pytest.raises(TypeError):
        tfn("x", torch.ones(3))
    with pytest.raises(TypeError, match="argument 'b' must be a numpy.ndarray or a real number, not list"):
        fn(np.ones(3), [1.0])
    with pytest.raises(TypeError, match="at least one of a and b must be a numpy.ndarray"):
        fn(1.0, 2.0)
    with pytest.raises(TypeError, match="floating-point dtype"):
        fn(np.ones(3, np.int64), 1.0)
    if op in ("add", "sub"):
        with pytest.raises(TypeError, match="Boolean alpha only supported for Boolean results"):
            fn(np.ones(3), np.ones(3), alpha=True)
        with pytest.raises(RuntimeError, match="Boolean alpha only supported for Boolean results"):
            tfn(torch.ones(3), torch.ones(3), alpha=True)
        with pytest.raises(ValueError, match="value cannot be converted to type float without overflow"):
            fn(np.ones(3, np.float32), np.ones(3, np.float32), alpha=1e300)
        with pytest.raises(RuntimeError, match="value cannot be converted to type float without overflow"):
            tfn(torch.ones(3), torch.ones(3), alpha=1e300)


def test_bad_clamp_arguments_are_rejected():
    x = np.ones(3, np.float16)
    with pytest.raises(ValueError, match=r"value cannot be converted to type c10::Half without overflow"):
        elementwise.clamp(x, min=1e5)
    with pytest.raises(RuntimeError, match=r"value cannot be converted to type c10::Half without overflow"):
        torch.clamp(_torch(x), min=1e5)
    with pytest.raises(TypeError, match="min must be a real number, not ndarray"):
        elementwise.clamp(x, min=np.zeros(3, np.float16))
    with pytest.raises(TypeError, match="max_val must be a real number, not str"):
        elementwise.hardtanh(x, -1.0, "1")
    with pytest.raises(TypeError, match="must be a numpy.ndarray"):
        elementwise.sigmoid([1.0])
    with pytest.raises(TypeError, match="floating-point dtype"):
        elementwise.hardtanh(np.ones(3, np.int32))
