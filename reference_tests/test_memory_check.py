"""Size checked up front (npconv.memory) and clear errors for bad arguments (issue #13).

What is pinned:
* the memory available is MemAvailable of /proc/meminfo, else SC_AVPHYS_PAGES ·
  SC_PAGE_SIZE, else unknown (nothing refused);
* nothing restates a model: a model's size comes from a dry build of its own constructor
  (npconv.nn.init.dry(): placeholders, nothing drawn), whose parameters and buffers have
  exactly the names, shapes and dtypes of a real build's, for every model and block; the dry
  build takes no memory for them and draws no random numbers (a real build's weights are
  the same with the check as without it);
* constructors, the ops that allocate an output larger than their input (conv2d,
  conv_transpose2d, linear, the channel concatenation, pooling), Graph.run and the command
  refuse -- InsufficientMemoryError, a MemoryError, one line naming the work (the op and its
  output shape), "memory" and the override -- before allocating (tracemalloc's peak stays
  small, nothing is drawn, run_node is never called), and the override
  (`npconv.memory.unchecked()`, `--no-memory-check`) lets the work through;
* `npconv summary mobilenet_v2 --width 1000` (about 2·10^12 parameters, 8 TiB in float32:
  more than any machine this runs on) exits 2 with one line;
* a model's numeric arguments of the wrong type or value raise one-line TypeError /
  ValueError naming the constructor and the argument; `npconv verify --seed -1`, a 20-digit
  seed and `npconv models` without rich exit 2 with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npconv
from npconv import memory, models
from npconv.nn import init
from npconv.models.mobilenet_v2 import InvertedResidual as TorchvisionInvertedResidual
from npconv.models.shufflenet_v2 import ShuffleNetV2Unit

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200")
GiB = 2**30


def npconv_command(*args):
    """`npconv ARGS`, run in this process as test_cli.py runs it (npconv.cli.main, streams
    captured): these refusals happen before anything is built, so a fresh interpreter per call
    would only add its seconds of imports."""
    from test_cli import npconv

    return npconv(*args)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _never(*args, **kwargs):
    raise AssertionError("the work started: the check came too late")


@pytest.fixture
def one_gib(monkeypatch):
    """A machine with 1 GiB available, whatever this one has."""
    monkeypatch.setattr(memory, "available_bytes", lambda: GiB)


@pytest.fixture
def no_memory(monkeypatch):
    """A machine with 1 byte available, and every estimate checked (SMALL = 0)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    monkeypatch.setattr(memory, "SMALL", 0)


# ----------------------------------------------------------------------------- the memory available


def test_available_memory_is_memavailable(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384000 kB\nMemFree:          100000 kB\nMemAvailable:    2048000 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    assert memory.available_bytes() == 2048000 * 1024


def test_available_memory_falls_back_to_sysconf_then_to_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "no_such_file"))
    values = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: values[name])
    assert memory.available_bytes() == 1000 * 4096

    def unsupported(name):
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(os, "sysconf", unsupported)
    assert memory.available_bytes() is None
    memory.check(10**18, "anything")  # unknown: nothing is refused


def test_check_refuses_past_the_available_memory_and_the_override_lets_it_through(one_gib):
    memory.check(GiB, "exactly what is available")  # needed <= available passes
    with pytest.raises(memory.InsufficientMemoryError) as raised:
        memory.check(GiB + 1, "one byte more", "a detail")
    error = raised.value
    assert isinstance(error, MemoryError) and (error.needed, error.available) == (GiB + 1, GiB)
    line = one_line(str(error))
    assert line.startswith("one byte more needs about 1 GiB of memory (a detail), more than the 1 GiB available")
    assert "npconv.memory.unchecked()" in line
    assert error.message("pass --no-memory-check").endswith("available; pass --no-memory-check")
    with memory.unchecked():
        assert not memory.enabled()
        memory.check(10**18, "anything")
        with memory.unchecked():
            pass
        assert not memory.enabled()  # a nested override does not switch the outer one off
    assert memory.enabled()


def test_small_estimates_are_not_checked(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: pytest.fail("read the available memory"))
    memory.check(memory.SMALL - 1, "small")


# ----------------------------------------------------------------------------- a model's size, from its dry build


def _arrays(model):
    """name -> (shape, dtype) of every parameter and buffer."""
    return {name: (a.shape, a.dtype) for name, a in [*model.named_parameters(), *model.named_buffers()]}


def assert_dry_build_is_the_real_one(cls, *args, **kwargs):
    """The dry build has the real build's arrays (names, shapes, dtypes), none of them taking
    memory, and model_size counts them exactly."""
    dry = memory.dry_build(cls, *args, **kwargs)
    real = cls(*args, **kwargs, rng=0)
    assert _arrays(dry) == _arrays(real)
    assert all(a.strides == (0,) * a.ndim for a in [*dry.parameters(), *dry.buffers()])  # placeholders
    size = memory.model_size(cls, *args, **kwargs)
    params = real.parameters()
    assert size.params == sum(p.size for p in params)
    assert size.largest_param == max(p.size for p in params)
    assert size.buffers == sum(b.size for b in real.buffers())
    assert size.nbytes == sum(a.nbytes for a in [*params, *real.buffers()])


def test_the_dry_build_counts_torchvisions_mobilenet_v2_exactly():
    assert memory.model_size(models.MobileNetV2).params == 3_504_872  # torchvision's documentation
    assert_dry_build_is_the_real_one(models.MobileNetV2)


widths = st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.5])
classes = st.integers(1, 20)
channels = st.integers(1, 12)


@given(width=widths, num_classes=classes, round_nearest=st.integers(1, 16), dropout=st.sampled_from([0.0, 0.2]))
def test_the_dry_build_of_mobilenet_v2(width, num_classes, round_nearest, dropout):
    assert_dry_build_is_the_real_one(models.MobileNetV2, width, num_classes, dropout=dropout,
                                     round_nearest=round_nearest)


@given(width=widths, num_classes=classes)
def test_the_dry_build_of_mobilenet_v1(width, num_classes):
    assert_dry_build_is_the_real_one(models.MobileNetV1, width, num_classes)


@given(num_classes=classes)
def test_the_dry_build_of_tiny_mobilenet(num_classes):
    assert_dry_build_is_the_real_one(models.TinyMobileNet, num_classes)


@given(c_in=channels, c_out=channels, stride=st.integers(1, 3), padding=st.integers(0, 2),
       kernel=st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5))))
def test_the_dry_build_of_depthwise_separable_conv(c_in, c_out, kernel, stride, padding):
    assert_dry_build_is_the_real_one(models.DepthwiseSeparableConv, c_in, c_out, kernel, stride, padding)


@given(c_in=channels, c_out=channels, stride=st.integers(1, 2))
def test_the_dry_build_of_mobilenet_block(c_in, c_out, stride):
    assert_dry_build_is_the_real_one(models.MobileNetBlock, c_in, c_out, stride)


@given(c_in=channels, c_out=channels, stride=st.integers(1, 2), expand_ratio=st.integers(1, 6))
def test_the_dry_build_of_the_tutorials_inverted_residual(c_in, c_out, stride, expand_ratio):
    assert_dry_build_is_the_real_one(models.InvertedResidual, c_in, c_out, stride, expand_ratio)


@given(c_in=channels, c_out=channels)
def test_the_dry_build_of_hybrid_block(c_in, c_out):
    assert_dry_build_is_the_real_one(models.HybridBlock, c_in, c_out)


@given(inp=channels, oup=channels, stride=st.integers(1, 2), expand_ratio=st.sampled_from([1, 2, 2.5, 6]))
def test_the_dry_build_of_torchvisions_inverted_residual(inp, oup, stride, expand_ratio):
    assert_dry_build_is_the_real_one(TorchvisionInvertedResidual, inp, oup, stride, expand_ratio)


@given(half=st.integers(1, 6), inp=channels, stride=st.integers(1, 3))
def test_the_dry_build_of_shufflenet_v2_unit(half, inp, stride):
    assert_dry_build_is_the_real_one(ShuffleNetV2Unit, 2 * half if stride == 1 else inp, 2 * half, stride)


def test_a_dry_build_draws_no_random_numbers():
    """Neither from the default generator nor from a Generator passed as rng; and a real
    build's weights are the same with the check (its dry build) as without."""
    state = init._default_generator.bit_generator.state
    memory.dry_build(models.MobileNetV2, 0.25, 10)  # Dropout spawns its own generator: not drawn either
    memory.dry_build(models.HybridBlock, 3, 4)
    assert init._default_generator.bit_generator.state == state
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    memory.dry_build(models.MobileNetV1, 0.25, 10, rng=rng)
    assert rng.bit_generator.state == state

    init.manual_seed(3)
    checked = models.MobileNetV2(0.25, 10).state_dict()
    init.manual_seed(3)
    with memory.unchecked():
        unchecked = models.MobileNetV2(0.25, 10).state_dict()
    assert checked.keys() == unchecked.keys()
    assert all(np.array_equal(checked[k], unchecked[k]) for k in checked)


def test_a_dry_build_raises_the_constructors_own_errors():
    with pytest.raises(ValueError, match="stride should be 1 or 2"):
        memory.dry_build(TorchvisionInvertedResidual, 4, 4, 3, 6)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        memory.dry_build(npconv.nn.Conv2d, 3, 4, 3, padding_mode="mirror")


# ----------------------------------------------------------------------------- constructors refuse before allocating


def test_mobilenet_v2_width_1000_is_refused_at_once():
    """About 2·10^12 parameters: 8 TiB in float32, on any machine. Refused from the dry
    build, with nothing drawn and little allocated: tracemalloc's peak (NumPy reports its
    buffers to it) stays under 16 MiB -- the dry build keeps no array, and the largest it
    makes at all is one BatchNorm2d vector of 1,280,000 channels (5 MiB)."""
    state = init._default_generator.bit_generator.state
    tracemalloc.start()
    try:
        with pytest.raises(memory.InsufficientMemoryError) as raised:
            models.MobileNetV2(width_mult=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    assert init._default_generator.bit_generator.state == state
    line = one_line(str(raised.value))
    assert line.startswith("MobileNetV2(width_mult=1000) needs about 10.7 TiB of memory "
                           "(2,126,051,201,000 parameters), more than the ")
    assert "npconv.memory.unchecked()" in line


REFUSED = [  # each over 1 GiB of float32 parameters
    (lambda: models.MobileNetV1(width_mult=16), "MobileNetV1(width_mult=16)"),
    (lambda: models.MobileNetV2(width_mult=16), "MobileNetV2(width_mult=16)"),
    (lambda: models.TinyMobileNet(num_classes=2**20), "TinyMobileNet(num_classes=1048576)"),
    (lambda: models.DepthwiseSeparableConv(2**15, 2**15, 3), "DepthwiseSeparableConv(in_channels=32768, "
                                                             "out_channels=32768, kernel_size=3)"),
    (lambda: models.MobileNetBlock(2**15, 2**15), "MobileNetBlock(in_ch=32768, out_ch=32768)"),
    (lambda: models.InvertedResidual(2**14, 2**14, 1), "InvertedResidual(in_ch=16384, out_ch=16384, stride=1)"),
    (lambda: models.HybridBlock(2**14, 2**14), "HybridBlock(in_ch=16384, out_ch=16384)"),
    (lambda: TorchvisionInvertedResidual(2**14, 2**14, 1, 6),
     "InvertedResidual(inp=16384, oup=16384, stride=1, expand_ratio=6)"),
    (lambda: ShuffleNetV2Unit(2**16, 2**16, 2), "ShuffleNetV2Unit(inp=65536, oup=65536, stride=2)"),
]


@pytest.mark.parametrize("build, what", REFUSED, ids=[r[1].split("(")[0] for r in REFUSED])
def test_every_constructor_refuses_before_allocating(one_gib, build, what):
    """Refused with the call named, nothing drawn, and tracemalloc's peak under 4 MiB (the
    real builds would allocate more than 1 GiB)."""
    state = init._default_generator.bit_generator.state
    tracemalloc.start()
    try:
        with pytest.raises(memory.InsufficientMemoryError) as raised:
            build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20
    assert init._default_generator.bit_generator.state == state
    line = one_line(str(raised.value))
    assert line.startswith(f"{what} needs about ") and "more than the 1 GiB available" in line


def test_the_python_override_builds_it(no_memory):
    with pytest.raises(memory.InsufficientMemoryError):
        models.TinyMobileNet()
    with memory.unchecked():
        model = models.TinyMobileNet(rng=0)
    assert sum(p.size for p in model.parameters()) == memory.model_size(models.TinyMobileNet).params


# ----------------------------------------------------------------------------- ops refuse an output too large


@pytest.fixture
def one_mib(monkeypatch):
    """1 MiB available, and every estimate checked (SMALL = 0)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    monkeypatch.setattr(memory, "SMALL", 0)


def test_conv2d_refuses_an_output_larger_than_the_memory_and_runs_unchecked(one_mib, monkeypatch):
    """A 1×1×16×16 input padded by 200 gives a 1×2×414×414 float32 output (1.3 MiB): refused
    before it is allocated, naming conv2d and the shape; inside unchecked() it runs, and
    equals the result computed with enough memory."""
    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16), dtype=np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    with pytest.raises(memory.InsufficientMemoryError) as raised:
        npconv.functional.conv2d(x, w, padding=200)
    line = one_line(str(raised.value))
    assert line.startswith("conv2d's output of shape 1×2×414×414 (float32) needs about 1.31 MiB of memory, "
                           "more than the 1 MiB available")
    with memory.unchecked():
        y = npconv.functional.conv2d(x, w, padding=200)
        assert y.shape == (1, 2, 414, 414)
    with npconv.engine.use("fast"), pytest.raises(memory.InsufficientMemoryError, match="conv2d's output"):
        npconv.functional.conv2d(x, w, padding=200)  # the fast engine is checked too
    monkeypatch.setattr(memory, "available_bytes", lambda: GiB)
    np.testing.assert_array_equal(y, npconv.functional.conv2d(x, w, padding=200))


def _f32(*shape):
    return np.ones(shape, np.float32)


def _f64(*shape):
    return np.ones(shape, np.float64)


OPS_TOO_LARGE = [  # (the op on inputs of a few KiB, the start of its refusal; None: under 1 MiB, it runs)
    (lambda F: F.conv_transpose.conv_transpose2d(_f32(1, 1, 8, 8), _f32(1, 4, 3, 3), stride=64),
     "conv_transpose2d's output of shape 1×4×451×451 (float32) needs about 6.21 MiB of memory (and 3.1 MiB of "
     "scratch)"),  # scratch: the uncropped frame
    (lambda F: F.layers.linear(_f32(300, 2), _f32(1000, 2)), "linear's output of shape 300×1000 (float32)"),
    (lambda F: F.pooling.max_pool2d(_f64(1, 1, 8, 8), 1, 1), None),
    (lambda F: F.pooling.avg_pool2d(_f64(1, 64, 64, 64), 1, 1), "avg_pool2d's output of shape 1×64×64×64 (float64)"),
    (lambda F: F.pooling.max_pool2d(_f64(1, 96, 32, 32), 3, 1, 1),  # 768 KiB, and as much of int64 indices
     "max_pool2d's output of shape 1×96×32×32 (float64) needs about 1.5 MiB of memory (and 768 KiB of scratch)"),
]


@pytest.mark.parametrize("call, what", OPS_TOO_LARGE, ids=["conv_transpose2d", "linear", "small", "avg_pool2d",
                                                          "max_pool2d"])
def test_ops_that_can_enlarge_refuse_before_allocating(one_mib, call, what):
    from npconv import functional as F

    if what is None:
        call(F)  # under the available memory: runs
        return
    with pytest.raises(memory.InsufficientMemoryError) as raised:
        call(F)
    assert one_line(str(raised.value)).startswith(what if "needs" in what else f"{what} needs about ")
    with memory.unchecked():
        call(F)


def test_the_channel_concatenation_refuses(one_mib):
    from npconv.functional.channels import cat_channels

    a = np.ones((1, 40, 64, 64), np.float32)  # 640 KiB each, the result 1.25 MiB
    with pytest.raises(memory.InsufficientMemoryError, match=r"^cat's output of shape 1×80×64×64 \(float32\)"):
        cat_channels(a, a)


def test_a_forward_pass_is_refused_at_the_first_layer_too_large(monkeypatch):
    """The activations are checked op by op: TinyMobileNet on 1×3×64×64 with 100 KiB
    available stops at its stem convolution (1×32×32×32 float32, 128 KiB); the error is not
    renamed by the module that ran it."""
    model = models.TinyMobileNet(rng=0)
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * 2**10)
    monkeypatch.setattr(memory, "SMALL", 0)
    with pytest.raises(memory.InsufficientMemoryError) as raised:
        model(np.zeros((1, 3, 64, 64), np.float32))
    assert one_line(str(raised.value)).startswith("conv2d's output of shape 1×32×32×32 (float32) needs about 128 KiB")


# ----------------------------------------------------------------------------- a captured graph's run


@pytest.fixture(scope="module")
def small_graph():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8), dtype=np.float32)
    return npconv.capture(model, x), x


def test_the_graph_estimate_covers_what_a_run_keeps(small_graph):
    """Every non-view node output is kept until the run ends: the estimate (their sum and the
    largest once more, from torch.export's shapes) is at least that and at most 3x it; for
    batch 4 it is 4x batch 1's; in float64, 2x float32's."""
    from npconv.graph.ops import OPS

    graph, x = small_graph
    trace = {}
    graph.run(x, trace=trace)
    kept = sum(np.asarray(v).nbytes for k, v in trace.items()
               if isinstance(v, np.ndarray) and not OPS[next(n.op for n in graph.nodes if n.name == k)].view)
    estimate = memory.graph_run_bytes(graph, (x,))
    assert kept <= estimate <= 3 * kept
    assert memory.graph_run_bytes(graph, (np.zeros((4, 3, 8, 8), np.float32),)) == 4 * estimate
    assert memory.graph_run_bytes(graph, (x.astype(np.float64),)) == 2 * estimate


def test_graph_run_refuses_a_huge_input_before_any_node(small_graph, one_gib, monkeypatch):
    """A 10^4 x 3 x 1000 x 1000 input (a broadcast view: 4 bytes really) would keep about
    10^4 · (3 + 4 + 4 + 4) · 10^6 values; refused before run_node is called; the override
    lets it through to run_node."""
    import npconv.graph.ops as graph_ops

    graph, _ = small_graph
    huge = np.broadcast_to(np.float32(0), (10**4, 3, 1000, 1000))
    monkeypatch.setattr(graph_ops, "run_node", _never)
    with pytest.raises(memory.InsufficientMemoryError) as raised:
        graph.run(huge)
    line = one_line(str(raised.value))
    assert line.startswith(f"{graph.name}.run on 10000×3×1000×1000 needs about ") and "memory" in line
    with memory.unchecked(), pytest.raises(AssertionError, match="the work started"):
        graph.run(huge)  # past the check: the first node runs (and is stopped by the patch)


def test_a_graph_built_by_hand_counts_each_node_as_large_as_its_input():
    from npconv.graph.graph import Graph, Node, Ref

    graph = Graph("hand", ["x"], [Node("a", "aten.relu.default", (Ref("x"),)),
                                  Node("b", "aten.relu.default", (Ref("a"),))], Ref("b"), {}, {}, {})
    x = np.zeros((2, 3, 4, 5), np.float32)
    assert memory.graph_run_bytes(graph, (x,)) == (2 + 1) * x.nbytes


# ----------------------------------------------------------------------------- the command


@pytest.mark.parametrize("args", [
    ("summary", "mobilenet_v2", "--width", "1000"),
    ("verify", "mobilenet_v2", "--width", "1000"),
    ("summary", "tiny_mobilenet", "--num-classes", "10000000000000"),
    ("compare", "--size", "1000000"),
])
def test_the_command_refuses_a_model_too_large_with_exit_2(args):
    """Estimated from the architecture before anything is built (10^12 parameters and more,
    or a 10^12-pixel image): one line, exit status 2, naming memory and the override."""
    result = npconv_command(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith(f"npconv {args[0]}: error: ")
    assert "of memory" in line and "available" in line and line.endswith("to try anyway, pass --no-memory-check")


def test_the_command_refuses_and_no_memory_check_overrides(no_memory, capsys):
    from npconv.cli import main

    args = ["summary", "depthwise_separable_conv", "--input", "1,4,8,8", "--json"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and one_line(err).startswith("npconv summary: error: depthwise_separable_conv (4→64 channels), "
                                                  "input 1×4×8×8 needs about ")
    assert main(args + ["--no-memory-check"]) == 0
    assert capsys.readouterr().out.startswith("{")
    assert memory.enabled()  # the override ends with the command


_USER_MODEL = """
import torch

def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
"""


def test_the_command_on_a_model_spec_is_checked_at_the_graph_run(no_memory, tmp_path, capsys):
    pytest.importorskip("torch")
    from npconv.cli import main

    path = tmp_path / "user_model.py"
    path.write_text(_USER_MODEL)
    assert main(["summary", f"{path}:build", "--input", "1,3,8,8", "--json"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"npconv summary: error: {path}:build.run on 1×3×8×8 needs about ")
    assert line.endswith("pass --no-memory-check")


# ----------------------------------------------------------------------------- clear errors


T, V = TypeError, ValueError
BAD_ARGUMENTS = [
    (lambda: models.MobileNetV2(width_mult="0.5"), T,
     "MobileNetV2(): argument 'width_mult' must be a number, not str"),
    (lambda: models.MobileNetV2(width_mult=True), T, "MobileNetV2(): argument 'width_mult' must be a number, not bool"),
    (lambda: models.MobileNetV2(width_mult=-1.0), V,
     "MobileNetV2(): argument 'width_mult' must be a positive finite number, got -1.0"),
    (lambda: models.MobileNetV2(width_mult=float("nan")), V,
     "argument 'width_mult' must be a positive finite number, got nan"),
    (lambda: models.MobileNetV2(1.0, "10"), T, "MobileNetV2(): argument 'num_classes' must be int, not str"),
    (lambda: models.MobileNetV2(1.0, 2.5), T, "MobileNetV2(): argument 'num_classes' must be int, not float"),
    (lambda: models.MobileNetV2(1.0, 0), V, "MobileNetV2(): argument 'num_classes' must be at least 1, got 0"),
    (lambda: models.MobileNetV2(dropout="0.2"), T, "MobileNetV2(): argument 'dropout' must be a number, not str"),
    (lambda: models.MobileNetV2(dropout=1.5), V, "MobileNetV2(): argument 'dropout' must be between 0 and 1, got 1.5"),
    (lambda: models.MobileNetV2(round_nearest=0), V, "MobileNetV2(): argument 'round_nearest' must be at least 1"),
    (lambda: models.MobileNetV1(width_mult="0.5"), T, "MobileNetV1(): argument 'width_mult' must be a number, not str"),
    (lambda: models.MobileNetV1(0.5, None), T, "MobileNetV1(): argument 'num_classes' must be int, not NoneType"),
    (lambda: models.MobileNetV1(0.01), V,
     "MobileNetV1(): argument 'width_mult' = 0.01 leaves the stem with 0 channels"),
    (lambda: models.TinyMobileNet("10"), T, "TinyMobileNet(): argument 'num_classes' must be int, not str"),
    (lambda: models.TinyMobileNet(-3), V, "TinyMobileNet(): argument 'num_classes' must be at least 1, got -3"),
    (lambda: models.DepthwiseSeparableConv(3.0, 4, 3), T,
     "DepthwiseSeparableConv(): argument 'in_channels' must be int, not float"),
    (lambda: models.DepthwiseSeparableConv(3, 4, "3"), T,
     "DepthwiseSeparableConv(): kernel_size must be an int or a tuple of 2 ints, not str"),
    (lambda: models.MobileNetBlock(3, "8"), T, "MobileNetBlock(): argument 'out_ch' must be int, not str"),
    (lambda: models.InvertedResidual(4, 4, 1, expand_ratio=6.0), T,
     "InvertedResidual(): argument 'expand_ratio' must be int, not float"),
    (lambda: models.HybridBlock(0, 4), V, "HybridBlock(): argument 'in_ch' must be at least 1, got 0"),
    (lambda: TorchvisionInvertedResidual(4, 4, 1, "6"), T,
     "InvertedResidual(): argument 'expand_ratio' must be a number, not str"),
    (lambda: ShuffleNetV2Unit("8", 8, 1), T, "ShuffleNetV2Unit(): argument 'inp' must be int, not str"),
]


@pytest.mark.parametrize("build, error, message", BAD_ARGUMENTS,
                         ids=[f"{m[2].split(':')[0]}-{i}" for i, m in enumerate(BAD_ARGUMENTS)])
def test_a_bad_model_argument_is_named_in_one_line(build, error, message):
    with pytest.raises(error) as raised:
        build()
    assert message in one_line(str(raised.value))
    assert type(raised.value) is error  # not a subclass raised from deeper inside


@pytest.mark.parametrize("seed", ["-1", "12345678901234567890"])
def test_verify_refuses_a_seed_outside_numpys_range_with_exit_2(seed):
    """NumPy seeds are in [0, 2^32): -1 and a 20-digit seed are refused in one line."""
    result = npconv_command("verify", "--seed", seed, "--no-timing")
    assert result.returncode == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == f"npconv verify: error: --seed must be an integer in [0, 2**32), got {seed}"


def test_models_without_rich_exits_2_with_the_install_hint():
    code = "import sys; sys.modules['rich'] = None; from npconv.cli import main; sys.exit(main(['models']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == ("npconv models: error: tables need the rich package: pip install "
                                       "'npconv[cli]' (or use --json)")
