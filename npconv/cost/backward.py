"""Counted backward MACs per layer beside FlopCounterMode's: `backward_cost_table`.

    rows = npconv.cost_backward.backward_cost_table("tiny_mobilenet", (2, 3, 32, 32))
    rows[3].forward, rows[3].grad_input, rows[3].grad_weight, rows[3].fcm_grad_weight

One training step of the model (npconv.train.forward_backward, the model's own forward
and backward) is counted per layer; FlopCounterMode reads the PyTorch twin's autograd
backward. The CLI's `npconv verify --backward` prints these rows; docs/backward_model_table.py
renders them into docs/backward.md. (Moved here from npconv.train, which re-exports it.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .. import counting
from ..nn import Conv2d, ConvTranspose2d, Linear, Module
from ..nn.hooks import hooked
from ..train import forward_backward

__all__ = ["BackwardCostRow", "backward_cost_table"]


@dataclass
class BackwardCostRow:
    """One layer of `backward_cost_table`. MACs counted by npconv's loops; fcm_* are
    torch.utils.flop_counter.FlopCounterMode's FLOPs / 2 for the twin's same layer
    (grad_input None where the layer's input needs no gradient). `factors`: "grad_input",
    "grad_weight" -> FlopCounterMode / counted where they differ."""

    layer: str
    kind: str
    forward: int
    grad_input: int | None
    grad_weight: int
    fcm_forward: int | None = None
    fcm_grad_input: int | None = None
    fcm_grad_weight: int | None = None
    factors: dict = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return not self.factors


_NETWORKS = {"tiny_mobilenet": "TinyMobileNet", "mobilenet_v1": "MobileNetV1", "mobilenet_v2": "MobileNetV2"}


def _build_named(name: str, input_shape):
    from .. import models
    from ..oracle import twins

    kind = _NETWORKS.get(name, name)
    if kind not in _NETWORKS.values():
        raise ValueError(f"backward_cost_table(): unknown model {name!r}; give a Module or one of {sorted(_NETWORKS)}")
    model = getattr(models, kind)(rng=0)
    twin = twins.build(kind, seed=0, calibration_shape=(2,) + tuple(input_shape[1:]))
    return model, twin


def backward_cost_table(model, input_shape, *, torch_model=None, seed: int = 0) -> list[BackwardCostRow]:
    """Per Conv2d / ConvTranspose2d / Linear layer of a training step of `model` on an input
    of `input_shape` (N, C, H, W): the MACs npconv's forward, grad-input and grad-weight
    loops execute (counted, in float32, on a seeded standard-normal input, backpropagating
    a seeded standard-normal dL/d(output); the counts depend only on the shapes), beside
    FlopCounterMode's figures for the PyTorch twin `torch_model` (same module tree; None:
    no FlopCounterMode columns). Both run in training mode (Dropout in evaluation).

    model: an npconv Module (not changed: a copy is trained, in training mode), or
    "tiny_mobilenet" / "mobilenet_v1" / "mobilenet_v2", which builds both with default
    arguments (twin from `npconv.twins`). The last row, layer "(total)", sums the others.

    FlopCounterMode (torch 2.13) is read per module from an autograd backward of the twin
    in training mode, and split into its gradients by calling aten.convolution_backward
    (and the two mm of a Linear) once per gradient on the layer's shapes; the parts are
    checked to add up to the per-module figure. The CLI's `npconv verify --backward` prints
    these rows; docs/backward_model_table.py renders them into docs/backward.md.
    """
    if isinstance(model, str):
        model, twin = _build_named(model, input_shape)
        torch_model = twin if torch_model is None else torch_model
    if not isinstance(model, Module):
        raise TypeError(f"backward_cost_table(): model must be an npconv Module or a model name, "
                        f"not {type(model).__name__}")
    input_shape = tuple(int(s) for s in input_shape)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape).astype(np.float32)
    net = _training_copy(model).float()
    grad_output = _seeded_gradient(seed)
    with counting.count() as tally:  # forward and backward; the forward's share is the difference
        step = forward_backward(net, x, grad_output=grad_output)
    rows = []
    for path, module in net.named_modules():
        if not isinstance(module, (Conv2d, ConvTranspose2d, Linear)):
            continue
        backward = step.backward_by_layer.get(path, {})
        prefix = {Conv2d: "conv2d", ConvTranspose2d: "conv_transpose2d", Linear: "linear"}[type(module)]
        grad_input = backward.get(f"{prefix}_grad_input", {}).get("macs")
        grad_weight = backward.get(f"{prefix}_grad_weight", {}).get("macs", 0)
        forward = tally.by_layer[path].macs - sum(counts["macs"] for counts in backward.values())
        rows.append(BackwardCostRow(path, _kind(module), forward, grad_input, grad_weight))
    if torch_model is not None:
        _flop_counter_columns(rows, torch_model, x, grad_output(step.logits))
    total = BackwardCostRow(
        "(total)", "", sum(r.forward for r in rows), sum(r.grad_input or 0 for r in rows),
        sum(r.grad_weight for r in rows))
    if torch_model is not None:
        total.fcm_forward = sum(r.fcm_forward or 0 for r in rows)
        total.fcm_grad_input = sum(r.fcm_grad_input or 0 for r in rows)
        total.fcm_grad_weight = sum(r.fcm_grad_weight or 0 for r in rows)
        total.factors = _factors(total)
    rows.append(total)
    return rows


def _training_copy(model):
    """A copy in training mode, Dropout aside (evaluation: its mask is random and it has no
    MACs), so that BatchNorm runs as in training."""
    net = copy.deepcopy(model).train()
    for module in net.modules():
        if type(module).__name__ == "Dropout":
            module.eval()
    return net


def _seeded_gradient(seed: int):
    """dL/d(output) for the cost table: seeded standard normal values of the output's shape
    (the counts do not depend on them; any output shape works, blocks included)."""
    def gradient(output):
        return np.random.default_rng(seed + 1).standard_normal(output.shape).astype(output.dtype)
    return gradient


def _kind(module) -> str:
    if isinstance(module, Linear):
        return f"Linear {module.in_features}->{module.out_features}"
    kh, kw = module.kernel_size
    name = "ConvTranspose2d" if isinstance(module, ConvTranspose2d) else "Conv2d"
    if module.groups == module.in_channels == module.out_channels and module.groups > 1:
        shape = f"depthwise {kh}x{kw}, C={module.in_channels}"
    else:
        shape = f"{kh}x{kw}, {module.in_channels}->{module.out_channels}"
        shape += f", g={module.groups}" if module.groups > 1 else ""
    stride = f" s{module.stride[0]}" if module.stride != (1, 1) else ""
    return f"{name} {shape}{stride}"


def _factors(row: BackwardCostRow) -> dict:
    factors = {}
    for part, ours, theirs in (("forward", row.forward, row.fcm_forward),
                               ("grad_input", row.grad_input, row.fcm_grad_input),
                               ("grad_weight", row.grad_weight, row.fcm_grad_weight)):
        if (ours or 0) != (theirs or 0):
            factors[part] = (theirs or 0) / ours if ours else float("inf")
    return factors


def _flop_counter_columns(rows: list[BackwardCostRow], torch_model, x: np.ndarray, gy: np.ndarray) -> None:
    """Fill the fcm_* columns from FlopCounterMode on the twin (torch imported here)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    twin = _training_copy(torch_model).float()
    by_name = dict(twin.named_modules())
    missing = [r.layer for r in rows if r.layer not in by_name]
    if missing:
        raise ValueError(f"backward_cost_table(): the torch model has no module(s) {missing}: "
                         "it must have npconv's module tree")
    saved = {}
    wanted = {row.layer for row in rows}

    def keep(name, mod, args, output):
        if name in wanted:
            saved[name] = (args[0].detach(), output.detach())

    root = type(twin).__name__
    with hooked(twin, post=keep), FlopCounterMode(display=False) as counter:
        # through a scalar L = sum(output * gy): FlopCounterMode attributes a module's
        # backward by hooks on its outputs' gradients, which do not fire for a gradient
        # handed to .backward() directly; mul and sum have no FLOP formula
        (twin(torch.from_numpy(x)) * torch.from_numpy(gy)).sum().backward()
    counts = counter.get_flop_counts()
    for row in rows:
        module = by_name[row.layer]
        per_op = counts.get(f"{root}.{row.layer}", {})
        row.fcm_forward = _half(sum(v for op, v in per_op.items() if _is_forward(op)))
        backward_total = sum(v for op, v in per_op.items() if not _is_forward(op))
        needs_input_grad = row.grad_input is not None
        gi, gw = _fcm_parts(module, *saved[row.layer], needs_input_grad)
        if gi + gw != backward_total:
            raise AssertionError(f"FlopCounterMode's parts for {row.layer} ({gi} + {gw}) do not add up to its "
                                 f"backward total {backward_total}")
        row.fcm_grad_input = _half(gi) if needs_input_grad else None
        row.fcm_grad_weight = _half(gw)
        row.factors = _factors(row)


def _half(flops: int) -> int:
    return int(flops) // 2


def _is_forward(op) -> bool:
    return str(op) in ("aten.convolution", "aten.addmm", "aten._convolution", "aten.linear")


def _fcm_parts(module, x, y, needs_input_grad: bool) -> tuple[int, int]:
    """FlopCounterMode's FLOPs for the input gradient (0 when not needed) and the weight
    gradient of one layer, each from its own call."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    gy = torch.ones_like(y)
    parts = []
    for mask in ([True, False, False], [False, True, False]):
        if mask[0] and not needs_input_grad:
            parts.append(0)
            continue
        with FlopCounterMode(display=False) as counter:
            if isinstance(module, torch.nn.Linear):
                if mask[0]:
                    torch.mm(gy.reshape(-1, gy.shape[-1]), module.weight.detach())
                else:
                    torch.mm(gy.reshape(-1, gy.shape[-1]).t(), x.reshape(-1, x.shape[-1]))
            else:
                transposed = isinstance(module, torch.nn.ConvTranspose2d)
                x_in, padding = _explicitly_padded(module, x)
                torch.ops.aten.convolution_backward(
                    gy, x_in, module.weight.detach(), [gy.shape[1]], list(module.stride), list(padding),
                    list(module.dilation), transposed, list(getattr(module, "output_padding", (0, 0))),
                    module.groups, mask)
        parts.append(counter.get_total_flops())
    return parts[0], parts[1]


def _explicitly_padded(module, x):
    """(input, symmetric padding) for aten.convolution_backward: a torch Conv2d with a
    non-zeros padding_mode, or padding="same" (possibly asymmetric), pads its input itself
    and convolves with padding 0; so does this."""
    import torch

    if isinstance(module, torch.nn.ConvTranspose2d):
        return x, module.padding
    if module.padding_mode != "zeros":
        return torch.nn.functional.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode), (0, 0)
    if module.padding == "same":
        pads = []
        for d, k in reversed(list(zip(module.dilation, module.kernel_size))):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return torch.nn.functional.pad(x, pads), (0, 0)
    if module.padding == "valid":
        return x, (0, 0)
    return x, module.padding
