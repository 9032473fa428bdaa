"""npconv.strategies.random_networks: random small CNNs as data, built into torch modules.

What is proved:
* Every drawn NetworkSpec stays within its bounds (channels, spatial sizes), builds, and runs
  in torch in float32 and float64 to a finite output of the shape the spec predicts, layer
  by layer (each top-level layer's output shape is the one the spec tracks).
* build() is deterministic in spec.seed, leaves the model in eval mode, and no BatchNorm is
  an identity (random affine parameters, calibrated and perturbed running statistics).
* Every drawn network exports: torch.export.export(model, (x,)) then run_decompositions()
  with torch's default table, and with export_decompositions(), under which the ATen ops
  are a subset of EXPORT_OPS and the exported program computes the eager output. Reflect
  and replicate padding stay whole (reflection_pad2d / replication_pad2d), circular padding
  becomes slices and a cat.
* A derandomized draw of the CI profile's 25 examples holds every layer and block kind.
* A spec's repr is Python that rebuilds it; importing the module does not import torch.
"""

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st
from twin_utils import one_torch_thread

import npconv.strategies.random_networks as ns
from npconv.graph.capture import _pad_circular_by_cat
from npconv.nn.hooks import hooked
from npconv.strategies.random_networks import (BLOCK_KINDS, EXPORT_OPS, LAYER_KINDS, NetworkSpec, export_decompositions,
                                  network_and_input, networks)

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module

pytestmark = [
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning"),
]

# whole-network exports: a fifth of the profile's examples (10 in the CI profile)
EXPORT_EXAMPLES = max(10, settings.default.max_examples // 5)


def _aten_ops(program) -> set[str]:
    return {str(node.target) for node in program.graph.nodes if node.op == "call_function"}


def _padding_modes(spec: NetworkSpec) -> set[str]:
    return {layer.padding_mode for layer in spec.walk() if isinstance(layer, ns.Conv2d)}


@given(networks())
def test_drawn_networks_build_and_run_to_the_predicted_shape(spec):
    for kind in sorted(spec.kinds()):
        event(kind)
    for c, h, w in spec.shapes():
        assert 1 <= c <= 16 and 1 <= h <= 16 and 1 <= w <= 16
    assert 1 <= spec.batch <= 2 and 1 <= len(spec.layers) <= 6
    for dtype, torch_dtype in [(np.float32, torch.float32), (np.float64, torch.float64)]:
        model = spec.build() if dtype == np.float32 else spec.build().double()
        x = spec.input(dtype)
        assert x.dtype == dtype and x.shape == spec.input_shape
        assert not model.training
        shapes, top_level = [], {str(i) for i in range(len(spec.layers))}  # model[i]'s names

        def record(name, m, args, out):
            if name in top_level:
                shapes.append(tuple(out.shape[1:]))

        with hooked(model, post=record), torch.no_grad():
            y = model(torch.from_numpy(x))
        assert shapes == spec.shapes()[1:]
        assert y.dtype == torch_dtype
        assert tuple(y.shape) == spec.output_shape
        assert torch.isfinite(y).all()


@settings(max_examples=EXPORT_EXAMPLES)
@given(networks())
def test_build_is_deterministic_and_batchnorm_is_not_an_identity(spec):
    a, b = spec.build().state_dict(), spec.build().state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    np.testing.assert_array_equal(spec.input(), spec.input())
    for m in spec.build().modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert not torch.all(m.running_mean == 0) and not torch.all(m.running_var == 1)
            assert torch.all(m.running_var >= ns.VAR_FLOOR)
            assert not torch.all(m.weight == 1) and not torch.all(m.bias == 0)


@settings(max_examples=EXPORT_EXAMPLES)
@given(networks())
def test_drawn_networks_export_to_the_listed_aten_ops(spec):
    model = spec.build()
    x = torch.from_numpy(spec.input())
    program = torch.export.export(model, (x,))
    default_ops = _aten_ops(program.run_decompositions())  # torch's own table works too
    if _padding_modes(spec) <= {"zeros"}:
        assert default_ops <= EXPORT_OPS, default_ops - EXPORT_OPS
    decomposed = program.run_decompositions(export_decompositions())
    ops = _aten_ops(decomposed)
    for op in sorted(ops):
        event(op)
    assert ops <= EXPORT_OPS, ops - EXPORT_OPS
    with torch.no_grad():
        expected = model(x)
        got = decomposed.module()(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _conv_net(mode, padding, kernel=(3, 3)):
    conv = ns.Conv2d(3, 4, kernel, padding=padding, padding_mode=mode)
    return NetworkSpec(1, 3, 5, 6, 0, (conv,))


@pytest.mark.parametrize("mode, padding, kernel, whole, absent", [
    ("zeros", "same", (2, 3), {"aten.constant_pad_nd.default"}, set()),
    ("reflect", (1, 2), (3, 3), {"aten.reflection_pad2d.default"}, {"aten.index.Tensor", "aten.arange.start_step"}),
    ("reflect", "same", (2, 3), {"aten.reflection_pad2d.default"}, {"aten.index.Tensor"}),
    ("replicate", (1, 0), (3, 1), {"aten.replication_pad2d.default"}, {"aten.index.Tensor", "aten.arange.start_step"}),
    ("circular", (1, 1), (3, 3), {"aten.slice.Tensor", "aten.cat.default"},
     {"aten.empty.memory_format", "aten.copy.default", "aten.slice_scatter.default"}),
    ("circular", "same", (3, 2), {"aten.slice.Tensor", "aten.cat.default"}, {"aten.slice_scatter.default"}),
])
def test_padding_modes_export_whole_or_as_slices(mode, padding, kernel, whole, absent):
    spec = _conv_net(mode, padding, kernel)
    model, x = spec.build(), torch.from_numpy(spec.input())
    decomposed = torch.export.export(model, (x,)).run_decompositions(export_decompositions())
    ops = _aten_ops(decomposed)
    assert whole <= ops and not (absent & ops) and ops <= EXPORT_OPS, ops
    with torch.no_grad():
        torch.testing.assert_close(decomposed.module()(x), model(x), rtol=0, atol=0)


def test_circular_padding_decomposition_is_torch_circular_pad():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    for pad in [(1, 2, 3, 0), (0, 0, 4, 4), (5, 5, 1, 1), (0, 0, 0, 0)]:
        expected = torch.nn.functional.pad(x, pad, mode="circular")
        assert torch.equal(_pad_circular_by_cat(x, pad), expected), pad


def test_derandomized_examples_draw_every_layer_and_block_kind():
    """100 derandomized draws (the seed follows the test's name) cover the whole vocabulary."""
    seen = Counter()

    @settings(max_examples=100, derandomize=True, phases=[Phase.generate], database=None)
    @given(networks())
    def draw(spec):
        seen.update(spec.kinds())
        seen.update(f"padding_mode={mode}" for mode in _padding_modes(spec))

    draw()
    missing = set(LAYER_KINDS) - set(seen)
    assert set(BLOCK_KINDS) <= set(LAYER_KINDS)
    assert not missing, (missing, seen)
    assert seen["linear_head"] > 0


@given(networks())
def test_repr_is_python_that_rebuilds_the_spec(spec):
    namespace = {name: getattr(ns, name) for name in ns.__all__}
    assert eval(repr(spec), namespace) == spec  # noqa: S307


@given(networks(max_depth=3, kinds=("conv", "residual"), head=True, padding_modes=("zeros",)))
def test_options_restrict_the_vocabulary(spec):
    allowed = {"conv", "residual", "linear_head", "batch_norm", "activation", "squeeze_excite", "channel_shuffle"}
    assert {layer.kind for layer in spec.layers} <= {"conv", "residual", "activation"}  # ReLU: all skipped
    assert spec.kinds() <= allowed and spec.head is not None and len(spec.layers) <= 3
    assert _padding_modes(spec) <= {"zeros"}


@settings(max_examples=5)
@given(network_and_input(np.float64, max_depth=2))
def test_network_and_input_gives_a_module_and_its_input(pair):
    model, x = pair
    assert x.dtype == np.float64 and not model.training
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        assert torch.isfinite(model(torch.from_numpy(x))).all()


def test_unknown_kinds_are_refused():
    @settings(max_examples=1, database=None)
    @given(networks(kinds=("conv", "attention")))
    def draw(spec):
        pass

    with pytest.raises(ValueError, match="unknown"):
        draw()


def test_import_does_not_import_torch():
    code = ("import sys, npconv.strategies.random_networks, npconv.strategies\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_npconv_strategies_re_exports_the_network_strategies():
    import npconv.strategies

    for name in ("networks", "network_and_input", "NetworkSpec"):
        assert getattr(npconv.strategies, name) is getattr(ns, name)
        assert name in npconv.strategies.__all__
