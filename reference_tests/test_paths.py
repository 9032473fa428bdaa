"""PyTorch's execution paths against one oracle (npconv.testing, docs/paths.md).

Each path's output is held to npconv's float64 evaluation of the captured graph within the
first-order bound of the path's arithmetic, or the sharper probabilistic bound (the
default criterion of these tests: `CRITERION`); a failing path is localised to its first
node out of bound. CI (the `ci` and `dev` profiles) runs the cheap paths (eager,
channels_last, TorchScript traced, with and without optimize_for_inference) on all seventeen
pytorchcv acceptance models at their smallest input (16×16; 24 and 32 for the two that need
more), one test per model so that pytest-xdist spreads them, and on random networks, and the
planted-fault tests with TorchScript; the `thorough` profile runs every path (torch.compile
with and without freezing and max-autotune, bfloat16 autocast, ONNX Runtime, TorchScript
scripted, CUDA where present) on the whole zoo at 32×32 and on more random networks, and the
planted fault through torch.compile.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from npconv.strategies.random_networks import (Activation, BatchNorm2d, Conv2d, NetworkSpec, networks)
from npconv.testing import (ALL, CHEAP, FLOAT32, FLOAT32_BN_FOLDED, PATHS, Oracle, Prefixes, as_path, assert_paths,
                            check_paths, planted_fault)
from npconv.testing.arithmetic import folded_batch_norm_bound, local_bounds
from npconv.graph import capture
from npconv.verify import verify_model
from npconv.twins import build
from zoo import ZOO, pytorchcv_model, small_size

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.jit")  # TorchScript is deprecated

THOROUGH = os.environ.get("NPCONV_HYPOTHESIS_PROFILE") == "thorough"
CRITERION = "probabilistic"
# Every profile runs all seventeen acceptance models (docs/paths.md, "Tests and campaigns"):
# CI at the smallest input each accepts (16×16; SqueezeNet 24, PeleeNet 32: zoo.small_size),
# where capturing the model with torch.export is most of a test's time (2-8 s of CPU per model
# here), the thorough profile at 32×32, the size of docs/paths.md's results.
SIZE = 32
ZOO_MODELS = tuple(ZOO)
PATHS_RUN = ALL if THOROUGH else CHEAP
# pytorchcv's models cannot be scripted (torch.jit.script: "Module 'ConvBlock' has no attribute
# 'pad'", SqueezeNet's "identity is not defined in the false branch"): traced TorchScript only
ZOO_PATHS = tuple(p for p in PATHS_RUN if not p.startswith("torchscript_script"))
RANDOM_EXAMPLES = 25 if THOROUGH else max(4, settings().max_examples // 6)


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def _tiny_mobilenet():
    return build("TinyMobileNet", num_classes=10, calibration_shape=(2, 3, 32, 32)), _input((1, 3, 32, 32))


@pytest.fixture(scope="module")
def tiny():
    """(TinyMobileNet, its input, its Oracle): built and captured once for the tests that
    share them (each path runs on its own deep copy; a test that hooks the model removes the
    hooks)."""
    model, x = _tiny_mobilenet()
    return model, x, Oracle(model, x)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """CI runs these tests on one intra-op thread: on two shared cores (and with `-n 2`, two
    workers) torch's OpenMP threads spin waiting for each other, which made these tests 2-4×
    slower than one thread here. The bounds hold for any summation order or blocking, so the
    verdict does not depend on it; the thorough profile keeps torch's default threads, so the
    multi-threaded kernels are still exercised there."""
    import torch

    threads = torch.get_num_threads()
    if not THOROUGH:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- the zoo


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_agrees_with_npconv_on_every_path(name):
    """In CI this is also test_graph.py's node-by-node verification of the model (which runs
    there at 224x224 in the thorough profile): one capture serves both, since capturing is
    most of the cost (docs/paths.md, "Time")."""
    size = SIZE if THOROUGH else small_size(name)
    model = pytorchcv_model(name, size)
    x = _input((1, 3, size, size))
    graph = capture(model, x)
    if not THOROUGH:
        verified = verify_model(model, x, name=name, timing=False, graph=graph)
        assert verified.failures == []
        total = verified.summary.total
        assert total["macs"] == total["flop_counter_macs"] > 0
        assert total["params"] == total["torch_params"] == sum(p.numel() for p in model.parameters())
        assert verified.summary.mismatches == [] and verified.summary.disagreements == []
        assert len(verified.checks32) == len(verified.checks64) == len(verified.graph.nodes)
        assert {c.exact for c in verified.checks32} == {True, False}  # some ops exact, some bounded
    report = check_paths(model, x, ZOO_PATHS, criterion=CRITERION, name=name, oracle=Oracle(model, x, graph=graph))
    assert [r.path for r in report.results] == list(ZOO_PATHS)
    for result in report.results:
        # every path passes: a cheap path always runs; a thorough one may only be skipped for
        # a missing package or device (ONNX Runtime, CUDA), never fail or err
        allowed = ("pass",) if result.path in CHEAP else ("pass", "skipped")
        assert result.status in allowed, str(report)
        if result.status == "pass":
            assert result.comparison.worst_ratio <= 1, str(report)
            assert result.comparison.first_order_ratio <= 1, str(report)
    assert report.nodes > 50, str(report)   # the whole network was captured and checked


# ----------------------------------------------------------------------------- random networks


def _known_finding(spec, result) -> bool:
    """The findings of docs/paths.md, each reproduced by a test below, so that a random
    network that meets one does not hide others:
    1. optimize_for_inference on a scripted, frozen Conv2d with padding="same" stops on an
       internal assert;
    2. the ONNX export ignores AvgPool2d's divisor_override: ONNX Runtime's average pool is
       wrong, and localisation names it;
    3. a ConvTranspose2d with output_padding >= stride (PyTorch allows < max(stride,
       dilation)) exports, but ONNX Runtime refuses to run it."""
    layers = list(spec.walk())
    if result.path == "torchscript_script_optimized" and result.status == "error":
        return (any(getattr(layer, "padding", None) == "same" for layer in layers)
                and "isIntList() INTERNAL ASSERT FAILED" in result.reason)
    if result.path == "onnxruntime" and result.status == "fail":
        return (any(layer.kind == "avg_pool" and layer.divisor_override is not None for layer in layers)
                and result.localisation is not None and result.localisation.op == "aten.avg_pool2d.default")
    if result.path == "onnxruntime" and result.status == "error":
        return (any(layer.kind == "conv_transpose" and any(p >= s for p, s in zip(layer.output_padding, layer.stride))
                    for layer in layers) and "output_padding" in result.reason)
    return False


@settings(max_examples=RANDOM_EXAMPLES)
@given(networks(max_depth=5, max_channels=8, max_size=10))
def test_random_networks_agree_with_npconv_on_every_path(spec):
    report = check_paths(spec.build(), spec.input(), PATHS_RUN, criterion=CRITERION)
    failures = [r for r in report.failures if not _known_finding(spec, r)]
    assert not failures, f"{spec!r}\n{report}"


def test_finding_optimize_for_inference_stops_on_a_scripted_same_padding_conv():
    """Finding 1's reproduction, kept as a test: when PyTorch fixes it, this fails, and
    `_known_finding` can go."""
    conv = torch.nn.Conv2d(3, 6, kernel_size=1, padding="same").eval()
    frozen = torch.jit.freeze(torch.jit.script(conv))
    with pytest.raises(RuntimeError, match="isIntList\\(\\) INTERNAL ASSERT FAILED"):
        torch.jit.optimize_for_inference(frozen)
    torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(
        torch.nn.Conv2d(3, 6, kernel_size=1, padding=0).eval())))   # an int padding is fine


# ----------------------------------------------------------------------------- planted faults


def test_a_planted_fault_is_caught_and_localised_to_its_convolution(tiny):
    """TorchScript trace with one convolution's output scaled by 1 + 10⁻³ (a forward hook
    added before tracing) fails, and bisecting the graph's prefixes names that convolution,
    with its inputs within their bounds. The same path without the fault passes."""
    model, x, oracle = tiny
    target = "features.5.pw_conv.0"
    report = check_paths(model, x, ["torchscript_trace", planted_fault("torchscript_trace", target, 1e-3)],
                         criterion=CRITERION, oracle=oracle)
    healthy, faulty = report.results
    assert healthy.status == "pass" and healthy.comparison.probabilistic_ratio < 0.05, str(report)
    assert faulty.status == "fail", str(report)
    where = faulty.localisation
    assert where is not None and where.confirmed, str(report)
    assert (where.module, where.op) == (target, "aten.convolution.default"), str(where)


def test_the_first_order_bound_catches_a_planted_fault_in_a_shallow_network():
    """Under the first-order criterion (no probabilistic model) a 10⁻³ fault is caught where
    the network is shallow enough for its worst-case bound to be below it."""
    spec = NetworkSpec(1, 3, 8, 8, 7, (Conv2d(3, 8, (3, 3), padding=(1, 1)), BatchNorm2d(8), Activation("ReLU"),
                                       Conv2d(8, 4, (1, 1))))
    model, x = spec.build(), spec.input()
    report = check_paths(model, x, ["eager", planted_fault("eager", "0", 1e-3)], criterion="first-order")
    healthy, faulty = report.results
    assert healthy.status == "pass" and faulty.status == "fail", str(report)
    assert faulty.localisation.module == "0" and faulty.localisation.confirmed, str(report)


@pytest.mark.skipif(not THOROUGH, reason="torch.compile takes 20-60 s per network here: thorough profile")
def test_a_planted_fault_under_torch_compile_is_localised():
    model, x = _tiny_mobilenet()
    target = "features.4.dw_conv.0"
    report = check_paths(model, x, [planted_fault("compile", target, 1e-3)], criterion=CRITERION)
    (faulty,) = report.results
    assert faulty.status == "fail", str(report)
    assert (faulty.localisation.module, faulty.localisation.op) == (target, "aten.convolution.default"), str(report)


# ----------------------------------------------------------------------------- the bounds themselves


def test_the_end_to_end_threshold_is_the_bound(tiny):
    """An output moved 0.9x the first-order bound along a direction the check uses passes;
    1.1x fails: the bound is the threshold, not a tolerance tuned around it."""
    model, x, oracle = tiny
    exact = oracle.output[0]
    i = int(np.argmax(np.abs(exact)))
    c = np.zeros_like(exact)
    c.flat[i] = 1.0
    bound, probabilistic, _ = oracle.bound([c], FLOAT32)
    assert 0 < probabilistic <= bound < 1e-2 * abs(exact.flat[i])   # not vacuous
    for factor, ok in ((0.9, True), (1.1, False)):
        moved = exact.copy()
        moved.flat[i] += factor * bound
        assert oracle.compare(moved, FLOAT32, criterion="first-order").ok is ok
        moved = exact.copy()
        moved.flat[i] += factor * probabilistic
        assert oracle.compare(moved, FLOAT32, criterion="probabilistic").ok is ok


def test_a_network_of_exact_ops_must_match_bit_for_bit():
    spec = NetworkSpec(1, 2, 5, 5, 3, (Activation("ReLU"),))
    model, x = spec.build(), spec.input()
    oracle = Oracle(model, x)
    assert oracle.bound([np.ones((1, 2, 5, 5))], FLOAT32)[0] == 0
    assert oracle.compare(torch.relu(torch.from_numpy(x)), FLOAT32).ok
    assert not oracle.compare(torch.relu(torch.from_numpy(x)) * (1 + 2**-20), FLOAT32).ok


def test_the_folded_batch_norm_bound_covers_pytorchs_folding():
    """fuse_conv_bn_eval (what TorchScript's freezing and Inductor's freezing use) in float32,
    against the unfolded network in float64: within folded_batch_norm_bound everywhere."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    spec = NetworkSpec(2, 6, 9, 9, 11, (Conv2d(6, 12, (3, 3), padding=(1, 1), groups=3), BatchNorm2d(12)))
    model, x = spec.build(), spec.input()
    oracle = Oracle(model, x)
    conv_node, bn_node = oracle.graph.nodes[0], oracle.graph.nodes[1]
    from npconv.graph.graph import resolve

    conv_args = resolve(conv_node.args, oracle.values)
    bn_args = resolve(bn_node.args, oracle.values)
    folded = fuse_conv_bn_eval(model[0], model[1])
    with torch.no_grad():
        y = folded(torch.from_numpy(x)).double().numpy()
    exact = oracle.output[0]
    bound = folded_batch_norm_bound(conv_node, conv_args, bn_args)
    assert np.all(np.abs(y - exact) <= bound)
    assert np.max(np.abs(y - exact) / bound) > 1e-3   # and the bound is not loose by orders of magnitude
    locals_ = local_bounds(oracle.graph, oracle.values, FLOAT32_BN_FOLDED)
    assert np.all(locals_[bn_node.name].worst >= bound)


def test_prefixes_call_the_models_modules_and_reproduce_its_values(tiny):
    """A prefix ending at a convolution calls the model's own modules (so a hook on one fires)
    and reproduces the exact value of that node."""
    model, x, oracle = tiny
    prefixes = Prefixes(oracle)
    conv = next(n.name for n in oracle.graph.nodes if n.module == "features.5.pw_conv.0")
    module = prefixes.module([conv])
    assert {n.target for n in module.graph.nodes if n.op == "call_module"} >= {"features.3", "features.4"}
    calls = []
    hooks = [module.get_submodule("features.3.dw_conv.0").register_forward_hook(lambda *args: calls.append(1)),
             module.get_submodule("features.5.pw_conv.0").register_forward_hook(lambda *args: calls.append(2))]
    try:
        with torch.no_grad():
            y = module(torch.from_numpy(x)).double().numpy()
    finally:   # the prefix holds the shared model's own modules
        for hook in hooks:
            hook.remove()
    assert calls == [1, 2]
    exact = oracle.value(conv)[0]
    assert np.max(np.abs(y - exact)) <= 1e-4 * np.max(np.abs(exact))


# ----------------------------------------------------------------------------- the API


def test_a_path_of_your_own_is_a_callable(tiny):
    model, x, oracle = tiny
    one = as_path(lambda module: module)
    two = as_path(lambda module, example: torch.jit.trace(module, example, check_trace=False), name="mine")
    assert two.name == "mine" and one.arithmetic == FLOAT32
    report = assert_paths(model, x, [one, two], criterion=CRITERION, oracle=oracle)
    assert [r.status for r in report.results] == ["pass", "pass"]


def test_the_optimized_trace_reuses_the_plain_trace_and_computes_the_same_bits(tiny, monkeypatch):
    """torchscript_trace_optimized after torchscript_trace in one check freezes and optimizes
    the trace just made (Path.builds_on) instead of tracing again; its output is the same
    bits as the path prepared from scratch on its own, and the plain trace is left unfrozen."""
    model, x, oracle = tiny
    traces = []
    trace = torch.jit.trace
    monkeypatch.setattr(torch.jit, "trace", lambda *a, **k: traces.append(1) or trace(*a, **k))
    report = check_paths(model, x, ["torchscript_trace", "torchscript_trace_optimized"], criterion=CRITERION,
                         oracle=oracle)
    assert [r.status for r in report.results] == ["pass", "pass"] and len(traces) == 1, str(report)
    alone = check_paths(model, x, ["torchscript_trace_optimized"], criterion=CRITERION, oracle=oracle)
    assert len(traces) == 2                                      # on its own it traces
    with torch.no_grad():
        shared = PATHS["torchscript_trace"].prepare(copy.deepcopy(model).eval(), torch.from_numpy(x))
        optimized = PATHS["torchscript_trace_optimized"].builds_on[1](shared)
        fresh = PATHS["torchscript_trace_optimized"].prepare(copy.deepcopy(model).eval(), torch.from_numpy(x))
        assert torch.equal(optimized(torch.from_numpy(x)), fresh(torch.from_numpy(x)))
        assert any(True for _ in shared.parameters())            # freeze worked on a copy
    assert alone.results[0].comparison.worst_ratio == report.results[1].comparison.worst_ratio


def test_paths_that_cannot_run_here_are_skipped_not_failed(tiny):
    model, x, oracle = tiny
    report = check_paths(model, x, ["cuda", "cuda_tf32"], oracle=oracle)
    expected = "pass" if torch.cuda.is_available() else "skipped"
    assert [r.status for r in report.results] == [expected, expected] and report.ok, str(report)
    assert set(CHEAP) < set(ALL) == set(PATHS)


def _onnxruntime(module, x):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return PATHS["onnxruntime"].prepare(module, x)(x).numpy()


@pytest.mark.skipif(not THOROUGH, reason="ONNX export takes 2-10 s: thorough profile")
def test_finding_the_onnx_export_ignores_avg_pool_divisor_override():
    """Finding 2: ONNX Runtime divides by the window size (4), not divisor_override (2)."""
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    pool = torch.nn.AvgPool2d(2, divisor_override=2).eval()
    eager, onnx = pool(x).numpy(), _onnxruntime(pool, x)
    assert np.array_equal(eager, 2 * onnx)                        # [[7, 11], [23, 27]] vs half of it
    report = check_paths(torch.nn.Sequential(pool), x.numpy(), ["onnxruntime"])
    assert report.result("onnxruntime").localisation.op == "aten.avg_pool2d.default"


@pytest.mark.skipif(not THOROUGH, reason="ONNX export takes 2-10 s: thorough profile")
def test_finding_onnxruntime_refuses_conv_transpose_output_padding_beyond_stride():
    """Finding 3: PyTorch allows output_padding < max(stride, dilation); ONNX Runtime's
    ConvTranspose requires output_padding < stride, and the exported model does not run."""
    layer = torch.nn.ConvTranspose2d(2, 3, kernel_size=1, output_padding=1, dilation=2, bias=False).eval()
    x = torch.randn(1, 2, 3, 3)
    assert layer(x).shape == (1, 3, 4, 4)
    with pytest.raises(Exception, match="output_padding"):
        _onnxruntime(layer, x)


@pytest.mark.skipif(not THOROUGH, reason="ONNX export takes ~10 s: thorough profile")
def test_onnxruntime_path_runs_when_installed():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, x = _tiny_mobilenet()
    report = check_paths(model, x, ["onnxruntime"], criterion=CRITERION)
    assert report.ok, str(report)
