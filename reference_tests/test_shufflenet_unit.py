"""ShuffleNetV2's unit (npconv.models.shufflenet_v2) verifies, counts and trains like the
tutorial's blocks, against its PyTorch twin (npconv.twins_shufflenet, torchvision's
InvertedResidual).

What is proved, for stride 1 (Fig. 3(c): split, one branch, concat, shuffle) and stride 2
(Fig. 3(d): two branches):
* Verifies: `npconv.verify.verify_model` on the twin (the graph torch.export captures,
  every node within its rounding bound in float32 and float64, counts against the closed
  forms and FlopCounterMode / 2) reports ok; npconv's own unit computes, bit for bit, what
  npconv runs for the captured graph (float64).
* Counts: `npconv.summary` of the npconv unit with the twin beside it is ok (every leaf's
  counts equal its formula, MACs equal FlopCounterMode / 2 per module, parameters equal
  the twin's); the unit's own ops (concat, shuffle) count what `own_cost` says; its total
  MACs equal the graph path's. Backward: every layer's counts equal the closed forms, the
  first layers (both branches at stride 2) skip their input gradient, as in PyTorch, and
  the unit's own backward ops count one copy (or, at the stride-2 fork, one add) per
  element; beside FlopCounterMode (npconv.cost_backward, stride 1) grad-input and forward
  MACs agree, weight gradients too but for the depthwise layer (FlopCounterMode counts it
  `groups` times too high, as for MobileNet).
* Trains: one step (seeded dL/d(output), SGD lr 0.1) of the unit alone and behind a stem
  convolution (so that its input gradient flows: the split's concatenation at stride 1,
  the sum over both branches at stride 2), in float64 and float32, for PyTorch's autograd
  and for npconv.train alike, is npconv's step operation by operation within each
  operation's derived bound (train_helpers.check_step, as test_train.py does for the
  tutorial's blocks).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from train_helpers import check_step, leaves, run_both, torch_twin
from twin_utils import one_torch_thread

import npconv
from npconv import cost_backward, formulas, train, twins
from npconv.models.shufflenet_v2 import ShuffleNetV2Unit
from npconv.nn import BatchNorm2d, Conv2d, Sequential
from npconv.nn.hooks import hooked
from npconv.twins_shufflenet import twin_classes
from npconv.verify import verify_model

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")

# (inp, oup, stride): stride 1 keeps the channels; stride 2 may change them
UNITS = {"stride1": (8, 8, 1), "stride2": (6, 8, 2)}


def build(inp, oup, stride, *, seed=0, shape=None, stem=False):
    """The twin (eval mode, PyTorch's initialisation under `seed`, BatchNorm seeded as
    npconv.twins.build does) and the npconv model with its weights; with stem=True both
    are Sequential(3x3 conv 3 -> inp, unit)."""
    shape = shape or (2, 3 if stem else inp, 6, 6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unit = twin_classes()["ShuffleNetV2Unit"](inp, oup, stride)
        twin = torch.nn.Sequential(torch.nn.Conv2d(3, inp, 3, 1, 1), unit) if stem else unit
    calibration = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))
    twins.seed_batchnorm(twin, seed + 2, calibration)
    ours = ShuffleNetV2Unit(inp, oup, stride)
    ours = Sequential(Conv2d(3, inp, 3, 1, 1), ours) if stem else ours
    ours.load_state_dict(twin.state_dict())
    return twin.eval(), ours.eval()


# --------------------------------------------------------------------------------------
# Verifies
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(UNITS))
def test_the_unit_verifies_against_pytorch(kind):
    inp, oup, stride = UNITS[kind]
    twin, ours = build(inp, oup, stride)
    x = np.random.default_rng(1).standard_normal((1, inp, 7, 7)).astype(np.float32)
    report = verify_model(twin, x, timing=False)
    assert report.ok, report.failures
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(ours.double()(x64), report.graph.astype(np.float64).run(x64, engine="reference"))
    assert ShuffleNetV2Unit(*UNITS[kind]).extra_repr() == f"stride={stride}"


def test_the_unit_refuses_what_torchvision_refuses():
    with pytest.raises(ValueError, match="illegal stride value"):
        ShuffleNetV2Unit(8, 8, 4)
    with pytest.raises(ValueError, match="Invalid combination of stride 1, inp 6 and oup 8"):
        ShuffleNetV2Unit(6, 8, 1)


# --------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(UNITS))
def test_the_unit_counts_its_formulas_and_flop_counter_mode(kind):
    inp, oup, stride = UNITS[kind]
    twin, ours = build(inp, oup, stride)
    shape = (2, inp, 7, 7)
    s = npconv.summary(ours, shape, torch_model=twin)
    assert s.ok, (s.mismatches, s.disagreements)
    (own,) = [row for row in s.rows if row.name == ""]
    assert own.counted == ours.own_cost(shape, own.output_shape)  # the concat and the shuffle, nothing else
    assert own.formula == own.counted and s.unchecked == []     # summary asks the unit itself
    assert own.output_shape == (2, oup, 4, 4) if stride == 2 else (2, oup, 7, 7)
    report = verify_model(twin, np.zeros(shape, np.float32), timing=False)
    assert s.total["macs"] == report.summary.total["macs"] > 0


@pytest.mark.parametrize("stem", [False, True], ids=["alone", "behind a stem"])
@pytest.mark.parametrize("kind", sorted(UNITS))
def test_the_units_backward_counts_its_formulas(kind, stem):
    """Per layer, as test_train.py's TinyMobileNet: grad-weight MACs = forward MACs and
    grad-input MACs, both the closed forms, the first layers (both branches' at stride 2,
    alone: they read the network's input) without an input gradient; BatchNorm and ReLU
    backward counts the closed forms; the unit's own backward one copy per element (the
    shuffle undone, the split's halves joined at stride 1) or one add (x fed both branches
    at stride 2)."""
    inp, oup, stride = UNITS[kind]
    _, ours = build(inp, oup, stride, stem=stem)
    shape = (2, 3 if stem else inp, 6, 6)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    shapes = {}
    with hooked(ours, post=lambda name, m, args, out: shapes.__setitem__(name, args[0].shape), leaves_only=True), \
            npconv.count() as tally:
        step = train.forward_backward(ours.train(), x, grad_output=lambda y: np.ones_like(y))
    first = {"0"} if stem else {"branch1.0", "branch2.0"} if stride == 2 else {"branch2.0"}
    for path, module in leaves(ours):
        backward = step.backward_by_layer[path]
        numel = int(np.prod(shapes[path]))
        if isinstance(module, Conv2d):
            g = npconv.conv2d_geometry(shapes[path], module.weight.shape, None, module.stride, module.padding,
                                       module.dilation, module.groups, module.padding_mode)
            forward_macs = tally.by_layer[path].macs - sum(c["macs"] for c in backward.values())
            assert backward["conv2d_grad_weight"]["macs"] == forward_macs == formulas.conv2d_grad_weight_macs(g)
            if path in first:
                assert "conv2d_grad_input" not in backward
            else:
                assert backward["conv2d_grad_input"]["macs"] == formulas.conv2d_grad_input_macs(g)
        elif isinstance(module, BatchNorm2d):
            counts = {k: v for k, v in backward["batch_norm2d_backward"].items() if k.startswith("bn_")}
            assert counts == formulas.batch_norm2d_backward_counts(*shapes[path], training=True)
        else:
            assert backward["relu_backward"]["activation_compares"] == formulas.relu_backward_compares(numel)
    own = dict(tally.by_layer["1" if stem else ""].other)
    out_elements = step.logits.size
    assert own["shuffle_grad_copies"] == own["shuffle_copies"] == out_elements
    x_elements = 2 * inp * 36
    if stem and stride == 1:  # the split's gradient: the two halves joined again
        assert own["copies"] == out_elements + x_elements and tally.by_op["split_backward"].other["copies"] == x_elements
    else:
        assert own["copies"] == out_elements and "split_backward" not in tally.by_op
    assert own.get("residual_grad_adds", 0) == (formulas.residual_add_backward_adds(x_elements)
                                                if stem and stride == 2 else 0)


@pytest.mark.parametrize("stem", [False, True], ids=["alone", "behind a stem"])
def test_the_units_backward_beside_flop_counter_mode(stem):
    """npconv.cost_backward's table for the stride-1 unit: grad-input and forward MACs equal
    FlopCounterMode's, weight gradients too but for the depthwise layer (FlopCounterMode
    counts it `groups` times too high, as for MobileNet). Not at stride 2: x feeds both
    branches, so FlopCounterMode's module tracker (torch 2.13) sees branch2's first layer's
    backward end only once x's whole gradient is done and books branch1's backward under it
    too; cost_backward refuses such figures (its per-gradient parts would not add up)."""
    inp, oup, stride = UNITS["stride1"]
    twin, ours = build(inp, oup, stride, stem=stem)
    rows = cost_backward.backward_cost_table(ours, (2, 3 if stem else inp, 6, 6), torch_model=twin)
    modules = dict(twin.named_modules())
    for r in rows[:-1]:
        assert (r.grad_input is None) == (r.layer == ("0" if stem else "branch2.0")), r
        assert r.forward == r.grad_weight == r.fcm_forward and r.fcm_grad_input == r.grad_input
        assert r.fcm_grad_weight == modules[r.layer].groups * r.grad_weight


# --------------------------------------------------------------------------------------
# Trains
# --------------------------------------------------------------------------------------


@settings(max_examples=max(4, settings().max_examples // 5))
@given(data=st.data())
def test_one_training_step_of_the_unit_is_npconvs_step(data):
    """A seeded dL/d(output) backpropagated, then an SGD step, shadowed operation by
    operation (train_helpers.check_step) for PyTorch and for npconv."""
    kind = data.draw(st.sampled_from(sorted(UNITS)), label="unit")
    stem = data.draw(st.booleans(), label="behind a stem")
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    size = data.draw(st.integers(3, 7), label="H=W")
    inp, oup, stride = UNITS[kind]
    shape = (2, 3 if stem else inp, size, size)
    twin, ours = build(inp, oup, stride, seed=seed, shape=shape, stem=stem)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    with torch.no_grad():
        out_shape = tuple(torch_twin(build(inp, oup, stride, seed=seed, shape=shape, stem=stem)[0], np.float64)(
            torch.from_numpy(x)).shape)
    theirs, mine = run_both(twin.double(), [(x, rng.standard_normal(out_shape))], dtype, net=ours)
    check_step(ours, theirs[0], dtype, f"torch {kind}")
    check_step(ours, mine[0], dtype, f"npconv {kind}")
