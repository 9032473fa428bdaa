"""Running the installed counters themselves: what each reports (`REPORTERS`, `reported`).

    r = reported("thop", torch_model, x)        # None when thop is not installed
    r.total, r.by_module["features.0"]          # the counter's total; per module, children included

Each reporter calls the counter's public entry point on a copy of the model (thop, ptflops
and torchinfo attach hooks, buffers or attributes to it; ptflops' aten backend never removes
its hooks) with the same input shape, and reads its own per-module figures:

    FlopCounterMode   get_total_flops(); get_flop_counts() per module ("Root.path" keys)
    fvcore            FlopCountAnalysis.total(); by_module()
    thop              profile(..., ret_layer_info=True): total and the nested per-child dict
    ptflops pytorch   get_model_complexity_info(backend="pytorch", as_strings=False) for the
                      total; per module from a second run of the same engine's own pieces
                      (start_flops_count, patch_functional, patch_tensor_ops), the patched
                      functions' counts attributed to the module running when each was called
    ptflops aten      get_model_complexity_info(backend="aten", flops_units="Mac") for the
                      total; its per-layer printout (exact integers in "Mac") per top-level child
    torchinfo         summary(...).total_mult_adds; each leaf layer's LayerInfo.macs

ptflops beside this torch: its pytorch_ops.py does `try: import torchvision.ops except
ImportError`, but the torchvision wheel the pytorchcv dependency pulls in (0.28) fails to
load beside the CPU torch with a RuntimeError ("operator torchvision::nms does not
exist"), which that `except` does not catch. `import_ptflops()` therefore imports ptflops
with torchvision blocked (sys.modules["torchvision"] = None makes the import raise
ImportError), and restores sys.modules afterwards. All ptflops loses is its
torchvision.ops.DeformConv2d rule, which no model npconv runs uses. calflops is not used:
it pulls in accelerate and huggingface-hub.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import re
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["REPORTERS", "Reported", "import_ptflops", "installed", "reported"]


@dataclass
class Reported:
    """A counter's own figures: `total` (as it returns it), `by_module` (path -> its figure
    for the module, children included; "" the model) and the paths it reports at all."""

    total: int | float
    by_module: dict = field(default_factory=dict)


_MISSING = object()


def import_ptflops():
    """ptflops, imported with torchvision blocked (module docstring)."""
    if "ptflops" in sys.modules:
        return sys.modules["ptflops"]
    saved = sys.modules.get("torchvision", _MISSING)
    if saved is _MISSING:
        sys.modules["torchvision"] = None  # `import torchvision.ops` raises ImportError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ptflops
            import ptflops.pytorch_engine  # noqa: F401
    finally:
        if saved is _MISSING:
            sys.modules.pop("torchvision", None)
    return ptflops


def installed(package: str) -> bool:
    """Whether `package` can be imported (not importing it)."""
    return importlib.util.find_spec(package) is not None


def _tensor(x):
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


@contextlib.contextmanager
def _quiet():
    """Silence the counters' prints, warnings and log lines."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _named(model) -> dict:
    return dict(model.named_modules())


# ----------------------------------------------------------------------------- FlopCounterMode


def _flop_counter(model, x) -> Reported:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(_tensor(x))
    return Reported(int(counter.get_total_flops()), _flop_counter_modules(counter, model))


def _flop_counter_modules(counter, model) -> dict:
    """Per module path, children included, from get_flop_counts(): keyed by the root's class
    name and the module path after it (torch 2.13)."""
    root = type(model).__name__
    by_module = {path: 0 for path in _named(model)}
    for key, by_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        path = "" if key == root else key[len(root) + 1:] if key.startswith(root + ".") else None
        if path is not None:
            by_module[path] = int(sum(by_op.values()))
    by_module[""] = int(counter.get_total_flops())
    return by_module


def flop_counter_training_step(model, x, grad_output) -> Reported:
    """FlopCounterMode over one training step of `model` (train mode): the forward and the
    backward of L = sum(output * grad_output)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        (model(_tensor(x)) * _tensor(grad_output)).sum().backward()
    return Reported(int(counter.get_total_flops()), _flop_counter_modules(counter, model))


# ----------------------------------------------------------------------------- fvcore


def _fvcore(model, x) -> Reported:
    with _quiet():
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, (_tensor(x),))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        total = analysis.total()
        by_module = {path: int(v) for path, v in analysis.by_module().items()}
    return Reported(int(total), by_module)


# ----------------------------------------------------------------------------- thop


def _thop(model, x) -> Reported:
    model = copy.deepcopy(model)
    with _quiet():  # thop's import warns (distutils' LooseVersion)
        from thop import profile

        total, _params, layers = profile(model, inputs=(_tensor(x),), verbose=False, ret_layer_info=True)
    by_module = {"": total}

    def walk(prefix, children):
        for name, (ops, _p, grandchildren) in children.items():
            path = f"{prefix}.{name}" if prefix else name
            by_module[path] = ops
            walk(path, grandchildren)

    walk("", layers)
    return Reported(_int(total), {k: _int(v) for k, v in by_module.items()})


def _int(value):
    value = float(value)
    return int(value) if value.is_integer() else value


# ----------------------------------------------------------------------------- ptflops


def _ptflops_pytorch(model, x) -> Reported:
    ptflops = import_ptflops()
    t = _tensor(x)
    with _quiet():
        total, _params = ptflops.get_model_complexity_info(
            copy.deepcopy(model), tuple(t.shape[1:]), input_constructor=lambda _: t, as_strings=False,
            print_per_layer_stat=False, verbose=False, backend="pytorch")
    if total is None:
        raise RuntimeError("ptflops (pytorch) failed on this model (it printed the exception and returned None)")
    return Reported(int(total), _ptflops_pytorch_modules(copy.deepcopy(model), t))


class _Attributed(list):
    """The list ptflops' patched functions append their counts to, recording for each the
    module running when it was called."""

    def __init__(self, scope):
        super().__init__()
        self.scope = scope
        self.where = []

    def append(self, flops):
        super().append(flops)
        self.where.append((self.scope[-1] if self.scope else "", int(flops)))


def _ptflops_pytorch_modules(model, t) -> dict:
    """Per module, children included: each module's own hook count (__flops__, per batch)
    plus the patched functions' counts made inside it."""
    import_ptflops()
    from ptflops import pytorch_engine as engine

    scope: list = []
    handles = []

    def enter(path):
        def hook(module, args):
            scope.append(path)
        return hook

    def leave(module, args, output):
        scope.pop()

    for path, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(path)))
        handles.append(module.register_forward_hook(leave))
    functional, tensor_ops = _Attributed(scope), _Attributed(scope)
    flops_model = engine.add_flops_counting_methods(model)
    flops_model.eval()
    with _quiet():
        flops_model.start_flops_count(ost=sys.stdout, verbose=False, ignore_list=[])
        engine.patch_functional(functional)
        engine.patch_tensor_ops(tensor_ops)
        try:
            import torch

            with torch.no_grad():
                flops_model(t)
            own = {path: int(getattr(m, "__flops__", 0)) for path, m in model.named_modules()
                   if engine.is_supported_instance(m)}
        finally:
            flops_model.stop_flops_count()
            engine.unpatch_functional()
            engine.unpatch_tensor_ops()
            for handle in handles:
                handle.remove()
    own = dict(own)
    for path, flops in functional.where + tensor_ops.where:
        own[path] = own.get(path, 0) + flops
    return _inclusive(own, _named(model))


def _inclusive(own: dict, modules) -> dict:
    by_module = {path: 0 for path in modules}
    for path, amount in own.items():
        for prefix in _prefixes(path):
            by_module[prefix] = by_module.get(prefix, 0) + amount
    return by_module


def _prefixes(path: str):
    """"", "a", "a.b", "a.b.c" for "a.b.c"."""
    yield ""
    if path:
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            yield ".".join(parts[:i])


_MODULE_LINE = re.compile(r"^Module:\s+(\S+)\s*$")
_OP_LINE = re.compile(r"^(\S+): (\d+) Mac$")


def _ptflops_aten(model, x) -> Reported:
    ptflops = import_ptflops()
    t = _tensor(x)
    out = io.StringIO()
    with _quiet():
        total, _params = ptflops.get_model_complexity_info(
            copy.deepcopy(model), tuple(t.shape[1:]), input_constructor=lambda _: t, as_strings=False,
            print_per_layer_stat=True, ost=out, verbose=False, backend="aten", flops_units="Mac")
    if total is None:
        raise RuntimeError("ptflops (aten) failed on this model (it printed the exception and returned None)")
    by_module = {path: 0 for path, _ in model.named_children()}
    module = None
    for line in out.getvalue().splitlines():
        match = _MODULE_LINE.match(line)
        if match:
            module = match.group(1)
            continue
        match = _OP_LINE.match(line)
        if match and module is not None:
            key = "" if module == "Global" else module
            by_module[key] = by_module.get(key, 0) + int(match.group(2))
    by_module.setdefault("", int(total))
    return Reported(int(total), by_module)


# ----------------------------------------------------------------------------- torchinfo


def _torchinfo(model, x) -> Reported:
    with _quiet():
        from torchinfo import summary

        stats = summary(model, input_data=_tensor(x), verbose=0, mode="eval", device="cpu")
    own = {}
    for layer in stats.summary_list:
        if not layer.is_leaf_layer:
            continue
        names, info = [], layer
        while info is not None and info.depth > 0:
            names.append(info.var_name)
            info = info.parent_info
        path = ".".join(reversed(names))
        own[path] = own.get(path, 0) + int(layer.macs)
    return Reported(int(stats.total_mult_adds), _inclusive(own, _named(model)))


REPORTERS = {
    "flop_counter": _flop_counter,
    "fvcore": _fvcore,
    "thop": _thop,
    "ptflops_pytorch": _ptflops_pytorch,
    "ptflops_aten": _ptflops_aten,
    "torchinfo": _torchinfo,
}


def reported(name: str, model, x) -> Reported | None:
    """What counter `name` (a key of npconv.counters.CONVENTIONS) reports for `model` on an
    input like `x`; None when its package is not installed."""
    from .conventions import CONVENTIONS

    if not installed(CONVENTIONS[name].package):
        return None
    return REPORTERS[name](model, x)
