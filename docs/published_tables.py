"""Regenerate docs/published_tables.md: published MobileNet figures against npconv's counts.

    python docs/published_tables.py            # rewrite docs/published_tables.md (about 10 s)
    python docs/published_tables.py --check    # exit 1 if the committed page is out of date
    python docs/published_tables.py --print    # print the page instead of writing it

Every counted number on the page comes from one forward pass per configuration through
npconv's reference kernels (`npconv.summary`, on zeros: counts do not depend on values);
nothing is typed by hand except the published figures, their sources and the sentences
that explain a mismatch. A figure "reproduces" when npconv's count, rounded the way the
source prints it (to its number of decimals), equals it.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import cache
from pathlib import Path

import numpy as np

from npconv import models, nn
from npconv.summary import summary

PAGE = Path(__file__).with_name("published_tables.md")

HOWARD = "Howard et al. 2017, *MobileNets*, [arXiv:1704.04861](https://arxiv.org/abs/1704.04861)"
SANDLER = "Sandler et al. 2018, *MobileNetV2*, [arXiv:1801.04381](https://arxiv.org/abs/1801.04381)"
SLIM_V1 = ("TF-Slim, [mobilenet_v1.md](https://github.com/tensorflow/models/blob/master/research/slim/nets/"
           "mobilenet_v1.md)")
SLIM_V2 = ("TF-Slim, [mobilenet/README.md](https://github.com/tensorflow/models/blob/master/research/slim/nets/"
           "mobilenet/README.md)")
TORCHVISION = ("torchvision, [mobilenet_v2 docs](https://pytorch.org/vision/stable/models/generated/"
               "torchvision.models.mobilenet_v2.html) (`MobileNet_V2_Weights.IMAGENET1K_V1.meta`)")
KERAS = ("Keras, [tf.keras.applications.mobilenet docs](https://www.tensorflow.org/versions/r2.4/api_docs/python/"
         "tf/compat/v1/keras/applications/mobilenet) (module docstring)")


# ----------------------------------------------------------------------------- counting


@cache
def count(kind: str, width: float = 1.0, size: int = 224, batch: int = 1) -> dict:
    """Counted totals of one configuration (a cached forward pass of zeros)."""
    if kind == "v1":
        model, shape = models.MobileNetV1(width, rng=0), (batch, 3, size, size)
    elif kind == "v2":
        model, shape = models.MobileNetV2(width, rng=0), (batch, 3, size, size)
    elif kind == "tiny":
        model, shape = models.TinyMobileNet(rng=0), (batch, 3, size, size)
    else:
        raise ValueError(kind)
    return _totals(summary(model, shape))


def count_layer(kind: str, c_in: int, c_out: int, size: int, bias: bool, batch: int = 1) -> dict:
    """A single layer: "conv" (3x3, padding 1) or "separable" (depthwise 3x3 + pointwise)."""
    if kind == "conv":
        model = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias, rng=0)
    else:
        model = nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=bias, rng=0),
                              nn.Conv2d(c_in, c_out, 1, bias=bias, rng=0))
    return _totals(summary(model, (batch, c_in, size, size)))


def _totals(s) -> dict:
    t = dict(s.total)
    if not s.ok:
        raise SystemExit(f"formula mismatch while counting: {s.mismatches[:3]}")
    t["params_no_bn"] = t["params"] - t["bn_params"]
    t["rows"] = s.rows
    return t


def by_layer_type(t: dict) -> dict:
    """MobileNetV1's Table 2 grouping: MACs and weights per layer type (1x1 conv,
    depthwise 3x3, full 3x3, fully connected), from the per-layer rows."""
    groups = {"Conv 1×1": [0, 0, 0], "Conv DW 3×3": [0, 0, 0], "Conv 3×3": [0, 0, 0], "Fully Connected": [0, 0, 0]}
    for row in t["rows"]:
        if row.type == "Linear":
            key = "Fully Connected"
        elif row.type == "Conv2d":
            _, c_in = row.input_shape[:2]
            depthwise = row.weight_params == row.output_shape[1] * 9 and row.output_shape[1] == c_in and c_in > 1
            key = "Conv DW 3×3" if depthwise else ("Conv 1×1" if row.weight_params == c_in * row.output_shape[1]
                                                   else "Conv 3×3")
        else:
            continue
        groups[key][0] += row.macs
        groups[key][1] += row.weight_params
        groups[key][2] += row.bias_params
    return groups


# ----------------------------------------------------------------------------- rounding and verdicts


def rounded(value: float, decimals: int) -> float:
    return round(value, decimals)


def truncated(value: float, decimals: int) -> float:
    return math.floor(value * 10**decimals + 1e-9) / 10**decimals


def verdict(counted: float, published: float, decimals: int) -> str:
    if rounded(counted, decimals) == published:
        return "✓ reproduced"
    if truncated(counted, decimals) == published:
        return "≈ reproduced only by truncating"
    return "✗ not reproduced"


def fmt(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def figure_rows(entries) -> list[list[str]]:
    """entries: (label, quantity, published, decimals, counted in the published unit, what counted means, note)."""
    rows = []
    for label, quantity, published, decimals, counted, meaning, note in entries:
        rows.append([label, quantity, fmt(published, decimals), f"{counted:,.4f}".rstrip("0").rstrip("."),
                     fmt(rounded(counted, decimals), decimals), meaning,
                     verdict(counted, published, decimals) + (f" — {note}" if note else "")])
    return rows


def stem_macs(t: dict) -> int:
    """MACs of MobileNetV1's first, full 3x3 convolution (features.0.0)."""
    return next(row.macs for row in t["rows"] if row.name == "features.0.0")


def tf_checkpoint_params(t: dict) -> int:
    """MobileNetV1 parameters as a TF-Slim checkpoint would hold them under the convention
    inferred in the page: weights and biases with a 1001-way classifier (one more output:
    C_last weights + 1 bias), BatchNorm's β only, plus its moving mean and variance."""
    last = next(row.input_shape[-1] for row in t["rows"] if row.type == "Linear")
    return t["params_no_bn"] + last + 1 + t["bn_params"] // 2 + t["bn_params"]


HEADER = ["model", "figure", "published", "npconv counts", "rounded as published", "npconv's convention", "verdict"]
MACS = "conv + linear MACs"
ALL = "all parameters (= sum(numel))"
NO_BN = "parameters without BatchNorm"
TF_CKPT = "TF checkpoint variables (see below)"


# ----------------------------------------------------------------------------- the page


def page() -> str:
    out = [
        "# Published MobileNet figures, recounted",
        "",
        "<!-- Generated by docs/published_tables.py from npconv's counts; do not edit by hand. -->",
        "",
        "Every \"npconv counts\" number below is what npconv's reference kernels executed in one forward pass",
        "of the model (`npconv.summary`), regenerated by `python docs/published_tables.py`. npconv's",
        "conventions: **MACs** are the multiply-accumulates of convolution and linear layers (every kernel tap",
        "over the padded input), the quantity the papers call *Mult-Adds* or *MAdds*; FLOPs = 2·MACs;",
        "bias adds, BatchNorm, activations and pooling are not in it. **Parameters** are counted three ways,",
        "because sources differ: all parameter elements (weights, biases, BatchNorm weight and bias; what",
        "`sum(p.numel())` gives in PyTorch), without BatchNorm, and convolution/linear weights alone.",
        "A published figure **reproduces** when npconv's count, rounded to the decimals the source prints,",
        "equals it. Units: M = 10⁶.",
        "",
    ]

    # ---------------------------------------------------------------- MobileNetV1
    v1 = {w: count("v1", w) for w in (1.0, 0.75, 0.5, 0.25)}
    v1r = {r: count("v1", 1.0, r) for r in (224, 192, 160, 128)}
    out += ["## MobileNetV1 (Howard et al. 2017)", "",
            f"Source: {HOWARD}, Tables 6, 7, 2 and 3 (read from the arXiv HTML rendering, "
            "[ar5iv](https://ar5iv.labs.arxiv.org/html/1704.04861)). The paper counts *Mult-Adds* and "
            "parameters in millions; its text says 1×1 convolutions hold 95% of the computation and 75% of "
            "the parameters. npconv's `MobileNetV1` is Table 1 with the second-to-last depthwise layer at "
            "stride 1 (as every implementation has it; see its docstring).", ""]

    out += ["### Table 6: width multiplier (224×224)", ""]
    entries = []
    for w, pub_macs, pub_params in ((1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)):
        t = v1[w]
        entries.append((f"{w} MobileNet-224", "Mult-Adds (M)", pub_macs, 0, t["macs"] / 1e6, MACS, ""))
        entries.append((f"{w} MobileNet-224", "Parameters (M)", pub_params, 1, t["params"] / 1e6, ALL,
                        f"without BatchNorm {t['params_no_bn'] / 1e6:.3f}M rounds to "
                        f"{rounded(t['params_no_bn'] / 1e6, 1)} too"))
    out += table(HEADER, figure_rows(entries)) + [""]
    t = v1[0.25]
    out += [f"The 0.25 model's parameters are often quoted as **0.47M** ({SLIM_V1}); the paper itself prints "
            f"0.5. 0.47 needs the BatchNorm parameters: npconv counts {t['params']:,} with them "
            f"({t['params'] / 1e6:.2f}M) and {t['params_no_bn']:,} without ({t['params_no_bn'] / 1e6:.2f}M); "
            f"TF-Slim's own convention (below) gives {tf_checkpoint_params(t):,} "
            f"({tf_checkpoint_params(t) / 1e6:.2f}M).", ""]

    out += ["### Table 7: resolution (width 1.0)", ""]
    entries = []
    for r, pub in ((224, 569), (192, 418), (160, 290), (128, 186)):
        t = v1r[r]
        note = ""
        if r == 160:
            note = (f"{t['macs'] / 1e6:.3f}M rounds to {round(t['macs'] / 1e6)}; the paper does not truncate "
                    f"elsewhere (568.740 is printed 569), and TF-Slim's table for the same model "
                    f"(mobilenet_v1_1.0_160) prints 291: a rounding slip in the paper")
        entries.append((f"1.0 MobileNet-{r}", "Mult-Adds (M)", pub, 0, t["macs"] / 1e6, MACS, note))
        entries.append((f"1.0 MobileNet-{r}", "Parameters (M)", 4.2, 1, t["params"] / 1e6, ALL, ""))
    out += table(HEADER, figure_rows(entries)) + [""]

    out += ["### Table 2: resources per layer type (1.0 MobileNet-224)", ""]
    groups = by_layer_type(v1[1.0])
    total_macs = sum(g[0] for g in groups.values())
    total_weights = sum(g[1] for g in groups.values())
    total_with_bias = sum(g[1] + g[2] for g in groups.values())
    published = {"Conv 1×1": (94.86, 74.59), "Conv DW 3×3": (3.06, 1.06), "Conv 3×3": (1.19, 0.02),
                 "Fully Connected": (0.18, 24.33)}
    rows = []
    for key, (pub_macs, pub_params) in published.items():
        macs, weights, bias = groups[key]
        share_m, share_w, share_wb = 100 * macs / total_macs, 100 * weights / total_weights, \
            100 * (weights + bias) / total_with_bias
        note_m = ""
        if key == "Conv 3×3" and rounded(share_m, 2) != pub_macs:
            published_sum = sum(p[0] for p in published.values())
            fixed_sum = published_sum - pub_macs + rounded(share_m, 2)
            note_m = (f" — the digits of {rounded(share_m, 2):.2f} transposed: the paper's four shares add up to "
                      f"{published_sum:.2f}%, with {rounded(share_m, 2):.2f} they add up to {fixed_sum:.2f}%")
        rows.append([key, f"{pub_macs:.2f}%", f"{share_m:.3f}%", verdict(share_m, pub_macs, 2) + note_m,
                     f"{pub_params:.2f}%", f"{share_w:.4f}%", verdict(share_w, pub_params, 2),
                     f"{share_wb:.4f}%", verdict(share_wb, pub_params, 2)])
    out += table(["layer type", "Mult-Adds published", "npconv", "verdict", "Parameters published",
                  "npconv, weights only", "verdict", "npconv, weights + biases", "verdict"], rows) + [""]
    out += [f"Shares of {total_macs:,} MACs and of {total_weights:,} convolution and linear weights "
            f"({total_with_bias:,} with the classifier's bias). The parameter shares reproduce when only "
            "weights are counted — BatchNorm parameters and biases are left out of the denominator.", ""]

    out += ["### Table 3: one layer, 14×14×512 input, 3×3 kernel, 512 outputs", ""]
    layer_rows = [
        ("Convolution", "conv", 512, 512, 14, 462, 2.36),
        ("Depthwise Separable Conv", "separable", 512, 512, 14, 52.3, 0.27),
        ("α = 0.75", "separable", 384, 384, 14, 29.6, 0.15),
        ("ρ = 0.714", "separable", 384, 384, 10, 15.1, 0.15),
    ]
    entries = []
    for label, kind, c_in, c_out, size, pub_macs, pub_params in layer_rows:
        t = count_layer(kind, c_in, c_out, size, bias=False)
        decimals = 0 if pub_macs == int(pub_macs) and pub_macs > 100 else 1
        entries.append((label, "Mult-Adds (M)", pub_macs, decimals, t["macs"] / 1e6,
                        f"{MACS}, {c_in}→{c_out} at {size}×{size}", ""))
        entries.append((label, "Parameters (M)", pub_params, 2, t["params"] / 1e6, "weights (no bias)", ""))
    out += table(HEADER, figure_rows(entries)) + [""]
    out += ["ρ = 0.714 is the 160/224 resolution multiplier: the 14×14 map becomes 10×10.", ""]

    # ---------------------------------------------------------------- other sources for V1
    out += ["### The same models in TF-Slim's and Keras's tables", ""]
    slim = ((1.0, 224, 569, 4.24), (1.0, 192, 418, 4.24), (1.0, 160, 291, 4.24), (1.0, 128, 186, 4.24),
            (0.75, 224, 317, 2.59), (0.5, 224, 150, 1.34), (0.25, 224, 41, 0.47))
    v075 = {r: count("v1", 0.75, r) for r in (224, 192, 160, 128)}
    without_stem = {r: (t["macs"] - stem_macs(t)) / 1e6 for r, t in v075.items()}
    slim_075 = {224: 317, 192: 233, 160: 162, 128: 104}
    entries = []
    for w, r, pub_macs, pub_params in slim:
        t = v1[w] if r == 224 else v1r[r]
        note = ""
        if (w, r) == (0.75, 224):
            stem_free = all(round(without_stem[res]) == pub for res, pub in slim_075.items())
            note = (f"the paper prints 325, which npconv reproduces; 317 is npconv's count without the first, full "
                    f"convolution ({without_stem[224]:.3f}M)"
                    + (", and so are the table's other 0.75 rows (233, 162, 104 at 192, 160, 128: npconv "
                       + ", ".join(f"{without_stem[res]:.2f}" for res in (192, 160, 128))
                       + "): the 0.75 rows leave the stem out" if stem_free else ""))
        if (w, r) == (0.5, 224):
            note = f"{t['macs'] / 1e6:.3f}M rounds to 149, as the paper prints: the last digit is off by one"
        tf_params = tf_checkpoint_params(t)
        entries.append((f"MobileNet_v1_{w:.2f}_{r}".replace("1.00", "1.0"), "MACs (M)", pub_macs, 0,
                        t["macs"] / 1e6, MACS, note))
        entries.append((f"MobileNet_v1_{w:.2f}_{r}".replace("1.00", "1.0"), "Parameters (M)", pub_params, 2,
                        tf_params / 1e6, TF_CKPT, ""))
    out += [f"{SLIM_V1} (\"Million MACs\", \"Million Parameters\"):", ""]
    out += table(HEADER, figure_rows(entries)) + [""]
    t = v1[1.0]
    extra_class = tf_checkpoint_params(t) - t["params_no_bn"] - t["bn_params"] // 2 - t["bn_params"]
    out += ["TF-Slim does not say what its parameter column counts. All its figures reproduce with what a "
            "TensorFlow checkpoint of the network stores if BatchNorm keeps one learned vector (β) and its two "
            "moving statistics per channel, with TF's 1001-way classifier (ImageNet plus a background class): "
            f"for 1.0, {t['params_no_bn']:,} weights and biases + {extra_class:,} for "
            f"the 1001st class + {t['bn_params'] // 2:,} β + {t['bn_params']:,} moving mean and variance = "
            f"{tf_checkpoint_params(t):,}. That is an inference from the numbers, not a documented convention; "
            f"npconv's own count, {t['params']:,} (all PyTorch parameters, 4.23M), differs from 4.24 in the "
            "last digit.", ""]
    entries = []
    for r in (224, 192, 160, 128):
        t = v1r[r]
        entries.append((f"1.0 MobileNet-{r}", "Multiply-Adds (M)", 529, 0, t["macs"] / 1e6, MACS,
                        "529 is printed for every resolution: a typo for 569 copied down the column"))
    out += [f"{KERAS}, which cites the paper:", ""]
    out += table(HEADER, figure_rows(entries)) + [""]

    # ---------------------------------------------------------------- MobileNetV2
    v2 = count("v2", 1.0)
    v2_14 = count("v2", 1.4)
    out += ["## MobileNetV2 (Sandler et al. 2018)", "",
            f"Source: {SANDLER}, Table 4 (\"As is common practice for ops, we count the total number of "
            "Multiply-Adds\"). npconv's `MobileNetV2` has torchvision's layout (channels rounded to multiples "
            "of 8, last conv 1280·max(1, α)).", ""]
    entries = [
        ("MobileNetV2", "MAdds (M)", 300, 0, v2["macs"] / 1e6, MACS,
         f"{v2['macs'] / 1e6:.3f}M rounds to {round(v2['macs'] / 1e6)}; 300 is the figure truncated (the "
         "\"~300M\" of the authors' README)"),
        ("MobileNetV2", "Params (M)", 3.4, 1, v2["params"] / 1e6, ALL,
         f"without BatchNorm {v2['params_no_bn'] / 1e6:.3f}M, also 3.5 rounded; 3.4 is 3.47 truncated "
         "(TF-Slim prints 3.47)"),
        ("MobileNetV2 (1.4)", "MAdds (M)", 585, 0, v2_14["macs"] / 1e6, MACS,
         "TF-Slim's table for the released 1.4 model prints 582, which npconv reproduces"),
        ("MobileNetV2 (1.4)", "Params (M)", 6.9, 1, v2_14["params"] / 1e6, ALL,
         f"without BatchNorm {v2_14['params_no_bn'] / 1e6:.3f}M; TF-Slim prints 6.06 (reproduced without "
         "BatchNorm); 6.9M matches no convention npconv counts"),
        ("MobileNetV1 (in this table)", "MAdds (M)", 575, 0, v1[1.0]["macs"] / 1e6, MACS,
         f"the V1 paper prints 569 for the same network; no combination of the operations npconv counts "
         f"gives 575 (MACs + BatchNorm scale/shift = "
         f"{(v1[1.0]['macs'] + v1[1.0]['other'].get('bn_scale_shift', 0)) / 1e6:.1f}M is the closest)"),
        ("MobileNetV1 (in this table)", "Params (M)", 4.2, 1, v1[1.0]["params"] / 1e6, ALL, ""),
    ]
    out += table(HEADER, figure_rows(entries)) + [""]
    entries = [
        ("mobilenet_v2_1.0_224", "MACs (M)", 300, 0, v2["macs"] / 1e6, MACS, "as in the paper"),
        ("mobilenet_v2_1.0_224", "Parameters (M)", 3.47, 2, v2["params_no_bn"] / 1e6, NO_BN, ""),
        ("mobilenet_v2_1.4_224", "MACs (M)", 582, 0, v2_14["macs"] / 1e6, MACS, ""),
        ("mobilenet_v2_1.4_224", "Parameters (M)", 6.06, 2, v2_14["params_no_bn"] / 1e6, NO_BN, ""),
    ]
    out += [f"{SLIM_V2}, the authors' released checkpoints:", ""]
    out += table(HEADER, figure_rows(entries)) + [""]

    fc_total = 2 * v2["macs"]
    entries = [
        ("mobilenet_v2", "num_params", 3504872, 0, float(v2["params"]), ALL, "exactly"),
        ("mobilenet_v2", "GFLOPS (docs 0.30, meta `_ops` 0.301)", 0.301, 3, v2["macs"] / 1e9,
         "conv + linear MACs, in 10⁹", ""),
    ]
    out += [f"{TORCHVISION}:", ""]
    out += table(HEADER, figure_rows(entries)) + [""]
    out += [f"torchvision's \"GFLOPS\" column is multiply-adds: {v2['macs']:,} MACs are 0.301·10⁹, while "
            f"FLOPs = 2·MACs = {fc_total:,} would be 0.602 — which is what PyTorch's own "
            "`torch.utils.flop_counter.FlopCounterMode` reports for this model (it counts 2 per "
            "multiply-add). The figures were added in [pytorch/vision#6936](https://github.com/pytorch/vision/"
            "pull/6936) with a counter built on a TorchDispatchMode FLOP counter; the numbers show it counted one "
            "per multiply-add. `npconv verify mobilenet_v2` checks counted MACs = FlopCounterMode / 2 layer by "
            "layer.", ""]

    # ---------------------------------------------------------------- the tutorial
    tiny = count("tiny")
    std224 = count_layer("conv", 3, 64, 224, bias=True)
    sep224 = count_layer("separable", 3, 64, 224, bias=True)
    out += ["## The tutorial's own figures", "",
            "The seed article (`../shared/seeds/000_7c752b858fef1f0f.txt`) prints figures for its examples. "
            "Its layers have biases (PyTorch's default); MACs per image.", ""]
    entries = [
        ("Conv2d(3, 64, 3, padding=1), 224×224", "参数量 (params)", 1728, 0, float(std224["weight_params"]),
         "weights only", f"{std224['params']:,} with the bias the code has"),
        ("Conv2d(3, 64, 3, padding=1), 224×224", "计算量 8.7亿 (MACs, 10⁸)", 8.7, 1, std224["macs"] / 1e8, MACS,
         f"{std224['macs']:,} MACs = 0.87亿: off by a factor of 10"),
        ("DepthwiseSeparableConv(3, 64, 3, padding=1)", "参数量 (params)", 75, 0, float(sep224["params"]), ALL,
         f"weights alone are {sep224['weight_params']:,} (27 depthwise + 192 pointwise)"),
        ("DepthwiseSeparableConv(3, 64, 3, padding=1), 224×224", "计算量 0.4亿 (MACs, 10⁸)", 0.4, 1,
         sep224["macs"] / 1e8, MACS, f"{sep224['macs']:,} MACs = 0.11亿"),
        ("TinyMobileNet()", "约0.5M参数 (params, M)", 0.5, 1, tiny["params"] / 1e6, ALL,
         f"{tiny['params']:,}: about a quarter of the claim"),
    ]
    for c_out, pub_params, pub_flops, pub_sep_params, pub_sep_flops in ((64, 18432, 201, 2176, 13),
                                                                        (128, 36864, 402, 4352, 26)):
        std = count_layer("conv", 32, c_out, 128, bias=True)
        sep = count_layer("separable", 32, c_out, 128, bias=True)
        label = f"32→{c_out}, 128×128"
        entries += [
            (f"standard {label}", "参数量 (params)", pub_params, 0, float(std["weight_params"]), "weights only",
             f"{std['params']:,} with the bias"),
            (f"standard {label}", "理论FLOPs (M)", pub_flops, 0, std["macs"] / 1e6, f"{MACS} per image",
             f"FLOPs = 2·MACs = {2 * std['macs'] / 1e6:,.0f}M per image, {8 * std['macs'] / 1e6:,.0f}M for "
             "the batch of 4 it times"),
            (f"depthwise separable {label}", "参数量 (params)", pub_sep_params, 0, float(sep["weight_params"]),
             "weights only", f"{sep['params']:,} with the biases"),
            (f"depthwise separable {label}", "理论FLOPs (M)", pub_sep_flops, 0, sep["macs"] / 1e6,
             f"{MACS} per image", f"FLOPs = {2 * sep['macs'] / 1e6:,.0f}M per image"),
        ]
    out += table(HEADER, figure_rows(entries)) + [""]
    out += ["Only the standard convolutions' weight counts survive; `npconv compare` recounts the first "
            "example with timings, and `npconv compare --in 32 --out 64 --size 128 --batch 4` the second.", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if docs/published_tables.md is out of date")
    mode.add_argument("--print", action="store_true", help="print the page instead of writing it")
    args = parser.parse_args(argv)
    text = page()
    if args.print:
        print(text, end="")
    elif args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python docs/published_tables.py", file=sys.stderr)
            return 1
    else:
        PAGE.write_text(text, encoding="utf-8")
        print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    np.seterr(all="raise")
    sys.exit(main())
