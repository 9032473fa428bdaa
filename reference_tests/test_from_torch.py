"""npconv.convert.from_torch: PyTorch module trees -> npconv module trees with the same weights.

What is proved:
* Random Sequential trees of every supported torch.nn layer (drawn by Hypothesis, nested
  Sequentials, random weights and statistics, train or eval) convert to trees with the same
  module names, state_dict (bit for bit, in the torch module's dtype) and modes, whose
  outputs agree with torch's within the a-priori bound of error_bounds.py and layer by
  layer (test_models.py explains both).
* The tutorial's classes, the PyTorch MobileNetV1 and torchvision's MobileNetV2 convert to
  npconv's own classes (so their forward, residuals included, is npconv's), with the same
  state_dict; the converted networks agree with torch layer by layer.
* Anything else raises UnsupportedModuleError (a TypeError) naming the layer's type and its
  qualified path, and no model is returned: layers npconv lacks, subclasses of supported
  layers (they may change forward), known class names with other children, modules with
  forward hooks, mixed or unsupported dtypes.
* Importing npconv, npconv.nn, npconv.models and npconv.convert does not import torch.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch_twins as tt
import torchvision_twin as tv
from conftest import DEVICES
from error_bounds import Bounded, check_layer_by_layer, propagate
from hypothesis import given, settings
from hypothesis import strategies as st
from twin_utils import assert_bounded, numpy, observe_npconv, observe_torch, one_torch_thread, randomize_

from npconv import models
from npconv.convert import UnsupportedModuleError, from_torch
from npconv.models import mobilenet_v2

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module


# ----------------------------------------------------------------------------- random trees


@st.composite
def torch_trees(draw, channels, depth=0, min_size=2):
    """A torch.nn.Sequential of supported layers mapping `channels` input channels to a
    spatial output, for inputs at least min_size x min_size; returns (tree, output channels,
    smallest output size). Nested Sequentials up to depth 2."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "dwconv", "tconv", "bn", "relu", "relu6", "identity", "shuffle",
                                     "dropout", "seq"] if depth < 2 else
                                    ["conv", "bn", "relu6", "identity"]))
        if kind == "conv":
            out = draw(st.integers(1, 5))
            # reflect padding must be narrower than the input
            mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"] if min_size >= 2 else
                                        ["zeros", "replicate", "circular"]))
            layers.append(torch.nn.Conv2d(channels, out, 3, padding=1, bias=draw(st.booleans()), padding_mode=mode))
            channels = out
        elif kind == "dwconv":
            stride = draw(st.integers(1, 2))
            layers.append(torch.nn.Conv2d(channels, 2 * channels, 3, stride=stride, padding=1,
                                          groups=channels, bias=False))
            channels *= 2
            min_size = -(-min_size // stride)
        elif kind == "tconv":
            out = draw(st.integers(1, 4))
            layers.append(torch.nn.ConvTranspose2d(channels, out, 2, stride=2))
            channels = out
            min_size *= 2
        elif kind == "bn":
            layers.append(torch.nn.BatchNorm2d(channels, momentum=draw(st.sampled_from([0.1, None])),
                                               affine=draw(st.booleans())))
        elif kind == "relu":
            layers.append(torch.nn.ReLU(inplace=draw(st.booleans())))
        elif kind == "relu6":
            layers.append(torch.nn.ReLU6(inplace=draw(st.booleans())))
        elif kind == "identity":
            layers.append(torch.nn.Identity())
        elif kind == "shuffle":
            layers.append(torch.nn.ChannelShuffle(draw(st.sampled_from([g for g in range(1, channels + 1)
                                                                        if channels % g == 0]))))
        elif kind == "dropout":
            layers.append(torch.nn.Dropout(0.0))  # p = 0: the same in train mode, for any mask
        else:
            tree, channels, min_size = draw(torch_trees(channels, depth + 1, min_size))
            layers.append(tree)
    return torch.nn.Sequential(*layers), channels, min_size


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_random_trees_convert_with_their_weights_and_agree_with_torch(device, dtype, data):
    channels = data.draw(st.integers(1, 4))
    tree, out_channels, _ = data.draw(torch_trees(channels))
    head = data.draw(st.booleans())
    if head:  # the classifier end: pool, flatten, linear
        pooled = data.draw(st.integers(1, 2))
        tree = torch.nn.Sequential(tree, torch.nn.AdaptiveAvgPool2d(pooled), torch.nn.Flatten(),
                                   torch.nn.Linear(out_channels * pooled * pooled, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    train = data.draw(st.booleans())
    randomize_(tree, rng, dtype).train(train)
    if device != "cpu":
        tree.to(device)  # conversion reads the weights from the device
    ours = from_torch(tree)
    tree.to("cpu")
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in tree.named_modules()]
    assert [m.training for m in ours.modules()] == [m.training for m in tree.modules()]
    for key, value in tree.state_dict().items():
        mine = ours.state_dict()[key]
        assert mine.dtype == numpy(value).dtype
        np.testing.assert_array_equal(mine, numpy(value))
    x = rng.standard_normal((2, channels, data.draw(st.integers(2, 6)), data.draw(st.integers(2, 6)))).astype(dtype)
    before = dict(ours.state_dict())
    bound = propagate(ours, Bounded.exact(x), dtype)
    y_torch, seen_torch = observe_torch(tree, x, device)
    y_ours, seen_ours = observe_npconv(ours, x)
    # the a-priori bound is rigorous, though loose for the deeper trees; layer by layer, each
    # leaf's bound is required to be meaningful (a tenth of its outputs' scale at most)
    assert_bounded(y_torch, bound, "torch tree")
    assert_bounded(y_ours, bound, "converted tree")
    check_layer_by_layer(ours, x, y_torch, seen_torch, dtype, "torch", state_before=before)
    check_layer_by_layer(ours, x, y_ours, seen_ours, dtype, "npconv", state_before=before)


# ----------------------------------------------------------------------------- named classes


def _classes():
    return [
        ("DepthwiseSeparableConv", lambda: tt.DepthwiseSeparableConv(4, 6, 3, 2, 1), models.DepthwiseSeparableConv, 4),
        ("MobileNetBlock", lambda: tt.MobileNetBlock(4, 8, 2), models.MobileNetBlock, 4),
        ("InvertedResidual", lambda: tt.InvertedResidual(4, 4, 1, 6), models.InvertedResidual, 4),
        ("HybridBlock", lambda: tt.HybridBlock(3, 5), models.HybridBlock, 3),
        ("TinyMobileNet", lambda: tt.TinyMobileNet(7), models.TinyMobileNet, 3),
        ("MobileNetV1", lambda: tt.MobileNetV1(0.25, 5), models.MobileNetV1, 3),
        ("MobileNetV2", lambda: tv.MobileNetV2(num_classes=5, width_mult=0.35), models.MobileNetV2, 3),
    ]


@pytest.mark.parametrize("name, make, cls, channels", _classes(), ids=[c[0] for c in _classes()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=max(3, settings().max_examples // 5))
@given(seed=st.integers(0, 2**32 - 1), train=st.booleans())
def test_known_classes_convert_to_npconvs_classes_and_agree_layer_by_layer(name, make, cls, channels, dtype, seed,
                                                                            train):
    rng = np.random.default_rng(seed)
    twin = randomize_(make(), rng, dtype).train(train)
    if isinstance(twin, tv.MobileNetV2):
        twin.classifier[0].p = 0.0  # dropout masks cannot be matched
    ours = from_torch(twin)
    assert type(ours) is cls
    if name == "MobileNetV2":
        assert type(ours.features[2]) is mobilenet_v2.InvertedResidual
        assert type(ours.features[0]) is mobilenet_v2.Conv2dNormActivation
        assert ours.features[3].use_res_connect and not ours.features[2].use_res_connect  # 24->24 s1; 16->24 s2
    if name == "InvertedResidual":
        assert ours.use_residual
    assert list(ours.state_dict()) == list(twin.state_dict())
    before = dict(ours.state_dict())
    x = rng.standard_normal((2, channels, 32, 32)).astype(dtype)
    y_torch, seen_torch = observe_torch(twin, x)
    y_ours, seen_ours = observe_npconv(ours, x)
    check_layer_by_layer(ours, x, y_torch, seen_torch, dtype, "torch", state_before=before)
    check_layer_by_layer(ours, x, y_ours, seen_ours, dtype, "npconv", state_before=before)


def test_tutorial_readme_example():
    """The README's few lines: convert the tutorial's TinyMobileNet and check the outputs agree."""
    torch.manual_seed(0)
    model = tt.TinyMobileNet().eval()
    x = torch.randn(2, 3, 64, 64)
    net = from_torch(model)
    y = net(x.numpy())
    with torch.no_grad():
        expected = model(x).numpy()
    bound = propagate(net, Bounded.exact(x.numpy()), np.float32)
    assert_bounded(y, bound, "npconv")
    assert_bounded(expected, bound, "torch")


# ----------------------------------------------------------------------------- refusals


class MyConv(torch.nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


class MySequential(torch.nn.Sequential):
    def forward(self, x):
        return x


@pytest.mark.parametrize("tree, kind, path", [
    (torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2)), r"torch\.nn\.modules\.pooling\.MaxPool2d",
     "'1'"),
    (torch.nn.Sequential(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.GELU())), r"GELU", "'0.1'"),
    (torch.nn.Sequential(torch.nn.Identity(), MyConv(3, 3, 3)), r"test_from_torch\.MyConv", "'1'"),
    (MySequential(torch.nn.ReLU()), r"MySequential", "the root"),
    (torch.nn.BatchNorm1d(3), r"BatchNorm1d", "the root"),
    (torch.nn.Sequential(torch.nn.Dropout2d()), r"Dropout2d", "'0'"),
])
def test_unsupported_layers_are_named_with_their_path(tree, kind, path):
    with pytest.raises(UnsupportedModuleError, match=rf"unsupported layer \S*{kind} at {path}"):
        from_torch(tree)


def test_mobilenet_v1_with_an_unsupported_layer_deep_inside_names_its_path():
    twin = tt.MobileNetV1(0.25, 3)
    twin.features[3].dw_conv[2] = torch.nn.Hardswish()
    with pytest.raises(TypeError, match=r"Hardswish at 'features\.3\.dw_conv\.2'"):
        from_torch(twin)


def test_known_name_with_other_children_is_refused():
    class MobileNetBlock(torch.nn.Module):  # the tutorial's name, another layout
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(UnsupportedModuleError, match=r"at '0' has children \['conv'\], but MobileNetBlock is "
                                                     r"recognised only with children \['dw_conv', 'pw_conv'\]"):
        from_torch(torch.nn.Sequential(MobileNetBlock()))


def test_hooks_and_dtypes_are_refused():
    tree = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.ReLU(), torch.nn.Conv2d(3, 3, 1))
    handle = tree[1].register_forward_hook(lambda m, a, o: o * 2)
    with pytest.raises(UnsupportedModuleError, match=r"ReLU at '1' has forward hooks"):
        from_torch(tree)
    handle.remove()
    tree[0].to(torch.float64)
    with pytest.raises(TypeError, match="mixes floating dtypes"):
        from_torch(tree)
    with pytest.raises(TypeError, match="parameters must be float16, bfloat16, float32 or float64"):
        from_torch(torch.nn.Conv2d(3, 3, 1).to(torch.float8_e5m2))
    assert from_torch(tree.to(torch.bfloat16))[0].weight.dtype.name == "bfloat16"  # bfloat16 converts
    with pytest.raises(UnsupportedModuleError, match="expected a torch.nn.Module at the root"):
        from_torch(np.zeros(3))


def test_importing_npconv_does_not_import_torch():
    """Nor ml_dtypes, which npconv.dtypes imports when a bfloat16 dtype first turns up: on its
    own it took longer to import than the rest of npconv."""
    code = ("import sys, numpy as np, npconv, npconv.nn, npconv.models, npconv.convert, npconv.ops\n"
            "m = npconv.models.TinyMobileNet().eval(); m(np.zeros((1, 3, 8, 8), np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes was imported'\n"
            "import ml_dtypes\n"
            "assert np.dtype(ml_dtypes.bfloat16) in npconv.dtypes.FLOAT_DTYPES and npconv.dtypes.BFLOAT16.name == 'bfloat16'\n"
            "assert npconv.conv2d(np.ones((1, 1, 2, 2), ml_dtypes.bfloat16), np.ones((1, 1, 1, 1), ml_dtypes.bfloat16))"
            ".dtype == ml_dtypes.bfloat16\n")
    subprocess.run([sys.executable, "-c", code], check=True)
