"""Tests that kill the survivors of the mutation campaign (tools/mutate.py, docs/mutation.md).

Each test states the property it checks: a property of the mathematics or of the documented
semantics, with expected values derived here from shapes and definitions -- never npconv's
own output copied in. The mutant(s) each one kills are named in docs/mutation.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import npconv
from npconv import models
from npconv.graph.graph import Graph, Node, Ref
from npconv.graph.ops import OPS
from npconv.summary import summary

# ----------------------------------------------------------------------------- summary: bytes of containers


def test_a_global_pool_container_moves_its_input_once_and_its_means_once():
    """MobileNetV2's own forward pools `features`' (N, C, H, W) output to (N, C): the least it
    can move is every input value read once and every mean written once, itemsize · (NCHW + NC)
    bytes (module docstring of npconv.summary: "a pool reads each value once and writes each
    mean once"). 64x64 input: H = W = 2, so reads and writes differ."""
    model = models.MobileNetV2(0.35, num_classes=10, rng=0)
    shape = (2, 3, 64, 64)
    n, c, h, w = model.features(np.zeros(shape, np.float32)).shape
    assert h == w == 2
    root = next(row for row in summary(model, shape).rows if row.name == "")
    assert root.bytes == 4 * (n * c * h * w + n * c)


def test_a_residual_add_reads_two_arrays_and_writes_one():
    """A residual block's own add reads the branch output and the shortcut and writes the sum:
    3 · numel(output) · itemsize bytes, in float32 and float64 alike."""
    for dtype, itemsize in ((np.float32, 4), (np.float64, 8)):
        block = models.InvertedResidual(8, 8, 1, 2, rng=0)
        if dtype == np.float64:
            block = block.double()
        row = next(r for r in summary(block, (2, 8, 5, 5), dtype=dtype).rows if r.name == "")
        assert row.bytes == 3 * (2 * 8 * 5 * 5) * itemsize


def test_a_shufflenet_unit_reads_and_writes_every_element_twice():
    """ShuffleNetV2's unit concatenates its two halves (each output element read once and
    written once) and shuffles the channels (again read once, written once): 4 · numel ·
    itemsize bytes of its own."""
    from npconv.models.shufflenet_v2 import ShuffleNetV2Unit

    row = next(r for r in summary(ShuffleNetV2Unit(8, 8, 1, rng=0), (1, 8, 6, 6)).rows if r.name == "")
    assert row.bytes == 4 * (1 * 8 * 6 * 6) * 4


# ----------------------------------------------------------------------------- summary: the Markdown report


def test_the_markdown_lists_mismatches_and_disagreements_only_when_there_are_some(monkeypatch):
    """An ok summary's report has no "Formula mismatches" or "Disagreements" section (they
    would announce failures that do not exist); a summary with a mismatch has the section and
    the line."""
    ok = summary(models.MobileNetBlock(4, 8, rng=0), (1, 4, 6, 6))
    text = ok.to_markdown()
    assert ok.ok and "Formula mismatches" not in text and "Disagreements" not in text and "MISMATCH" not in text
    from npconv.cost import summary as summary_module

    real = summary_module.formulas.conv2d_macs
    monkeypatch.setattr(summary_module.formulas, "conv2d_macs", lambda *a, **k: real(*a, **k) + 1)
    bad = summary(models.MobileNetBlock(4, 8, rng=0), (1, 4, 6, 6))
    text = bad.to_markdown()
    assert "**Formula mismatches:**" in text and f"- {bad.mismatches[0]}" in text
    assert "Disagreements" not in text


# ----------------------------------------------------------------------------- graph: ops and Graph


def test_mean_with_a_dtype_argument_is_refused():
    """torch.mean(x, dim, dtype=float64) accumulates in float64; npconv's mean runs in the
    input's dtype, so a node asking for another dtype must be refused, not run differently."""
    x = np.ones((1, 2, 3, 3), np.float32)
    for op in ("aten.mean.dim", "aten.mean.default"):
        args = (x, [2, 3]) if op == "aten.mean.dim" else (x,)
        with pytest.raises(NotImplementedError, match="dtype"):
            OPS[op].run(*args, dtype="torch.float64")
    assert OPS["aten.mean.dim"].run(x, [2, 3]).shape == (1, 2)  # without it, a mean


def test_a_graphs_equality_ignores_the_program_it_was_captured_from():
    """A Graph is its nodes, arrays and names; `program` (the ExportedProgram it came from, or
    None for a graph built by hand) is provenance, not part of its value: the same graph with
    and without a program compares equal."""
    graph = Graph("hand", ["x"], [Node("out", "aten.relu.default", (Ref("x"),))], Ref("out"), {}, {}, {})
    assert dataclasses.replace(graph, program=object()) == graph


# ----------------------------------------------------------------------------- verify: a node that disagrees


def _conv_relu():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU()).eval()


@pytest.mark.parametrize("op, exact", [("aten.relu.default", True), ("aten.convolution.default", False)])
def test_verify_fails_and_names_a_node_where_npconv_and_pytorch_disagree(monkeypatch, op, exact):
    """When npconv's evaluation of a node differs from PyTorch's output beyond what the node
    allows (bit for bit for an exact op, its rounding bound otherwise), verify fails with one
    line per precision naming the node, its op, its module and type, and how far it is off."""
    spec = OPS[op]
    wrong = dataclasses.replace(spec, run=lambda *args, **kwargs: spec.run(*args, **kwargs) * 1.001 + 0.5)
    monkeypatch.setitem(OPS, op, wrong)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5), dtype=np.float32)
    from npconv.verify import verify_model

    report = verify_model(_conv_relu(), x, timing=False)
    assert not report.ok
    module, kind = ("1", "ReLU") if exact else ("0", "Conv2d")
    lines = [line for line in report.failures if f" = {op} in {module} ({kind}) differs from npconv by " in line]
    assert [line.split(":")[0] for line in lines] == ["float32", "float64"]
    assert all(line.endswith("an exact op") if exact else line.endswith("x its rounding bound") for line in lines)


# ----------------------------------------------------------------------------- summary: rows of a captured graph


def test_intensity_is_macs_per_byte_and_none_without_macs():
    """Arithmetic intensity is MACs per byte moved, defined for layers that do MACs; a layer
    without MACs (BatchNorm, ReLU6) has none (None, not 0), whatever bytes it moves."""
    rows = summary(models.MobileNetBlock(4, 8, rng=0), (1, 4, 6, 6)).rows
    assert {row.type for row in rows} >= {"Conv2d", "BatchNorm2d", "ReLU6"}
    for row in rows:
        if row.macs:
            assert row.intensity == row.macs / row.bytes
        else:
            assert row.bytes > 0 and row.intensity is None


def test_a_captured_graphs_rows_carry_each_modules_input_and_output_shapes():
    """graph_summary's row for a module: the shape of the first array its first node reads
    (for a convolution and an activation, the module's input; nn.Linear's first node reads
    its weight -- see docs/mutation.md) and of its last node's output."""
    import torch

    from npconv.cost.summary import graph_summary

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 3 * 3, 4)).eval()
    x = np.zeros((2, 2, 7, 7), np.float32)
    rows = {row.name: row for row in graph_summary(npconv.capture(model, x), x).rows}
    assert (rows["0"].input_shape, rows["0"].output_shape) == ((2, 2, 7, 7), (2, 3, 3, 3))
    assert (rows["1"].input_shape, rows["1"].output_shape) == ((2, 3, 3, 3), (2, 3, 3, 3))
    assert rows["3"].output_shape == (2, 4)


# ----------------------------------------------------------------------------- graph: padding


@pytest.mark.parametrize("pad", [(1, 2), (2, 0, 1, 3), (-1, 2, 0, -2), (1, 1, 0, 0, 2, 1), (0, 0, -1, -1)])
def test_constant_pad_nd_is_pytorchs_bit_for_bit(pad):
    """aten.constant_pad_nd pads (or, with negative amounts, crops) the last len(pad)/2
    dimensions, the last one first: npconv's node gives PyTorch's array exactly (an exact op)."""
    import torch

    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) - 50
    expected = torch.ops.aten.constant_pad_nd(torch.from_numpy(x), list(pad), 0.5).numpy()
    actual = OPS["aten.constant_pad_nd.default"].run(x, list(pad), 0.5)
    assert actual.shape == expected.shape and np.array_equal(actual, expected)


def test_circular_padding_of_one_dimension_is_one_concatenation():
    """Circular F.pad is captured as slices and cats, one cat per padded dimension: padding
    only the width (before 1, after 2) is one cat of (the last column, x, the first two), with
    no empty slice for a side that is not padded and no cat for the unpadded height; the
    values are PyTorch's."""
    import torch
    import torch.nn.functional as F

    class Pad(torch.nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 2, 0, 0), mode="circular")

    x = np.arange(1 * 2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    graph = npconv.capture(Pad(), x)
    ops = [node.op for node in graph.nodes]
    assert ops.count("aten.cat.default") == 1 and ops.count("aten.slice.Tensor") == 2
    assert np.array_equal(graph(x), F.pad(torch.from_numpy(x), (1, 2, 0, 0), mode="circular").numpy())


# ----------------------------------------------------------------------------- summary: layers without a formula


def test_counts_without_a_closed_form_are_reported_unchecked_not_failed():
    """A layer npconv has no formula for (here a user's own leaf module that applies ReLU) is
    listed in `unchecked` as "layer: kind" for each kind it counted, and does not make the
    summary fail: there is nothing to compare its counts with."""
    from npconv.functional import layers as ops
    from npconv.nn import Module

    class Rectifier(Module):
        def forward(self, x):
            return ops.relu(x)

    result = summary(Rectifier(), (1, 2, 3, 3))
    assert result.unchecked == ["(model): activation_compares"]
    assert result.ok and result.rows[0].formula is None and result.rows[0].counted == {"activation_compares": 18}
    # the report still renders, with a dash for the missing formula
    row = next(line for line in result.to_markdown().splitlines() if line.startswith("| `(model)`"))
    assert row.split(" | ")[7] == "—"  # layer, type, output, weights, bias, BN, MACs, formula MACs


# ----------------------------------------------------------------------------- bounds: adaptive pooling


@pytest.mark.parametrize("dtype, u", [(np.float32, 2.0**-24), (np.float64, 2.0**-53)])
def test_adaptive_pool_bound_counts_the_roundings_of_the_largest_window(dtype, u):
    """adaptive_avg_pool2d from 5x5 to 3x3 has windows [0, 2), [1, 4), [3, 5) per axis
    (start floor(5i/3), end ceil(5(i+1)/3)): lengths 2, 3, 2, so the largest 2-d window holds
    m = 3 · 3 = 9 values, and every cell's bound is γ_{m+1}(u) · avg|x| + tiny with m = 9,
    not the smallest window's 2 · 2 (nor 2 · 3): the bound must hold for the worst window."""
    from npconv.oracle import bounds

    def gamma(n):
        return n * u / (1 - n * u)

    bound = bounds.adaptive_avg_pool2d_bound(np.ones((1, 1, 5, 5)), (3, 3), dtype)
    expected = gamma(10) * 1.0 + float(np.finfo(dtype).tiny)
    assert bound.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(bound, expected, rtol=1e-12)


# ----------------------------------------------------------------------------- graph: capture


def test_a_captured_graph_names_each_modules_class():
    """graph.modules maps each module a node came from to its class name, type(m).__name__
    ("Conv2d", not "torch.nn.modules.conv.Conv2d"), and so does every node's module_type;
    summary rows of the graph carry the same name."""
    import torch

    from npconv.cost.summary import graph_summary

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU()).eval()
    x = np.zeros((1, 2, 5, 5), np.float32)
    graph = npconv.capture(model, x)
    classes = {name: type(module).__name__ for name, module in model.named_modules() if name}
    assert graph.modules == classes
    assert all(node.module_type == classes[node.module] for node in graph.nodes)
    assert {row.name: row.type for row in graph_summary(graph, x).rows} == classes


# ----------------------------------------------------------------------------- formulas: defaults


@pytest.mark.parametrize("size, kernel, stride, pad", [(7, 3, 2, 1), (8, 2, 2, 0), (5, 3, 1, 1), (9, 4, 3, 2)])
def test_pool_output_size_defaults_are_pytorchs(size, kernel, stride, pad):
    """formulas.pool_output_size(size, kernel, stride, pad) without dilation or ceil_mode uses
    PyTorch's defaults (dilation 1, ceil_mode False): it is the output size of F.max_pool2d
    called with the same four arguments."""
    import torch
    import torch.nn.functional as F

    from npconv import formulas

    x = torch.zeros(1, 1, size, size)
    expected = F.max_pool2d(x, kernel, stride, pad).shape[-1]
    assert formulas.pool_output_size(size, kernel, stride, pad) == expected


def test_an_unbatched_input_is_a_batch_of_one_in_the_summary():
    """A (C, H, W) input is one image: a ConvTranspose2d counts what its closed forms say
    (N = 1, not N = C), the same figures as on the (1, C, H, W) batch."""
    from npconv.nn import ConvTranspose2d

    layer = ConvTranspose2d(3, 4, 3, stride=2, rng=0)
    unbatched, batched = summary(layer, (3, 5, 5)), summary(layer, (1, 3, 5, 5))
    assert unbatched.ok and batched.ok
    assert unbatched.rows[0].counted == batched.rows[0].counted
    assert unbatched.total["macs"] == 1 * 3 * 5 * 5 * 4 * 3 * 3  # N · C_in · H · W · C_out · K_h · K_w


# ----------------------------------------------------------------------------- tolerance: defaults


def test_conv2d_magnitude_and_bound_use_conv2ds_defaults():
    """conv2d_magnitude(x, w) is M = Σ |x||w| over each output's window with nn.Conv2d's
    defaults (stride 1, no padding, dilation 1, one group), written out here as a loop; and
    conv2d_error_bound(x, w) is (γ_n(u) + γ_n(2⁻⁵³)) M + n tiny with n = C_in · K_h · K_w."""
    from npconv.oracle import tolerance

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    expected = np.zeros((1, 3, 3, 4))
    for o, i, j in np.ndindex(3, 3, 4):
        expected[0, o, i, j] = np.sum(np.abs(x[0, :, i:i + 2, j:j + 2].astype(np.float64)) * np.abs(w[o]))
    np.testing.assert_allclose(tolerance.conv2d_magnitude(x, w), expected, rtol=1e-14)
    n, u = 2 * 2 * 2, 2.0**-24
    bound, magnitude, n_out = tolerance.conv2d_error_bound(x, w)
    assert n_out == n
    gamma = lambda n, u: n * u / (1 - n * u)  # noqa: E731
    np.testing.assert_allclose(bound, (gamma(n, u) + gamma(n, 2.0**-53)) * expected + n * 2.0**-126, rtol=1e-12)


# ----------------------------------------------------------------------------- verify: exact ops


def test_an_exact_op_mismatch_reports_the_largest_finite_difference():
    """An exact op's check fails (ratio inf) on any difference; the error it reports is the
    largest |actual − expected| over positions where both are finite -- a position where one
    side is ±Inf or NaN is a class mismatch, not an infinite error."""
    from npconv.graph.verify import check_nodes
    from npconv.oracle import bounds

    x = np.array([1.0, np.inf, 3.0], np.float32)
    graph = Graph("hand", ["x"], [Node("out", "aten.clone.default", (Ref("x"),))], Ref("out"), {}, {}, {})
    pytorch = np.array([1.5, 2.0, 3.0], np.float32)  # off by 0.5 at 0; finite where npconv has +inf
    (check,) = check_nodes(graph, {"x": x, "out": pytorch}, bounds.U32)
    assert check.exact and not check.ok and check.ratio == np.inf
    assert check.max_error == 0.5


# ----------------------------------------------------------------------------- graph: view ops


@pytest.mark.parametrize("shape, dims", [((1, 3, 1, 2), [0, 1, 2]), ((2, 1, 3), [1]), ((2, 3), [0, 1]),
                                         ((1, 1), [-1]), ((4, 1, 1, 5), [2, 3])])
def test_squeeze_dims_is_pytorchs(shape, dims):
    """aten.squeeze.dims removes the listed dimensions of size 1 and leaves the others (of
    any other size) alone: npconv's node gives PyTorch's shape and values."""
    import torch

    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    expected = torch.ops.aten.squeeze.dims(torch.from_numpy(x), dims).numpy()
    actual = OPS["aten.squeeze.dims"].run(x, dims)
    assert actual.shape == expected.shape and np.array_equal(actual, expected)


def test_a_node_without_module_metadata_belongs_to_the_model_itself():
    """graph_from_program places a node whose nn_module_stack is missing (the metadata is
    torch.export's, and not promised on every node by every torch release) on the model itself,
    module "", rather than failing."""
    import torch

    from npconv.graph.capture import export_program, graph_from_program

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.ReLU()).eval()
    program = export_program(model, np.zeros((1, 2, 3, 3), np.float32))
    for node in program.graph.nodes:
        node.meta.pop("nn_module_stack", None)
    graph = graph_from_program(program, "stripped")
    assert [node.module for node in graph.nodes] == [""] * len(graph.nodes) and graph.nodes


# ----------------------------------------------------------------------------- more rows of a captured graph


def test_a_captured_graphs_rows_count_the_bytes_their_nodes_move():
    """graph_summary's bytes per module: each node reads its array arguments once and writes
    its output once, at the dtype's size; a view (flatten) moves nothing. Conv2d(2, 3, 3) on
    1x2x5x5 reads x (50), w (54), b (3), writes y (27); ReLU reads and writes 27."""
    import torch

    from npconv.cost.summary import graph_summary

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten()).eval()
    x = np.zeros((1, 2, 5, 5), np.float32)
    rows = {row.name: row for row in graph_summary(npconv.capture(model, x), x).rows}
    assert rows["0"].bytes == 4 * (50 + 54 + 3 + 27)
    assert rows["1"].bytes == 4 * (27 + 27)
    assert rows["2"].bytes == 0


# ----------------------------------------------------------------------------- tolerance: torch tensors


def test_assert_close_to_reference_takes_a_tensor_that_requires_grad():
    """The result under test may be a torch tensor still attached to autograd (a training
    model's output): it is compared by value, as the same array detached."""
    import torch

    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = torch.from_numpy(rng.standard_normal((3, 2, 3, 3)).astype(np.float32)).requires_grad_()
    out = torch.nn.functional.conv2d(torch.from_numpy(x), w)
    assert out.requires_grad
    npconv.assert_close_to_reference(out, x, w)
    with pytest.raises(AssertionError):
        npconv.assert_close_to_reference(out * 1.01, x, w)


# ----------------------------------------------------------------------------- bounds: BatchNorm, no affine


@pytest.mark.parametrize("dtype, u, tiny", [(np.float32, 2.0**-24, 2.0**-126), (np.float64, 2.0**-53, 2.0**-1022)])
def test_batch_norm_bound_without_affine_parameters_is_weight_one_bias_zero(dtype, u, tiny):
    """BatchNorm2d(affine=False) is weight 1 and bias 0: its eval bound is
    γ_7(u) · (|x| + |μ|) / sqrt(σ² + eps) + 7 · tiny (npconv.bounds.batch_norm_eval_bound's
    docstring, with α = 1/sqrt(σ² + eps), β = 0), and equal to passing ones and zeros."""
    from npconv.oracle import bounds

    x = np.array([[[[1.0, -2.0]], [[0.5, 3.0]]]])  # (1, 2, 1, 2)
    mean, var, eps = np.array([0.25, -1.0]), np.array([4.0, 0.75]), 0.25
    none = bounds.batch_norm_eval_bound(x, None, None, mean, var, eps, dtype)
    gamma7 = 7 * u / (1 - 7 * u)
    alpha = 1 / np.sqrt(var + eps)
    expected = gamma7 * alpha.reshape(1, 2, 1, 1) * (np.abs(x) + np.abs(mean).reshape(1, 2, 1, 1)) + 7 * tiny
    np.testing.assert_allclose(none, expected, rtol=1e-12)
    explicit = bounds.batch_norm_eval_bound(x, np.ones(2), np.zeros(2), mean, var, eps, dtype)
    np.testing.assert_array_equal(none, explicit)


def test_a_node_that_agrees_exactly_uses_none_of_its_bound():
    """A bounded node whose PyTorch output equals npconv's value everywhere has ratio 0 --
    also at positions whose bound is 0 (x + x with x = ±inf or NaN: the IEEE result is fixed,
    so the bound there is 0 and the values agree)."""
    from npconv.graph.verify import check_nodes
    from npconv.oracle import bounds

    x = np.array([np.inf, 1.5, np.nan, -np.inf], np.float32)
    graph = Graph("hand", ["x"], [Node("out", "aten.add.Tensor", (Ref("x"), Ref("x")))], Ref("out"), {}, {}, {})
    with np.errstate(invalid="ignore"):  # inf - inf in the finite-part arithmetic (masked)
        (check,) = check_nodes(graph, {"x": x, "out": x + x}, bounds.U32)
    assert check.ok and check.ratio == 0.0 and check.max_error == 0.0


def test_integer_inputs_beyond_2_to_the_p_may_round():
    """Integer-valued inputs are exact only while M = Σ|x||w| <= 2^p (every partial sum an
    integer of at most p bits). Past it they may round: 2^24 + 1 in float32 is 2^24, off by
    one from the exact 16,777,217, and within the bound γ_2(2⁻²⁴) · M ≈ 2 -- accepted."""
    x = np.array([2.0**24, 1.0], np.float32).reshape(1, 2, 1, 1)
    w = np.ones((1, 2, 1, 1), np.float32)
    rounded = np.array(np.float32(2.0**24) + np.float32(1.0), np.float32).reshape(1, 1, 1, 1)
    assert rounded[0, 0, 0, 0] == 2.0**24
    npconv.assert_close_to_reference(rounded, x, w)
    with pytest.raises(AssertionError):  # 3 off is beyond the bound
        npconv.assert_close_to_reference(rounded - 2, x, w)


def test_an_odd_flop_counter_figure_is_flagged(monkeypatch):
    """FlopCounterMode counts 2 FLOPs per multiply-accumulate, so a layer's figure must be
    even; one FLOP more on the pointwise layer (halved, it would still round to the counted
    MACs) is flagged as odd on that layer and the summary is not ok."""
    from npconv.cost import summary as summary_module
    from npconv.oracle import twins

    real = summary_module.flop_counter_by_module

    def one_more(torch_model, input_shape, dtype=None):
        flops = real(torch_model, input_shape, dtype)
        flops["pointwise"] += 1
        flops[""] += 1
        return flops

    ours = models.DepthwiseSeparableConv(4, 6, 3, padding=1, rng=0)
    twin = twins.build("DepthwiseSeparableConv", 4, 6, 3, padding=1, seed=0)
    assert summary(ours, (1, 4, 8, 8), torch_model=twin).ok
    monkeypatch.setattr(summary_module, "flop_counter_by_module", one_more)
    result = summary(ours, (1, 4, 8, 8), torch_model=twin)
    assert not result.ok
    assert result.disagreements == ["pointwise: FlopCounterMode reports an odd 3,073 FLOPs"]


def test_assert_close_to_reference_refuses_a_result_that_is_not_floating_point():
    """The bound is derived for float16, float32 and float64 results; an integer (or complex)
    result has no unit roundoff here and is refused with a TypeError, even when its values
    equal the reference."""
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    for dtype in (np.int32, np.int64, np.complex64):
        with pytest.raises(TypeError, match="floating point"):
            npconv.assert_close_to_reference(np.full((1, 1, 2, 2), 4, dtype), x, w)
