"""PyTorch's own test corpus run against npconv: every OpInfo and ModuleInfo sample and error
input of the ops npconv implements (torch.testing._internal's `op_db` and `module_db`),
classified sample by sample. docs/conformance.md shows the counts (docs/conformance_table.py
writes them) and reference_tests/test_opinfo_corpus.py holds the two together.

    for row in run_entry("nn.functional.conv2d", "cpu"):
        row.key, row.counts, row.disagreements

Each sample gets one verdict:

* agree: torch and npconv both raise, with compatible types (torch's RuntimeError is npconv's
  ValueError; ValueError, TypeError, IndexError and NotImplementedError are the same on both
  sides), or both return and the results agree: the same shapes and dtypes, and then
    - bit for bit for the ops that only copy or compare (pad, relu, relu6, hardtanh,
      max_pool1d/2d/3d with their indices; NaN matches NaN, -0.0 must match -0.0), or
    - torch's result and npconv's own both within npconv's rigorous rounding bound of
      npconv's float64 reference (conv2d: npconv.assert_close_to_reference; conv1d, conv3d,
      conv_transpose1d/3d: its rules with the op of their rank; the others: the bounds
      reference_tests/error_bounds.py derives and npconv.bounds.avg_pool1d/2d/3d_bound),
      for everything a training-mode batch norm updates too (running statistics, counter);
* disagree: anything else, including an npconv exception of another type (a crash). Each
  disagreement says what, and how to regenerate the sample (generator, device, dtype, the
  seed 0 and the sample's index);
* not expressible, with one of the reasons of `REASONS`: a tensor of an integer or complex
  dtype (npconv computes in float16, bfloat16, float32 and float64 only).
  The reasons are tried in that order. (An op npconv does not have yet would be a `NotYet`
  entry with a reason of its own, counted and not run: the 1-D and 3-D max and average
  poolings were, until npconv.pooling added them.)

What runs, as torch's own suites run it: OpInfo samples for every dtype of
`op.supported_dtypes(device)`, reference inputs where the op has them, and error inputs;
ModuleInfo samples for every dtype of `module_info.supported_dtypes(device)` and each
training flag torch's `@modules` uses ([True, False] where train and eval differ, else
[True]), the module built with the sample's constructor arguments, moved to the device and
dtype and set to that mode; ModuleInfo error inputs for the same flags, the module left in
its default (training) mode as torch's test_errors leaves it. `torch.manual_seed(0)` before
each generator, and `set_seed=False` for OpInfo's: by default torch reseeds before every sample
(with 1234, or a hash of the calling unittest test's name), inspecting the whole call stack
each time, which made a pytest run three to five times slower. Tensors reach npconv as NumPy
arrays with their own layout (channels-last and other non-contiguous samples included),
copied before torch runs (some ops update their arguments in place).

npconv's side of a module: its `npconv.nn` twin built from the same constructor arguments
with the torch module's state loaded (Conv2d, LazyConv2d, ConvTranspose2d,
LazyConvTranspose2d, BatchNorm1d, BatchNorm2d, BatchNorm3d, ReLU, ReLU6, AdaptiveAvgPool2d,
Linear), or, for modules npconv.nn does not have, npconv's functional op with the module's
arguments, as the module's forward calls torch.nn.functional's (Conv1d, Conv3d,
ConvTranspose1d, ConvTranspose3d and their Lazy forms, AdaptiveAvgPool1d/3d, Hardtanh,
MaxPool1d/2d/3d, AvgPool1d/2d/3d, the padding modules).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import inspect
import re
import sys
import types
import unittest
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

AGREE, DISAGREE = "agree", "disagree"
INTEGER, COMPLEX = "integer", "complex"
REASONS = (INTEGER, COMPLEX)
COLUMNS = ("total", AGREE, DISAGREE) + REASONS + ("regex",)


# --------------------------------------------------------------------------------------
# Loading torch's corpus
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def databases():
    """(op_db, module_db), imported once per process.

    torch.testing._internal.common_utils imports `expecttest`, a test dependency of PyTorch
    that its wheel does not require; where it is missing, a stand-in with the two names
    common_utils uses (TestCase, ACCEPT) is registered: the corpus never asserts an expected
    output. Importing common_utils also changes global state that the rest of the suite
    relies on, and all of it is put back as it was:
    * it registers Hypothesis profiles of its own, "dev" among them, over conftest's, and
      loads one ("dev", 10 random examples, or "pytorch_ci" where CI is set): every property
      run after it in the same process would have run under torch's profile, not the one
      NPCONV_HYPOTHESIS_PROFILE chose;
    * it freezes torch.backends' flags (conftest's `_no_tf32` restores
      torch.backends.cudnn.allow_tf32 at the end of the session, which would then raise);
    * it wraps TorchScript's __call__ for profiling, and adds warning filters.
    """
    import torch

    if "expecttest" not in sys.modules:
        try:
            import expecttest  # noqa: F401
        except ImportError:
            stand_in = types.ModuleType("expecttest")
            stand_in.TestCase = unittest.TestCase
            stand_in.ACCEPT = False
            sys.modules["expecttest"] = stand_in
    frozen = torch.backends.flags_frozen()
    calls = (torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__)
    filters = list(warnings.filters)
    hypothesis = _hypothesis_profiles()
    try:
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import module_db
    finally:
        _restore_hypothesis_profiles(hypothesis)
        if not frozen:  # (torch.backends is a wrapper module: the flag lives in its functions' globals)
            torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
        torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__ = calls
        warnings.filters[:] = filters
    return op_db, module_db


def _hypothesis_profiles():
    """(settings, {name: profile}, the loaded profile's name), or None without Hypothesis."""
    try:
        from hypothesis import settings
    except ImportError:
        return None
    names = list(getattr(settings, "_profiles", {}))
    return settings, {name: settings.get_profile(name) for name in names}, getattr(settings, "_current_profile", None)


def _restore_hypothesis_profiles(saved) -> None:
    if saved is None:
        return
    settings, profiles, current = saved
    for name, profile in profiles.items():
        settings.register_profile(name, profile)
    if current in profiles:
        settings.load_profile(current)


# --------------------------------------------------------------------------------------
# Conversion and comparison
# --------------------------------------------------------------------------------------


def _torch():
    import torch

    return torch


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "dtype")


def _tensors(value):
    """Every tensor in a (nested) argument."""
    if _is_tensor(value):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def dtype_reason(values) -> str | None:
    """The dtype reason a sample is not expressible, or None: integer (bool included) and
    complex tensors never are (bfloat16 is, as ml_dtypes.bfloat16 arrays)."""
    torch = _torch()
    dtypes = {t.dtype for t in _tensors(values)}
    if any(d.is_complex for d in dtypes):
        return COMPLEX
    if any(not d.is_floating_point and not d.is_complex for d in dtypes):
        return INTEGER
    unknown = dtypes - {torch.float16, torch.bfloat16, torch.float32, torch.float64}
    if unknown:
        raise AssertionError(f"a sample with a dtype the corpus does not classify: {sorted(map(str, unknown))}")
    return None


def to_numpy(value):
    """Tensors (nested in lists, tuples, dicts) as NumPy copies in their own memory order
    (a channels-last tensor stays channels-last; bfloat16 as ml_dtypes.bfloat16); everything
    else as it is."""
    if _is_tensor(value):
        from npconv.dtypes import from_tensor

        return np.array(from_tensor(value), copy=True, order="K")
    if isinstance(value, (list, tuple)):
        converted = [to_numpy(v) for v in value]
        return type(value)(converted) if isinstance(value, tuple) and not hasattr(value, "_fields") else converted
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    return value


def describe(value) -> str:
    """A short, reproducible description of an argument."""
    if _is_tensor(value):
        layout = "" if value.is_contiguous() else (
            " channels_last" if value.dim() == 4 and value.is_contiguous(memory_format=_torch().channels_last)
            else f" strides={tuple(value.stride())}")
        return f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}{layout}"
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _same_bits(theirs: np.ndarray, ours: np.ndarray) -> bool:
    """Equal bit for bit, except that any NaN matches any NaN (payloads are not semantics)."""
    from npconv.dtypes import is_floating

    if not is_floating(theirs.dtype):
        return bool(np.array_equal(theirs, ours))
    nan = np.isnan(theirs)
    if not np.array_equal(nan, np.isnan(ours)):
        return False
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[theirs.dtype.itemsize]
    zero = theirs.dtype.type(0)
    return bool(np.array_equal(np.ascontiguousarray(np.where(nan, zero, theirs)).view(bits),
                               np.ascontiguousarray(np.where(nan, zero, ours)).view(bits)))


class Unsupported(Exception):
    """A sample the adapter has no rule for (an unknown keyword, say): a disagreement, so that
    a new kind of sample in a new torch release is noticed, not skipped."""


def _bind(names: tuple[str, ...], defaults: dict, args, kwargs, op: str) -> dict:
    """torch's positional and keyword arguments as one dict in the order of `names`."""
    if len(args) > len(names):
        raise Unsupported(f"{op}: {len(args)} positional arguments, the adapter knows {len(names)}")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise Unsupported(f"{op}: no rule for the keyword argument {key!r}")
        if key in bound:
            raise Unsupported(f"{op}: {key!r} given twice")
        bound[key] = value
    for key in names:
        if key not in bound:
            if key not in defaults:
                raise Unsupported(f"{op}: the required argument {key!r} is missing")
            bound[key] = defaults[key]
    return bound


# --------------------------------------------------------------------------------------
# The ops: npconv's call, torch's results by name, and how they are compared
# --------------------------------------------------------------------------------------


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


_NARROW = ("float16", "bfloat16")  # dtype names PyTorch's CPU kernels may accumulate in (below)


def _to_torch(a: np.ndarray):
    """A NumPy array as a tensor (an ml_dtypes.bfloat16 array as torch.bfloat16, bit for bit)."""
    torch = _torch()
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


class Op:
    """One op: its torch parameters in order (`names`, `defaults`), npconv's call on the
    NumPy arguments, and the comparison. `exact` ops compare torch's result with npconv's
    bit for bit; the others compare each with npconv's float64 reference within a bound."""

    name = ""  # torch.nn.functional's name
    names: tuple[str, ...] = ()
    defaults: dict = {}
    exact = False

    def bind(self, args, kwargs) -> dict:
        return _bind(self.names, self.defaults, args, kwargs, self.name)

    def not_yet(self, a: dict) -> str | None:
        """An op-level reason (the rank of a batch norm input) or None."""
        return None

    def ours(self, a: dict) -> dict:
        raise NotImplementedError

    def theirs(self, output, a_torch: dict) -> dict:
        return {"output": output}

    def reference(self, a: dict, dtype) -> dict:
        """name -> Bounded(value, error): npconv's float64 result and the bound."""
        raise NotImplementedError

    def torch_call(self, a: dict, device):
        """torch.nn.functional's op on the NumPy arguments (tensors on `device`)."""
        import torch

        args = [_to_torch(v).to(device) if isinstance(v, np.ndarray) else v for v in a.values()]
        return getattr(torch.nn.functional, self.name)(*args)

    def check(self, name: str, actual: np.ndarray, a: dict, reference: dict, who: str, device) -> None:
        from npconv.tolerance import assert_within_bound

        assert_within_bound(actual, reference[name].value, reference[name].error, what=f"{who} {name}")

    def compare(self, theirs: dict, ours: dict, a: dict, device) -> None:
        if set(theirs) != set(ours):
            raise AssertionError(f"torch returned {sorted(theirs)}, npconv {sorted(ours)}")
        for name in theirs:
            t, o = theirs[name], ours[name]
            if t.shape != o.shape or t.dtype != o.dtype:
                raise AssertionError(f"{name}: torch {t.dtype}{list(t.shape)}, npconv {o.dtype}{list(o.shape)}")
        if self.exact:
            for name in theirs:
                if not _same_bits(theirs[name], ours[name]):
                    t, o = np.atleast_1d(theirs[name]).reshape(-1), np.atleast_1d(ours[name]).reshape(-1)
                    i = next(i for i in range(t.size) if not _same_bits(t[i:i + 1], o[i:i + 1]))
                    raise AssertionError(f"{name}: not equal bit for bit, first at flat index {i} of {t.size}: "
                                         f"torch {t[i]!r}, npconv {o[i]!r}")
            return
        dtype = next(iter(theirs.values())).dtype
        reference = self.reference(a, dtype)
        for who, results in (("torch", theirs), ("npconv", ours)):
            for name, actual in results.items():
                self.check(name, actual, a, reference, who, device)


class Conv2d(Op):
    name = "conv2d"
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups", "padding_mode")
    defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}

    def ours(self, a):
        import npconv

        return {"output": npconv.conv2d(**a)}

    def reference(self, a, dtype):
        return {}

    def check(self, name, actual, a, reference, who, device):
        import npconv

        args = {k: v for k, v in a.items() if k not in ("input", "weight", "bias")}
        try:
            npconv.assert_close_to_reference(actual, a["input"], a["weight"], a["bias"], **args)
        except AssertionError as error:
            raise AssertionError(f"{who}: {error}") from None


class ConvTranspose2d(Op):
    """npconv's float16 and bfloat16 results are held to the float32-accumulation bound;
    torch's on the CPU to the accumulation in their own dtype: its slow_conv_transpose2d
    scatters the taps with col2im in float16 (bfloat16), rounding every partial sum
    (docs/conformance.md, "What the corpus found"; docs/semantics.md, bfloat16)."""

    name = "conv_transpose2d"
    names = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
    defaults = {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}

    def ours(self, a):
        import npconv

        return {"output": npconv.conv_transpose2d(**a)}

    def check(self, name, actual, a, reference, who, device):
        if who == "torch" and actual.dtype.name in _NARROW and _torch().device(device).type == "cpu":
            import npconv
            from error_bounds import Bounded
            from npconv.tolerance import bound_from_magnitude

            magnitude = npconv.conv_transpose2d(*(None if a[k] is None else np.abs(_f64(a[k]))
                                                  for k in ("input", "weight", "bias")),
                                                *(a[k] for k in self.names[3:]))
            n = a["weight"].shape[0] // a["groups"] * a["weight"].shape[2] * a["weight"].shape[3]
            n += a["bias"] is not None
            error = bound_from_magnitude(magnitude, n, actual.dtype, accumulation_dtype=actual.dtype)
            reference = {name: Bounded(reference[name].value, error)}
        super().check(name, actual, a, reference, who, device)

    def reference(self, a, dtype):
        from error_bounds import Bounded, conv_transpose2d_bound

        layer = SimpleNamespace(weight=a["weight"], bias=a["bias"], in_channels=a["weight"].shape[0],
                                **{k: a[k] for k in ("stride", "padding", "output_padding", "groups", "dilation")})
        return {"output": conv_transpose2d_bound(layer, Bounded.exact(a["input"]), dtype)}


class ConvNd(Op):
    """conv1d, conv3d, conv_transpose1d and conv_transpose3d (npconv/functional/conv_nd.py), each
    held, as conv2d is, to npconv.assert_close_to_reference's rules with the op of its rank:
    npconv's float64 result on the same (exactly widened) inputs, the bound
    npconv.tolerance.bound_from_magnitude for n = C_in/groups * prod(kernel) (+1 for a bias)
    terms, M the op in float64 on |x|, |w|, |b| (test_conv1d3d.py's derivation, per axis for
    a transposed one); exact where the inputs are integers with M <= 2^p; positions where M
    overflows the dtype not judged. A transposed op's torch result in float16 or bfloat16 on
    the CPU is held to the bound of accumulating in that dtype, as ConvTranspose2d's (its
    slow_conv_transpose kernels add the taps in it; 1-D runs the 2-D kernel on a plane of
    height 1)."""

    def __init__(self, dims: int, transposed: bool) -> None:
        self.dims, self.transposed = dims, transposed
        self.name = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
        self.names = ConvTranspose2d.names if transposed else Conv2d.names[:-1]  # F.conv*d: no padding_mode
        self.defaults = {k: v for k, v in (ConvTranspose2d if transposed else Conv2d).defaults.items()
                         if k in self.names}

    def function(self):
        import npconv

        return getattr(npconv, self.name)

    def ours(self, a):
        return {"output": self.function()(**a)}

    def torch_call(self, a, device):  # (a module's arguments hold padding_mode, which F.conv*d has not)
        return super().torch_call({k: v for k, v in a.items() if k in self.names}, device)

    def reference(self, a, dtype):
        return {}

    def check(self, name, actual, a, reference, who, device):
        from npconv import counting
        from npconv.dtypes import finfo
        from npconv.tolerance import assert_within_bound, bound_from_magnitude, unit_roundoff

        tensors = ("input", "weight", "bias")
        rest = {k: v for k, v in a.items() if k not in tensors}
        with counting.paused():
            value = self.function()(*(_f64(a[k]) for k in tensors), **rest)
            magnitude = self.function()(*(None if a[k] is None else np.abs(_f64(a[k])) for k in tensors), **rest)
        w = a["weight"]
        in_per_group = w.shape[0] // a["groups"] if self.transposed else w.shape[1]
        n = in_per_group * int(np.prod(w.shape[2:])) + (a["bias"] is not None)
        dtype = actual.dtype
        narrow = (self.transposed and who == "torch" and dtype.name in _NARROW
                  and _torch().device(device).type == "cpu")
        bound = bound_from_magnitude(magnitude, n, dtype, dtype if narrow else None)
        if all(a[k] is None or bool(np.all(np.isfinite(_f64(a[k])) & (_f64(a[k]) == np.round(_f64(a[k])))))
               for k in tensors):
            bound = np.where(magnitude <= 1 / unit_roundoff(dtype), 0.0, bound)  # every partial sum exact
        bound = np.where(np.isfinite(magnitude) & (magnitude > float(finfo(dtype).max)), np.inf, bound)
        assert_within_bound(actual, value, bound, what=f"{who} {self.name}")


class Pad(Op):
    name = "pad"
    names = ("input", "pad", "mode", "value")
    defaults = {"mode": "constant", "value": None}
    exact = True

    def ours(self, a):
        import npconv

        return {"output": npconv.pad(**a)}


class Linear(Op):
    name = "linear"
    names = ("input", "weight", "bias")
    defaults = {"bias": None}

    def ours(self, a):
        from npconv import ops

        return {"output": ops.linear(**a)}

    def reference(self, a, dtype):
        from error_bounds import Bounded, linear_bound

        layer = SimpleNamespace(weight=a["weight"], bias=a["bias"], in_features=a["weight"].shape[-1])
        return {"output": linear_bound(layer, Bounded.exact(a["input"]), dtype)}


class BatchNorm(Op):
    """F.batch_norm (npconv.ops.batch_norm, any (N, C, *) input); in training, torch updates
    running_mean and running_var in place and npconv returns them: both are compared, as a
    module's num_batches_tracked (exactly). The bounds are error_bounds' 2-D ones, on the
    input viewed as (N, C, 1, prod(*)) as npconv computes it: the bounds depend only on each
    channel's values (and m, their count), not on how they are laid out."""

    name = "batch_norm"
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    defaults = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}

    def ours(self, a):
        from npconv import ops

        result = ops.batch_norm(**a)
        if not a["training"]:
            return {"output": result}
        out = {"output": result.output}
        if a["running_mean"] is not None:
            out.update(running_mean=result.running_mean, running_var=result.running_var)
        return out

    def theirs(self, output, a_torch):
        out = {"output": output}
        if a_torch["training"] and a_torch["running_mean"] is not None:
            out.update(running_mean=to_numpy(a_torch["running_mean"]), running_var=to_numpy(a_torch["running_var"]))
        return out

    def reference(self, a, dtype):
        from error_bounds import Bounded

        shape = np.shape(a["input"])
        N, C = shape[:2] if len(shape) >= 2 else (0, 0)  # (0,): an empty batch without channels
        x = np.reshape(a["input"], (N, C, 1, int(np.prod(shape[2:], dtype=np.int64))))
        return {k: Bounded(v.value.reshape(shape) if k == "output" else v.value,
                           v.error.reshape(shape) if k == "output" else v.error)
                for k, v in self._plane_reference(a, x, C, dtype).items()}

    def _plane_reference(self, a, x, C, dtype):
        from error_bounds import Bounded, batch_norm_eval_bound, batch_norm_train_bound

        layer = dict(num_features=C, weight=a["weight"], bias=a["bias"], eps=a["eps"], running_mean=a["running_mean"],
                     running_var=a["running_var"], track_running_stats=a["running_mean"] is not None,
                     num_batches_tracked=0)
        if not a["training"]:
            return {"output": batch_norm_eval_bound(SimpleNamespace(**layer), Bounded.exact(x), dtype)}
        if x.size == 0:  # no batch statistics: an empty output, the running statistics kept (exactly)
            out = {"output": Bounded.exact(np.zeros(x.shape))}
            if layer["track_running_stats"]:
                out.update(running_mean=Bounded.exact(a["running_mean"]), running_var=Bounded.exact(a["running_var"]))
            return out
        f = float(a["momentum"])
        step = batch_norm_train_bound(SimpleNamespace(**layer, momentum=f), Bounded.exact(x), dtype)
        out = {"output": step.output}
        if layer["track_running_stats"]:
            # error_bounds' running-statistics bound, f d + g(5) ((1 - f) |r| + f (|s| + d)), is
            # meant for f in [0, 1]; F.batch_norm takes any momentum (the corpus has -1). It is
            # linear in f, so with e0, e1 its values at f = 0 and 1, |f| e1 + |1 - f| e0 is the
            # same bound with |f| and |1 - f|, right for every f.
            at = [batch_norm_train_bound(SimpleNamespace(**layer, momentum=m), Bounded.exact(x), dtype)
                  for m in (0.0, 1.0)]
            for key in ("running_mean", "running_var"):
                e0, e1 = getattr(at[0], key).error, getattr(at[1], key).error
                out[key] = Bounded(getattr(step, key).value, abs(f) * np.abs(e1) + abs(1 - f) * np.abs(e0))
        return out


class _Elementwise(Op):
    exact = True

    def ours(self, a):
        return {"output": self.function(a)}


class Relu(_Elementwise):
    name = "relu"
    names = ("input", "inplace")
    defaults = {"inplace": False}

    def function(self, a):  # inplace: the result is the same values in a new array
        from npconv import ops

        return ops.relu(a["input"])


class Relu6(Relu):
    name = "relu6"

    def function(self, a):
        from npconv import ops

        return ops.relu6(a["input"])


class Hardtanh(_Elementwise):
    name = "hardtanh"
    names = ("input", "min_val", "max_val", "inplace")
    defaults = {"min_val": -1.0, "max_val": 1.0, "inplace": False}

    def function(self, a):
        from npconv.functional import elementwise

        return elementwise.hardtanh(a["input"], a["min_val"], a["max_val"])


class MaxPool2d(Op):
    """max_pool1d, max_pool2d and max_pool3d (npconv.pooling's function of the same name),
    compared bit for bit, indices included."""

    name = "max_pool2d"
    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    defaults = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}
    exact = True

    def __init__(self, dims: int = 2) -> None:
        self.name = f"max_pool{dims}d"

    def ours(self, a):
        from npconv import pooling

        result = getattr(pooling, self.name)(**a)
        return {"output": result[0], "indices": result[1]} if a["return_indices"] else {"output": result}

    def theirs(self, output, a_torch):
        if isinstance(output, tuple):
            return {"output": output[0], "indices": output[1]}
        return {"output": output}


class AvgPool2d(Op):
    """avg_pool1d, avg_pool2d and avg_pool3d (npconv.pooling's function of the same name; 1-D
    has no divisor_override), each held to npconv.bounds' bound of its rank
    (avg_pool1d_bound: avg_pool2d_bound on the plane of height 1; avg_pool3d_bound: the same
    derivation over three axes)."""

    name = "avg_pool2d"
    names = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
    defaults = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None}

    def __init__(self, dims: int = 2) -> None:
        self.name = f"avg_pool{dims}d"
        if dims == 1:  # F.avg_pool1d has no divisor_override
            self.names = AvgPool2d.names[:-1]
            self.defaults = {k: v for k, v in AvgPool2d.defaults.items() if k != "divisor_override"}

    def ours(self, a):
        from npconv import pooling

        return {"output": getattr(pooling, self.name)(**a)}

    def reference(self, a, dtype):
        from error_bounds import Bounded

        from npconv import bounds, pooling

        x = _f64(a["input"])
        args = {k: v for k, v in a.items() if k != "input"}
        value = getattr(pooling, self.name)(x, **args)
        # npconv.bounds' one-sided bound, times both_sides for the float64 reference's own error
        bound = getattr(bounds, f"{self.name}_bound")
        error = bound(x, **args, dtype=dtype) * bounds.both_sides(bounds.unit_roundoff(dtype))
        return {"output": Bounded(value, error)}


class AdaptiveAvgPool2d(Op):
    name = "adaptive_avg_pool2d"
    names = ("input", "output_size")

    def ours(self, a):
        from npconv import ops

        return {"output": ops.adaptive_avg_pool2d(**a)}

    def reference(self, a, dtype):
        from error_bounds import Bounded, adaptive_avg_pool2d_bound

        return {"output": adaptive_avg_pool2d_bound(Bounded.exact(a["input"]), a["output_size"], dtype)}


class AdaptiveAvgPool1d(Op):
    """Held to adaptive_avg_pool2d's bound on the plane of height 1, as npconv (and PyTorch)
    compute it."""

    name = "adaptive_avg_pool1d"
    names = ("input", "output_size")

    def ours(self, a):
        from npconv import ops

        return {"output": ops.adaptive_avg_pool1d(**a)}

    def reference(self, a, dtype):
        from error_bounds import Bounded, adaptive_avg_pool2d_bound

        size = a["output_size"]
        size = size[0] if isinstance(size, (tuple, list)) else size
        plane = adaptive_avg_pool2d_bound(Bounded.exact(a["input"][..., np.newaxis, :]), (1, size), dtype)
        return {"output": Bounded(plane.value[..., 0, :], plane.error[..., 0, :])}


class AdaptiveAvgPool3d(Op):
    """error_bounds.adaptive_avg_pool2d_bound's derivation with a depth axis: an output is
    the sum of at most k values (k the largest window, per axis) and one division, so
    bound_from_magnitude(M, k + 1) with M the pooling of |x|. torch's CPU float16 (bfloat16)
    result is held to the bound of accumulating in that dtype with k + 3 roundings: its
    adaptive_avg_pool3d kernel sums the window in float16 (bfloat16) and divides by kd, kh and
    kw in turn (a simulation of
    that reproduces it bit for bit; docs/conformance.md, "What the corpus found")."""

    name = "adaptive_avg_pool3d"
    names = ("input", "output_size")

    def check(self, name, actual, a, reference, who, device):
        if who == "torch" and actual.dtype.name in _NARROW and _torch().device(device).type == "cpu":
            from error_bounds import Bounded

            from npconv import ops
            from npconv.tolerance import bound_from_magnitude

            magnitude = ops.adaptive_avg_pool3d(np.abs(_f64(a["input"])), a["output_size"])
            k = self._largest_window(a["input"].shape, magnitude.shape)
            error = bound_from_magnitude(magnitude, k + 3, actual.dtype, accumulation_dtype=actual.dtype)
            reference = {name: Bounded(reference[name].value, error)}
        super().check(name, actual, a, reference, who, device)

    @staticmethod
    def _largest_window(in_shape, out_shape) -> int:
        from npconv.formulas import adaptive_pool_windows

        return int(np.prod([max(adaptive_pool_windows(size, out), default=0)
                            for size, out in zip(in_shape[-3:], out_shape[-3:])]))

    def ours(self, a):
        from npconv import ops

        return {"output": ops.adaptive_avg_pool3d(**a)}

    def reference(self, a, dtype):
        from error_bounds import Bounded

        from npconv import ops
        from npconv.tolerance import bound_from_magnitude

        x = _f64(a["input"])
        value = ops.adaptive_avg_pool3d(x, a["output_size"])
        magnitude = ops.adaptive_avg_pool3d(np.abs(x), a["output_size"])
        k = self._largest_window(x.shape, value.shape)
        return {"output": Bounded(value, bound_from_magnitude(magnitude, k + 1, dtype))}


class NotYet(Op):
    """An op npconv does not have yet: counted under `reason` (one of `REASONS`), not run.
    None at present (the 1-D and 3-D poolings were, until npconv.pooling added them)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def not_yet(self, a):
        return self.reason

    def bind(self, args, kwargs):
        return {}


# --------------------------------------------------------------------------------------
# The entries: OpInfo names and ModuleInfo classes, in the table's order
# --------------------------------------------------------------------------------------

F = "nn.functional."
OPINFO: dict[str, Op] = {
    F + "conv2d": Conv2d(),
    F + "conv_transpose2d": ConvTranspose2d(),
    F + "conv1d": ConvNd(1, False),
    F + "conv_transpose1d": ConvNd(1, True),
    F + "conv3d": ConvNd(3, False),
    F + "conv_transpose3d": ConvNd(3, True),
    F + "pad.constant": Pad(),
    F + "pad.reflect": Pad(),
    F + "pad.replicate": Pad(),
    F + "pad.replicate_negative": Pad(),
    F + "pad.circular": Pad(),
    F + "batch_norm": BatchNorm(),
    F + "batch_norm.without_cudnn": BatchNorm(),
    F + "relu": Relu(),
    F + "relu6": Relu6(),
    F + "hardtanh": Hardtanh(),
    F + "max_pool2d": MaxPool2d(),
    F + "avg_pool2d": AvgPool2d(),
    F + "adaptive_avg_pool2d": AdaptiveAvgPool2d(),
    F + "adaptive_avg_pool1d": AdaptiveAvgPool1d(),
    F + "adaptive_avg_pool3d": AdaptiveAvgPool3d(),
    F + "linear": Linear(),
    **{F + f"max_pool{d}d": MaxPool2d(d) for d in (1, 3)},
    **{F + f"avg_pool{d}d": AvgPool2d(d) for d in (1, 3)},
}


@dataclass
class Module:
    """A ModuleInfo class: `op` (how results are compared), `npconv_class` (the npconv.nn twin,
    None when npconv's functional op stands in for it) and `functional(m, x, state)`, the op's
    arguments, NumPy arrays, with which the torch module `m` in `state` computes on x."""

    op: Op
    npconv_class: str | None = None
    functional: object = None
    lazy: bool = False


def _conv2d_args(m, x):
    return dict(input=x, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode)


def _conv_transpose2d_args(m, x):
    return dict(input=x, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride, padding=m.padding,
                output_padding=m.output_padding, groups=m.groups, dilation=m.dilation)


def _conv_nd_args(m, x):
    """npconv.conv1d / conv3d's arguments (padding_mode included: the module pads with F.pad
    first, npconv's function as the module does) or conv_transpose1d / 3d's."""
    common = dict(input=x, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride, padding=m.padding)
    if "Transpose" in type(m).__name__:
        return dict(common, output_padding=m.output_padding, groups=m.groups, dilation=m.dilation)
    return dict(common, dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode)


def _batch_norm_args(m, x, state):
    """F.batch_norm's arguments as _BatchNorm.forward computes them, from the state before the call."""
    training = m.training
    tracking = training and m.track_running_stats
    momentum = 0.0 if m.momentum is None else m.momentum
    if tracking and m.momentum is None:
        momentum = 1.0 / (int(state["num_batches_tracked"]) + 1)
    uses_running = not training or m.track_running_stats
    has_running = "running_mean" in state
    return dict(input=x, running_mean=state["running_mean"] if uses_running and has_running else None,
                running_var=state["running_var"] if uses_running and has_running else None,
                weight=state.get("weight"), bias=state.get("bias"),
                training=training or not has_running, momentum=momentum, eps=m.eps)


_PAD_MODES = {"ZeroPad": "constant", "ConstantPad": "constant", "ReflectionPad": "reflect",
              "ReplicationPad": "replicate", "CircularPad": "circular"}


def _pad_args(m, x):
    mode = next(mode for prefix, mode in _PAD_MODES.items() if type(m).__name__.startswith(prefix))
    return dict(input=x, pad=m.padding, mode=mode, value=getattr(m, "value", None) if mode == "constant" else None)


MODULES: dict[str, Module] = {
    "Conv2d": Module(Conv2d(), "Conv2d", lambda m, x, s: _conv2d_args(m, x)),
    "LazyConv2d": Module(Conv2d(), "Conv2d", lambda m, x, s: _conv2d_args(m, x), lazy=True),
    "ConvTranspose2d": Module(ConvTranspose2d(), "ConvTranspose2d", lambda m, x, s: _conv_transpose2d_args(m, x)),
    "LazyConvTranspose2d": Module(ConvTranspose2d(), "ConvTranspose2d",
                                  lambda m, x, s: _conv_transpose2d_args(m, x), lazy=True),
    **{f"{lazy}Conv{d}d": Module(ConvNd(d, False), None, lambda m, x, s: _conv_nd_args(m, x))
       for d in (1, 3) for lazy in ("", "Lazy")},
    **{f"{lazy}ConvTranspose{d}d": Module(ConvNd(d, True), None, lambda m, x, s: _conv_nd_args(m, x))
       for d in (1, 3) for lazy in ("", "Lazy")},
    **{f"BatchNorm{d}d": Module(BatchNorm(), f"BatchNorm{d}d", _batch_norm_args) for d in (1, 2, 3)},
    "ReLU": Module(Relu(), "ReLU", lambda m, x, s: dict(input=x, inplace=False)),
    "ReLU6": Module(Relu6(), "ReLU6", lambda m, x, s: dict(input=x, inplace=False)),
    "Hardtanh": Module(Hardtanh(), None, lambda m, x, s: dict(input=x, min_val=m.min_val, max_val=m.max_val,
                                                               inplace=False)),
    "MaxPool2d": Module(MaxPool2d(), None, lambda m, x, s: dict(
        input=x, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation,
        ceil_mode=m.ceil_mode, return_indices=m.return_indices)),
    "AvgPool2d": Module(AvgPool2d(), None, lambda m, x, s: dict(
        input=x, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode,
        count_include_pad=m.count_include_pad, divisor_override=m.divisor_override)),
    "AdaptiveAvgPool2d": Module(AdaptiveAvgPool2d(), "AdaptiveAvgPool2d",
                                lambda m, x, s: dict(input=x, output_size=m.output_size)),
    **{f"AdaptiveAvgPool{d}d": Module(op, None, lambda m, x, s: dict(input=x, output_size=m.output_size))
       for d, op in ((1, AdaptiveAvgPool1d()), (3, AdaptiveAvgPool3d()))},
    "Linear": Module(Linear(), "Linear", lambda m, x, s: dict(input=x, weight=to_numpy(m.weight),
                                                               bias=to_numpy(m.bias))),
    **{f"{prefix}{d}d": Module(Pad(), None, lambda m, x, s: _pad_args(m, x))
       for prefix in _PAD_MODES for d in (1, 2, 3)},
    **{f"MaxPool{d}d": Module(MaxPool2d(d), None, lambda m, x, s: dict(
        input=x, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation,
        ceil_mode=m.ceil_mode, return_indices=m.return_indices)) for d in (1, 3)},
    "AvgPool1d": Module(AvgPool2d(1), None, lambda m, x, s: dict(
        input=x, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode,
        count_include_pad=m.count_include_pad)),
    "AvgPool3d": Module(AvgPool2d(3), None, lambda m, x, s: dict(
        input=x, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode,
        count_include_pad=m.count_include_pad, divisor_override=m.divisor_override)),
}

ENTRIES = tuple(OPINFO) + tuple(MODULES)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One row of the table: an entry and a kind of input, its counts and its disagreements.
    `regex` counts the error inputs on which both raise and npconv's message also matches the
    pattern torch's corpus expects of torch's (npconv words its errors as PyTorch does)."""

    entry: str
    kind: str
    counts: dict = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    disagreements: list = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.entry, self.kind)

    def add(self, verdict: str, where: str, why: str = "", regex: bool = False) -> None:
        self.counts["total"] += 1
        self.counts[verdict] += 1
        self.counts["regex"] += bool(regex)
        if verdict == DISAGREE:
            self.disagreements.append(f"{where}: {why}")


_NPCONV_ERRORS = (ValueError, TypeError, NotImplementedError, IndexError)


def _compatible(torch_error: BaseException, ours: BaseException) -> bool:
    """torch's exception type and npconv's: RuntimeError is ValueError (npconv's convention),
    the others are themselves (NotImplementedError, a RuntimeError in Python, checked first)."""
    for kind in (NotImplementedError, TypeError, IndexError, ValueError):
        if isinstance(torch_error, kind):
            return isinstance(ours, kind)
    return isinstance(torch_error, RuntimeError) and isinstance(ours, ValueError)


def _outcome(call):
    try:
        return call(), None
    except Exception as error:  # noqa: BLE001 - every exception is an outcome to compare
        return None, error


def judge(run_torch, run_ours, compare, regex: str | None = None, functional_error=None) -> tuple[str, str, bool]:
    """(verdict, why, message matches) for one sample. `run_torch()` and `run_ours()` give
    their results by name (dicts of NumPy arrays) or raise; `compare(theirs, ours)` raises
    AssertionError when results disagree. `functional_error()`, for a module npconv runs as
    its functional op, gives the exception torch's functional op raises on the same
    arguments: npconv's type may match that one instead of the module's."""
    theirs, torch_error = _outcome(run_torch)
    ours, our_error = _outcome(run_ours)
    if isinstance(our_error, Unsupported):
        return DISAGREE, f"no adapter: {our_error}", False
    if our_error is not None and not isinstance(our_error, _NPCONV_ERRORS):
        return DISAGREE, f"npconv crashed: {type(our_error).__name__}: {our_error}", False
    if torch_error is not None and our_error is not None:
        if not _compatible(torch_error, our_error):
            alternative = functional_error() if functional_error is not None else None
            if alternative is None or not _compatible(alternative, our_error):
                return DISAGREE, (f"both raise, with incompatible types: torch {type(torch_error).__name__}: "
                                  f"{torch_error}; npconv {type(our_error).__name__}: {our_error}"), False
        return AGREE, "", bool(regex) and re.search(regex, str(our_error)) is not None
    if torch_error is not None:
        return DISAGREE, f"torch raises {type(torch_error).__name__}: {torch_error}; npconv returns", False
    if our_error is not None:
        return DISAGREE, f"npconv raises {type(our_error).__name__}: {our_error}; torch returns", False
    try:
        compare(theirs, ours)
    except AssertionError as error:
        return DISAGREE, str(error), False
    except Exception as error:  # noqa: BLE001 - a bound that cannot be evaluated is a finding too
        return DISAGREE, f"comparison failed: {type(error).__name__}: {error}", False
    return AGREE, "", False


def _run_opinfo_sample(op: Op, info, sample, device) -> tuple[str, str, bool]:
    """The verdict on one OpInfo SampleInput (or ErrorInput, with its regex)."""
    torch = _torch()
    regex = None
    if hasattr(sample, "error_regex"):
        regex, sample = sample.error_regex, sample.sample_input
    reason = dtype_reason([sample.input, sample.args, sample.kwargs])
    if reason in (INTEGER, COMPLEX):
        return reason, "", False
    try:
        a_torch = op.bind((sample.input,) + tuple(sample.args), dict(sample.kwargs))
    except Unsupported as error:
        return DISAGREE, f"no adapter: {error}", False
    reason = op.not_yet(a_torch) or reason
    if reason is not None:
        return reason, "", False
    a = {k: to_numpy(v) for k, v in a_torch.items()}  # before torch runs: it may update arguments in place

    def run_torch():
        with torch.no_grad():
            output = info(sample.input, *sample.args, **sample.kwargs)
        return {k: to_numpy(v) for k, v in op.theirs(output, a_torch).items()}

    return judge(run_torch, lambda: op.ours(dict(a)), lambda t, o: op.compare(t, o, a, device), regex)


def _forward_input(forward):
    """The one input of a module's forward, positional or `input=`; no other argument."""
    args, kwargs = list(forward.args), dict(forward.kwargs)
    if "input" in kwargs:
        args.insert(0, kwargs.pop("input"))
    if len(args) != 1 or kwargs:
        raise Unsupported(f"forward arguments {describe(forward.args)} {describe(forward.kwargs)}")
    return args[0]


def _module_results(op: Op, output, module) -> dict:
    """A module call's results by name, torch's or npconv's: the op's outputs, and the running
    statistics and counter a training batch norm updates."""
    results = op.theirs(output, {}) if isinstance(op, MaxPool2d) else {"output": output}
    if isinstance(op, BatchNorm) and module.training and module.track_running_stats:
        results.update(running_mean=module.running_mean, running_var=module.running_var,
                       num_batches_tracked=module.num_batches_tracked)
    return {k: np.asarray(to_numpy(v)) for k, v in results.items()}


def _run_module_sample(spec: Module, info, module_input, device, dtype, training, error=None):
    """The verdict on one ModuleInput, or ErrorModuleInput (`error`): the module is built,
    moved and (for samples) set to `training`, its state copied before the call (after it for
    a lazy module, whose parameters the call creates), and npconv's twin built from the same
    constructor arguments with that state, or npconv's functional op called with the
    module's arguments."""
    torch = _torch()
    c, f = module_input.constructor_input, module_input.forward_input
    reason = dtype_reason([c.args, c.kwargs, f.args, f.kwargs, torch.empty(0, dtype=dtype)])
    if reason in (INTEGER, COMPLEX):
        return reason, "", False
    reason = spec.op.reason if isinstance(spec.op, NotYet) else reason
    if reason is not None:
        return reason, "", False
    op = spec.op
    try:
        x_torch = _forward_input(f)
    except Unsupported as e:
        return DISAGREE, f"no adapter: {e}", False
    x = to_numpy(x_torch)
    np_dtype = np.dtype(str(dtype).replace("torch.", ""))
    built = {}

    def run_torch():
        m = info.module_cls(*c.args, **c.kwargs)
        m.to(device).to(dtype)
        if error is None:
            m.train(training)
        built["module"] = m
        lazy = hasattr(m, "has_uninitialized_params") and m.has_uninitialized_params()
        if not lazy:
            built["state"] = _state(m)
            built["a"] = spec.functional(m, x, built["state"])
        with torch.no_grad():
            output = m(x_torch)
        if lazy:
            built["state"] = _state(m)
            built["a"] = spec.functional(m, x, built["state"])
        return _module_results(op, output, m)

    def run_ours():
        if spec.npconv_class is None:  # the functional op with the module's arguments
            if "a" not in built:
                raise Unsupported("torch's constructor raised; npconv has no module to construct")
            return op.ours(dict(built["a"]))
        from npconv import nn

        cls = getattr(nn, spec.npconv_class)
        args = ((np.shape(x)[-3],) if spec.lazy else ()) + tuple(c.args)
        kwargs = dict(c.kwargs, **({"dtype": np_dtype} if "dtype" in inspect.signature(cls).parameters else {}))
        ours = cls(*args, **kwargs)
        if "module" not in built:
            raise Unsupported("torch's constructor raised, npconv's did not")
        if "state" in built:  # (none when a lazy module's call failed: npconv keeps its own initial weights)
            ours.load_state_dict(built["state"])
        ours.train(built["module"].training)
        return _module_results(op, ours(x), ours)

    def compare(theirs, ours):
        theirs, ours = dict(theirs), dict(ours)
        counters = theirs.pop("num_batches_tracked", None), ours.pop("num_batches_tracked", None)
        if (counters[0] is None) != (counters[1] is None) or (counters[0] is not None and
                                                              int(counters[0]) != int(counters[1])):
            raise AssertionError(f"num_batches_tracked: torch {counters[0]}, npconv {counters[1]}")
        op.compare(theirs, ours, built["a"], device)

    def functional_error():
        if spec.npconv_class is not None or "a" not in built:
            return None
        return _outcome(lambda: op.torch_call(built["a"], device))[1]

    return judge(run_torch, run_ours, compare, None if error is None else error.error_regex, functional_error)


def _state(torch_module) -> dict:
    return {k: to_numpy(v) for k, v in torch_module.state_dict().items()}


def _seeded(generator, device):
    """The generator's inputs after `torch.manual_seed(0)`, torch's random state (the CPU's and
    the device's) kept as it was.

    Run in a thread of its own: each OpInfo generator (TrackedInputIter) calls
    `inspect.stack()` once to find the unittest test calling it, reading the source of every
    frame, which under pytest's deep stack took a quarter of a second per call. A fresh
    thread has a shallow stack, and the result is the same (no unittest test is found)."""
    torch = _torch()
    device = torch.device(device)

    def generate():
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device.index or 0],
                                   device_type="cuda" if device.type == "cpu" else device.type):
            torch.manual_seed(0)
            return list(generator())

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(generate).result()


def _opinfo(name: str):
    op_db, _ = databases()
    base, _, variant = name.removeprefix(F).partition(".")
    found = [o for o in op_db if o.name == F + base and o.variant_test_name == variant]
    if len(found) != 1:
        raise LookupError(f"{name}: {len(found)} OpInfo entries in torch's op_db")
    return found[0]


def _moduleinfo(name: str):
    _, module_db = databases()
    found = [m for m in module_db if m.module_cls.__name__ == name]
    if len(found) != 1:
        raise LookupError(f"{name}: {len(found)} ModuleInfo entries in torch's module_db")
    return found[0]


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


@contextlib.contextmanager
def _one_torch_thread():
    """torch single-threaded: on a small shared machine its intra-op threads spin-wait, and a
    tiny max_pool2d then takes 3 ms instead of 0.1 (reference_tests/twin_utils.py)."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_entry(entry: str, device: str = "cpu") -> list[Row]:
    """Every sample and error input of one entry of `ENTRIES` on `device`: one Row per kind
    the entry has (an OpInfo without reference or error inputs has no such row)."""
    torch = _torch()
    device_type = torch.device(device).type
    rows = []
    with _one_torch_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's padding='same' copy note and the like
        if entry in OPINFO:
            op, info = OPINFO[entry], _opinfo(entry)
            generators = [("samples", info.sample_inputs)]
            if info.reference_inputs_func is not None:
                generators.append(("reference inputs", info.reference_inputs))
            for kind, generate in generators:
                row = Row(entry, kind)
                for dtype in sorted(info.supported_dtypes(device_type), key=str):
                    for i, s in enumerate(_seeded(lambda: generate(device, dtype, set_seed=False), device)):
                        where = (f"{entry} {kind} [{device}, {_dtype_name(dtype)}, seed 0] #{i}: "
                                 f"{info.name}({describe(s.input)}, *{describe(s.args)}, **{describe(s.kwargs)})")
                        row.add(*_verdict(_run_opinfo_sample(op, info, s, device), where))
                rows.append(row)
            if info.error_inputs_func is not None:
                row = Row(entry, "error inputs")
                for i, e in enumerate(_seeded(lambda: info.error_inputs(device, set_seed=False), device)):
                    s = e.sample_input
                    where = (f"{entry} error inputs [{device}, seed 0] #{i}: {info.name}({describe(s.input)}, "
                             f"*{describe(s.args)}, **{describe(s.kwargs)}), torch's corpus expects "
                             f"{e.error_type.__name__} /{e.error_regex}/")
                    row.add(*_verdict(_run_opinfo_sample(op, info, e, device), where))
                rows.append(row)
            return rows

        spec, info = MODULES[entry], _moduleinfo(entry)
        dtypes = sorted(info.supported_dtypes(device_type), key=str)
        flags = [True, False] if info.train_and_eval_differ else [True]
        kinds = [("module inputs", info.module_inputs_func)]
        if info.module_error_inputs_func is not None:
            kinds.append(("module error inputs", info.module_error_inputs_func))
        for kind, generate in kinds:
            row = Row(entry, kind)
            for dtype in dtypes:
                for training in flags:
                    inputs = _seeded(lambda: generate(info, device=device, dtype=dtype, requires_grad=False,
                                                      training=training), device)
                    for i, item in enumerate(inputs):
                        error = item if kind == "module error inputs" else None
                        mi = item.module_error_input if error is not None else item
                        c, f = mi.constructor_input, mi.forward_input
                        where = (f"{entry} {kind} [{device}, {_dtype_name(dtype)}, training={training}, seed 0] "
                                 f"#{i}: nn.{entry}(*{describe(c.args)}, **{describe(c.kwargs)})"
                                 f"(*{describe(f.args)}, **{describe(f.kwargs)})")
                        if error is not None:
                            where += (f", torch's corpus expects {error.error_type.__name__} /{error.error_regex}/ "
                                      f"on {error.error_on.name}")
                        row.add(*_verdict(_run_module_sample(spec, info, mi, device, dtype, training, error), where))
            rows.append(row)
    return rows


def _verdict(result: tuple[str, str, bool], where: str) -> tuple:
    verdict, why, matched = result
    return verdict, where, why, matched


def run(device: str = "cpu", entries=ENTRIES) -> list[Row]:
    return [row for entry in entries for row in run_entry(entry, device)]


# --------------------------------------------------------------------------------------
# The table of docs/conformance.md (written by docs/conformance_table.py, read by the test)
# --------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "conformance.md"
START, END = "<!-- corpus start -->", "<!-- corpus end -->"
HEADER = ("entry", "inputs", "total", AGREE, DISAGREE) + REASONS + ("message matches",)


def _line(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _cells(first: str, kind: str, counts: dict, errors: bool) -> list:
    return ([first, kind, counts["total"], counts[AGREE], counts[DISAGREE]]
            + [counts[r] if counts[r] else "·" for r in REASONS]
            + [f"{counts['regex']} of {counts[AGREE]}" if errors and counts[AGREE] else ""])


def format_table(rows: list[Row]) -> str:
    """The generated section: a caption naming torch's version, one line per Row, a total per
    group (implemented, not yet) and a sentence with the grand totals."""
    torch = _torch()
    lines = [f"Counts for torch `{torch.__version__}` on the CPU, every generator seeded with `torch.manual_seed(0)`. "
             "A number under a reason counts inputs not expressible for that reason (`·`: none). \"message "
             "matches\": of the error inputs on which both raise, those where npconv's message also matches the "
             "pattern torch's corpus expects of torch's.", "",
             _line(HEADER), _line(["---", "---"] + ["---:"] * (len(HEADER) - 3) + ["---"])]
    groups = {"implemented": [], "not yet": []}
    for row in rows:
        op = OPINFO[row.entry] if row.entry in OPINFO else MODULES[row.entry].op
        groups["not yet" if isinstance(op, NotYet) else "implemented"].append(row)
    for group, members in groups.items():
        if not members:
            continue
        for row in members:
            name = f"`{row.entry}`" if row.entry in OPINFO else f"`nn.{row.entry}`"
            lines.append(_line(_cells(name, row.kind, row.counts, "error" in row.kind)))
        total = {k: sum(r.counts[k] for r in members) for k in COLUMNS}
        errors = [r for r in members if "error" in r.kind]
        cells = _cells(f"**{group}: total**", "", total, False)
        agreed = sum(r.counts[AGREE] for r in errors)
        cells[-1] = f"{sum(r.counts['regex'] for r in errors)} of {agreed}" if agreed else ""
        lines.append(_line(cells))
    every = {k: sum(r.counts[k] for r in rows) for k in COLUMNS}
    later = [r for r in REASONS if r not in (INTEGER, COMPLEX)]  # the "not yet: ..." reasons
    not_yet = (f" and {sum(every[r] for r in later):,} not yet ("
               + ", ".join(f"{r.removeprefix('not yet: ')} {every[r]:,}" for r in later) + ")") if later else ""
    lines += ["", f"All {every['total']:,} inputs: {every[AGREE]:,} agree, {every[DISAGREE]} disagree, "
                  f"{every[INTEGER] + every[COMPLEX]:,} are not expressible (integer {every[INTEGER]:,}, complex "
                  f"{every[COMPLEX]:,}){not_yet}."]
    return "\n".join(lines)


def documented(text: str | None = None) -> tuple[str | None, dict]:
    """(torch's version, {(entry, kind): counts}) of the table in docs/conformance.md, as
    `format_table` writes it (totals rows skipped)."""
    text = DOC.read_text() if text is None else text
    section = text[text.index(START):text.index(END)]
    version = re.search(r"torch `([^`]+)`", section)
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(HEADER) or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        entry = name if name.startswith(F) else name.removeprefix("nn.")
        number = lambda c: int(c) if c.isdigit() else 0  # noqa: E731
        counts = dict(zip(("total", AGREE, DISAGREE) + REASONS, map(number, cells[2:-1])))
        counts["regex"] = number(cells[-1].split(" of ")[0])
        rows[(entry, cells[1])] = {k: counts[k] for k in COLUMNS}
    return (version.group(1) if version else None), rows
