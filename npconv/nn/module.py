"""`Module` and `Sequential`: PyTorch's module protocol over NumPy arrays.

A module holds parameters (learned arrays), buffers (state such as BatchNorm's running
statistics) and child modules, each registered under an attribute name, so that

    model.state_dict()["features.3.dw_conv.0.weight"]

names the same array as `torch.nn.Module.state_dict()` does for the same module tree.

Counting by layer: calling a module runs its `forward` inside
`npconv.counting.scope(<its attribute name in the calling parent>)`; the module called
first (the root) contributes no name. So inside `npconv.count()`, the counts a kernel
records land in `tally.by_layer` under the qualified name of the innermost module that
ran it, "features.3.dw_conv.0", exactly the key prefix of that layer in `state_dict()`.
A container's own name gets only what its forward computes itself (a residual add, a
flatten), not its children's counts.

Hooks: `register_forward_pre_hook(fn)` runs fn(module, args) before forward and
`register_forward_hook(fn)` runs fn(module, args, output) after it, as in PyTorch (return
values are ignored); both return a handle whose `remove()` unregisters the hook. They let a
test capture every layer's input and output, to compare with PyTorch layer by layer.

Errors: a ValueError, TypeError or IndexError raised inside a child module gets the
qualified name and type of the innermost module it came from prepended to its message,
e.g. "layer 'features.1' (BatchNorm2d): expected 4D input (got 3D input)".

Backward. A module defines `backward(grad_output)` right under its `forward`, the forward's
data flow in reverse, as llm.c writes gpt2_backward under gpt2_forward: it takes dL/d(its
output) and returns dL/d(its input), or None where its input needs no gradient. A leaf
layer computes its gradients from what its forward kept (`save_for_backward`) and puts its
parameters' gradients in `self.grads` ({"weight": ..., "bias": ...}, each in its
parameter's dtype); a container calls its children's `backward` in the reverse of the
order its forward called them, with its own ops' gradients (a residual fork's sum, a
flatten's reshape) between them. Module wraps every subclass's `backward` (when the class
is created) so that calling it works like calling the module: its counts land in
`tally.by_layer` under the module's qualified name, the name its forward counts under, and
errors are named the same way. A None gradient is passed on as None without running the
backward (nothing flows there; see "which inputs need a gradient").

What a forward keeps. Only inside `enable_grad()` (npconv.train.forward_backward opens
one): there each leaf keeps what its backward needs (its input, or just its shape;
BatchNorm2d its batch mean and variance; Dropout its keep-mask), and the backward releases
it. Outside it, inference, a forward keeps nothing.

Which inputs need a gradient (PyTorch's requires_grad, per module): inside `enable_grad()`,
a module's output needs one when its input did or a parameter was used computing it; the
model's own input needs none. An input made by a container's own code between modules (a
flatten, a slice, a sum) is taken to need one when any parameter was used earlier in the
forward (safe: data can depend only on what ran before). `module.needs_input_grad` holds
the answer for the module's last recorded call: the first convolution of a network skips
its input gradient, as PyTorch does. A module that runs twice in one recorded forward
(a shared module) is refused: it keeps the input of one call.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from .. import counting
from .. import engine as _engine
from ..dtypes import FLOAT_DTYPES, from_tensor, is_floating
from . import fusion, init

_hook_ids = itertools.count()
_running: contextvars.ContextVar[tuple["Module", ...]] = contextvars.ContextVar("npconv_running_modules", default=())
_tape: contextvars.ContextVar["_Tape | None"] = contextvars.ContextVar("npconv_tape", default=None)
_backward_log: contextvars.ContextVar["BackwardLog | None"] = contextvars.ContextVar("npconv_backward_log",
                                                                                     default=None)


def _dry_placeholder(value: np.ndarray) -> np.ndarray:
    """Inside `init.dry()` (a dry build, npconv.memory), an array a constructor made without
    an initialiser (BatchNorm2d's np.ones(C)) is kept as a zero-memory placeholder of its
    shape and dtype, so that the dry build holds no array; placeholders are kept as they are."""
    return value if value.strides == (0,) * value.ndim else init.placeholder(value.shape, value.dtype)


def to_numpy(value) -> np.ndarray:
    """A NumPy array from a NumPy array, anything array-like, or a torch tensor (detached,
    moved to the CPU; bfloat16 as an ml_dtypes.bfloat16 array of the same values) without
    importing torch."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return from_tensor(value)
    return np.asarray(value)


class RemovableHandle:
    """Returned by the hook registrations; `remove()` unregisters the hook."""

    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks = hooks
        self._key = key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


# ----------------------------------------------------------------------------- recording for backward


class _Tape:
    """The bookkeeping of one forward inside `enable_grad()`: which arrays a module produced
    and whether they depend on a parameter, which modules ran, how many parameterised
    modules have run."""

    def __init__(self) -> None:
        self.outputs: dict[int, tuple[np.ndarray, bool]] = {}  # id -> (the array, kept alive; depends on a parameter)
        self.ran: set[int] = set()
        self.parameter_uses = 0

    def enter(self, module: "Module", args) -> int:
        if id(module) in self.ran:
            raise ValueError("ran more than once in one recorded forward; a layer keeps the input of one call for "
                             "its backward, so shared modules are not supported")
        if not self.ran and args and isinstance(args[0], np.ndarray):  # the model's own input needs no gradient
            self.outputs[id(args[0])] = (args[0], False)
        self.ran.add(id(module))
        known = self.outputs.get(id(args[0])) if args else None
        needs = self.parameter_uses > 0 if known is None else known[1]
        object.__setattr__(module, "needs_input_grad", needs)
        object.__setattr__(module, "grads", {})
        object.__setattr__(module, "_saved", None)
        return self.parameter_uses

    def leave(self, module: "Module", output, uses_before: int) -> None:
        if any(p is not None for p in module._parameters.values()):
            self.parameter_uses += 1
        if isinstance(output, np.ndarray):
            self.outputs[id(output)] = (output, module.needs_input_grad or self.parameter_uses > uses_before)


@contextlib.contextmanager
def enable_grad():
    """Forward passes inside the block keep what their backward needs (module docstring);
    each block is one recorded forward."""
    token = _tape.set(_Tape())
    try:
        yield
    finally:
        _tape.reset(token)


def is_grad_enabled() -> bool:
    """True inside `enable_grad()`: a forward run now keeps what its backward needs."""
    return _tape.get() is not None


class BackwardLog:
    """What `log_backward()` collected: counts[layer] = {op: Counts.as_dict()} of each leaf's
    backward; layer_grads[layer] = (dL/d its output, dL/d its input or None) when asked for."""

    def __init__(self, keep_layer_grads: bool) -> None:
        self.counts: dict[str, dict] = {}
        self.layer_grads: dict[str, tuple] | None = {} if keep_layer_grads else None


@contextlib.contextmanager
def log_backward(keep_layer_grads: bool = False):
    """Collect each leaf layer's backward counts (and gradients) while the block runs."""
    log = BackwardLog(keep_layer_grads)
    token = _backward_log.set(log)
    try:
        yield log
    finally:
        _backward_log.reset(token)


def _scoped_backward(backward):
    """`backward` run as `__call__` runs `forward`: inside counting.scope(the module's name),
    errors named, None passed on, and each leaf's counts (and gradients) logged."""

    @functools.wraps(backward)
    def run(self, grad_output):
        running = _running.get()
        if running and running[-1] is self:  # super().backward(...) inside a subclass's backward
            return backward(self, grad_output)
        if grad_output is None:
            return None
        name = running[-1]._name_of(self) if running else ""
        token = _running.set(running + (self,))
        try:
            with counting.scope(name):
                log = _backward_log.get()
                try:
                    if log is None or next(self.children(), None) is not None:
                        return backward(self, grad_output)
                    with counting.count() as tally:
                        grad_input = backward(self, grad_output)
                    layer = counting.current_layer() or ""
                    log.counts[layer] = {op: c.as_dict() for op, c in tally.by_op.items()}
                    if log.layer_grads is not None:
                        log.layer_grads[layer] = (grad_output, grad_input)
                    return grad_input
                except (ValueError, TypeError, IndexError) as error:
                    self._name_error(error)
                    raise
        finally:
            _running.reset(token)

    run._npconv_scoped = True
    return run


class Module:
    """Base class of npconv's layers and models (see the module docstring).

    Subclasses call `super().__init__()` first, then assign arrays with
    `register_parameter` / `register_buffer` and child modules as attributes, and
    define `forward`.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "grads", {})
        object.__setattr__(self, "needs_input_grad", True)
        object.__setattr__(self, "_saved", None)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        backward = cls.__dict__.get("backward")
        if backward is not None and not getattr(backward, "_npconv_scoped", False):
            cls.backward = _scoped_backward(backward)

    # ----------------------------------------------------------------- registration

    def register_parameter(self, name: str, value: np.ndarray | None) -> None:
        """Register a learned array (or None for an absent one, such as bias=False)."""
        self._check_name(name)
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(
                f"cannot assign {type(value).__name__} as parameter '{name}' (numpy.ndarray or None expected)"
            )
        self._parameters[name] = value if value is None or not init.is_dry() else _dry_placeholder(value)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Register a state array that is saved in `state_dict()` but not learned."""
        self._check_name(name)
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' (numpy.ndarray or None expected)")
        self._buffers[name] = value if value is None or not init.is_dry() else _dry_placeholder(value)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name)
        self._modules[name] = module

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"module, parameter and buffer names must be strings, not {type(name).__name__}")
        if "." in name or name == "":
            raise ValueError(f"names of modules, parameters and buffers can't be empty or contain '.', got {name!r}")

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        buffers = self.__dict__.get("_buffers")
        modules = self.__dict__.get("_modules")
        if params is None:
            raise AttributeError("cannot assign attributes before Module.__init__() call")
        if isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in params:
            self.register_parameter(name, value)
        elif name in buffers:
            self.register_buffer(name, value)
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module '{name}' (Module or None expected)"
                )
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for store in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(store)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    # ----------------------------------------------------------------- calling

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """hook(module, args) runs before every forward; returns a handle to remove it."""
        key = next(_hook_ids)
        self._forward_pre_hooks[key] = hook
        return RemovableHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """hook(module, args, output) runs after every forward; returns a handle to remove it."""
        key = next(_hook_ids)
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    def __call__(self, *args, **kwargs):
        running = _running.get()
        name = running[-1]._name_of(self) if running else ""
        token = _running.set(running + (self,))
        tape = _tape.get()
        try:
            with counting.scope(name):
                try:
                    for hook in list(self._forward_pre_hooks.values()):
                        hook(self, args)
                    uses_before = tape.enter(self, args) if tape is not None else 0
                    output = self.forward(*args, **kwargs)
                    if tape is not None:
                        tape.leave(self, output, uses_before)
                except (ValueError, TypeError, IndexError) as error:
                    self._name_error(error)
                    raise
                for hook in list(self._forward_hooks.values()):
                    hook(self, args, output)
                return output
        finally:
            _running.reset(token)

    def backward(self, grad_output):
        """dL/d(input) from dL/d(output) = grad_output, or None where the input needs no
        gradient; parameter gradients go to `self.grads` (module docstring). Subclasses
        define it under their forward; a module without one is refused by name."""
        error = TypeError(f"no backward for module '{counting.current_layer() or type(self).__name__}' of type "
                          f"{type(self).__name__}: its class defines no backward")
        error._npconv_layer_named = True  # the message names the layer already
        raise error

    def save_for_backward(self, *values) -> None:
        """Keep `values` for this module's backward, inside `enable_grad()` only (outside it,
        in inference, nothing is kept)."""
        if _tape.get() is not None:
            object.__setattr__(self, "_saved", values)

    def saved_for_backward(self) -> tuple:
        """What the forward kept, released (a backward runs once per recorded forward)."""
        saved = self.__dict__.get("_saved")
        if saved is None:
            raise ValueError("backward without a recorded forward: run the forward inside npconv.nn.enable_grad() "
                             "(npconv.train.forward_backward does), then backward once")
        object.__setattr__(self, "_saved", None)
        return saved

    def set_grads(self, **grads) -> None:
        """self.grads = the given parameter gradients (None ones left out), each in its
        parameter's dtype."""
        object.__setattr__(self, "grads", {name: g.astype(getattr(self, name).dtype, copy=False)
                                           for name, g in grads.items() if g is not None})

    def _name_of(self, child: "Module") -> str:
        """The attribute path of `child` below self ("3" or "conv.0"), or "<Type>" if it is
        not in self's tree."""
        for name, module in self._modules.items():
            if module is child:
                return name
        for name, module in self.named_modules():
            if module is child and name:
                return name
        return f"<{type(child).__name__}>"

    def _name_error(self, error: BaseException) -> None:
        """Prepend the innermost named module's qualified name and type to the message, once."""
        if getattr(error, "_npconv_layer_named", False):
            return
        layer = counting.current_layer()
        if not layer:
            return
        message = error.args[0] if error.args else ""
        error.args = (f"layer '{layer}' ({type(self).__name__}): {message}",) + tuple(error.args[1:])
        error._npconv_layer_named = True

    # ----------------------------------------------------------------- traversal

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "", _memo: set | None = None) -> Iterator[tuple[str, "Module"]]:
        """Every module in the tree, each once, depth first, self first with name `prefix`
        ("" for the root), as `torch.nn.Module.named_modules`."""
        memo = set() if _memo is None else _memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self.named_children():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def _named_members(self, store: str) -> Iterator[tuple[str, np.ndarray]]:
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, value in module.__dict__[store].items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """(qualified name, array) for every parameter, each array once."""
        return self._named_members("_parameters")

    def parameters(self) -> list[np.ndarray]:
        """Every parameter array once; `sum(p.size for p in m.parameters())` counts them."""
        return [value for _, value in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        return self._named_members("_buffers")

    def buffers(self) -> list[np.ndarray]:
        return [value for _, value in self.named_buffers()]

    # ----------------------------------------------------------------- state

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Qualified name -> a copy of every parameter and buffer, in PyTorch's order
        (a module's own parameters, then its buffers, then its children's, depth first)."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        self._save_to(state, "")
        return state

    def _save_to(self, state, prefix: str) -> None:
        for store in ("_parameters", "_buffers"):
            for name, value in self.__dict__[store].items():
                if value is not None:
                    state[prefix + name] = value.copy()
        for name, module in self.named_children():
            module._save_to(state, f"{prefix}{name}.")

    def _slots(self, prefix: str = "") -> Iterator[tuple[str, "Module", str, str]]:
        """(qualified key, owning module, store, attribute) for every array in state_dict()."""
        for store in ("_parameters", "_buffers"):
            for name, value in self.__dict__[store].items():
                if value is not None:
                    yield prefix + name, self, store, name
        for name, module in self.named_children():
            yield from module._slots(f"{prefix}{name}.")

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers, by qualified name.

        Values may be NumPy arrays or torch tensors (on any device). Each is converted to
        the dtype of the array it replaces (as `Tensor.copy_` does); its shape must match
        exactly. With strict=True every key of `state_dict()` must be present and no other.
        Raises ValueError naming every missing, unexpected or mis-shaped key, before
        changing anything; returns the missing and unexpected keys otherwise.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        given = {key: to_numpy(value) for key, value in state_dict.items()}
        slots = {key: (module, store, name) for key, module, store, name in self._slots()}
        missing = [key for key in slots if key not in given]
        unexpected = [key for key in given if key not in slots]
        errors = []
        if strict:
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        updates = []
        for key, (module, store, name) in slots.items():
            if key not in given:
                continue
            current = module.__dict__[store][name]
            value = given[key]
            if value.shape != current.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {list(value.shape)} from checkpoint, "
                    f"the shape in current model is {list(current.shape)}."
                )
                continue
            if not (np.issubdtype(value.dtype, np.number) or is_floating(value.dtype) or value.dtype == np.bool_):
                errors.append(f"wrong type for {key}: expected a numeric array, got dtype {value.dtype}.")
                continue
            updates.append((module, store, name, np.array(value, dtype=current.dtype, copy=True)))
        if errors:
            raise ValueError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for module, store, name, value in updates:
            module.__dict__[store][name] = value
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- modes and dtypes

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (BatchNorm2d uses and updates batch statistics, Dropout drops)
        on this module and every module below it."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """train(False)."""
        return self.train(False)

    def to(self, dtype) -> "Module":
        """Convert every floating-point parameter and buffer to `dtype` (float16, bfloat16 (an
        ml_dtypes.bfloat16), float32 or float64), in place."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"to(): only float16, bfloat16, float32 and float64 are supported, not {dtype}")
        for module in self.modules():
            for store in ("_parameters", "_buffers"):
                values = module.__dict__[store]
                for name, value in values.items():
                    if value is not None and is_floating(value.dtype):
                        values[name] = value.astype(dtype)
        return self

    def float(self) -> "Module":
        return self.to(np.float32)

    def double(self) -> "Module":
        return self.to(np.float64)

    # ----------------------------------------------------------------- printing

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


Module.backward = _scoped_backward(Module.backward)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (or by an OrderedDict's
    keys), as in `torch.nn.Sequential`."""

    def __init__(self, *modules) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(modules[index]))
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"Sequential indices must be integers or slices, not {type(index).__name__}")
        if not -len(modules) <= index < len(modules):
            raise IndexError(f"index {index} is out of range")
        return modules[index][1]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        modules = list(self._modules.values())
        fuse = _engine.current() == "fast" and _tape.get() is None   # npconv/nn/fusion.py
        k = 0
        while k < len(modules):
            length, geometry = fusion.plan(modules, k, input) if fuse else (0, None)
            if length:
                input = fusion.run(self, modules[k:k + length], input, geometry=geometry)
                k += length
            else:
                input = modules[k](input)
                k += 1
        return input

    def backward(self, grad_output):
        for module in reversed(self._modules.values()):
            grad_output = module.backward(grad_output)
        return grad_output
