"""The `npconv` command (also `python -m npconv`).

    npconv verify [MODEL]        npconv against PyTorch: outputs, MACs, parameters (the main job)
    npconv summary MODEL         the per-layer cost table (no PyTorch needed)
    npconv compare               standard vs depthwise-separable convolution, counted and timed
    npconv models                the model names and their default inputs

`npconv COMMAND --help` explains each. Errors are one line on stderr and a non-zero exit
status: 2 for a bad argument (or a run whose memory, estimated up front by npconv.memory,
exceeds the memory available: --no-memory-check overrides), 1 when a verification or formula
check fails, 3 for anything unexpected (set NPCONV_DEBUG=1 to see its traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import tables
from .tables import Col, Grid, escape, fmt_range, fmt_time, ratio_cell, timing_note

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
CLI_MEMORY_OVERRIDE = "to try anyway, pass --no-memory-check"


class UsageError(Exception):
    """A bad argument: reported as one line, exit status 2."""


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """A model the command can build: npconv's class (npconv.models), its PyTorch twin's
    class (npconv.twins), the default input, and which options apply."""

    name: str
    twin: str
    default_input: tuple
    description: str
    downsampling: int = 1       # the total stride: H and W must be at least this
    width: bool = False         # takes --width
    classes: bool = False       # takes --num-classes
    default_out: int | None = None  # blocks: the default --out-channels

    def arguments(self, channels: int, width: float | None, num_classes: int | None, out_channels: int | None):
        """(args, kwargs) for both npconv's and the twin's constructor."""
        if self.name in ("mobilenet_v1", "mobilenet_v2"):
            return (), {"width_mult": 1.0 if width is None else width,
                        "num_classes": 1000 if num_classes is None else num_classes}
        if self.name == "tiny_mobilenet":
            return (), {"num_classes": 10 if num_classes is None else num_classes}
        out = self.default_out if out_channels is None else out_channels
        if self.name == "depthwise_separable_conv":
            return (channels, out, 3), {"stride": 1, "padding": 1}
        if self.name == "mobilenet_block":
            return (channels, out), {"stride": 1}
        if self.name == "inverted_residual":
            return (channels, channels if out_channels is None else out_channels, 1), {"expand_ratio": 6}
        return (channels, out), {}  # hybrid_block


MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec("tiny_mobilenet", "TinyMobileNet", (1, 3, 224, 224),
                  "the tutorial's TinyMobileNet: stem + 5 MobileNetBlocks + pool + Linear(256, 10)",
                  downsampling=8, classes=True),
        ModelSpec("mobilenet_v1", "MobileNetV1", (1, 3, 224, 224),
                  "MobileNetV1 (Howard et al. 2017, Table 1), channels int(c * width)",
                  downsampling=32, width=True, classes=True),
        ModelSpec("mobilenet_v2", "MobileNetV2", (1, 3, 224, 224),
                  "MobileNetV2 (Sandler et al. 2018) with torchvision's layout and keys",
                  downsampling=32, width=True, classes=True),
        ModelSpec("depthwise_separable_conv", "DepthwiseSeparableConv", (1, 32, 112, 112),
                  "the tutorial's DepthwiseSeparableConv(C, 64, 3, padding=1), both convs with bias",
                  default_out=64),
        ModelSpec("mobilenet_block", "MobileNetBlock", (1, 32, 112, 112),
                  "the tutorial's MobileNetBlock(C, 64, stride=1): dw 3x3-BN-ReLU6, pw 1x1-BN-ReLU6",
                  default_out=64),
        ModelSpec("inverted_residual", "InvertedResidual", (1, 32, 56, 56),
                  "the tutorial's InvertedResidual(C, C, 1, expand_ratio=6), with its residual add",
                  default_out=None),
        ModelSpec("hybrid_block", "HybridBlock", (1, 32, 56, 56),
                  "the tutorial's HybridBlock(C, 64): conv s2, depthwise separable, conv-transpose s2",
                  downsampling=2, default_out=64),
    )
}


@dataclass
class Resolved:
    spec: ModelSpec
    input_shape: tuple
    args: tuple
    kwargs: dict

    def npconv_model(self):
        from . import models

        cls = getattr(models, self.spec.twin)
        if self.spec.name == "mobilenet_v2":
            return cls(self.kwargs["width_mult"], self.kwargs["num_classes"], rng=0)
        return cls(*self.args, **self.kwargs, rng=0)

    def twin(self, seed: int):
        from .oracle import twins

        calibration = (2,) + tuple(self.input_shape[1:])
        return twins.build(self.spec.twin, *self.args, seed=seed, calibration_shape=calibration, **self.kwargs)

    @property
    def label(self) -> str:
        extra = []
        if "width_mult" in self.kwargs:
            extra.append(f"width {self.kwargs['width_mult']:g}")
        if self.spec.name in ("mobilenet_v1", "mobilenet_v2", "tiny_mobilenet"):
            extra.append(f"{self.kwargs['num_classes']} classes")
        elif self.args:
            extra.append(f"{self.args[0]}→{self.args[1]} channels")
        return f"{self.spec.name} ({', '.join(extra)})" if extra else self.spec.name


def parse_shape(text: str) -> tuple:
    parts = text.replace("x", ",").replace("×", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 4 or any(s < 1 for s in shape):
        raise UsageError(f"--input must be N,C,H,W: four positive integers such as 1,3,224,224, got '{text}'")
    return shape


def resolve(name: str, input_text: str | None, width: float | None, num_classes: int | None,
            out_channels: int | None) -> Resolved:
    """Check the model options together and build a Resolved, or raise UsageError."""
    if name not in MODELS:
        raise UsageError(f"unknown model '{name}'; choose one of: {', '.join(MODELS)} (see: npconv models)")
    spec = MODELS[name]
    shape = spec.default_input if input_text is None else parse_shape(input_text)
    if width is not None:
        if not spec.width:
            raise UsageError(f"--width applies to mobilenet_v1 and mobilenet_v2, not {name}")
        if not (width > 0 and np.isfinite(width)):
            raise UsageError(f"--width must be a positive number, got {width:g}")
        if name == "mobilenet_v1" and int(32 * width) < 1:
            raise UsageError(f"--width {width:g} leaves mobilenet_v1's first layer int(32 * {width:g}) = 0 channels; "
                             f"use at least {1 / 32:g}")
    if num_classes is not None:
        if not spec.classes:
            raise UsageError(f"--num-classes applies to tiny_mobilenet, mobilenet_v1 and mobilenet_v2, not {name}")
        if num_classes < 1:
            raise UsageError(f"--num-classes must be at least 1, got {num_classes}")
    if out_channels is not None:
        if spec.classes:
            raise UsageError(f"--out-channels applies to the single blocks, not {name}")
        if out_channels < 1:
            raise UsageError(f"--out-channels must be at least 1, got {out_channels}")
    n, c, h, w = shape
    if spec.classes and c != 3:
        raise UsageError(f"{name} takes RGB images: --input needs C = 3, got {input_text}")
    if min(h, w) < spec.downsampling:
        raise UsageError(
            f"input {n}×{c}×{h}×{w} is too small for {name}: it downsamples by {spec.downsampling}, "
            f"so H and W must be at least {spec.downsampling}")
    args, kwargs = spec.arguments(c, width, num_classes, out_channels)
    return Resolved(spec, shape, args, kwargs)


def is_factory_spec(name: str) -> bool:
    """`package.module:factory` or `path/to/file.py:factory` (anything with a colon)."""
    return ":" in name


def load_factory(spec: str):
    """Call the factory named by `spec` with no arguments and return the nn.Module it
    builds, in eval mode. Raises UsageError saying what is wrong with the spec."""
    import importlib
    import importlib.util

    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise UsageError(f"a model spec is package.module:factory or path/to/file.py:factory, got '{spec}'")
    if where.endswith(".py") or os.sep in where:
        if not os.path.isfile(where):
            raise UsageError(f"no such file: {where} (from the model spec '{spec}')")
        module_name = "_npconv_user_" + os.path.splitext(os.path.basename(where))[0]
        loader_spec = importlib.util.spec_from_file_location(module_name, where)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as error:
            raise UsageError(f"cannot import '{where}' from the model spec '{spec}': {error}") from error
    factory = getattr(module, attribute, None)
    if factory is None:
        raise UsageError(f"'{where}' has no attribute '{attribute}' (from the model spec '{spec}')")
    if not callable(factory):
        raise UsageError(f"'{spec}' is not callable: it is a {type(factory).__name__}")
    import torch

    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"'{spec}' returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _factory_input(args) -> tuple:
    for flag in ("width", "num_classes", "out_channels"):
        if getattr(args, flag, None) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to the built-in models, not to a model spec "
                             f"'{args.model}' (its factory takes no arguments)")
    return DEFAULT_INPUT if args.input is None else parse_shape(args.input)


DEFAULT_INPUT = (1, 3, 224, 224)


# ----------------------------------------------------------------------------- output helpers


def _console(stderr: bool = False):
    """The output console: COLUMNS wide when set, else the terminal's width, else (a pipe or
    a file) unlimited (npconv.tables.make_console). Tables lay themselves out for that width."""
    try:
        return tables.make_console(stderr)
    except ImportError as error:
        raise UsageError("tables need the rich package: pip install 'npconv[cli]' (or use --json)") from error


class _Steps:
    """A rich spinner on stderr naming the current step (only on a terminal)."""

    def __init__(self, enabled: bool):
        self.progress = None
        self.task = None
        if enabled:
            try:
                from rich.console import Console
                from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            except ImportError:
                return
            console = Console(stderr=True)
            if console.is_terminal:
                self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                         console=console, transient=True)

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def __call__(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False


def _need_torch(command: str):
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise UsageError(f"npconv {command} compares against PyTorch, which is not installed: "
                         f"pip install 'npconv[torch]'") from error


def _seeded_input(shape: tuple, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _forward_times(times: dict, labels: dict) -> list:
    """(label, median, fastest, slowest) of each timed forward pass in `times` (a verify
    report's times), for timing_note; [] when not timed."""
    out = []
    for key, label in labels.items():
        if times.get(key) is not None:
            low, high = times[f"{key}_spread"]
            out.append((label, times[key], low, high))
    return out


# ----------------------------------------------------------------------------- verify


def _verdict(report) -> str:
    t = report.summary.total
    w32, w64 = report.worst(report.checks32), report.worst(report.checks64)
    steps = len(report.checks32)
    if report.ok:
        return (f"[bold green]✓ verified[/] {escape(report.name)}: all {steps} nodes agree with PyTorch within their "
                f"rounding bounds (worst {math.floor(w32.ratio * 100) / 100:.2f} of the bound in float32, "
                f"{math.floor(w64.ratio * 100) / 100:.2f} in float64; {sum(c.exact for c in report.checks32)} "
                f"exact ops bit for bit); "
                f"{t['macs']:,} MACs counted = formula = FlopCounterMode/2; {t['params']:,} parameters = "
                f"sum(numel)")
    return (f"[bold red]✗ NOT verified[/] {escape(report.name)}: {len(report.failures)} problem(s); first: "
            f"{escape(report.failures[0])}")


def _process_age() -> float | None:
    """Seconds since this process started: its start time in /proc/self/stat (clock ticks since
    boot, 10 ms on Linux) against CLOCK_BOOTTIME. None where either is missing (not Linux)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()  # the fields after "pid (comm)"
        ticks = int(fields[19])  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _steps_line(report) -> str:
    """One line of where verify's time went, part by part (npconv.graph.verify.TIME_PARTS)."""
    from .graph.verify import time_parts

    t, parts = report.times, time_parts(report.times)

    def s(seconds):
        return "—" if seconds is None else f"{seconds:.2f}"

    threads = ", one thread" if report.engine == "fast" else ""
    return (f"Seconds by step (one run each): import {s(parts['import'])} (Python, NumPy, Numba, npconv, torch; "
            f"of it Numba's start {s(t['numba_start'])}), build {s(t['build'])}, capture {s(parts['capture'])} "
            f"(torch.export), PyTorch {s(parts['torch'])} (nodes {s(t['torch_nodes'])}, FlopCounterMode "
            f"{s(t['flop_counter'])}, eager {s(t['torch_eager'])}), npconv {s(parts['npconv'])} (node checks "
            f"{s(t['checks'])}, counting {s(t['count'])}; {report.engine} engine{threads}).")


def _freeze_imports(args) -> None:
    """In the `npconv` program, once PyTorch and npconv are imported: move every object the
    process holds into the garbage collector's permanent generation (gc.freeze). They live
    until the process exits anyway, and each full collection during the run walked all of
    PyTorch's again, 0.1-0.2 s apiece, one or two in a verify: tiny_mobilenet's
    `npconv verify --no-timing` 2.75 -> 2.43 s after the imports (December 2026, two-core
    AMD EPYC). Not when main() is called from Python, whose objects are the caller's."""
    if getattr(args, "program", False):
        import gc

        gc.freeze()


def cmd_verify(args) -> int:
    from_spec = is_factory_spec(args.model)
    if from_spec:
        shape = _factory_input(args)
        if args.backward:
            raise UsageError("--backward applies to the built-in models, not to a model spec")
    else:
        resolved = resolve(args.model, args.input, args.width, args.num_classes, args.out_channels)
        shape = resolved.input_shape
        _check_memory(resolved, args)
    _need_torch("verify")
    _check_seed(args.seed)
    from .oracle.verify import verify_model

    _freeze_imports(args)
    imported, imported_cpu = _process_age(), time.process_time()
    with _Steps(not args.json) as step:
        start, start_cpu = time.perf_counter(), time.process_time()
        if from_spec:
            step(f"building {args.model}")
            model, label = load_factory(args.model), args.model
        else:
            step(f"building {resolved.label} in PyTorch with seeded weights")
            model, label = resolved.twin(args.seed), resolved.label
        x = _seeded_input(shape, args.seed)
        built, built_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        report = verify_model(model, x, name=label, progress=step, timing=not args.no_timing, engine=args.engine)
        report.times.update({"import": imported, "build": built})
        report.cpu_times.update({"import": imported_cpu, "build": built_cpu})
        backward = _backward_rows(resolved, args.seed, step, model) if args.backward else None
    if args.json:
        result = report.as_dict()
        if backward is not None:
            result["backward"] = [_backward_row_dict(r) for r in backward]
        print(json.dumps(result))
        return EXIT_OK if report.ok else EXIT_FAILED
    console = _console()
    console.print(tables.verify_grid(report, f"npconv verify {label}, input {'×'.join(map(str, shape))} float32, "
                                             f"seed {args.seed}"))
    e32, e64 = report.end_to_end["float32"], report.end_to_end["float64"]
    console.print(
        f"End to end (reported, not judged), max |y| = {e32['max_abs_y']:.4g}: PyTorch float32 vs npconv float64 "
        f"{e32['max_abs_error_torch_vs_npconv64']:.3g}, npconv float32 vs float64 "
        f"{e32['max_abs_error_npconv_vs_npconv64']:.3g}, PyTorch vs npconv in float32 "
        f"{e32['max_abs_error_torch32_vs_npconv32']:.3g}, in float64 {e64['max_abs_error_torch_vs_npconv64']:.3g}. "
        "A worst-case bound carried through a deep network is vacuous; the node checks above are the test.")
    console.print(escape(_steps_line(report)))
    times = report.times
    contenders = _forward_times(times, {"torch": "PyTorch", "reference": "npconv reference",
                                        "fast": "npconv fast"})
    if contenders:
        console.print(escape("One forward pass, median of 5 interleaved runs [fastest–slowest]: " + ", ".join(
            f"{label} {fmt_time(median)} [{fmt_range(low, high)}]"
            + (f" ({times['torch_threads']} threads)" if label == "PyTorch" else "")
            for label, median, low, high in contenders)) + "; " + timing_note(contenders))
    if backward is not None:
        _print_backward(console, backward, resolved)
    console.print(_verdict(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _check_memory(resolved, args) -> None:
    """Refuse, before building anything, a run whose memory estimated up front exceeds the
    memory available (npconv.memory); --no-memory-check turns this off. Counted: the model's
    arrays from a dry build of npconv's own class (as its constructor counts them: float32,
    the largest parameter once more in float64), and the input array. For `verify`, PyTorch's
    twin and npconv's copy of it in float32 and float64 (24 bytes a parameter more) and the
    input in float32 and float64 for each (24 bytes an element). For `summary`, the input in
    --dtype; --flop-counter adds PyTorch's twin (4 bytes a parameter), --backward a second
    model and its gradients (8). The activations are not estimated here: each op checks its
    own output before allocating it (npconv.memory.check_output)."""
    from . import memory, models

    if not memory.enabled():
        return
    size = memory.model_size(getattr(models, resolved.spec.twin), *resolved.args, **resolved.kwargs)
    elements = math.prod(resolved.input_shape)
    if args.command == "verify":
        needed = size.build_bytes() + size.params * 24 + elements * 24
        how = " in PyTorch's model and npconv's, each in float32 and float64, and the input in both"
    else:
        itemsize = 8 if getattr(args, "dtype", "float32") == "float64" else 4
        needed, how = size.build_bytes() + elements * itemsize, " and the input"
        if getattr(args, "flop_counter", False):
            needed += size.params * 4
        if getattr(args, "backward", False):
            needed += size.params * 8
    memory.check(needed, f"{resolved.label}, input {'×'.join(map(str, resolved.input_shape))}",
                 f"{size.params:,} parameters{how}")


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise UsageError(f"--seed must be an integer in [0, 2**32), got {seed}")


# ----------------------------------------------------------------------------- --backward


def _backward_rows(resolved, seed: int, step, twin=None):
    """npconv.cost_backward.backward_cost_table for the resolved model (FlopCounterMode columns when
    a PyTorch twin is given)."""
    from .cost.backward import backward_cost_table

    step(f"counting a training step's backward of {resolved.label}" + (" beside FlopCounterMode" if twin else ""))
    return backward_cost_table(resolved.npconv_model(), resolved.input_shape, torch_model=twin, seed=seed)


def _backward_row_dict(row) -> dict:
    return {"layer": row.layer, "type": row.kind, "forward_macs": row.forward, "grad_input_macs": row.grad_input,
            "grad_weight_macs": row.grad_weight, "flop_counter_forward_macs": row.fcm_forward,
            "flop_counter_grad_input_macs": row.fcm_grad_input,
            "flop_counter_grad_weight_macs": row.fcm_grad_weight,
            "flop_counter_factor": dict(row.factors)}


def _print_backward(console, rows, resolved) -> None:
    """Counted backward MACs per layer, FlopCounterMode / 2 beside them, each disagreement
    flagged with its factor (FlopCounterMode / counted)."""
    with_fcm = any(r.fcm_forward is not None for r in rows)
    grid, disagreements = tables.backward_grid(
        rows, f"backward MACs of one training step, {resolved.label} (counted by npconv's loops"
        + ("; FlopCounterMode FLOPs / 2 beside them)" if with_fcm else ")"))
    console.print(grid)
    total = rows[-1]
    step = total.forward + (total.grad_input or 0) + total.grad_weight
    console.print(f"A training step counts {step:,} MACs: {step / total.forward:.3g}× the forward "
                  f"(the first layer needs no input gradient).")
    if disagreements:
        console.print(f"[bold red]FlopCounterMode disagrees on {len(disagreements)} layer(s)[/]: "
                      + escape("; ".join(disagreements))
                      + ". On torch 2.13 it charges a grouped convolution's weight gradient `groups` times "
                        "(docs/backward.md); npconv's figure is what its loops executed.")
    elif with_fcm:
        console.print("FlopCounterMode agrees with the counted backward MACs on every layer.")


# ----------------------------------------------------------------------------- summary


def _spec_summary(args):
    """summary of a model spec: captured with torch.export, counted on npconv's kernels."""
    if args.backward:
        raise UsageError("--backward applies to the built-in models, not to a model spec")
    shape = _factory_input(args)
    _need_torch("summary of a model spec")
    from .graph import capture
    from .cost.summary import graph_summary

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    with _Steps(not (args.json or args.markdown)) as step:
        step(f"building {args.model}")
        model = load_factory(args.model)
        x = np.zeros(shape, dtype=np.float32)
        step("capturing it with torch.export")
        graph = capture(model, x, name=args.model)
        if dtype == np.float64:
            graph = graph.astype(np.float64)
        step(f"counting a forward pass of {'×'.join(map(str, shape))} on the reference kernels")
        result = graph_summary(graph, x.astype(dtype), torch_model=model if args.flop_counter else None)
        counters = _counters(args, step, model, x, graph.astype(np.float32), args.model) if args.counters else None
        return result, args.model, counters


def cmd_summary(args) -> int:
    if is_factory_spec(args.model):
        result, label, counters = _spec_summary(args)
        backward, resolved = None, None
        return _print_summary(args, result, label, backward, resolved, counters)
    resolved = resolve(args.model, args.input, args.width, args.num_classes, args.out_channels)
    _check_memory(resolved, args)
    from .cost.summary import summary

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    twin = None
    with _Steps(not (args.json or args.markdown)) as step:
        step(f"building {resolved.label}")
        model = resolved.npconv_model()
        if args.flop_counter:
            _need_torch("summary --flop-counter")
            twin = resolved.twin(0)
        step(f"counting a forward pass of {'×'.join(map(str, resolved.input_shape))} on the reference kernels")
        result = summary(model, resolved.input_shape, dtype=dtype, torch_model=twin, name=resolved.label)
        backward = _backward_rows(resolved, 0, step, twin) if args.backward else None
        counters = _builtin_counters(args, step, resolved, model, twin) if args.counters else None
    return _print_summary(args, result, resolved.label, backward, resolved, counters)


# ----------------------------------------------------------------------------- summary --counters


def _counters(args, step, torch_model, x, graph, label, npconv_model=None, resolved=None):
    """(forward report, training-step report or None) of npconv.counters: each counter's
    convention over npconv's counts beside the counter's own figure (docs/counters.md)."""
    from .counters import explain, explain_training_step

    step("predicting each FLOP counter from npconv's counts and running the installed counters")
    forward = explain(torch_model, x, graph=graph, name=label)
    training = None
    if args.backward and npconv_model is not None:
        step("FlopCounterMode over a training step, and npconv's counted backward")
        training = explain_training_step(npconv_model, torch_model, resolved.input_shape, name=label)
    return forward, training


def _builtin_counters(args, step, resolved, model, twin):
    """--counters for a built-in model: its PyTorch twin captured with torch.export."""
    _need_torch("summary --counters")
    from .graph import capture

    twin = resolved.twin(0) if twin is None else twin
    x = np.zeros(resolved.input_shape, dtype=np.float32)
    step("capturing the PyTorch twin with torch.export")
    graph = capture(twin, x, name=resolved.label)
    return _counters(args, step, twin, x, graph, resolved.label, model, resolved)


def _print_counters(console, counters) -> None:
    from .counters.report import counters_grid, counters_notes

    forward, training = counters
    shape = "×".join(map(str, forward.input_shape))
    reports = [(forward, f"FLOP counters on {forward.model}, input {shape}: predicted from each counter's "
                         f"convention, beside what it reports")]
    if training is not None:
        reports.append((training, f"a training step of {training.model}, input {shape}: the counters that count "
                                  f"backward"))
    for report, title in reports:
        console.print(counters_grid(report, title))
        for line in counters_notes(report):
            console.print(line)


def _print_summary(args, result, label: str, backward, resolved, counters=None) -> int:
    if args.json:
        out = result.as_dict()
        if backward is not None:
            out["backward"] = [_backward_row_dict(r) for r in backward]
        if counters is not None:
            out["counters"] = counters[0].as_dict()
            if counters[1] is not None:
                out["counters_training_step"] = counters[1].as_dict()
        print(json.dumps(out))
    elif args.markdown:
        print(result.to_markdown(), end="")
        if counters is not None:
            from .counters.report import counters_markdown

            print("\n" + "\n\n".join(counters_markdown(r) for r in counters if r is not None))
    else:
        console = _console()
        shape = "×".join(map(str, result.input_shape))
        console.print(tables.summary_grid(result, f"{label}, input {shape} {args.dtype}"))
        t = result.total
        other = ", ".join(f"{kind} {n:,}" for kind, n in t["other"].items())
        console.print(
            f"Total: [bold]{t['params']:,}[/] parameters ({t['weight_params']:,} weights, {t['bias_params']:,} "
            f"bias, {t['bn_params']:,} BatchNorm); [bold]{t['macs']:,}[/] MACs = {t['flops']:,} FLOPs "
            f"({t['padding_macs']:,} of them on padding); bias adds {t['bias_adds']:,}"
            + (f", {other}" if other else "") + f"; at least {t['bytes']:,} bytes moved.")
        console.print("[dim]MACs: conv, transposed conv and linear multiply-accumulates over the padded input; "
                      "FLOPs = 2·MACs; bias, BatchNorm, activations, pooling and residual adds apart; "
                      "params include biases and BatchNorm weight/bias, not running statistics. "
                      "npconv summary --json has every column and the full conventions.[/]")
        for line in result.mismatches:
            console.print(f"[bold red]FORMULA MISMATCH[/] {escape(line)}")
        for line in result.disagreements:
            console.print(f"[bold red]PyTorch disagrees[/] {escape(line)}")
        if backward is not None:
            _print_backward(console, backward, resolved)
        if counters is not None:
            _print_counters(console, counters)
    if result.mismatches or result.disagreements:
        print(f"npconv summary: error: {len(result.mismatches)} formula mismatch(es), "
              f"{len(result.disagreements)} disagreement(s) with PyTorch; first: "
              f"{(result.mismatches + result.disagreements)[0]}", file=sys.stderr)
        return EXIT_FAILED
    wrong = [row for report in (counters or ()) if report is not None for row in report.mismatches]
    if wrong:
        print(f"npconv summary: error: {len(wrong)} counter(s) report other than npconv predicts from their "
              f"conventions; first: {wrong[0].label}: predicted {wrong[0].predicted:,}, reported "
              f"{wrong[0].reported:,}" + (f" ({wrong[0].differences[0]})" if wrong[0].differences else ""),
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- compare


def _compare_side(report, macs_formula: int, params_formula: int) -> dict:
    t = report.summary.total
    w32, w64 = report.worst(report.checks32), report.worst(report.checks64)
    return {
        "params": t["params"],
        "formula_params": params_formula,
        "torch_params": t["torch_params"],
        "macs": t["macs"],
        "formula_macs": macs_formula,
        "flop_counter_macs": t["flop_counter_macs"],
        "padding_macs": t["padding_macs"],
        "bias_adds": t["bias_adds"],
        "torch_agreement": {"float32_error_over_bound": w32.ratio, "float64_error_over_bound": w64.ratio,
                            "max_abs_error_float32": w32.max_error},
        "times_s": {k: v for k, v in report.times.items() if k != "torch_threads"},
        "ok": report.ok,
        "failures": report.failures,
    }


def _check_compare_memory(args) -> None:
    """compare's up-front estimate (npconv.memory), as `npconv verify` counts it (see
    _check_memory), for the larger of its two layers -- Conv2d and DepthwiseSeparableConv,
    each dry-built from npconv's own class -- which are verified one after the other."""
    from . import memory
    from .models import DepthwiseSeparableConv
    from .nn import Conv2d

    c_in, c_out, k, n, size = args.in_channels, args.out_channels, args.kernel, args.batch, args.size
    sizes = [memory.model_size(cls, c_in, c_out, k, 1, k // 2) for cls in (Conv2d, DepthwiseSeparableConv)]
    largest = max(sizes, key=lambda s: s.build_bytes())
    needed = largest.build_bytes() + largest.params * 24 + n * c_in * size * size * 24
    memory.check(needed, f"npconv compare on {n}×{c_in}×{size}×{size}",
                 f"{largest.params:,} parameters in PyTorch's layer and npconv's, each in float32 and float64, "
                 "and the input in both")


def cmd_compare(args) -> int:
    for flag, value, low in (("--in", args.in_channels, 1), ("--out", args.out_channels, 1),
                             ("--kernel", args.kernel, 1), ("--size", args.size, 1), ("--batch", args.batch, 1)):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")
    _check_compare_memory(args)
    _need_torch("compare")
    _check_seed(args.seed)
    import torch

    from .cost import formulas
    from .oracle import twins
    from .oracle.verify import verify_model

    _freeze_imports(args)

    c_in, c_out, k, size, batch = args.in_channels, args.out_channels, args.kernel, args.size, args.batch
    pad = k // 2
    x = _seeded_input((batch, c_in, size, size), args.seed)
    with _Steps(not args.json) as step:
        step("building the two layers in PyTorch with seeded weights")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            standard = torch.nn.Conv2d(c_in, c_out, k, padding=pad).eval()
        separable = twins.build("DepthwiseSeparableConv", c_in, c_out, k, padding=pad, seed=args.seed)
        reports = {}
        for key, model in (("standard", standard), ("separable", separable)):
            reports[key] = verify_model(model, x, name=key, progress=lambda d, key=key: step(f"{key}: {d}"),
                                        timing=not args.no_timing)
    out_size = size + 2 * pad - k + 1
    ratio_formula = formulas.separable_to_standard_ratio(c_out, k)
    result = {
        "config": {"in": c_in, "out": c_out, "kernel": k, "size": size, "batch": batch, "padding": pad,
                   "bias": True, "output_size": out_size, "seed": args.seed},
        "standard": _compare_side(reports["standard"],
                                  formulas.standard_conv_macs(batch, c_in, c_out, out_size, k),
                                  formulas.conv2d_params(c_in, c_out, k)),
        "separable": _compare_side(reports["separable"],
                                   formulas.depthwise_separable_macs(batch, c_in, c_out, out_size, k),
                                   formulas.depthwise_separable_params(c_in, c_out, k)),
    }
    std, sep = result["standard"], result["separable"]
    result["ratio"] = {
        "macs_counted": sep["macs"] / std["macs"],
        "macs_formula_1_over_N_plus_1_over_K2": ratio_formula,
        "params_counted": sep["params"] / std["params"],
        "params_without_bias": (c_in * k * k + c_out * c_in) / (c_out * c_in * k * k),
    }
    failures = []
    for key in ("standard", "separable"):
        side = result[key]
        if side["macs"] != side["formula_macs"]:
            failures.append(f"{key}: counted {side['macs']:,} MACs != formula {side['formula_macs']:,}")
        if side["params"] != side["formula_params"]:
            failures.append(f"{key}: {side['params']:,} parameters != formula {side['formula_params']:,}")
        failures += [f"{key}: {line}" for line in side["failures"]]
    if abs(result["ratio"]["macs_counted"] - ratio_formula) > 1e-12 * ratio_formula:
        failures.append(f"MACs ratio {result['ratio']['macs_counted']:.6g} != 1/N + 1/K² = {ratio_formula:.6g}")
    result["ok"] = not failures
    result["failures"] = failures
    if args.json:
        print(json.dumps(result))
        return EXIT_OK if not failures else EXIT_FAILED

    console = _console()
    grid = Grid([Col("", "text", "left"), Col("standard Conv2d"), Col("depthwise separable"),
                 Col("separable / standard", "long", "right")],
                title=f"{c_in}→{c_out}, {k}×{k} kernel, padding {pad}, input {batch}×{c_in}×{size}×{size}, "
                      f"both with bias")

    def same(a, b):
        return "[green]=[/]" if a == b else f"[bold red]{b:,}[/]"

    grid.add_row("parameters (counted)", f"{std['params']:,}", f"{sep['params']:,}",
                 f"{result['ratio']['params_counted']:.4f}")
    grid.add_row("  formula / sum(numel)", f"{same(std['params'], std['formula_params'])} / "
                 f"{same(std['params'], std['torch_params'])}",
                 f"{same(sep['params'], sep['formula_params'])} / {same(sep['params'], sep['torch_params'])}",
                 f"{result['ratio']['params_without_bias']:.4f} without biases")
    grid.add_row("MACs (counted)", f"{std['macs']:,}", f"{sep['macs']:,}", f"{result['ratio']['macs_counted']:.6f}")
    grid.add_row("  formula / FlopCounterMode÷2", f"{same(std['macs'], std['formula_macs'])} / "
                 f"{same(std['macs'], std['flop_counter_macs'])}",
                 f"{same(sep['macs'], sep['formula_macs'])} / {same(sep['macs'], sep['flop_counter_macs'])}",
                 f"1/{c_out} + 1/{k * k} = {ratio_formula:.6f}")
    grid.add_row("  of which on padding", f"{std['padding_macs']:,}", f"{sep['padding_macs']:,}", "")
    grid.add_row("agrees with PyTorch (err/bound, f32 · f64)",
                 f"{ratio_cell(std['torch_agreement']['float32_error_over_bound'])} · "
                 f"{ratio_cell(std['torch_agreement']['float64_error_over_bound'])}",
                 f"{ratio_cell(sep['torch_agreement']['float32_error_over_bound'])} · "
                 f"{ratio_cell(sep['torch_agreement']['float64_error_over_bound'])}", "")
    engines = {"torch": "PyTorch", "reference": "npconv reference", "fast": "npconv fast"}
    timed = {key: _forward_times(reports[key].times, engines) for key in ("standard", "separable")}
    for engine, label in engines.items():
        a, b = std["times_s"].get(engine), sep["times_s"].get(engine)
        if a is None or b is None:  # --no-timing
            continue
        (a_low, a_high), (b_low, b_high) = std["times_s"][f"{engine}_spread"], sep["times_s"][f"{engine}_spread"]
        if max(tables.spread_ratio(a_low, a_high), tables.spread_ratio(b_low, b_high)) > tables.NOISE_RATIO:
            ratio = "[yellow]noisy[/]"
        elif a_low <= b_high and b_low <= a_high:
            ratio = f"{b / a:.3f} (ranges overlap)"
        else:
            ratio = f"{b / a:.3f}"
        grid.add_row(f"time, {label}", fmt_time(a), fmt_time(b), ratio)
        grid.add_row("  fastest–slowest run", fmt_range(a_low, a_high), fmt_range(b_low, b_high), "")
    console.print(grid)
    if timed["standard"]:
        console.print("[dim]Times: one forward pass, the median of 5 runs interleaved across the three engines, "
                      "and the fastest and slowest of them. A ratio or ranking is printed only where every run "
                      f"is within {tables.NOISE_RATIO:g}× of its fastest.[/]")
        for key, name in (("standard", "Standard Conv2d"), ("separable", "Depthwise separable")):
            console.print(f"{name}: {timing_note(timed[key])}")
    console.print("[dim]MACs count every tap over the padded input, so the ratio is exactly 1/N + 1/K² "
                  "(Howard et al. 2017, eq. 5).[/]")
    if failures:
        console.print(f"[bold red]✗ {len(failures)} problem(s)[/]; first: {escape(failures[0])}")
        return EXIT_FAILED
    console.print(f"[bold green]✓[/] counted = formula = FlopCounterMode/2 = sum(numel) for both layers; both "
                  f"agree with PyTorch within their rounding bounds; separable costs "
                  f"{result['ratio']['macs_counted']:.4f}× the MACs.")
    return EXIT_OK


# ----------------------------------------------------------------------------- models


def cmd_models(args) -> int:
    if args.json:
        print(json.dumps({name: {"default_input": list(spec.default_input), "description": spec.description,
                                 "width": spec.width, "num_classes": spec.classes,
                                 "min_size": spec.downsampling} for name, spec in MODELS.items()}))
        return EXIT_OK
    console = _console()  # first: without rich, the install hint
    grid = Grid([Col("MODEL", "name", "left"), Col("default --input", "text", "left"), Col("options", "text", "left"),
                 Col("what it is", "long", "left")])
    for name, spec in MODELS.items():
        options = ", ".join(o for o, on in (("--width", spec.width), ("--num-classes", spec.classes),
                                            ("--out-channels", not spec.classes)) if on)
        grid.add_row(name, ",".join(map(str, spec.default_input)), options, escape(spec.description))
    console.print(grid)
    console.print("Or any model of your own: package.module:factory or path/to/file.py:factory "
                  "(npconv verify --help).")
    return EXIT_OK


# ----------------------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line (and a pointer to --help) instead of usage + error."""

    def error(self, message):
        raise UsageError(f"{message} (see: {self.prog} --help)")


_MODEL_HELP = "\n".join(f"  {name:<26}{spec.description}" for name, spec in MODELS.items())

_DESCRIPTION = """\
npconv: 2-D convolution and MobileNet from first principles, checked against PyTorch.

Start here:
  npconv verify                       the tutorial's TinyMobileNet: npconv vs PyTorch, layer by layer
  npconv summary mobilenet_v1         the per-layer cost table (MACs, parameters, bytes)
  npconv compare                      standard vs depthwise-separable convolution

Conventions: MACs are the multiply-accumulates of conv, transposed conv and linear layers as
npconv's kernels execute them (padding taps included); FLOPs = 2·MACs; parameters are every
parameter element (biases and BatchNorm weight/bias included). Exit status: 0 all agree,
1 a check failed, 2 a bad argument or a run that would not fit in memory (estimated
before anything is built; --no-memory-check overrides), 3 an internal error.

Output width: COLUMNS when set (on a terminal or not), else the terminal's width, else (a
pipe or a file) unlimited: tables as wide as their content, each sentence on one line. A
table that does not fit prints one block per row instead: the name on its own line with its
type and shape, the numbers aligned below under a header printed once. No name or number is
ever wrapped, folded or cut.

Timings: one forward pass, the median of 5 interleaved runs, printed with the fastest and
slowest run. When any contender's slowest run took more than 1.5x its fastest, the command
says "timing is noisy here" and ranks nothing; otherwise it gives each median relative to the
fastest (and says so when two contenders' ranges overlap).
"""


def _add_model_options(p, model_required: bool):
    spec = ("a built-in model name (see below), or your own model: package.module:factory or "
            "path/to/file.py:factory, a callable that returns a torch.nn.Module (called with no arguments, "
            "put in eval mode, captured with torch.export)")
    if model_required:
        p.add_argument("model", metavar="MODEL", help=spec)
    else:
        p.add_argument("model", metavar="MODEL", nargs="?", default="tiny_mobilenet",
                       help=spec + "; default tiny_mobilenet")
    p.add_argument("--input", metavar="N,C,H,W",
                   help="input shape; default per built-in model (see: npconv models), 1,3,224,224 for a model spec")
    p.add_argument("--width", type=float, metavar="ALPHA",
                   help="width multiplier of mobilenet_v1/v2 (default 1.0; the papers use 1.0, 0.75, 0.5, 0.25)")
    p.add_argument("--num-classes", type=int, metavar="K",
                   help="classifier outputs (default 1000; tiny_mobilenet 10)")
    p.add_argument("--out-channels", type=int, metavar="C",
                   help="output channels of a single block (default 64; inverted_residual: C of --input)")
    _add_memory_option(p)


def _add_memory_option(p):
    p.add_argument("--no-memory-check", action="store_true",
                   help="run even when the memory estimated up front exceeds the memory available (without "
                        "it, such a run is refused before anything is allocated, exit status 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="npconv", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"npconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "verify", help="npconv vs PyTorch on one model: outputs, MACs, parameters (the main job)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Build MODEL in PyTorch (a built-in one with seeded weights and BatchNorm statistics, or
your own from package.module:factory / path/to/file.py:factory), capture it with
torch.export, run it on one seeded float32 input, and check:

  * every node of the captured graph: PyTorch's output (float32, and again float64) lies
    within that node's rounding bound of npconv's float64 result on PyTorch's own input to
    the node; exact ops (views, cat, relu, clamp, max-pool) match bit for bit -- a rigorous
    bound per node, no tolerance tuned (docs/cli.md); npconv's side runs on its fast engine
    (--engine reference: the readable loop nests; the verdicts are the same);
  * counted MACs == closed-form formula == FlopCounterMode / 2, per module and in total;
  * parameters == sum(p.numel()) of the PyTorch model, per module and in total.

It prints the per-layer table, the end-to-end differences, where the command's time went
(import, build, capture, PyTorch's runs, npconv's work), the time of one forward pass in
PyTorch and on each npconv engine (median of 5 interleaved runs, with the fastest and slowest;
see npconv --help on noisy timings), and a verdict. Exit status 0 only when everything
agrees.""",
        epilog="models:\n" + _MODEL_HELP + "\n\nexamples:\n  npconv verify mobilenet_v2 --width 0.5 --input 1,3,96,96\n"
               "  npconv verify pytorchcv.models.mobilenetv3:mobilenetv3_large_w1\n"
               "  npconv verify my_models.py:build --input 1,3,64,64")
    _add_model_options(p, model_required=False)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the input (default 0)")
    p.add_argument("--no-timing", action="store_true", help="skip timing the forward passes")
    p.add_argument("--engine", choices=("fast", "reference"), default="fast",
                   help="npconv engine of npconv's side: the float64 evaluation and bound of every node, the "
                        "counted run and the end-to-end float64 run (default fast, on one thread; reference: "
                        "the readable loop nests, slower; the verdicts are the same)")
    p.add_argument("--backward", action="store_true",
                   help="also count a training step's backward MACs per layer (grad_input, grad_weight) and put "
                        "FlopCounterMode's figures beside them, each disagreement flagged with its factor")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "summary", help="per-layer cost table: params, MACs (counted and formula), other ops, bytes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Count one forward pass of MODEL on npconv's reference kernels and print, per layer: output
shape, parameters (weights / bias / BatchNorm), counted MACs and the formula's, padding MACs,
other operations by kind (bias adds, BatchNorm scale/shift, activation comparisons, pooling,
residual adds), the minimum bytes moved and MACs per byte. Exits 1 if any counted figure
differs from its formula. No PyTorch needed (except for --flop-counter and --counters).""",
        epilog="models:\n" + _MODEL_HELP + "\n\nexamples:\n  npconv summary mobilenet_v1 --width 0.5\n"
               "  npconv summary mobilenet_v2 --input 1,3,160,160 --json")
    _add_model_options(p, model_required=True)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the forward pass (sets the bytes columns); default float32")
    p.add_argument("--flop-counter", action="store_true",
                   help="add PyTorch's FlopCounterMode / 2 per layer (builds the PyTorch twin)")
    p.add_argument("--backward", action="store_true",
                   help="also count a training step's backward MACs per layer (with --flop-counter: beside "
                        "FlopCounterMode's, disagreements flagged)")
    p.add_argument("--counters", action="store_true",
                   help="also each FLOP counter's total (FlopCounterMode, fvcore, thop, ptflops pytorch and aten "
                        "backends, torchinfo), predicted from its convention over npconv's counts, beside what it "
                        "reports when installed, the first layers where they differ, and its departures; with "
                        "--backward, FlopCounterMode over a training step too (docs/counters.md)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help='print one JSON object: {"total": {"params", "macs", ...}, "layers": [...], ...}')
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "compare", help="standard vs depthwise-separable convolution: params, MACs, agreement, time",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
The tutorial's comparison: a standard K×K convolution C_IN -> C_OUT against the
depthwise-separable replacement (depthwise K×K on C_IN, then pointwise 1×1 to C_OUT), both
with bias and padding K//2. Prints parameters and MACs (counted, by formula and by
FlopCounterMode), the MACs ratio against 1/C_OUT + 1/K², agreement of both with PyTorch,
and the time of one forward pass in PyTorch and on each npconv engine (median of 5
interleaved runs, with the fastest and slowest; a ratio only where the timing is not
noisy, see npconv --help).""",
        epilog="example: npconv compare --in 32 --out 64 --size 128 --batch 4")
    p.add_argument("--in", dest="in_channels", type=int, default=3, metavar="C_IN", help="input channels (3)")
    p.add_argument("--out", dest="out_channels", type=int, default=64, metavar="C_OUT", help="output channels (64)")
    p.add_argument("--kernel", type=int, default=3, metavar="K", help="kernel size (3)")
    p.add_argument("--size", type=int, default=224, metavar="H", help="input height and width (224)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the input (default 0)")
    p.add_argument("--no-timing", action="store_true", help="skip timing the forward passes")
    p.add_argument("--json", action="store_true", help='print one JSON object: {"standard": {...}, "separable": ...}')
    _add_memory_option(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("models", help="the model names, their default inputs and options")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv=None) -> int:
    """Entry point of the `npconv` console script; returns the exit status."""
    parser = build_parser()
    prog = "npconv"
    try:
        args = parser.parse_args(argv)
        args.program = argv is None   # the `npconv` program itself, not main([...]) called from Python
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        prog = f"npconv {args.command}"
        from . import memory

        with memory.unchecked() if getattr(args, "no_memory_check", False) else contextlib.nullcontext():
            return args.func(args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as error:  # npconv.memory's estimate, before allocating: exit 2 naming the override
        from .memory import InsufficientMemoryError

        if os.environ.get("NPCONV_DEBUG"):
            raise
        if isinstance(error, InsufficientMemoryError):
            print(f"{prog}: error: {error.message(CLI_MEMORY_OVERRIDE)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{prog}: internal error: MemoryError: {str(error).splitlines()[0] if str(error) else ''} "
              f"(out of memory; NPCONV_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, NotImplementedError) as error:  # a model, kernel or capture refusing it
        if os.environ.get("NPCONV_DEBUG"):
            raise
        print(f"{prog}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - one line, never a traceback (NPCONV_DEBUG=1 shows it)
        if os.environ.get("NPCONV_DEBUG"):
            raise
        text = str(error).splitlines()[0] if str(error) else ""
        print(f"{prog}: internal error: {type(error).__name__}: {text} (NPCONV_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
