"""Tolerances derived from an error bound, not tuned until green.

A convolution output is an inner product of n = (C_in / g) * K_h * K_w terms plus a bias.
Computed in floating point with unit roundoff u, in any summation order, blocked or with
fused multiply-adds, the classical bound (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., eq. 3.5 and Lemma 3.1) is

    |y_computed - y_exact| <= gamma(n) * (sum |x| |w| + |b|),   gamma(n) = n u / (1 - n u)

with n counting the bias as one more term. `M = sum |x||w| + |b|` is obtained from the
same reference kernel run in float64 on |x|, |w|, |b|. Comparing a result `actual` with
npconv's float64 reference y_ref (itself within gamma(n, float64) * M of exact):

    |actual - y_ref| <= c * (gamma(n, u_acc) + gamma(n, 2^-53)) * M  +  c * n * tiny

* u_acc is the unit roundoff of the accumulation: 2^-24 for float32, 2^-53 for float64.
  float16 results are accumulated in float32 by PyTorch's CPU kernels and by npconv, then
  rounded once: their bound adds u_16 |y| <= 2^-11 M. bfloat16 likewise adds u_bf16 |y| <=
  2^-8 M (measured for PyTorch's CPU conv1d/2d/3d and linear: docs/semantics.md). Pass
  `accumulation_dtype=float16` (or bfloat16) for an implementation that accumulates in the
  narrow dtype itself (PyTorch's CPU transposed convolutions do, in both).
* `tiny` (the smallest normal number of the dtype) covers products that underflow or are
  flushed to zero, which the relative bound above does not.
* c = 1 by default: the bound is rigorous as stated. It is a parameter only so that a
  user can make the test stricter (c < 1) to see how much slack there is.
* TF32 (CUDA tensor cores) rounds the inputs to 10 explicit mantissa bits; test with TF32
  disabled, or pass `accumulation_dtype="tf32"`, which adds 2 * 2^-11 * M for the two
  rounded factors of every product.

Exactness: when x, w, b are integer-valued and M <= 2^p (p = 24 for float32, 53 for float64,
11 for float16, 8 for bfloat16), every partial sum is an integer of at most p bits, exactly
representable, so every summation order gives the same, exact answer: the bound is zero.

Non-finite values: a sum that contains NaN, or both +Inf and -Inf, is NaN in any order;
one that contains Inf of one sign only is that Inf. So NaN/Inf positions and signs do not
depend on the order, and `assert_close_to_reference` requires them to match exactly.
Positions where M exceeds the dtype's largest finite number (overflow possible) are not
judged.

u, gamma and tiny are `npconv.bounds`' (`unit_roundoff`, `gamma`, `tiny`, importable from
here too); this module adds the two-sided comparison with npconv's float64 reference.
"""

from __future__ import annotations

import numpy as np

from .. import counting
from .bounds import gamma, tiny, unit_roundoff
from ..dtypes import FLOAT_DTYPES, compute_dtype, finfo, from_tensor, is_floating
from ..functional.conv import conv2d
from ..geometry import conv2d_geometry

__all__ = [
    "assert_close_to_reference",
    "assert_within_bound",
    "bound_from_magnitude",
    "conv2d_error_bound",
    "conv2d_magnitude",
    "gamma",
    "tiny",
    "unit_roundoff",
]


def _to_numpy(a):
    if a is None or isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach"):  # a torch tensor (bfloat16 as ml_dtypes.bfloat16), without importing torch
        return from_tensor(a)
    return np.asarray(a)


def _reference_conv2d(input, weight, bias, args, magnitudes: bool):
    """npconv's float64 reference conv2d on input, weight, bias (widened exactly), or on
    their absolute values (`magnitudes`), not counted."""
    as64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    if magnitudes:
        input, weight, bias = (None if a is None else np.abs(as64(a)) for a in (input, weight, bias))
    with counting.paused():
        return conv2d(as64(input), as64(weight), as64(bias), *args, engine="reference")


def conv2d_magnitude(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """M = sum |x| |w| + |b| per output element, in float64, by the reference kernel."""
    args = (stride, padding, dilation, groups, padding_mode)
    return _reference_conv2d(input, weight, bias, args, magnitudes=True)


def conv2d_error_bound(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    dtype=None,
    accumulation_dtype=None,
    c: float = 1.0,
):
    """Per-element bound on |actual - reference| for a conv2d computed in `dtype`.

    `dtype` defaults to the input's; `accumulation_dtype` to float32 for float16 and
    bfloat16 and to `dtype` otherwise. Returns (bound, magnitude, n), float64 arrays of the
    output's shape and the inner-product length. See the module docstring for the derivation.
    """
    input, weight, bias = _to_numpy(input), _to_numpy(weight), _to_numpy(bias)
    dtype = np.dtype(dtype if dtype is not None else input.dtype)
    g = conv2d_geometry(input.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups, padding_mode)
    n = g.in_per_group * g.kernel_h * g.kernel_w + (1 if g.has_bias else 0)
    magnitude = conv2d_magnitude(input, weight, bias, stride, padding, dilation, groups, padding_mode)
    return bound_from_magnitude(magnitude, n, dtype, accumulation_dtype, c), magnitude, n


def bound_from_magnitude(magnitude, n, dtype, accumulation_dtype=None, c: float = 1.0):
    """c * ((gamma(n, u_acc) + gamma(n, 2^-53)) * M + n * tiny) (+ u_out * M when the
    result is rounded to a narrower dtype than it was accumulated in)."""
    dtype = np.dtype(dtype)
    if accumulation_dtype is None:
        accumulation_dtype = compute_dtype(dtype)
    tf32 = isinstance(accumulation_dtype, str) and accumulation_dtype == "tf32"
    rel = gamma(n, accumulation_dtype) + gamma(n, np.float64)
    if tf32:
        rel = rel + 2 * 2.0**-11 + gamma(n, np.float32)
    if tf32 or unit_roundoff(accumulation_dtype) < unit_roundoff(dtype):
        rel = rel + unit_roundoff(dtype)  # the final rounding to the output dtype
    return c * (rel * magnitude + n * tiny(dtype))


def _all_integers(*arrays) -> bool:
    as64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731 (exact, bfloat16 included)
    return all(a is None or bool(np.all(np.isfinite(as64(a)) & (as64(a) == np.round(as64(a))))) for a in arrays)


def assert_within_bound(actual, reference, bound, *, what: str = "result") -> None:
    """Assert `actual` agrees with `reference` within `bound`, element by element.

    Where the reference is NaN, actual must be NaN; where it is +-Inf, actual must be the
    same Inf; where it is finite, actual must be finite with |actual - reference| <= bound,
    except that an `actual` of a narrower float dtype may be the Inf of the reference's sign
    where |reference| + bound reaches that dtype's overflow threshold (its largest number
    plus half an ulp: round to nearest gives Inf from there on). Positions whose bound is
    +inf are not judged. Raises AssertionError naming the worst element and its bound.
    """
    actual = np.asarray(_to_numpy(actual))
    overflow_at = np.inf
    if is_floating(actual.dtype) and actual.dtype.itemsize < 8:
        info = finfo(actual.dtype)
        overflow_at = (2.0 - float(info.eps) / 2) * 2.0 ** (int(info.maxexp) - 1)
    actual = actual.astype(np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if actual.shape != reference.shape:
        raise AssertionError(f"{what}: shape {actual.shape} differs from the reference's {reference.shape}")
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), reference.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        if np.all(np.abs(actual - reference) <= bound):
            # The common case, decided in three array operations: every element is unjudged
            # (bound +inf) or finite on both sides and within a bound that is then >= 0. A NaN,
            # an Inf on either side or a negative bound fails the comparison and goes below.
            return
    if np.any(bound < 0):  # a bound is a magnitude: a negative one is a bug in whoever derived it
        raise ValueError(f"{what}: the bound is negative at {int(np.sum(bound < 0))} positions")
    judged = ~(bound == np.inf)
    ref_nan = np.isnan(reference)
    ref_inf = np.isinf(reference)
    with np.errstate(over="ignore"):
        rounded_to_inf = (np.isfinite(reference) & np.isinf(actual) & (np.signbit(actual) == np.signbit(reference))
                          & (np.abs(reference) + bound >= overflow_at))
    judged = judged & ~rounded_to_inf
    wrong_class = judged & (
        (ref_nan & ~np.isnan(actual))
        | (ref_inf & (actual != reference))
        | (np.isfinite(reference) & ~np.isfinite(actual))
    )
    if wrong_class.any():
        idx = tuple(int(i) for i in np.argwhere(wrong_class)[0])
        raise AssertionError(
            f"{what}: non-finite values differ at {int(wrong_class.sum())} positions, first at {idx}: "
            f"got {actual[idx]}, reference {reference[idx]}"
        )
    finite = judged & np.isfinite(reference)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(actual - reference), 0.0)
    over = finite & ~(err <= bound)
    if over.any():
        ratio = np.where(over, err / np.maximum(bound, np.finfo(np.float64).tiny), 0.0)
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(ratio), ratio.shape))
        raise AssertionError(
            f"{what}: {int(over.sum())} of {over.size} elements exceed the error bound; worst at {idx}: "
            f"got {actual[idx]!r}, reference {reference[idx]!r}, |diff| = {err[idx]:.3e} > bound {bound[idx]:.3e} "
            f"({ratio[idx]:.3g}x the bound)"
        )


def assert_close_to_reference(
    actual,
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    padding_mode="zeros",
    *,
    accumulation_dtype=None,
    c: float = 1.0,
) -> None:
    """Assert that `actual` (a NumPy array or a torch tensor) is conv2d(input, weight, bias, ...)
    within the rigorous error bound of its dtype (module docstring).

    The reference is npconv's kernel in float64 on the same (exactly widened) inputs.
    Integer-valued inputs with M <= 2^p must match exactly; NaN/Inf positions must match.

        out = torch.nn.functional.conv2d(x, w, b, stride=2, padding=1)
        npconv.assert_close_to_reference(out, x, w, b, stride=2, padding=1)
    """
    actual = _to_numpy(actual)
    input, weight, bias = _to_numpy(input), _to_numpy(weight), _to_numpy(bias)
    dtype = np.dtype(actual.dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"assert_close_to_reference(): actual must be floating point, got {dtype}")
    reference = _reference_conv2d(input, weight, bias, (stride, padding, dilation, groups, padding_mode),
                                  magnitudes=False)
    bound, magnitude, n = conv2d_error_bound(
        input, weight, bias, stride, padding, dilation, groups, padding_mode,
        dtype=dtype, accumulation_dtype=accumulation_dtype, c=c,
    )
    if _all_integers(input, weight, bias):
        exact = magnitude <= 1 / unit_roundoff(dtype)  # 2^p: every partial sum an integer of <= p bits
        bound = np.where(exact, 0.0, bound)
    overflow_possible = np.isfinite(magnitude) & (magnitude > float(finfo(dtype).max))
    bound = np.where(overflow_possible, np.inf, bound)
    assert_within_bound(actual, reference, bound, what="conv2d")
