"""npconv.capture's two routes to a core-ATen graph give the same graph (npconv/graph/capture.py).

The public route traces a model twice (`torch.export.export`, then `run_decompositions`);
`export_program` takes torch.export's inference route instead, which applies the same
decomposition table in one trace, through a private entry point of torch.export. What is
proved, so that the private route is checked rather than trusted:

* On generated networks (every layer and block kind of npconv.strategies.random_networks,
  every padding mode) and on hand-written cases (circular, reflect and replicate padding,
  channel shuffle, a residual add), both routes give the same npconv Graph: the same nodes
  in the same order (name, op, arguments, module path, module class, source name), inputs,
  output, parameters and buffers bit for bit, state_dict names; and the same ExportedProgram
  where npconv reads it (each node's target, output shape, dtype and stride, module stack,
  torch_fn; the graph signature), and the programs compute the same bits.
* The thorough profile does the same on every pytorchcv acceptance model (zoo.py).
* The route falls back: when the one trace raises, or this torch lacks its entry point,
  capture takes the public route and still succeeds, and a model export cannot trace still
  gets the public route's CaptureError; torch.export's module is left as it was.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn
from twin_utils import one_torch_thread

from npconv.graph.capture import CaptureError, _export_in_one_trace, decompositions, export_program, graph_from_program
from npconv.strategies.random_networks import networks

_ = one_torch_thread  # autouse fixture: torch single-threaded in this module
capture_module = importlib.import_module("npconv.graph.capture")  # the module, not npconv.graph.capture()

pytestmark = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")

THOROUGH = os.environ.get("NPCONV_HYPOTHESIS_PROFILE") == "thorough"
# each example captures a network twice (the public route is the slow one): a fifth of the
# profile's examples, at least 5
EXAMPLES = max(5, settings.default.max_examples // 5)


def _program_facts(program) -> list:
    """What npconv reads of an ExportedProgram's nodes besides the Graph (counters, memory,
    verify, prefixes): each node's target and output metadata, and a call's module stack and
    torch_fn."""
    facts = []
    for node in program.graph.nodes:
        val = node.meta.get("val")
        shape = None
        if isinstance(val, torch.Tensor):
            shape = (tuple(val.shape), str(val.dtype), tuple(val.stride()))
        called = node.op == "call_function"   # a placeholder's stack and torch_fn are not read
        facts.append((node.op, node.name, str(node.target), shape,
                      node.meta.get("nn_module_stack") if called else None, node.meta.get("torch_fn") if called else None))
    return facts


def _signature(program) -> tuple:
    sig = program.graph_signature
    return ([(s.kind, s.arg.name, s.target) for s in sig.input_specs],
            [(s.kind, getattr(s.arg, "name", None), s.target) for s in sig.output_specs])


def assert_same_capture(model, x: torch.Tensor):
    one = _export_in_one_trace(model.eval(), x, False)
    if one is None:
        pytest.skip(f"torch {torch.__version__} has no one-trace route; capture takes the public route")
    public = torch.export.export(model, (x,)).run_decompositions(decompositions())
    a, b = graph_from_program(one, "m"), graph_from_program(public, "m")
    assert a.nodes == b.nodes                # name, op, args, kwargs, module, module_type, source
    assert (a.inputs, a.output, a.fqn, a.modules) == (b.inputs, b.output, b.fqn, b.modules)
    for mine, theirs in ((a.parameters, b.parameters), (a.buffers, b.buffers)):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert mine[key].dtype == theirs[key].dtype and np.array_equal(mine[key], theirs[key], equal_nan=True), key
    assert _program_facts(one) == _program_facts(public)
    assert _signature(one) == _signature(public)
    with torch.no_grad():
        y_one, y_public = one.module()(x), public.module()(x)
    torch.testing.assert_close(y_one, y_public, rtol=0, atol=0, equal_nan=True)   # the same values, NaN where NaN
    return a


@settings(max_examples=EXAMPLES)
@given(networks())
def test_generated_networks_capture_alike_by_both_routes(spec):
    assert_same_capture(spec.build(), torch.from_numpy(spec.input()))


class _Shuffle(nn.Module):
    """Reflect, replicate and circular padding, a channel shuffle (view / transpose), a
    residual add, a concatenation and a global mean: the functional calls zoo models make."""

    def __init__(self):
        super().__init__()
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.replicate = nn.Conv2d(4, 4, (3, 1), padding=(1, 0), padding_mode="replicate")
        self.circular = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular", groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        y = torch.cat([self.reflect(x), self.replicate(x)], 1)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        y = nn.functional.hardswish(self.bn(self.circular(y))) + y
        return self.head(y.mean((2, 3)))


def test_padding_modes_and_functional_calls_capture_alike_by_both_routes():
    torch.manual_seed(0)
    graph = assert_same_capture(_Shuffle(), torch.randn(2, 4, 7, 6))
    ops = {node.op for node in graph.nodes}
    assert {"aten.reflection_pad2d.default", "aten.replication_pad2d.default", "aten.cat.default"} <= ops


@pytest.mark.skipif(not THOROUGH, reason="the whole zoo in the thorough profile (CI captures it once, by one route)")
@pytest.mark.parametrize("name", sorted(__import__("zoo").ZOO))
def test_zoo_models_capture_alike_by_both_routes(name):
    from zoo import pytorchcv_model, small_size

    size = small_size(name)
    assert_same_capture(pytorchcv_model(name, size), torch.randn(1, 3, size, size))


# ----------------------------------------------------------------------------- the fallback


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6()).eval()


def test_a_failing_one_trace_falls_back_to_the_public_route(monkeypatch):
    from torch.export import _trace

    lower, export = _trace._export_to_aten_ir, _trace._export
    calls = []

    def broken(mod, args, kwargs=None, dynamic_shapes=None, *, strict=True, pre_dispatch=False, **options):
        if pre_dispatch:           # the public route's call works; the inference route's raises
            return export(mod, args, kwargs, dynamic_shapes, strict=strict, pre_dispatch=True, **options)
        calls.append(1)
        raise RuntimeError("a private entry point changed")

    monkeypatch.setattr(_trace, "_export", broken)
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 5), dtype=np.float32)
    program = export_program(_net(), x)
    assert calls == [1]                                  # the one trace was tried, then the public route
    assert _trace._export_to_aten_ir is lower           # and torch.export's module left as it was
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "aten.convolution.default" in ops and "aten._native_batch_norm_legit_no_training.default" in ops


def test_a_torch_without_the_entry_point_takes_the_public_route(monkeypatch):
    from torch.export import _trace

    export = _trace._export
    monkeypatch.setattr(_trace, "_export", lambda *args, **kwargs: export(*args, **kwargs))  # no pre_dispatch
    assert _export_in_one_trace(_net(), torch.zeros(1, 3, 5, 5), False) is None
    program = export_program(_net(), np.zeros((1, 3, 5, 5), np.float32))
    assert any(str(n.target) == "aten.convolution.default" for n in program.graph.nodes)


def test_a_model_export_cannot_trace_gets_the_public_routes_error():
    class DataDependent(nn.Module):
        def forward(self, x):
            if x.sum() > 0:          # control flow on a value: export cannot trace it
                return x * 2
            return x

    with pytest.raises(CaptureError, match="torch.export could not capture DataDependent"):
        export_program(DataDependent(), np.ones((1, 3, 4, 4), np.float32))
    from torch.export import _trace
    assert isinstance(_trace._export_to_aten_ir, type(_trace._export))    # restored: a function, not a partial
    assert capture_module._one_trace_lock.acquire(blocking=False)
    capture_module._one_trace_lock.release()
