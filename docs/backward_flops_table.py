"""Generate the FlopCounterMode-vs-counted table of docs/backward.md.

    python docs/backward_flops_table.py            # print the table
    python docs/backward_flops_table.py --write    # replace the table in docs/backward.md

For each layer: npconv runs the forward and the backward and counts the MACs its loops
execute; torch.utils.flop_counter.FlopCounterMode counts the same calls. FlopCounterMode
reports FLOPs = 2 * MACs, so its numbers are halved here to be comparable. The backward
is split into its gradients by calling aten.convolution_backward with one output_mask
entry at a time; the script checks that the parts add up to what FlopCounterMode reports
for a plain autograd backward.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import generated_section
import npconv
from npconv.backward import conv2d_backward, conv_transpose2d_backward
from npconv.transpose import conv_transpose2d

DOC = Path(__file__).with_name("backward.md")
START, END = "<!-- backward-flops-table:start -->", "<!-- backward-flops-table:end -->"

# name, transposed, C_in, C_out, kernel, stride, padding, output_padding, groups, input size
LAYERS = [
    ("standard 3x3, 32->64", False, 32, 64, 3, 1, 1, 0, 1, 16),
    ("pointwise 1x1, 32->64", False, 32, 64, 1, 1, 0, 0, 1, 16),
    ("depthwise 3x3, C=32", False, 32, 32, 3, 1, 1, 0, 32, 16),
    ("depthwise 3x3 s2, C=64", False, 64, 64, 3, 2, 1, 0, 64, 16),
    ("grouped 3x3, 64->64, g=4", False, 64, 64, 3, 1, 1, 0, 4, 16),
    ("transposed 2x2 s2, 32->16", True, 32, 16, 2, 2, 0, 0, 1, 8),
    ("transposed 3x3 s2, 32->32, g=8", True, 32, 32, 3, 2, 1, 1, 8, 8),
]
BATCH = 1


def _fcm_backward_parts(gy, x, w, transposed, stride, padding, groups, output_padding):
    parts = []
    for mask in ([True, False, False], [False, True, False], [False, False, True]):
        with FlopCounterMode(display=False) as fcm:
            torch.ops.aten.convolution_backward(
                torch.from_numpy(gy), torch.from_numpy(x), torch.from_numpy(w), [gy.shape[1]],
                [stride] * 2, [padding] * 2, [1, 1], transposed, [output_padding] * 2, groups, mask)
        parts.append(fcm.get_total_flops())
    return parts


def _fcm_autograd(x, w, b, transposed, stride, padding, groups, output_padding, gy):
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    with FlopCounterMode(display=False) as fcm:
        if transposed:
            y = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, groups)
        else:
            y = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups)
        y.backward(torch.from_numpy(gy))
    counts = fcm.get_flop_counts()["Global"]
    return counts[torch.ops.aten.convolution], counts[torch.ops.aten.convolution_backward]


def measure(layer):
    name, transposed, c_in, c_out, k, s, p, output_padding, groups, size = layer
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c_in, size, size)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    if transposed:
        w = rng.standard_normal((c_in, c_out // groups, k, k)).astype(np.float32)
        kwargs = dict(stride=s, padding=p, output_padding=output_padding, groups=groups)
        with npconv.count() as forward:
            y = conv_transpose2d(x, w, b, **kwargs)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        with npconv.count() as backward:
            conv_transpose2d_backward(gy, x, w, **kwargs)
        prefix = "conv_transpose2d_grad_"
    else:
        w = rng.standard_normal((c_out, c_in // groups, k, k)).astype(np.float32)
        kwargs = dict(stride=s, padding=p, groups=groups)
        with npconv.count() as forward:
            y = npconv.conv2d(x, w, b, **kwargs)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        with npconv.count() as backward:
            conv2d_backward(gy, x, w, **kwargs)
        prefix = "conv2d_grad_"
    grad_input = backward.by_op[prefix + "input"].macs
    grad_weight = backward.by_op[prefix + "weight"].macs
    grad_bias_adds = backward.by_op[prefix + "bias"].other["adds"]
    fcm_input, fcm_weight, fcm_bias = _fcm_backward_parts(gy, x, w, transposed, s, p, groups, output_padding)
    fcm_forward, fcm_backward = _fcm_autograd(x, w, b, transposed, s, p, groups, output_padding, gy)
    assert fcm_backward == fcm_input + fcm_weight + fcm_bias, (name, fcm_backward, fcm_input, fcm_weight, fcm_bias)
    return dict(
        name=name, forward=forward.macs, fcm_forward=fcm_forward / 2,
        grad_input=grad_input, fcm_input=fcm_input / 2,
        grad_weight=grad_weight, fcm_weight=fcm_weight / 2,
        grad_bias_adds=grad_bias_adds, fcm_bias=fcm_bias / 2,
    )


def _factor(fcm: float, ours: int) -> str:
    if fcm == ours:
        return "agree"
    return f"**{fcm / ours:g}x**" if ours else "n/a"


def table() -> str:
    lines = [
        f"Batch {BATCH}, float32; MACs (FlopCounterMode's FLOPs / 2); counted = npconv's loops. "
        f"torch {torch.__version__}. A training step's MACs (forward + grad_input + grad_weight) "
        "over the forward's, bias adds aside.",
        "",
        "| layer | forward counted | forward FCM | grad_input counted | grad_input FCM | "
        "grad_weight counted | grad_weight FCM | FCM / counted (grad_weight) | grad_bias adds counted / FCM | "
        "step / forward, counted | step / forward, FCM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer in LAYERS:
        r = measure(layer)
        lines.append(
            f"| {r['name']} | {r['forward']:,} | {r['fcm_forward']:,.0f} | {r['grad_input']:,} | "
            f"{r['fcm_input']:,.0f} | {r['grad_weight']:,} | {r['fcm_weight']:,.0f} | "
            f"{_factor(r['fcm_weight'], r['grad_weight'])} | {r['grad_bias_adds']:,} / {r['fcm_bias']:,.0f} | "
            f"{(r['forward'] + r['grad_input'] + r['grad_weight']) / r['forward']:g} | "
            f"{(r['fcm_forward'] + r['fcm_input'] + r['fcm_weight']) / r['fcm_forward']:g} |"
        )
    return "\n".join(lines)


def main() -> None:
    generated_section.main(__doc__.splitlines()[0], DOC, START, END, table)


if __name__ == "__main__":
    main()
