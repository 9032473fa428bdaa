"""npconv.summary and npconv.verify: counted == formula == FlopCounterMode / 2 == sum(numel)
per layer, totals from the papers' own layer tables, and `npconv verify` passing faithful
twins (that its node-by-node bound is not vacuous -- a perturbed weight, an output just outside
a node's bound, an exact op one ulp off are caught -- is shown in test_graph.py).

Expected numbers come from closed forms written here from Howard et al. 2017, Table 1, or
from published figures (torchvision's 3,504,872 parameters), never from npconv's output.
"""

import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from npconv import formulas, models, twins
from npconv.convert import from_torch
from npconv.nn import Conv2d
from npconv.strategies import conv2d_configs
from npconv.summary import summary
from npconv.tolerance import conv2d_error_bound
from npconv.bounds import F64_PER_F32, U32, both_sides
from npconv.graph.ops import OPS
from npconv.verify import verify_model

# the module, even once npconv/__init__.py exports the function `summary` under the same name
summary_module = importlib.import_module("npconv.summary")


# ----------------------------------------------------------------------------- counted == formula == FlopCounterMode


@st.composite
def small_networks(draw):
    """A torch Sequential: a drawn Conv2d (any padding mode, groups, dilation, stride), BatchNorm,
    ReLU or ReLU6, optionally a drawn ConvTranspose2d, AdaptiveAvgPool2d to a drawn size,
    Flatten, Linear. Returns (model, input shape)."""
    cfg = draw(conv2d_configs(allow_unbatched=False, max_size=8))
    layers = [torch.nn.Conv2d(cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=cfg.bias, **cfg.kwargs()),
              torch.nn.BatchNorm2d(cfg.out_channels),
              draw(st.sampled_from((torch.nn.ReLU, torch.nn.ReLU6)))()]
    channels = cfg.out_channels
    if draw(st.booleans()):
        groups = draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p = draw(st.integers(0, d * (k - 1) // 2))
        op = draw(st.integers(0, max(s, d) - 1))
        layers.append(torch.nn.ConvTranspose2d(channels, out, k, s, p, op, groups, draw(st.booleans()), d))
        channels = out
    pool = draw(st.integers(1, 3))
    layers += [torch.nn.AdaptiveAvgPool2d(pool), torch.nn.Flatten(),
               torch.nn.Linear(channels * pool * pool, draw(st.integers(1, 5)), bias=draw(st.booleans()))]
    return torch.nn.Sequential(*layers).eval(), cfg.input_shape


@given(small_networks())
def test_counted_equals_formula_flop_counter_and_numel(network):
    model, shape = network
    result = summary(from_torch(model), shape, torch_model=model)
    assert result.mismatches == []
    assert result.disagreements == []
    assert result.ok
    assert result.total["params"] == sum(p.numel() for p in model.parameters())
    assert result.total["macs"] == result.total["flop_counter_macs"]
    assert result.total["flops"] == 2 * result.total["macs"]
    assert all(row.formula is not None for row in result.rows)


def test_formula_mismatch_is_flagged(monkeypatch):
    """The check can fail: a formula off by one MAC is reported, row by row."""
    real = formulas.conv2d_macs
    monkeypatch.setattr(summary_module.formulas, "conv2d_macs", lambda *a, **k: real(*a, **k) + 1)
    result = summary(models.MobileNetBlock(8, 16, rng=0), (1, 8, 6, 6))
    assert not result.ok
    assert len(result.mismatches) == 2  # the depthwise and the pointwise convolution
    assert "macs counted" in result.mismatches[0]
    assert "MISMATCH" in result.to_markdown()


# ----------------------------------------------------------------------------- totals from the papers


def mobilenet_v1_by_hand(width: float, size: int) -> tuple[int, int]:
    """(MACs, parameters) of MobileNetV1 from Howard et al. 2017, Table 1, written out here:
    a 3x3 stride-2 stem, 13 depthwise separable blocks (BatchNorm after each conv, weight and
    bias per channel), a 1000-way Linear with bias. Output size of a 3x3 pad-1 conv: floor((H - 1) / s) + 1."""
    c = lambda n: int(n * width)  # noqa: E731
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    h = (size - 1) // 2 + 1
    macs = h * h * c(32) * 3 * 9
    params = c(32) * 27 + 2 * c(32)
    for cin, cout, stride in blocks:
        h = (h - 1) // stride + 1
        macs += h * h * c(cin) * 9 + h * h * c(cin) * c(cout)
        params += c(cin) * 9 + 2 * c(cin) + c(cin) * c(cout) + 2 * c(cout)
    macs += c(1024) * 1000
    params += c(1024) * 1000 + 1000
    return macs, params


@pytest.mark.parametrize("width, size", [(1.0, 224), (0.5, 160), (0.25, 32)])
def test_mobilenet_v1_totals_match_table_1(width, size):
    macs, params = mobilenet_v1_by_hand(width, size)
    result = summary(models.MobileNetV1(width, rng=0), (1, 3, size, size))
    assert result.ok
    assert (result.total["macs"], result.total["params"]) == (macs, params)


def test_mobilenet_v1_224_rounds_to_the_paper():
    """Table 6/8 of Howard et al. 2017: 569 million Mult-Adds, 4.2 million parameters."""
    result = summary(models.MobileNetV1(1.0, rng=0), (1, 3, 224, 224))
    assert round(result.total["macs"] / 1e6) == 569
    assert round(result.total["params"] / 1e6, 1) == 4.2


def test_mobilenet_v2_parameters_are_torchvisions():
    """torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 meta: num_params 3504872; "_ops" 0.301."""
    result = summary(models.MobileNetV2(rng=0), (1, 3, 64, 64))
    assert result.ok
    assert result.total["params"] == 3_504_872
    assert result.total["other"]["residual_adds"] > 0  # the residual adds are counted, on their blocks
    assert all(row.type == "InvertedResidual" for row in result.rows if row.counted.get("residual_adds"))


def test_summary_json_schema_and_conventions():
    result = summary(models.TinyMobileNet(rng=0), (2, 3, 32, 32)).as_dict()
    assert isinstance(result["total"]["params"], int) and isinstance(result["total"]["macs"], int)
    assert {"macs", "flops", "params", "weight_params", "bias_params", "bn_params", "padding_macs", "bytes"} \
        <= set(result["total"])
    layer = result["layers"][0]
    assert {"name", "type", "output_shape", "params", "macs", "formula_macs", "padding_macs", "counted", "bytes",
            "intensity"} <= set(layer)
    assert layer["name"] == "features.0" and layer["output_shape"] == [2, 32, 16, 16]
    # bytes of the stem: input 2*3*32*32, weights 32*3*3*3, output 2*32*16*16, float32
    assert layer["bytes"] == 4 * (2 * 3 * 32 * 32 + 32 * 27 + 2 * 32 * 16 * 16)
    assert "FLOPs" not in result["conventions"]["macs"] and result["conventions"]["flops"] == "2 * MACs"


def test_twins_have_npconvs_state_dict_keys():
    pairs = [
        (models.TinyMobileNet(rng=0), twins.build("TinyMobileNet", calibration_shape=(2, 3, 32, 32))),
        (models.MobileNetV1(0.25, rng=0), twins.build("MobileNetV1", 0.25, calibration_shape=(2, 3, 32, 32))),
        (models.MobileNetV2(0.5, rng=0), twins.build("MobileNetV2", width_mult=0.5, calibration_shape=(2, 3, 32, 32))),
        (models.HybridBlock(4, 8, rng=0), twins.build("HybridBlock", 4, 8)),
    ]
    for npconv_model, twin in pairs:
        ours = {k: v.shape for k, v in npconv_model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
        assert ours == theirs
        assert not twin.training


def test_twin_batchnorm_is_not_the_identity():
    twin = twins.build("MobileNetBlock", 8, 16, calibration_shape=(2, 8, 10, 10))
    bn = twin.dw_conv[1]
    assert not torch.allclose(bn.running_var, torch.ones(8)) and not torch.allclose(bn.running_mean, torch.zeros(8))
    assert not torch.allclose(bn.weight, torch.ones(8))


# ----------------------------------------------------------------------------- the verify bound


def test_single_conv_bound_matches_the_core_tolerance():
    """The graph's convolution bound is the core issue's conv2d bound: b32 <= that <= b32 + b64."""
    rng = np.random.default_rng(3)
    layer = Conv2d(6, 4, 3, stride=2, padding=1, groups=2, rng=1).double()
    x = rng.standard_normal((2, 6, 9, 9))
    e32 = OPS["aten.convolution.default"].bound(np.float32, x, layer.weight, layer.bias, (2, 2), (1, 1), (1, 1),
                                                 False, (0, 0), 2)
    tol, _, _ = conv2d_error_bound(x, layer.weight, layer.bias, 2, 1, 1, 2, dtype=np.float32)
    assert np.all(e32 <= tol) and np.all(tol <= e32 * both_sides(U32)) and both_sides(U32) == 1 + F64_PER_F32


@st.composite
def small_twins(draw):
    kind = draw(st.sampled_from(["HybridBlock", "InvertedResidual", "MobileNetBlock", "DepthwiseSeparableConv"]))
    c_in = draw(st.integers(1, 6))
    c_out = draw(st.integers(1, 6))
    size = draw(st.integers(3, 9))  # >= the 3x3 kernel of an unpadded DepthwiseSeparableConv
    seed = draw(st.integers(0, 2**16))
    if kind == "InvertedResidual":
        stride = draw(st.sampled_from([1, 2]))
        args = (c_in, draw(st.sampled_from([c_in, c_out])), stride, draw(st.sampled_from([1, 2, 6])))
    elif kind == "DepthwiseSeparableConv":
        args = (c_in, c_out, draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1)))
    elif kind == "MobileNetBlock":
        args = (c_in, c_out, draw(st.sampled_from([1, 2])))
    else:
        args = (c_in, c_out)
    shape = (draw(st.integers(1, 2)), c_in, size, size)
    return twins.build(kind, *args, seed=seed, calibration_shape=(2,) + shape[1:]), shape, seed


@given(small_twins())
def test_verify_passes_for_faithful_twins(case):
    twin, shape, seed = case
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    report = verify_model(twin, x, timing=False)
    assert report.failures == []
    assert len(report.checks32) == len(report.checks64) == len(report.graph.nodes) > 0
