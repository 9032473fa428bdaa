"""PyTorch's execution paths: each turns a module into something that computes it.

    PATHS["torchscript_trace"].prepare(module, example)(x)    # -> the module's output
    path = as_path(lambda module: torch.jit.trace(module, example))   # a path of your own

A `Path` is a name, a `prepare(module, example_input) -> callable` (the callable takes and
returns tensors), the `Arithmetic` its output is held to (npconv.testing.arithmetic), a cost
class ("cheap": run in CI; "thorough": the thorough profile) and `requires()`, which returns
why the path cannot run here (a missing package, no GPU) or None. `prepare` receives its own
deep copy of the module, so it may change it (move it, convert it, hook it). A path may be
built on another (`builds_on`): the optimized TorchScript paths freeze and optimize the plain
path's trace or script, and `check_paths` reuses the one it has just made rather than trace
the model twice (a trace of a 1,000-node network takes 1-2 s).

Built in (`PATHS`):

| name | what runs | arithmetic |
|---|---|---|
| eager | the module | float32 |
| channels_last | module and input in torch.channels_last | float32 |
| torchscript_trace | torch.jit.trace | float32 |
| torchscript_trace_optimized | torch.jit.optimize_for_inference(freeze(trace)) | float32, BN folded |
| torchscript_script | torch.jit.script | float32 |
| torchscript_script_optimized | optimize_for_inference(freeze(script)) | float32, BN folded |
| compile | torch.compile (Inductor) | float32 |
| compile_freezing | torch.compile, torch._inductor.config.freezing = True | float32, BN folded |
| compile_max_autotune | torch.compile(mode="max-autotune-no-cudagraphs") | float32 |
| compile_max_autotune_freezing | the same with freezing | float32, BN folded |
| bf16_autocast | torch.autocast("cpu", torch.bfloat16) | bfloat16 autocast |
| onnxruntime | torch.onnx.export(dynamo=True), ONNX Runtime CPU | float32, BN folded |
| cuda | the module on CUDA, TF32 off | float32 |
| cuda_tf32 | the module on CUDA, TF32 on (cuDNN and matmul) | tf32 |

`CHEAP` names the paths the CI profile runs (eager, channels_last, torchscript_trace,
torchscript_trace_optimized); `ALL` every built-in path.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Callable

from .arithmetic import BFLOAT16_AUTOCAST, FLOAT32, FLOAT32_BN_FOLDED, TF32, Arithmetic

__all__ = ["ALL", "CHEAP", "PATHS", "Path", "as_path", "planted_fault"]


def _always() -> str | None:
    return None


@dataclass(frozen=True)
class Path:
    """One execution path (module docstring)."""

    name: str
    prepare: Callable = field(repr=False)
    arithmetic: Arithmetic = FLOAT32
    cost: str = "cheap"
    requires: Callable = field(default=_always, repr=False)
    description: str = ""
    # (base_prepare, finish): this path is finish(base_prepare(module, example)), so a check
    # that has just prepared the base path on the same module finishes that instead of
    # preparing from scratch (`check_paths`): the optimized TorchScript paths freeze and
    # optimize the trace or script of the plain ones
    builds_on: tuple | None = field(default=None, repr=False)

    def unavailable(self) -> str | None:
        """Why this path cannot run here, or None."""
        return self.requires()


# ----------------------------------------------------------------------------- eager and layouts


def _eager(module, example):
    return module


def _channels_last(module, example):
    import torch

    module = module.to(memory_format=torch.channels_last)
    return lambda x: module(x.contiguous(memory_format=torch.channels_last))


# ----------------------------------------------------------------------------- TorchScript


def _trace(module, example):
    import torch

    with _quiet():
        return torch.jit.trace(module, example, check_trace=False)


def _optimized(scripted):
    """torch.jit.optimize_for_inference(torch.jit.freeze(scripted)); freeze works on a copy,
    so `scripted` itself is left as it was."""
    import torch

    with _quiet():
        return torch.jit.optimize_for_inference(torch.jit.freeze(scripted))


def _trace_optimized(module, example):
    return _optimized(_trace(module, example))


def _script(module, example):
    import torch

    with _quiet():
        return torch.jit.script(module)


def _script_optimized(module, example):
    return _optimized(_script(module, example))


# ----------------------------------------------------------------------------- torch.compile


def _compiled(mode: str | None, freezing: bool):
    def prepare(module, example):
        import torch
        import torch._dynamo
        import torch._inductor.config as inductor_config

        torch._dynamo.reset()  # a fresh cache: no recompile limit shared with earlier modules
        compiled = torch.compile(module, mode=mode) if mode else torch.compile(module)

        def run(x):
            with inductor_config.patch(freezing=freezing), torch.no_grad():
                return compiled(x)

        run(example)  # compile now, under the configuration
        return run

    return prepare


# ----------------------------------------------------------------------------- autocast


def _bf16_autocast(module, example):
    import torch

    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return module(x)

    return run


# ----------------------------------------------------------------------------- ONNX Runtime


def _onnx_missing() -> str | None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)} (pip install 'npconv[onnx]')" if missing else None


def _onnxruntime(module, example):
    import numpy as np
    import onnxruntime
    import torch

    with _quiet():
        program = torch.onnx.export(module, (example,), dynamo=True, verbose=False)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x):
        outputs = session.run(None, {name: np.ascontiguousarray(x.detach().cpu().numpy())})
        return tuple(torch.from_numpy(o) for o in outputs) if len(outputs) > 1 else torch.from_numpy(outputs[0])

    return run


# ----------------------------------------------------------------------------- CUDA


def _no_cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "needs torch"
    return None if torch.cuda.is_available() else "no CUDA device"


@contextlib.contextmanager
def _tf32(on: bool):
    import torch

    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _cuda(tf32: bool):
    def prepare(module, example):
        module = module.cuda()

        def run(x):
            with _tf32(tf32):
                out = module(x.cuda())
            return tuple(o.cpu() for o in out) if isinstance(out, (tuple, list)) else out.cpu()

        return run

    return prepare


@contextlib.contextmanager
def _quiet():
    """Silence the tracers' warnings (TracerWarning, export's progress lines)."""
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


PATHS: dict[str, Path] = {p.name: p for p in [
    Path("eager", _eager, FLOAT32, "cheap", description="the module as it is"),
    Path("channels_last", _channels_last, FLOAT32, "cheap",
         description="module and input converted to torch.channels_last"),
    Path("torchscript_trace", _trace, FLOAT32, "cheap", description="torch.jit.trace"),
    Path("torchscript_trace_optimized", _trace_optimized, FLOAT32_BN_FOLDED, "cheap",
         description="torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(...)))",
         builds_on=(_trace, _optimized)),
    Path("torchscript_script", _script, FLOAT32, "thorough", description="torch.jit.script"),
    Path("torchscript_script_optimized", _script_optimized, FLOAT32_BN_FOLDED, "thorough",
         description="torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(...)))",
         builds_on=(_script, _optimized)),
    Path("compile", _compiled(None, False), FLOAT32, "thorough", description="torch.compile (Inductor)"),
    Path("compile_freezing", _compiled(None, True), FLOAT32_BN_FOLDED, "thorough",
         description="torch.compile with torch._inductor.config.freezing = True"),
    Path("compile_max_autotune", _compiled("max-autotune-no-cudagraphs", False), FLOAT32, "thorough",
         description='torch.compile(mode="max-autotune-no-cudagraphs")'),
    Path("compile_max_autotune_freezing", _compiled("max-autotune-no-cudagraphs", True), FLOAT32_BN_FOLDED,
         "thorough", description='torch.compile(mode="max-autotune-no-cudagraphs"), freezing'),
    Path("bf16_autocast", _bf16_autocast, BFLOAT16_AUTOCAST, "thorough",
         description='torch.autocast("cpu", dtype=torch.bfloat16)'),
    Path("onnxruntime", _onnxruntime, FLOAT32_BN_FOLDED, "thorough", requires=_onnx_missing,
         description="torch.onnx.export(dynamo=True), then ONNX Runtime's CPU provider"),
    Path("cuda", _cuda(False), FLOAT32, "thorough", requires=_no_cuda, description="CUDA, TF32 off"),
    Path("cuda_tf32", _cuda(True), TF32, "thorough", requires=_no_cuda, description="CUDA, TF32 on"),
]}

CHEAP = tuple(name for name, p in PATHS.items() if p.cost == "cheap")
ALL = tuple(PATHS)


def as_path(path, *, name: str | None = None, arithmetic: Arithmetic = FLOAT32) -> Path:
    """A Path from a Path, a built-in path's name, or a callable `f(module)` or
    `f(module, example_input)` returning something callable on an input tensor (held to
    `arithmetic`, float32 by default)."""
    if isinstance(path, Path):
        return path
    if isinstance(path, str):
        if path not in PATHS:
            raise KeyError(f"unknown path {path!r}; built in: {', '.join(PATHS)}")
        return PATHS[path]
    if not callable(path):
        raise TypeError(f"a path is a Path, a built-in path's name or a callable, not {type(path).__name__}")
    try:
        positional = [p for p in inspect.signature(path).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes_example = len(positional) >= 2
    except (TypeError, ValueError):
        takes_example = False
    prepare = path if takes_example else (lambda module, example: path(module))
    return Path(name or getattr(path, "__name__", "custom"), prepare, arithmetic, "custom",
                description="a path given by the caller")


def planted_fault(path, module: str, relative: float = 1e-3, *, name: str | None = None) -> Path:
    """`path` with a planted fault, to show the check is not vacuous: before the path prepares
    the module, a forward hook multiplies the output of submodule `module` (a qualified name,
    "features.5.pw_conv.0") by 1 + `relative`. A prefix that does not contain the submodule
    (npconv.testing.prefix) runs unchanged, so localisation can find the faulty node."""
    base = as_path(path)

    def prepare(model, example):
        try:
            target = model.get_submodule(module)
        except AttributeError:
            target = None
        if target is not None:
            target.register_forward_hook(lambda m, args, out: out * (1 + relative))
        return base.prepare(model, example)

    return Path(name or f"{base.name}+fault({module}, {relative:g})", prepare, base.arithmetic, base.cost, base.requires,
                description=f"{base.name} with {module}'s output scaled by 1 + {relative:g}")
