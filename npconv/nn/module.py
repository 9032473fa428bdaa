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
"""

from __future__ import annotations

import contextvars
import itertools
from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from .. import counting

_hook_ids = itertools.count()
_running: contextvars.ContextVar[tuple["Module", ...]] = contextvars.ContextVar("npconv_running_modules", default=())


def to_numpy(value) -> np.ndarray:
    """A NumPy array from a NumPy array, anything array-like, or a torch tensor (detached,
    moved to the CPU; bfloat16 widened to float32) without importing torch."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
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

    # ----------------------------------------------------------------- registration

    def register_parameter(self, name: str, value: np.ndarray | None) -> None:
        """Register a learned array (or None for an absent one, such as bias=False)."""
        self._check_name(name)
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(
                f"cannot assign {type(value).__name__} as parameter '{name}' (numpy.ndarray or None expected)"
            )
        self._parameters[name] = value

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Register a state array that is saved in `state_dict()` but not learned."""
        self._check_name(name)
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' (numpy.ndarray or None expected)")
        self._buffers[name] = value

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
        try:
            with counting.scope(name):
                try:
                    for hook in list(self._forward_pre_hooks.values()):
                        hook(self, args)
                    output = self.forward(*args, **kwargs)
                except (ValueError, TypeError, IndexError) as error:
                    self._name_error(error)
                    raise
                for hook in list(self._forward_hooks.values()):
                    hook(self, args, output)
                return output
        finally:
            _running.reset(token)

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
            if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
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
        """Convert every floating-point parameter and buffer to `dtype` (float16/32/64), in place."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"to(): only float16, float32 and float64 are supported, not {dtype}")
        for module in self.modules():
            for store in ("_parameters", "_buffers"):
                values = module.__dict__[store]
                for name, value in values.items():
                    if value is not None and np.issubdtype(value.dtype, np.floating):
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
        for module in self._modules.values():
            input = module(input)
        return input
