"""Any PyTorch CNN through npconv's graph path: capture with torch.export, every node checked on
PyTorch's own inputs within its rounding bound, counts == closed forms == FlopCounterMode / 2,
parameters == sum(numel).

The corpus is the pytorchcv zoo (reference_tests/zoo.py) at 64×64 in CI, 224×224 in the
thorough profile; the checks are shown not to be vacuous on a perturbed weight, a perturbed
exact op and outputs 0.9× and 1.1× a node's bound away."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
import torch.nn.functional as F
from torch import nn

import npconv
from npconv import bounds
from npconv.graph import CaptureError, UnsupportedOpsError, capture
from npconv.graph.ops import OPS
from npconv.graph.verify import check_nodes, torch_trace
from npconv.strategies.random_networks import networks
from npconv.twins import build
from npconv.verify import verify_model
from zoo import ZOO, pytorchcv_model

SIZE = 224 if os.environ.get("NPCONV_HYPOTHESIS_PROFILE") == "thorough" else 64


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.mark.skipif(SIZE != 224, reason="CI verifies the zoo at small inputs in test_paths.py, on the capture it "
                                         "checks the execution paths with")
@pytest.mark.parametrize("name", list(ZOO))
def test_pytorchcv_model_verifies_node_by_node(name):
    model = pytorchcv_model(name, SIZE)
    x = _input((1, 3, SIZE, SIZE))
    report = verify_model(model, x, name=name, timing=False)
    assert report.failures == []
    total = report.summary.total
    assert total["macs"] == total["flop_counter_macs"] > 0
    assert total["params"] == total["torch_params"] == sum(p.numel() for p in model.parameters())
    assert report.summary.mismatches == [] and report.summary.disagreements == []
    assert len(report.checks32) == len(report.checks64) == len(report.graph.nodes)
    # every node of the graph ran a check, and some ops were exact, some bounded
    assert {c.exact for c in report.checks32} == {True, False}


def test_tutorial_hybrid_block_verifies_through_the_graph():
    """The tutorial's HybridBlock: conv s2, depthwise separable, ConvTranspose2d s2."""
    twin = build("HybridBlock", 4, 6, seed=3)
    report = verify_model(twin, _input((2, 4, 10, 10), 3), timing=False)
    assert report.ok, report.failures
    assert "aten.convolution.default" in {c.op for c in report.checks32}
    upsample = report.module_checks(report.checks32)["upsample"]
    assert upsample.ratio <= 1 and not upsample.exact


def _hybrid():
    twin = build("HybridBlock", 3, 5, seed=4)
    x = _input((1, 3, 9, 9), 4)
    graph = capture(twin, x)
    return graph, x, torch_trace(graph, x)


def test_a_perturbed_weight_is_caught_at_its_node():
    graph, x, trace = _hybrid()
    assert all(c.ok for c in check_nodes(graph, trace, bounds.U32))
    weight = next(p for p, key in graph.fqn.items() if key == "mid.pointwise.weight")
    graph.parameters[weight] = graph.parameters[weight].copy()
    graph.parameters[weight][0, 0, 0, 0] *= 1 + 1e-4  # one weight, one part in 10^4
    failed = [c for c in check_nodes(graph, trace, bounds.U32) if not c.ok]
    assert [c.module for c in failed] == ["mid.pointwise"]


def test_the_node_threshold_is_the_bound():
    """PyTorch's output moved 0.9x the node's bound from npconv's value passes; 1.1x fails."""
    graph, x, trace = _hybrid()
    node = next(n for n in graph.nodes if n.module == "upsample" and n.op == "aten.convolution.default")
    spec = OPS[node.op]
    env = {**graph.parameters, **graph.buffers, **trace}
    args = [np.asarray(a, np.float64) if isinstance(a, np.ndarray) else a
            for a in npconv.graph.graph.resolve(node.args, env)]
    reference = spec.run(*args)
    bound = bounds.both_sides(bounds.U32) * spec.bound(np.float32, *args)
    for factor, ok in ((0.9, True), (1.1, False)):
        out = reference.copy()
        out[0, 1, 2, 3] += factor * bound[0, 1, 2, 3]
        checks = check_nodes(graph, dict(trace, **{node.name: out}), bounds.U32)
        assert next(c for c in checks if c.name == node.name).ok is ok


def test_an_exact_op_must_match_bit_for_bit():
    twin = build("MobileNetBlock", 4, 8, seed=1, calibration_shape=(2, 4, 8, 8))
    x = _input((1, 4, 8, 8), 1)
    graph = capture(twin, x)
    trace = torch_trace(graph, x)
    node = next(n for n in graph.nodes if n.op == "aten.hardtanh.default")  # ReLU6
    out = trace[node.name].copy()
    flat = out.reshape(-1)
    k = int(np.argmax(flat))
    flat[k] = np.nextafter(flat[k], np.float32(np.inf))  # one ulp
    check = next(c for c in check_nodes(graph, dict(trace, **{node.name: out}), bounds.U32) if c.name == node.name)
    assert check.exact and not check.ok


class _TwoUnsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU()),
                                    nn.Sequential(nn.Conv2d(4, 4, 1), nn.GELU()))

    def forward(self, x):
        return F.interpolate(self.blocks(x), scale_factor=2)


def test_unsupported_ops_are_named_before_any_work():
    with pytest.raises(UnsupportedOpsError) as info:
        capture(_TwoUnsupported(), _input((1, 3, 4, 4)))
    message = str(info.value)
    assert message.startswith("2 unsupported ops: ")
    assert "aten.gelu.default (nn.GELU) ×2, first at blocks.0.1" in message
    assert "aten.upsample_nearest2d.vec (F.interpolate) ×1, first at (model)" in message
    assert "\n" not in message
    assert [op for op, *_ in info.value.ops] == ["aten.gelu.default", "aten.upsample_nearest2d.vec"]


class _DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: export cannot trace it
            return x * 2
        return x


def test_a_model_export_cannot_capture_gets_one_line_and_a_hint():
    with pytest.raises(CaptureError) as info:
        capture(_DataDependent(), _input((1, 3, 4, 4)))
    message = str(info.value)
    assert "\n" not in message and "torch.export could not capture _DataDependent" in message
    assert "try another example input" in message


def test_graph_runs_on_both_engines_and_counts_per_module():
    twin = build("MobileNetBlock", 4, 8, seed=1, calibration_shape=(2, 4, 8, 8))
    x = _input((1, 4, 8, 8), 1)
    graph = npconv.capture(twin, x)
    with npconv.count() as tally:
        y_ref = graph(x, engine="reference")
    y_fast = graph(x, engine="fast")
    with torch.no_grad():
        y_torch = twin(torch.from_numpy(x)).numpy()
    assert y_ref.shape == y_fast.shape == y_torch.shape
    assert tally.by_layer["dw_conv.0"].macs == 4 * 8 * 8 * 9
    assert tally.by_layer["pw_conv.0"].macs == 8 * 8 * 8 * 4
    assert tally.macs == tally.by_layer["dw_conv.0"].macs + tally.by_layer["pw_conv.0"].macs
    assert graph.param_count == sum(p.numel() for p in twin.parameters())
    y64 = graph.astype(np.float64)(x.astype(np.float64))
    assert y64.dtype == np.float64 and y64.shape == y_ref.shape


# ----------------------------------------------------------------------------- random networks


@settings(max_examples=max(5, settings().max_examples // 3))  # a whole network per example (conftest)
@given(networks())
def test_random_networks_verify_and_count_like_flop_counter(spec):
    model, x = spec.build(), spec.input()
    report = verify_model(model, x, timing=False)
    assert report.failures == []
    total = report.summary.total
    assert total["macs"] == total["flop_counter_macs"]
    assert total["params"] == total["torch_params"]


# ----------------------------------------------------------------------------- the oracle's engine


def _same_verdicts(fast, reference):
    """Two verify reports of one model and input, npconv's side on the fast engine and on the
    reference: the same verdict for every node in both precisions, the same failures (none or
    some), the same counts and formulas per module. In float32 the error/bound ratios agree to
    2^-26: the two float64 evaluations are each within γ_n(2⁻⁵³)·M of the exact value, at most
    2^-28 of the float32 bound (1 + 2^-29)·γ_n(2⁻²⁴)·M apart, so no pass or fail can hinge on the
    engine. (In float64 the bound is 2·γ_n(2⁻⁵³)·M, of the order of that difference: the ratios
    there may differ, within the bound both satisfy.)"""
    assert (fast.engine, reference.engine) == ("fast", "reference")
    assert fast.ok == reference.ok and len(fast.failures) == len(reference.failures)
    assert [f.split(" differs ")[0] for f in fast.failures] == [f.split(" differs ")[0] for f in reference.failures]
    for a, b in zip(fast.checks32 + fast.checks64, reference.checks32 + reference.checks64, strict=True):
        assert (a.name, a.op, a.exact, a.ok) == (b.name, b.op, b.exact, b.ok)
    for a, b in zip(fast.checks32, reference.checks32):
        assert a.ratio == b.ratio if a.exact or not np.isfinite(a.ratio) else abs(a.ratio - b.ratio) <= 2.0**-26
    rows = lambda report: [(r.name, r.counted, r.formula) for r in report.summary.rows]  # noqa: E731
    assert rows(fast) == rows(reference)
    assert fast.summary.total == reference.summary.total


@settings(max_examples=max(3, settings().max_examples // 5))  # two verifies of a whole network per example
@given(networks())
def test_the_oracle_engine_changes_no_verdict(spec):
    """npconv's side of verify (each node's float64 value and bound magnitude, the counted run,
    the float64 run) on the fast engine (BLAS products, packed loops, one thread) gives what
    the reference loop nests give: a bound holds for any summation order, and the fast
    kernels count in their own loops."""
    model, x = spec.build(), spec.input()
    graph = capture(model, x)
    _same_verdicts(verify_model(model, x, timing=False, graph=graph, engine="fast"),
                   verify_model(model, x, timing=False, graph=graph, engine="reference"))


@pytest.mark.parametrize("what", ["weight", "node"])
def test_a_planted_fault_fails_alike_on_both_oracle_engines(monkeypatch, what):
    """A wrong PyTorch (one weight moved one part in 10^4 after capture, so PyTorch's nodes run
    it and npconv's do not) or a wrong npconv (a convolution node's value off by 1e-3 of
    itself) fails at the same nodes with either engine computing npconv's side."""
    twin = build("HybridBlock", 3, 5, seed=4)
    x = _input((1, 3, 9, 9), 4)
    graph = capture(twin, x)
    if what == "weight":
        weight = next(p for p, key in graph.fqn.items() if key == "mid.pointwise.weight")
        graph.parameters[weight] = graph.parameters[weight].copy()
        graph.parameters[weight][0, 0, 0, 0] *= 1 + 1e-4
    else:
        spec = OPS["aten.convolution.default"]
        monkeypatch.setitem(OPS, "aten.convolution.default",
                            dataclasses.replace(spec, run=lambda *a, **k: spec.run(*a, **k) * (1 + 1e-3)))
    fast = verify_model(twin, x, timing=False, graph=graph, engine="fast")
    reference = verify_model(twin, x, timing=False, graph=graph, engine="reference")
    assert not fast.ok
    _same_verdicts(fast, reference)
