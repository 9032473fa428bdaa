"""The tutorial's blocks, ShuffleNetV2's unit, TinyMobileNet, MobileNetV1 and MobileNetV2 against
their PyTorch twins.

Twins: reference_tests/torch_twins.py (the tutorial's classes, restored token for token,
and a PyTorch MobileNetV1) and reference_tests/torchvision_twin.py (torchvision's
MobileNetV2, transcribed). npconv's models are built with the same constructor arguments and
load the twin's `state_dict()` unchanged; weights and running statistics are random
(twin_utils.randomize_), drawn by Hypothesis.

How outputs are compared (derivations in error_bounds.py). Both comparisons run npconv's
model's own forward, each layer replaced by its bound (or its check) for the call: the data
flow is the model's, restated nowhere (error_bounds.py's docstring;
`test_bounds_follow_the_models_own_forward_and_leave_it_unchanged`).

* Blocks (DepthwiseSeparableConv, MobileNetBlock, InvertedResidual, HybridBlock, and
  ShuffleNetV2's unit against npconv.twins_shufflenet's torchvision class), in
  evaluation and training mode: the a-priori bound, every layer's rounding bound propagated
  through the block on magnitudes (a conv passes an input error E on as conv(E, |w|), a
  BatchNorm as |gamma / sqrt(var + eps)| E, ...). Both npconv's and torch's outputs must lie
  within it of npconv's float64 result, and the bound must be below a tenth of the outputs'
  scale (twin_utils.assert_not_vacuous), so the comparison can fail. In training mode every
  BatchNorm's running statistics after the
  step are checked too (layer by layer, below).

* Whole networks: the same a-priori bound is rigorous but useless there. Propagating
  worst-case errors through |w| multiplies them by about sum|w| ~ sqrt(fan_in) per layer
  instead of the ~1 by which actual errors grow, and over MobileNetV2's 53 convolutions this
  compounds: at width 0.25 and 64 x 64 the bound was 4.7e29 times the largest output in
  float32 (1.5e21 in float64); MobileNetV1 at 224 gave 3e18. So networks are checked layer
  by layer, a posteriori: each implementation's run is recorded (every leaf's input and
  output, via forward hooks), and for every leaf the recorded output must lie within that
  layer's own rounding bound evaluated at the input it actually received; every recorded
  input must be where the previous leaves' recorded outputs put it (identical, or within
  the bound of the glue between them: a residual add, MobileNetV2's functional pooling);
  the final output must be the last leaf's. Every leaf's bound must be below a tenth of
  its outputs' scale. A wrong layer anywhere fails at that layer, named. The end-to-end difference
  between npconv and torch is then a composition of checked roundings; it is reported,
  not bounded.

Also: parameter counts equal sum(p.numel()) of the twin (and torchvision's published
3,504,872 for MobileNetV2 1.0; Howard et al.'s 4.2 million parameters and 569 million
mult-adds for MobileNetV1 1.0 at 224, to the paper's precision); counted work per layer
name equals the closed forms at the shapes the twin's own hooks record, so the names in
`tally.by_layer` are PyTorch's; errors for bad input name the layer or key.
"""

import math

import numpy as np
import pytest
import torch
import torch_twins as tt
import torchvision_twin as tv
from conftest import DEVICES
from error_bounds import Bounded, check_layer_by_layer, propagate
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twin_utils import one_torch_thread, assert_bounded, assert_not_vacuous, observe_npconv, observe_torch, randomize_

import npconv
from npconv import channels, formulas, models, nn, ops
from npconv.models import mobilenet_v2
from npconv.models.shufflenet_v2 import ShuffleNetV2Unit
from npconv.nn.hooks import hooked
from npconv.twins_shufflenet import twin_classes

FLOATS = [np.float32, np.float64]
_ = one_torch_thread  # autouse fixture: torch single-threaded in this module
# Whole networks cost ~1 s an example: a fifth of the profile's examples (at least 3).
FEWER = max(3, settings().max_examples // 5)


def _pair(twin_cls, ours_cls, args, seed, dtype, train):
    """A randomized twin and npconv's model built with the same arguments, loaded from the
    twin's state_dict (the "loads unchanged" property), both in the same mode."""
    rng = np.random.default_rng(seed)
    twin = randomize_(twin_cls(*args), rng, dtype).train(train)
    ours = ours_cls(*args).to(dtype)  # first: loading converts to the parameters' dtype
    ours.load_state_dict(twin.state_dict())
    ours.train(train)
    return twin, ours


def _check_runs(twin, ours, x, dtype, device, train, a_priori: bool):
    """Run both, then check both: a-priori bound (blocks) and layer by layer (always)."""
    before = dict(ours.state_dict())
    if a_priori:
        bound = propagate(ours, Bounded.exact(x), dtype)
        assert_not_vacuous(bound, type(ours).__name__)
    y_torch, seen_torch = observe_torch(twin, x, device)
    y_ours, seen_ours = observe_npconv(ours, x)
    if a_priori:
        assert_bounded(y_ours, bound, f"npconv {type(ours).__name__}")
        assert_bounded(y_torch, bound, f"torch {type(twin).__name__}")
    for who, y, seen in (("torch", y_torch, seen_torch), ("npconv", y_ours, seen_ours)):
        checked = check_layer_by_layer(ours, x, y, seen, dtype, who, state_before=before)
        assert checked == [name for name, m in ours.named_modules() if next(m.children(), None) is None]
    if train:
        for key, value in seen_ours.state_after.items():
            if key.endswith("num_batches_tracked"):
                assert int(value) == int(seen_torch.state_after[key]) == int(before[key]) + 1, key
    return y_torch, y_ours


# ----------------------------------------------------------------------------- blocks


@st.composite
def blocks(draw):
    kind = draw(st.sampled_from(["DepthwiseSeparableConv", "MobileNetBlock", "InvertedResidual", "HybridBlock"]))
    cin, cout = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if kind == "DepthwiseSeparableConv":
        k = draw(st.integers(1, 4))
        args = (cin, cout, k, draw(st.integers(1, 3)), draw(st.integers(0, 2)))
        min_size = max(1, k - 2 * args[4])
    elif kind == "MobileNetBlock":
        args, min_size = (cin, cout, draw(st.integers(1, 2))), 1
    elif kind == "InvertedResidual":
        cout = draw(st.sampled_from([cin, cout]))  # often the residual case
        args, min_size = (cin, cout, draw(st.integers(1, 2)), draw(st.sampled_from([1, 2, 6]))), 1
    else:
        args, min_size = (cin, cout), 1
    return kind, args, min_size


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", FLOATS)
@given(block=blocks(), data=st.data())
def test_block_matches_torch(device, dtype, train, block, data):
    kind, args, min_size = block
    H, W = data.draw(st.integers(min_size, 9)), data.draw(st.integers(min_size, 9))
    N = data.draw(st.integers(2 if train else 1, 3))  # training: more than one value per channel
    if train:   # the strided convolution's (kernel, stride, padding), before the BatchNorm that sees least
        strided = ((args[2], args[3], args[4]) if kind == "DepthwiseSeparableConv"
                   else (3, 2, 1) if kind == "HybridBlock" else (3, args[2], 1))
        assume(_enough_for_batch_statistics(N, H, W, *strided))
    twin, ours = _pair(getattr(tt, kind), getattr(models, kind), args, data.draw(st.integers(0, 2**32 - 1)),
                       dtype, train)
    assert sum(p.size for p in ours.parameters()) == sum(p.numel() for p in twin.parameters())
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal((N, args[0], H, W)).astype(dtype)
    _check_runs(twin, ours, x, dtype, device, train, a_priori=True)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", FLOATS)
@given(stride=st.integers(1, 3), half=st.integers(1, 3), inp=st.integers(1, 6), data=st.data())
def test_shufflenet_unit_matches_torch(dtype, train, stride, half, inp, data):
    """ShuffleNetV2's unit (split, branches, concatenation, shuffle) against torchvision's, as
    the blocks above. The bounds follow the unit's own forward (error_bounds' docstring):
    nothing in error_bounds names the unit."""
    args = (2 * half if stride == 1 else inp, 2 * half, stride)
    twin, ours = _pair(twin_classes()["ShuffleNetV2Unit"], ShuffleNetV2Unit, args,
                       data.draw(st.integers(0, 2**32 - 1)), dtype, train)
    H, W = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    N = data.draw(st.integers(2 if train else 1, 3))
    if train:
        assume(_enough_for_batch_statistics(N, H, W, kernel=3, stride=stride, padding=1))
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal((N, args[0], H, W)).astype(dtype)
    _check_runs(twin, ours, x, dtype, "cpu", train, a_priori=True)


def _enough_for_batch_statistics(N, H, W, kernel, stride, padding) -> bool:
    """Whether a training BatchNorm after a (kernel, stride, padding) convolution of an
    (N, C, H, W) input sees at least 4 values per channel. With 2 (a batch of 2 at 1x1), each
    output is +-(a - b) / 2 / sqrt((a - b)^2 / 4 + eps), and an error in a or b is amplified by
    1 / |a - b|: the a-priori bound says so and proves little when a and b are close, as the
    thorough profile found (test_the_a_priori_bound_is_vacuous_on_two_values_per_channel)."""
    out_h, out_w = ((size + 2 * padding - kernel) // stride + 1 for size in (H, W))
    return N * out_h * out_w >= 4


def test_the_a_priori_bound_is_vacuous_on_two_values_per_channel():
    """The falsifying example of test_shufflenet_unit_matches_torch (thorough profile): a
    stride-3 unit on a 2x3 input, batch 2, training, so every BatchNorm of the strided
    branches sees 2 values per channel. The propagated bound is right but a fifth of the
    output's scale (vacuous); the layer-by-layer checks still hold. The property now draws
    inputs with at least 4 values per channel in training (`_enough_for_batch_statistics`)."""
    args = (6, 4, 3)
    twin, ours = _pair(twin_classes()["ShuffleNetV2Unit"], ShuffleNetV2Unit, args, 100000001, np.float32, True)
    x = np.random.default_rng(2464).standard_normal((2, 6, 2, 3)).astype(np.float32)
    assert not _enough_for_batch_statistics(2, 2, 3, kernel=3, stride=3, padding=1)
    bound = propagate(ours, Bounded.exact(x), np.float32)
    with pytest.raises(AssertionError, match="is not small against"):
        assert_not_vacuous(bound, "ShuffleNetV2Unit")
    _check_runs(twin, ours, x, np.float32, "cpu", True, a_priori=False)


class _Doubling(nn.Module):
    """A container computing an op the bounds do not know (x * 2) on its child's output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, rng=0)

    def forward(self, x):
        return self.conv(x) * 2


def test_bounds_follow_the_models_own_forward_and_leave_it_unchanged():
    """propagate runs the model's forward with its leaves and glue replaced for the call only:
    afterwards no module keeps a replaced forward, the glue functions are the originals, the
    state is unchanged and the model still computes arrays. An op outside the bounds' glue, on
    the carried value, fails instead of passing the value on unbounded."""
    originals = (ops.add, ops.flatten, ops.adaptive_avg_pool2d, ops.channel_shuffle, channels.split_channels,
                 channels.cat_channels, ShuffleNetV2Unit.forward.__globals__["cat_channels"],
                 ShuffleNetV2Unit.forward.__globals__["split_channels"])
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    for model in (models.MobileNetV2(0.25, 4, rng=0).eval(), ShuffleNetV2Unit(3, 4, 2, rng=0).eval()):
        before = model.state_dict()
        bound = propagate(model, Bounded.exact(x), np.float32)
        assert all("forward" not in m.__dict__ for m in model.modules())
        assert (ops.add, ops.flatten, ops.adaptive_avg_pool2d, ops.channel_shuffle, channels.split_channels,
                channels.cat_channels, ShuffleNetV2Unit.forward.__globals__["cat_channels"],
                ShuffleNetV2Unit.forward.__globals__["split_channels"]) == originals
        assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())
        y = model(x)
        assert isinstance(y, np.ndarray) and y.shape == bound.value.shape
        assert_bounded(y, bound, type(model).__name__)
    doubling = _Doubling()
    with pytest.raises(TypeError, match="Bounded"):
        propagate(doubling, Bounded.exact(x[:, :2]), np.float32)
    assert all("forward" not in m.__dict__ for m in doubling.modules()) and ops.add is originals[0]
    assert doubling(x[:, :2]).shape == (2, 2, 32, 32)


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", FLOATS)
@settings(max_examples=FEWER)
@given(data=st.data())
def test_tiny_mobilenet_matches_torch_layer_by_layer(device, dtype, train, data):
    num_classes = data.draw(st.integers(1, 12))
    twin, ours = _pair(tt.TinyMobileNet, models.TinyMobileNet, (num_classes,), data.draw(st.integers(0, 2**32 - 1)),
                       dtype, train)
    assert sum(p.size for p in ours.parameters()) == sum(p.numel() for p in twin.parameters())
    H, W = data.draw(st.integers(8, 40)), data.draw(st.integers(8, 40))
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal((2, 3, H, W)).astype(dtype)
    _check_runs(twin, ours, x, dtype, device, train, a_priori=False)


NETWORKS = {
    "MobileNetV1": (tt.MobileNetV1, models.MobileNetV1, lambda w, k: (w, k)),
    # torchvision's constructor takes num_classes first; npconv's width_mult first (the order)
    "MobileNetV2": (lambda w, k: tv.MobileNetV2(num_classes=k, width_mult=w), models.MobileNetV2,
                    lambda w, k: (w, k)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(NETWORKS))
@settings(max_examples=FEWER)
@given(data=st.data())
def test_mobilenet_matches_torch_layer_by_layer(name, dtype, train, device, data):
    make_twin, ours_cls, args = NETWORKS[name]
    width = data.draw(st.sampled_from([0.25, 0.35, 0.5]))
    classes = data.draw(st.integers(1, 20))
    size = data.draw(st.sampled_from([32, 48, 64]))
    twin, ours = _pair(make_twin, ours_cls, args(width, classes), data.draw(st.integers(0, 2**32 - 1)), dtype, train)
    if name == "MobileNetV2" and train:
        twin.classifier[0].p = ours.classifier[0].p = 0.0  # dropout masks cannot be matched
    assert sum(p.size for p in ours.parameters()) == sum(p.numel() for p in twin.parameters())
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal((2, 3, size, size)).astype(dtype)
    _check_runs(twin, ours, x, dtype, device, train, a_priori=False)


@pytest.mark.parametrize("name, width, size, seeds", [("MobileNetV1", 0.35, 32, (56790203, 1)),
                                                      ("MobileNetV2", 0.25, 64, (586, 586))])
def test_a_single_class_whose_logit_cancels(name, width, size, seeds):
    """Found by the thorough profile (regression test): with one class the classifier's
    single output summed 1,025 or 1,281 products into 0.0005-0.02, far below the sum of
    their magnitudes, so its rounding bound, a multiple of that magnitude as any a-priori
    bound of a sum is, was more than the tenth of |values| that `check_layer_by_layer`
    required of every leaf. Both implementations were within the bound."""
    make_twin, ours_cls, args = NETWORKS[name]
    twin, ours = _pair(make_twin, ours_cls, args(width, 1), seeds[0], np.float32, False)
    x = np.random.default_rng(seeds[1]).standard_normal((2, 3, size, size)).astype(np.float32)
    _check_runs(twin, ours, x, np.float32, "cpu", False, a_priori=False)


def test_full_size_224_layer_by_layer():
    """Once at the size the networks were designed for (float32, batch 1, evaluation), each
    1.0-width network checked layer by layer against its twin. The slowest test here."""
    for make_twin, ours_cls, args in NETWORKS.values():
        twin, ours = _pair(make_twin, ours_cls, args(1.0, 1000), 224, np.float32, False)
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        _check_runs(twin, ours, x, np.float32, "cpu", False, a_priori=False)


# ----------------------------------------------------------------------------- sizes and counts


def test_published_parameter_and_mult_add_counts():
    """MobileNetV2 1.0: 3,504,872 parameters (torchvision docs, MobileNet_V2_Weights.IMAGENET1K_V1)
    and ~300M mult-adds (Sandler et al. 2018, Table 4: "300M"); MobileNetV1 1.0-224: 4.2
    million parameters and 569 million mult-adds (Howard et al. 2017, Table 8), compared to
    the precision the papers print. Mult-adds are counted by running the reference kernels
    (convolutions and the classifier)."""
    v2 = models.MobileNetV2()
    assert sum(p.size for p in v2.parameters()) == 3_504_872
    assert sum(p.numel() for p in tv.MobileNetV2().parameters()) == 3_504_872  # the twin is torchvision's
    v1 = models.MobileNetV1()
    assert round(sum(p.size for p in v1.parameters()) / 1e5) == 42
    x = np.zeros((1, 3, 224, 224), np.float32)
    with npconv.count() as tally:
        v1.eval()(x)
    assert round(tally.macs / 1e6) == 569
    with npconv.count() as tally:
        v2.eval()(x)
    assert round(tally.macs / 1e7) == 30


def _leaf_shapes(twin, x):
    """Qualified name -> (input shape, output shape) of every leaf, recorded by torch hooks."""
    shapes = {}

    def record(name, mod, args, out):
        shapes[name] = (tuple(args[0].shape), tuple(out.shape))

    with hooked(twin, post=record, leaves_only=True), torch.no_grad():
        twin(torch.from_numpy(x))
    return shapes


@pytest.mark.parametrize("name", ["TinyMobileNet", "MobileNetV1", "MobileNetV2"])
def test_counts_per_layer_use_pytorchs_names_and_equal_the_closed_forms(name):
    """For every leaf, named as torch names it: conv MACs = N*C_out*OH*OW*(C_in/g)*k*k
    (formulas.conv2d_macs) at the shapes torch's hooks record, BatchNorm N*C*H*W scale-shifts,
    ReLU6 two compares per element, pooling one add per input element, Linear N*in*out MACs;
    a residual block's own name holds its N*C*H*W residual adds; nothing else is counted."""
    if name == "TinyMobileNet":
        twin, ours = tt.TinyMobileNet(), models.TinyMobileNet()
    elif name == "MobileNetV1":
        twin, ours = tt.MobileNetV1(0.5, 7), models.MobileNetV1(0.5, 7)
    else:
        twin, ours = tv.MobileNetV2(num_classes=7, width_mult=0.5), models.MobileNetV2(0.5, 7)
    twin.eval(), ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 36)).astype(np.float32)
    shapes = _leaf_shapes(twin, x)
    with npconv.count() as tally:
        ours(x)
    expected = {}
    for layer, m in twin.named_modules():
        if layer not in shapes:
            continue
        (shape_in, shape_out), size_in = shapes[layer], math.prod(shapes[layer][0])
        if isinstance(m, torch.nn.Conv2d):
            N, C_in = shape_in[:2]
            expected[layer] = dict(macs=formulas.conv2d_macs(N, C_in, m.out_channels, shape_out[2:], m.kernel_size,
                                                             m.groups))
        elif isinstance(m, torch.nn.BatchNorm2d):
            expected[layer] = dict(bn_scale_shift=size_in)
        elif isinstance(m, torch.nn.ReLU6):
            expected[layer] = dict(activation_compares=2 * size_in)
        elif isinstance(m, torch.nn.AdaptiveAvgPool2d):
            expected[layer] = dict(pool_adds=size_in, pool_divides=math.prod(shape_out))
        elif isinstance(m, torch.nn.Linear):
            expected[layer] = dict(macs=shape_in[0] * m.in_features * m.out_features,
                                   bias_adds=shape_out[0] * shape_out[1])
    for layer, m in ours.named_modules():
        if isinstance(m, mobilenet_v2.InvertedResidual) and m.use_res_connect:
            last = shapes[f"{layer}.conv.{len(m.conv) - 1}"][1]  # the block's output shape
            expected[layer] = dict(residual_adds=math.prod(last))
    counted = {layer: {k: v for k, v in c.as_dict().items() if v and k not in ("calls", "padding_macs")}
               for layer, c in tally.by_layer.items()}
    root = counted.pop("", {})
    if name == "MobileNetV2":  # its forward pools functionally, at the root
        assert root == dict(pool_adds=math.prod(shapes["features.18.2"][1]), pool_divides=2 * ours.last_channel)
    else:
        assert root == {}
    counted = {layer: c for layer, c in counted.items() if c}  # Dropout and Identity count nothing in evaluation
    assert counted == expected
    if name == "TinyMobileNet":
        assert "features.3.dw_conv.0" in tally.by_layer  # the example name


# ----------------------------------------------------------------------------- state_dict


@pytest.mark.parametrize("name", ["TinyMobileNet", "MobileNetV1", "MobileNetV2"])
def test_state_dict_keys_equal_the_twins(name):
    twin = {"TinyMobileNet": tt.TinyMobileNet, "MobileNetV1": tt.MobileNetV1, "MobileNetV2": tv.MobileNetV2}[name]()
    ours = getattr(models, name)()
    assert list(ours.state_dict()) == list(twin.state_dict())
    assert [k for k, _ in ours.named_modules()] == [k for k, _ in twin.named_modules()]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()}
    ours.load_state_dict(twin.state_dict())
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


def test_mismatched_or_incomplete_state_dict_names_the_key():
    ours = models.MobileNetV2(1.0)
    wider = tv.MobileNetV2(width_mult=1.4).state_dict()
    with pytest.raises(ValueError, match=r"size mismatch for features\.0\.0\.weight: copying a param with shape "
                                         r"\[48, 3, 3, 3\]"):
        ours.load_state_dict(wider)
    state = tv.MobileNetV2().state_dict()
    del state["features.17.conv.1.0.weight"]
    with pytest.raises(ValueError, match=r'Missing key\(s\) in state_dict: "features\.17\.conv\.1\.0\.weight"'):
        ours.load_state_dict(state)
    v1 = tt.MobileNetV1().state_dict()
    with pytest.raises(ValueError, match=r'Unexpected key\(s\) in state_dict: "features\.1\.dw_conv\.0\.weight"'):
        ours.load_state_dict(v1)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make", [models.TinyMobileNet, lambda: models.MobileNetV1(0.25),
                                  lambda: models.MobileNetV2(0.25)])
def test_bad_input_errors_name_the_layer(make):
    model = make().eval()
    stem = "features.0.0" if not isinstance(model, models.TinyMobileNet) else "features.0"
    with pytest.raises(ValueError, match=rf"layer '{stem}' \(Conv2d\): .*to have 3 channels, but got 4 channels"):
        model(np.zeros((1, 4, 32, 32), np.float32))
    # Conv2d takes an unbatched (C, H, W) input, as in torch; the BatchNorm2d after it does not
    with pytest.raises(ValueError,
                       match=r"layer 'features\.(1|0\.1)' \(BatchNorm2d\): expected 4D input \(got 3D input\)"):
        model(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=rf"layer '{stem}' \(Conv2d\): .*Expected 3D \(unbatched\) or 4D"):
        model(np.zeros((1, 1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=rf"layer '{stem}' \(Conv2d\): .*Kernel size can't be greater"):
        model(np.zeros((1, 3, 0, 32), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        model(np.zeros((1, 3, 32, 32), np.int64))


@pytest.mark.parametrize("name", ["MobileNetV1", "MobileNetV2"])
def test_input_too_small_for_the_downsampling_names_the_batch_norm_like_torch(name):
    """Both networks downsample by 32. In training, a batch of one image of at most 32 x 32
    leaves the last feature maps 1 x 1: one value per channel, which BatchNorm cannot
    normalise (torch raises too). Evaluation runs, as in torch."""
    make_twin, ours_cls, args = NETWORKS[name]
    twin, ours = make_twin(*args(0.25, 10)), ours_cls(*args(0.25, 10))
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        twin.train()(torch.from_numpy(x))
    # 32 -> 16 (stem) -> ... -> 2 -> 1 at the last stride-2 depthwise conv, whose BatchNorm fails first
    last_bn = {"MobileNetV1": r"features\.12\.dw_conv\.1", "MobileNetV2": r"features\.14\.conv\.1\.1"}[name]
    with pytest.raises(ValueError, match=rf"layer '{last_bn}' \(BatchNorm2d\): Expected more than 1 value per channel "
                                         r"when training, got input size \[1, \d+, 1, 1\]"):
        ours.train()(x)
    assert ours.eval()(x).shape == (1, 10)


def test_hybrid_block_too_small_and_separable_conv_without_padding_name_the_layer():
    with pytest.raises(ValueError, match=r"layer 'depthwise' \(Conv2d\): .*Kernel size can't be greater"):
        models.DepthwiseSeparableConv(3, 4, 3)(np.zeros((1, 3, 2, 2), np.float32))
    block = models.HybridBlock(3, 4)
    assert block(np.zeros((1, 3, 1, 1), np.float32)).shape == (1, 4, 1, 1)  # as torch: 1 -> 1 -> 1 -> 1
