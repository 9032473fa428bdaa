"""Rounding-error bounds of single ops: what a correct implementation may differ by.

Every bound here is for one op evaluated on inputs taken as exact (the verifier feeds
each op PyTorch's own input to it), in a working precision with unit roundoff u:

    u = 2^-24 (float32), 2^-53 (float64), 2^-11 (float16), 2^-8 (bfloat16)

Higham's γ_n = n u / (1 − n u) bounds the relative effect of n roundings (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1): a sum of m terms in
any order rounds each term at most m − 1 times, an inner product of n terms at most n
times (eq. 3.5), so

    |ŝ − s| <= γ_{m−1} Σ|x_i|         |x̂·w − x·w| <= γ_n Σ|x_i||w_i|.

`tiny` (the smallest normal number of the working dtype) covers results that underflow or
are flushed to zero, which relative bounds do not.

This module is the one home of u, γ_n and tiny: `npconv.tolerance`, the graph verifier
(`npconv.graph`) and the tests take them from here.

Comparing an implementation working in u against npconv's float64 evaluation (itself within
the same bound with u = 2^-53): the two bounds add. For u = 2^-24 the float64 side is at
most 2^-29 of the float32 side for every n (`F64_PER_F32`), so the sum is (1 + 2^-29) b32;
for two float64 evaluations it is 2 b64 (`both_sides`).

The per-op bounds return float64 arrays of the output's shape (or scalars that broadcast).

bfloat16 (u = 2^-8) is float16's case with a larger u: what the docstrings below say of
float16 computed in float32 and rounded once, γ_k(2^-24) + u(1 + γ_k(2^-24)) <= γ_k(u), uses
only 2^-24 <= u and holds for bfloat16 too. With u = 2^-8, γ_k is finite only for k < 256:
a bound over more roundings is +inf (no bound), which `tolerance.assert_within_bound` does
not judge; the inner-product bounds of `npconv.tolerance` avoid this by accumulating in
float32 (`bound_from_magnitude`), as PyTorch's CPU kernels do (docs/semantics.md).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..functional import layers as ops
from ..functional import pooling
from ..counting import paused
from ..dtypes import finfo
from ..cost.formulas import adaptive_pool_windows

__all__ = [
    "BATCH_NORM_EVAL_ROUNDINGS",
    "F64_PER_F32",
    "U16",
    "UBF16",
    "U32",
    "U64",
    "adaptive_avg_pool2d_bound",
    "adaptive_avg_pool3d_bound",
    "batch_norm_eval_bound",
    "both_sides",
    "gamma",
    "inner_product_bound",
    "tiny",
    "unit_roundoff",
]

U16 = 2.0**-11
UBF16 = 2.0**-8  # bfloat16: 8 significant bits (7 stored), float32's exponent range
U32 = 2.0**-24
U64 = 2.0**-53
F64_PER_F32 = 2.0**-29  # max over n of γ_n(2^-53) / γ_n(2^-24)

_ROUNDOFF = {"float16": U16, "bfloat16": UBF16, "float32": U32, "float64": U64, "tf32": U16}


def unit_roundoff(dtype) -> float:
    """u = 2^-p for a dtype with p significand bits: float16 2^-11, bfloat16 2^-8, float32 2^-24,
    float64 2^-53; and 2^-11 for "tf32" (CUDA tensor cores' float32 inputs rounded to 10
    explicit bits)."""
    return _ROUNDOFF[dtype if isinstance(dtype, str) and dtype == "tf32" else np.dtype(dtype).name]


def tiny(dtype) -> float:
    """The smallest positive normal number of `dtype`."""
    return float(finfo(dtype).tiny)


def gamma(n, u=U32):
    """Higham's γ_n = n u / (1 − n u); +inf when n u >= 1 (no bound). n may be an array; u is
    a unit roundoff (a number) or a dtype, whose `unit_roundoff` is taken: gamma(n, np.float32)."""
    if not isinstance(u, numbers.Real):
        u = unit_roundoff(u)
    if isinstance(n, numbers.Real):  # one number: the same float64 operations, without NumPy's per-call cost
        nu = float(n) * u
        return float(nu / (1 - nu)) if nu < 1 else math.inf
    nu = np.asarray(n, dtype=np.float64) * u
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(nu < 1, nu / np.where(nu < 1, 1 - nu, 1.0), np.inf)
    return float(out) if out.ndim == 0 else out


def both_sides(u: float) -> float:
    """Factor turning a one-sided bound b(u) into the bound on |implementation(u) − npconv(float64)|:
    1 + 2^-29 for u = 2^-24 (the float64 side is at most 2^-29 of it), 2 for u = 2^-53."""
    return 2.0 if u == U64 else 1.0 + U64 / u  # γ_n(2^-53) / γ_n(u) <= 2^-53 / u for every n


def inner_product_bound(magnitude, n, dtype):
    """An inner product of n terms (a bias counted as one more) in any evaluation order,
    blocked or with fused multiply-adds, in `dtype`, on exact inputs:

        |ŷ − y| <= γ_n(u) · M + n · tiny,   M = Σ|x_i||w_i| (+ |b|)

    (Higham eq. 3.5 and Lemma 3.1: each term is rounded at most n times); `tiny` once per
    term covers products that underflow or are flushed to zero. `magnitude` is M."""
    return gamma(n, unit_roundoff(dtype)) * magnitude + n * tiny(dtype)


# ----------------------------------------------------------------------------- batch norm, adaptive pooling


BATCH_NORM_EVAL_ROUNDINGS = 7  # the most roundings on one term of y = α(x − μ) + β: batch_norm_eval_bound


def batch_norm_eval_bound(x, weight, bias, running_mean, running_var, eps, dtype):
    """BatchNorm in eval mode, y = α(x − μ) + β with α = γ / sqrt(σ² + eps), on input x (C on
    axis 1), parameters and statistics taken as exact:

        |ŷ − y| <= γ_7(u) · (|α| (|x| + |μ|) + |β|) + 7 · tiny

    This is the one BatchNorm constant of the package (`BATCH_NORM_EVAL_ROUNDINGS` = 7): the
    verifier uses this function and reference_tests/error_bounds.py the constant. Derivation
    (Higham, 2nd ed., (2.4) and Lemma 3.1: a product of n factors (1 + δ_i)^{ρ_i}, |δ_i| <= u,
    is 1 + θ_n with |θ_n| <= γ_n; the lemma's proof, for ρ_i = ±1, holds for any |ρ_i| <= 1, as
    each such factor lies in [1 − u, 1/(1 − u)]), counting the factors on each term:

    * α̂, in either order below: eps is rounded to the dtype, ε(1 + δ₀), and added:
      (σ² + ε(1 + δ₀))(1 + δ₁) = (σ² + ε)(1 + η)(1 + δ₁) with |η| <= u as σ² >= 0; its square
      root is sqrt(σ² + ε) · sqrt((1 + η)(1 + δ₁)) · (1 + δ₂), and sqrt((1 + η)(1 + δ₁)) lies
      in [1 − u, 1 + u]: one factor. The sqrt's own rounding, the reciprocal and the product
      with γ add three: α̂ = α · (4 factors).
    * PyTorch's CPU kernel (aten/src/ATen/native/cpu/batch_norm_kernel.cpp,
      batch_norm_cpu_collect_linear_and_constant_terms, in opmath: float for float32 and
      float16): invstd = 1 / std::sqrt(var + eps), α̂ = invstd · γ, β̂ = β − μ α̂, then
      ŷ = x · α̂ + β̂ (a vectorised multiply, then an add). The x term: α̂'s 4, the product,
      the final add: 6. The μ term: 4, μ α̂, the subtraction from β, the final add: 7. β: 2.
    * npconv (npconv/kernels/batch_norm2d.py, normalize): scale = γ · (1 / sqrt(var + eps)),
      ŷ = (x − μ) · scale + β. The x and μ terms: the subtraction, 4, the product, the add: 7.
      β: 1. (A fused x · α̂ + β̂ has one rounding fewer.)

    So every term has at most 7 factors and |ŷ − y| <= γ_7(u) (|α|(|x| + |μ|) + |β|). (An
    earlier γ_8 counted eps's own rounding as one more factor; under the square root it merges
    with the add's.) Under-
    flow: each product that underflows (x α̂, μ α̂, (x − μ) · scale, α̂ itself for |α| >= tiny)
    is off by at most tiny more, which 7 · tiny covers. float16, computed in float32 and
    rounded once: γ_7(2⁻²⁴) + 2⁻¹¹(1 + γ_7(2⁻²⁴)) <= γ_7(2⁻¹¹). |α| is evaluated in float64
    rounded up (· (1 + 8·2⁻⁵³)) so that its own float64 rounding cannot shrink the bound."""
    x = np.asarray(x, np.float64)
    var = np.asarray(running_var, np.float64)
    w = np.ones_like(var) if weight is None else np.asarray(weight, np.float64)
    b = np.zeros_like(var) if bias is None else np.asarray(bias, np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    alpha = (np.abs(w / np.sqrt(var + eps)) * (1 + 8 * U64)).reshape(shape)
    mean = np.abs(np.asarray(running_mean, np.float64)).reshape(shape)
    magnitude = alpha * (np.abs(x) + mean) + np.abs(b).reshape(shape)
    return inner_product_bound(magnitude, BATCH_NORM_EVAL_ROUNDINGS, dtype)


def adaptive_avg_pool2d_bound(x, output_size, dtype):
    """Adaptive average pooling, windows of at most m values:

        |ŷ − y| <= γ_{m+1}(u) · avg(|x|) + tiny

    m − 1 additions then a division, or a reciprocal and a multiply (one more rounding), put
    at most m + 1 roundings on a term (Higham Lemma 3.1). avg(|x|) is the same pooling of
    |x| in float64; m the largest window (`npconv.formulas.adaptive_pool_windows`)."""
    return _adaptive_avg_pool_bound(ops.adaptive_avg_pool2d, 2, x, output_size, dtype)


def adaptive_avg_pool3d_bound(x, output_size, dtype):
    """3-D adaptive average pooling: adaptive_avg_pool2d_bound's derivation with windows of at
    most m = the product of the three axes' largest windows."""
    return _adaptive_avg_pool_bound(ops.adaptive_avg_pool3d, 3, x, output_size, dtype)


def _adaptive_avg_pool_bound(pool, dims: int, x, output_size, dtype):
    """The bound of adaptive_avg_pool2d_bound / 3d_bound, `pool` npconv's pooling over the last
    `dims` axes; m is the product over those axes of the largest window."""
    x = np.abs(np.asarray(x, np.float64))
    with paused():
        magnitude = pool(x, output_size)
    m = 1
    for size, out in zip(x.shape[-dims:], magnitude.shape[-dims:]):
        m *= max(adaptive_pool_windows(size, out), default=0)
    return gamma(m + 1, unit_roundoff(dtype)) * magnitude + tiny(dtype)


# ----------------------------------------------------------------------------- pooling (graph evaluator)

__all__ += ["avg_pool2d_bound", "max_pool2d_bound", "mean_bound"]


def _pooling_safety(nonfinite, total, terms, dtype, bound):
    """Where a summed window holds NaN or ±Inf the result is NaN or that Inf in any order:
    bound 0, so `tolerance.assert_within_bound` compares the class exactly. Where the
    finite |x| could sum past the dtype's largest number, an implementation may overflow
    where the float64 reference does not: +inf, not judged (this overrides the former)."""
    bound = np.where(nonfinite, 0.0, bound)
    limit = float(finfo(dtype).max)
    with np.errstate(invalid="ignore", over="ignore"):
        overflow = total * (1 + gamma(terms, unit_roundoff(dtype))) > limit
    return np.where(overflow, np.inf, bound)


def max_pool2d_bound(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, dtype=None):
    """0 everywhere (an array of the output's shape): max pooling returns one of its inputs
    (or -inf for a window with no input tap), with comparisons only: no rounding in any
    dtype that holds the inputs. NaN and its position must match exactly, as the indices."""
    with paused():
        y = pooling.max_pool2d(np.zeros(np.shape(input), np.float64), kernel_size, stride, padding, dilation,
                               ceil_mode)
    return np.zeros(y.shape, np.float64)


def _avg_pool_bound(pool, input, window, count_include_pad, divisor_override, dtype):
    """avg_pool2d_bound / avg_pool3d_bound with `pool` npconv's pooling of that rank and
    `window` its (kernel_size, stride, padding, ceil_mode)."""
    x = np.asarray(input, np.float64)
    dtype = np.dtype(np.asarray(input).dtype if dtype is None else dtype)
    finite = np.isfinite(x)
    a = np.where(finite, np.abs(x), 0.0)
    with paused():
        magnitude = np.abs(pool(a, *window, count_include_pad, divisor_override))
        terms = pool(np.ones_like(a), *window, True, 1)
        total = pool(a, *window, True, 1)
        nonfinite = pool(np.asarray(~finite, dtype=np.float64), *window, True, 1) > 0
    with np.errstate(over="ignore", invalid="ignore"):  # a float64 Σ|x| may itself overflow: +inf below
        bound = gamma(terms + 1, unit_roundoff(dtype)) * magnitude * (1 + gamma(terms + 3, U64)) + tiny(dtype)
    return _pooling_safety(nonfinite, total, terms, dtype, bound)


def avg_pool2d_bound(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None, dtype=None):
    """Average pooling computed in `dtype` (default: the input's) on exact inputs, per output:

        |ŷ − y| <= γ_{k+1}(u) · (Σ_window |x|) / |D| + tiny

    k is the number of in-input values of the window and D the divisor (PyTorch's rule,
    npconv/kernels/avg_pool2d.py). Derivation (Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., Lemma 3.1 and eq. 3.5): a sum of k terms in any order puts at most
    k − 1 roundings on each term, ŝ = Σ x_i (1 + θ_{k−1}^{(i)}); dividing by D rounds once
    more, and a third factor covers D itself being rounded to the dtype (PyTorch's CPU kernel
    divides `sum / divide_factor` with the int64 divisor converted to float, which rounds for
    D > 2^24 in float32) or, equally, multiplying by a rounded reciprocal 1/D (as CUDA
    kernels do). (1 + θ_{k−1})(1 + δ)(1 + δ') = 1 + θ_{k+1}, |θ_{k+1}| <= γ_{k+1}, so
    |ŷ − y| <= γ_{k+1} Σ|x_i| / |D|. `tiny` covers a quotient that underflows (sums of floats
    that land among the subnormals are exact). For float16 computed in float32 and rounded
    once, γ_{k+1}(2^-24) + 2^-11 <= γ_{k+1}(2^-11): the float16 bound covers it.

    Σ|x| / |D| is npconv's own avg_pool2d run on |x| in float64, rounded up by
    (1 + γ_{k+3}(2^-53)) so that its float64 evaluation cannot shrink the bound; k comes from
    the same kernel run on ones with divisor 1. Windows holding NaN/±Inf get 0 and windows
    whose finite Σ|x| may overflow the dtype get +inf (`_pooling_safety`).

    Returns a float64 array of the output's shape.
    """
    return _avg_pool_bound(pooling.avg_pool2d, input, (kernel_size, stride, padding, ceil_mode), count_include_pad,
                           divisor_override, dtype)


__all__ += ["avg_pool1d_bound", "avg_pool3d_bound"]


def avg_pool1d_bound(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, dtype=None):
    """avg_pool1d's bound: `avg_pool2d_bound` on the plane (N, C, 1, L), as npconv and PyTorch
    compute it (the same sums and divisors). A float64 array of the output's shape."""
    x = np.asarray(input)
    one = lambda v: v if v is None or isinstance(v, numbers.Integral) else (v[0] if len(v) else None)  # noqa: E731
    plane = avg_pool2d_bound(x[..., np.newaxis, :], (1, one(kernel_size)),
                             None if one(stride) is None else (1, one(stride)), (0, one(padding)), ceil_mode,
                             count_include_pad, None, x.dtype if dtype is None else dtype)
    return plane[..., 0, :]


def avg_pool3d_bound(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                     divisor_override=None, dtype=None):
    """avg_pool3d computed in `dtype` (default: the input's) on exact inputs, per output:

        |ŷ − y| <= γ_{k+1}(u) · (Σ_window |x|) / |D| + tiny

    with k the in-input values of the window and D the divisor: `avg_pool2d_bound`'s
    derivation (a sum of k terms in any order, a division, the divisor's own rounding), which
    does not depend on how many axes the window spans. The magnitudes, k, the non-finite
    windows and the overflow guard come from npconv's avg_pool3d run in float64 as there.
    Returns a float64 array of the output's shape."""
    return _avg_pool_bound(pooling.avg_pool3d, input, (kernel_size, stride, padding, ceil_mode), count_include_pad,
                           divisor_override, dtype)


def mean_bound(input, dim, keepdim=False, dtype=None):
    """torch.mean(input, dim, keepdim) computed in `dtype` (default: the input's) on exact
    inputs, m the number of values each output averages:

        |ŷ − y| <= γ_{m+1}(u) · mean(|x|) + tiny

    Derivation as `avg_pool2d_bound` (Higham Lemma 3.1, eq. 3.5): m − 1 additions in any
    order (PyTorch's CPU sum is a cascade), then the division by m (PyTorch: sum, then
    `div_(m)` with m converted to the dtype, which rounds for m > 2^24 in float32) or a
    multiply by a rounded 1/m: at most m + 1 roundings per term. mean(|x|) is npconv's mean
    of |x| in float64, rounded up by (1 + γ_{m+3}(2^-53)). An empty mean (m = 0) is NaN:
    bound 0 (its class is compared). Means over NaN/±Inf get 0 and possible overflows +inf,
    as for avg_pool2d. Returns a float64 array of the output's shape.
    """
    x = np.asarray(input, np.float64)
    dtype = np.dtype(np.asarray(input).dtype if dtype is None else dtype)
    dims = pooling.reduced_dims(dim, x.ndim)
    m = int(np.prod([x.shape[d] for d in dims], dtype=np.int64))
    finite = np.isfinite(x)
    a = np.where(finite, np.abs(x), 0.0)
    with paused():
        magnitude = pooling.mean(a, dim, keepdim)
        nonfinite = pooling.mean(np.asarray(~finite, dtype=np.float64), dim, keepdim) > 0
    if m == 0:
        return np.zeros(magnitude.shape, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # a float64 Σ|x| may itself overflow: +inf below
        bound = gamma(m + 1, unit_roundoff(dtype)) * magnitude * (1 + gamma(m + 3, U64)) + tiny(dtype)
        total = magnitude * m
    return _pooling_safety(nonfinite, total, m, dtype, np.asarray(bound, np.float64))


# ----------------------------------------------------------------------------- element-wise ops (graph evaluator)
#
# Bounds for npconv.elementwise's ops, each computed in a working precision with unit roundoff
# u on inputs taken as exact (a Python-number operand, alpha included, is taken as the value
# it has in that precision). Model (Higham, 2nd ed., §2.2, (2.4)): fl(x op y) = (x op y)(1 + δ),
# |δ| <= u, for + − × /; with gradual underflow (§2.3) a product or quotient may further be off
# by an absolute η, |η| <= u·tiny (tiny alone also covers flush-to-zero), while a sum or
# difference that underflows is exact. γ_n = n u / (1 − n u) (Lemma 3.1).
#
# clamp and hardtanh are exact (bound 0): they only compare and copy, so every correct
# implementation returns the same bits (NaN positions and the sign of zero included).
#
# Conventions shared by the functions below, which return float64 arrays of the broadcast
# output shape:
# * where an input is ±inf or NaN, the IEEE result is fixed (inf − inf = NaN, x/±0 = ±inf,
#   x/inf = ±0, sigmoid(±inf) = 1, 0, …) and the bound is 0: the result must match exactly;
#   likewise a zero divisor (x/0 = ±inf, 0/0 = NaN);
# * where the result may overflow, (1 + γ₂) · magnitude > the dtype's largest finite number,
#   the bound is +inf: not judged (npconv.tolerance.assert_within_bound skips it);
# * magnitudes are evaluated in float64 and rounded up by (1 + 8·2⁻⁵³) past their own rounding.

__all__ += [
    "SIGMOID_EXP_ULPS",
    "add_bound",
    "div_bound",
    "mul_bound",
    "sigmoid_bound",
    "sub_bound",
]

SIGMOID_EXP_ULPS = 1.0  # assumed max error of exp, in ulps (Sleef's *_u10 and glibc's exp/expf)
_UP = 1 + 8 * U64


def _may_overflow(magnitude, dtype):
    """Where a value of this magnitude, computed in `dtype`, may round to ±inf (NaN counts)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return ~((1 + gamma(2, unit_roundoff(dtype))) * magnitude <= float(finfo(dtype).max))


def _elementwise_result(bound, magnitude, finite, dtype):
    """bound where the inputs are finite, 0 where one is not, +inf where overflow is possible."""
    overflow = finite & _may_overflow(magnitude, dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.where(finite, bound, 0.0)
    return np.array(np.where(overflow, np.inf, out), dtype=np.float64)


def _broadcast(bound, a, b):
    return np.broadcast_to(bound, np.broadcast_shapes(a.shape, b.shape)).copy()


def add_bound(a, b, dtype, alpha=1):
    """|fl(a + αb) − (a + αb)| for a, b (arrays or numbers, broadcast) and α finite:

        α = 1:  γ₁(u) (|a| + |b|)
        α ≠ 1:  γ₁(u) (|a| + |αb|)  +  γ₁(u) |αb| + (1 + u) tiny       (the α-multiply's rounding)

    Derivation (Higham §2.2 (2.4), §2.3). α = 1: one rounding, |fl(a + b) − (a + b)| <= u|a + b|
    <= γ₁(|a| + |b|), and an underflowing sum is exact. α ≠ 1: t = fl(αb) = αb(1 + δ₁) + η₁
    with |η₁| <= tiny, then ŝ = fl(a + t) = (a + t)(1 + δ₂), so
    |ŝ − (a + αb)| <= u|a| + (2u + u²)|αb| + (1 + u) tiny <= γ₁(|a| + |αb|) + γ₁|αb| + (1 + u) tiny,
    as 2u + u² <= 2γ₁. PyTorch's CPU kernel fuses a + αb (vec::fmadd: one rounding, within
    u|a + αb|), npconv rounds αb first; both are inside. float16 computed in float32 and rounded
    once, (1 + u₃₂)(1 + u₁₆) − 1 <= γ₁(u₁₆), is inside the float16 bound. For sub, b → −b:
    the same bound (`sub_bound`).

    Where αb may overflow the dtype (α ≠ 1, b finite), the two orders can disagree in class,
    not only in value. Beside a finite a the position is already unjudged (+inf: overflow is
    possible). Beside an infinite a it is unjudged too: rounding αb first gives ±inf, and
    a + (∓inf) is NaN, while the fused a + αb keeps a (torch.add(-inf, 2**1023, alpha=2) in
    float64: -inf on PyTorch's CPU, NaN rounded first; in float16 PyTorch rounds first). Beside
    a NaN both give NaN, and the position stays judged.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    alpha = float(alpha)
    u, t = unit_roundoff(dtype), tiny(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(alpha * b) * _UP
        magnitude = np.abs(a) * _UP + scaled
        bound = gamma(1, u) * magnitude
        if alpha != 1:
            bound = bound + gamma(1, u) * scaled + (1 + u) * t
    scaled_may_overflow = (alpha != 1) & np.isfinite(b) & _may_overflow(scaled, dtype)
    finite = np.isfinite(a) & np.isfinite(b)
    result = _elementwise_result(bound, magnitude, finite, dtype)
    return _broadcast(np.where(scaled_may_overflow & np.isinf(a), np.inf, result), a, b)


def sub_bound(a, b, dtype, alpha=1):
    """|fl(a − αb) − (a − αb)|: `add_bound(a, b, dtype, alpha)` (its derivation with b → −b;
    the magnitudes |a| + |αb| do not change)."""
    return add_bound(a, b, dtype, alpha)


def mul_bound(a, b, dtype):
    """|fl(ab) − ab| <= γ₁(u) |ab| + tiny.

    Derivation (Higham §2.2 (2.4), §2.3): one rounding, fl(ab) = ab(1 + δ) + η, |δ| <= u and
    |η| <= u·tiny under gradual underflow (<= tiny if flushed to zero). float16 (or a float16
    array times a float32 number, PyTorch's opmath scalar) computed in float32 and rounded once
    is inside γ₁(u₁₆): a product of two halves is exact in float32.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    u, t = unit_roundoff(dtype), tiny(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(a * b) * _UP
        bound = gamma(1, u) * magnitude + t
    finite = np.isfinite(a) & np.isfinite(b)
    return _broadcast(_elementwise_result(bound, magnitude, finite, dtype), a, b)


def div_bound(a, b, dtype):
    """|q̂ − a/b| <= γ₂(u) |a/b| + tiny · (1 + 2|a| · [|b| > 1/tiny]), for true division
    a / b and for a · (1/b) alike.

    Derivation (Higham §2.2 (2.4), §2.3). True division rounds once: u|a/b| plus an underflow
    η, |η| <= tiny. The reciprocal form, which PyTorch's CUDA kernel uses for a CPU-scalar
    divisor (aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu: "compute a * reciprocal(b)";
    its CPU kernel divides, and matches a / b bit for bit), rounds twice:
    r = (1/b)(1 + δ₁) + η₁, q̂ = a r (1 + δ₂) + η₂, so |q̂ − a/b| <= γ₂|a/b| + (1 + u)|a||η₁| + |η₂|.
    η₁ is nonzero only when 1/b underflows, |b| > 1/tiny, and then |η₁| <= tiny: the last term.
    A divisor whose reciprocal overflows (|1/b| > the largest finite number: subnormal b) is
    not judged (+inf), as 0 · (1/b) is NaN there. A zero divisor gives the exact ±inf or NaN
    (bound 0).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    u, t = unit_roundoff(dtype), tiny(dtype)
    big = float(finfo(dtype).max)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.abs(a / b) * _UP
        reciprocal_underflows = np.abs(b) * t > 1
        bound = gamma(2, u) * magnitude + t * (1 + np.where(reciprocal_underflows, 2 * np.abs(a), 0.0))
        # a reciprocal that overflows makes the product form wrong: report it as an overflow
        magnitude = np.where(np.abs(b) * big < 1, np.inf, magnitude)
    finite = np.isfinite(a) & np.isfinite(b) & (b != 0)
    return _broadcast(_elementwise_result(bound, magnitude, finite, dtype), a, b)


def _sigmoid64(x):
    """1 / (1 + exp(−x)) in float64 without overflow: exp(x) / (1 + exp(x)) for x < 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_bound(x, dtype, exp_ulps: float = SIGMOID_EXP_ULPS):
    """|ŝ − s| <= γ_{2+2E}(u) · s + tiny for s = 1 / (1 + exp(−x)), computed as
    reciprocal(1 + exp(−x)) with an exp of at most E ulps error (E = `exp_ulps`, default
    SIGMOID_EXP_ULPS = 1).

    What PyTorch computes (aten/src/ATen/native/cpu/UnaryOpsKernel.cpp, sigmoid_kernel):
    (1 + (−x).exp()).reciprocal() on Vectorized<T>, whose exp is Sleef's expf8_u10 / expd4_u10
    (documented max error 1.0 ulp), and 1 / (1 + std::exp(−x)) on the scalar tail (glibc,
    under 1 ulp); float16 goes through float32 and is rounded once. npconv does the same with
    Numba's exp (libm).

    Derivation. An error of E ulps is a relative error |ε| <= 2E·u (an ulp of y is at most 2u|y|),
    so ê = e(1 + ε), e = exp(−x). Then 1 + ê = (1 + e)(1 + θ) with θ = ε · e/(1 + e), |θ| <= |ε|
    (the relative error of s = 1/(1 + e) with respect to one of e is scaled by e/(1 + e) <= 1).
    With the add and the reciprocal rounded (Higham §2.2 (2.4)),
    ŝ = s (1 + δ₂) / ((1 + θ)(1 + δ₁)), and |ŝ/s − 1| <= (1 + u)/((1 − 2Eu)(1 − u)) − 1
    = ((2 + 2E)u − 2Eu²)/((1 − 2Eu)(1 − u)) <= γ_{2+2E}(u) (Lemma 3.1's form). Under- and
    overflow: exp(−x) = inf for very negative x gives ŝ = 0 with s < 1/max < tiny; an exp that
    underflows perturbs 1 + e by less than tiny; hence + tiny. float16 via float32,
    γ_{2+2E}(u₃₂) + u₁₆(1 + γ_{2+2E}(u₃₂)) <= γ_{2+2E}(u₁₆), is inside. E is backed by a
    measurement (reference_tests/test_elementwise.py) of torch.exp on a dense float32 sample.
    """
    x = np.asarray(x, dtype=np.float64)
    u, t = unit_roundoff(dtype), tiny(dtype)
    magnitude = _sigmoid64(x) * _UP
    bound = gamma(2 + 2 * exp_ulps, u) * magnitude + t
    return _elementwise_result(bound, magnitude, np.isfinite(x), dtype)
