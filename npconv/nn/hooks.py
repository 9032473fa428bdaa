"""One way to watch a model run: forward hooks on its named modules for the duration of a block.

    with hooked(model, post=lambda name, module, args, output: seen.append((name, output.shape))):
        model(x)

Works for npconv modules and for torch modules alike (both have `named_modules()` and
PyTorch's `register_forward_pre_hook` / `register_forward_hook`, whose handles have
`remove()`). Every capture in the package and its tests (shapes for a summary, inputs for a
backward pass, PyTorch's per-layer outputs) is this helper with its own small callback.
"""

from __future__ import annotations

import contextlib

__all__ = ["hooked"]


@contextlib.contextmanager
def hooked(model, pre=None, post=None, *, leaves_only: bool = False):
    """Call `pre(name, module, args)` before and `post(name, module, args, output)` after each
    call of every named module of `model` (only modules without children with leaves_only)
    while the block runs; the hooks are removed on exit, also on an exception. A callback's
    return value is ignored (it never replaces an input or an output)."""
    handles = []
    try:
        for name, module in model.named_modules():
            if leaves_only and next(iter(module.children()), None) is not None:
                continue
            if pre is not None:
                handles.append(module.register_forward_pre_hook(
                    lambda m, args, name=name: (pre(name, m, args), None)[1]))
            if post is not None:
                handles.append(module.register_forward_hook(
                    lambda m, args, output, name=name: (post(name, m, args, output), None)[1]))
        yield
    finally:
        for handle in handles:
            handle.remove()
