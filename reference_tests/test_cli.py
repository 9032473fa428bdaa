"""The `npconv` command, through a subprocess as a user runs it: every subcommand, the
--json schemas, and bad arguments (each one line on stderr, a non-zero exit, no traceback).

Expected figures are closed forms written here (Howard et al. 2017, eq. 5 and Table 1;
torchvision's published parameter count), never numbers copied from npconv's output.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200")


def npconv(*args, module: bool = True, in_process: bool = True):
    """Run `npconv ARGS` from the repository root: by default in this process, through
    `npconv.cli.main` with its standard streams captured and COLUMNS=200 (what `python -m
    npconv` runs, without a new interpreter's few seconds of imports per call); with
    in_process=False as `python -m npconv ARGS` (or, module=False, the console script) in a
    subprocess, as a user runs it. Returns a CompletedProcess either way."""
    if in_process and module:
        return _in_process(args)
    command = [sys.executable, "-m", "npconv", *args] if module else ["npconv", *args]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def _in_process(args, columns: str | None = "200") -> subprocess.CompletedProcess:
    """`npconv ARGS` through npconv.cli.main in this process, COLUMNS=`columns` (unset: None)."""
    from npconv.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if columns is None:  # warnings need no silencing here: pytest captures them apart
            patch.delenv("COLUMNS", raising=False)
        else:
            patch.setenv("COLUMNS", columns)
        os.chdir(ROOT)
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse's --help and usage errors
            status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        finally:
            os.chdir(before)
    return subprocess.CompletedProcess(["npconv", *args], status, out.getvalue(), err.getvalue())


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("npconv")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------- the main job


def test_verify_default_is_the_main_job():
    """`npconv verify` with no arguments: the tutorial's TinyMobileNet at 1x3x224x224. As README
    says and a user runs it: the console script, in a fresh interpreter (`python -m npconv`
    gets its own fresh interpreter in test_a_pipe_without_columns_gets_full_width_lines)."""
    result = npconv("verify", in_process=False, module=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ verified tiny_mobilenet" in result.stdout
    assert "fast engine, one thread)" in " ".join(result.stdout.split())  # the steps line names the engine
    # TinyMobileNet's MACs and parameters, from the tutorial's layer list (stem 3->32 s2 at
    # 224 -> 112, then blocks (in, out, stride): output H*W*(9*in + in*out) each, then Linear 256->10).
    h, macs, params = 112, 112 * 112 * 32 * 27, 32 * 27 + 2 * 32
    for cin, cout, stride in ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)):
        h //= stride
        macs += h * h * (9 * cin + cin * cout)
        params += 9 * cin + 2 * cin + cin * cout + 2 * cout
    macs, params = macs + 2560, params + 2570
    verdict = " ".join(result.stdout[result.stdout.index("✓ verified"):].split())  # wrapped at COLUMNS
    assert f"{macs:,} MACs counted = formula = FlopCounterMode/2" in verdict
    assert f"{params:,} parameters = sum(numel)" in verdict


def test_verify_json_on_mobilenet_v2_with_residual_adds():
    result = npconv("verify", "mobilenet_v2", "--width", "0.35", "--input", "1,3,32,32", "--json", "--no-timing")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["failures"] == []
    assert report["summary"]["total"]["params"] == report["summary"]["total"]["torch_params"]
    assert report["summary"]["total"]["macs"] == report["summary"]["total"]["flop_counter_macs"]
    assert report["layer_by_layer"]["float32"]["error_over_bound"] <= 1
    assert report["layer_by_layer"]["float64"]["error_over_bound"] <= 1
    assert report["layer_by_layer"]["steps"] == len(report["nodes"]) > 0
    assert all(n["float32_error_over_bound"] <= 1 and n["float64_error_over_bound"] <= 1 for n in report["nodes"])
    assert report["times_s"]["torch"] is None  # --no-timing
    # every step timed, in wall and CPU seconds, and the parts they add up to (no time asserted)
    from npconv.graph.verify import STEP_OWNERS, TIME_PARTS

    times, cpu, parts = report["times_s"], report["cpu_times_s"], report["time_parts_s"]
    assert set(STEP_OWNERS.values()) == {"setup", "torch", "npconv"}
    for step in STEP_OWNERS:
        if step == "import" and sys.platform != "linux":  # the process's start time is read from /proc
            continue
        assert isinstance(times[step], float) and isinstance(cpu[step], float), step
    assert list(parts) == list(TIME_PARTS) and {s for steps in TIME_PARTS.values() for s in steps} == set(STEP_OWNERS)
    assert parts["npconv"] == times["checks"] + times["count"]
    assert parts["torch"] == times["torch_nodes"] + times["flop_counter"] + times["torch_eager"]
    assert report["oracle_engine"] == "fast"


def test_verify_engine_reference_says_so():
    """--engine reference puts npconv's side on the readable loop nests, and says which engine
    ran in the JSON and in the steps line."""
    args = ("verify", "hybrid_block", "--input", "1,4,9,9", "--out-channels", "6", "--no-timing", "--engine",
            "reference")
    report = json.loads(npconv(*args, "--json").stdout)
    assert report["ok"] is True and report["oracle_engine"] == "reference"
    result = npconv(*args)
    assert result.returncode == 0, result.stderr
    assert "reference engine)" in " ".join(result.stdout.split())


def test_only_the_program_freezes_its_imports():
    """`npconv verify` as a program moves what its imports made into the collector's permanent
    generation (cli._freeze_imports); main([...]) called from Python, as npconv() above does,
    leaves the caller's objects alone."""
    import gc

    before = gc.get_freeze_count()
    assert npconv("verify", "hybrid_block", "--input", "1,4,9,9", "--out-channels", "6", "--no-timing").returncode == 0
    assert gc.get_freeze_count() == before
    code = ("import gc, sys; from argparse import Namespace; from npconv.cli import _freeze_imports; "
            "_freeze_imports(Namespace(program=True)); sys.exit(0 if gc.get_freeze_count() > 0 else 1)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV).returncode == 0


def test_verify_backward_puts_flop_counter_beside_the_counted_gradients():
    """--backward: per layer, grad_input and grad_weight MACs counted by npconv's loops, with
    FlopCounterMode's figures beside them. For a dense kernel grad_input = grad_weight =
    forward MACs (the first layer needs no grad_input); FlopCounterMode (torch 2.13) charges a
    depthwise layer's grad_weight C times (C = groups), and the command must flag exactly that."""
    result = npconv("verify", "tiny_mobilenet", "--input", "1,3,32,32", "--backward", "--json", "--no-timing")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["backward"]
    layers, total = rows[:-1], rows[-1]
    assert [r["layer"] for r in layers][0] == "features.0" and layers[0]["grad_input_macs"] is None
    for r in layers:
        assert r["grad_weight_macs"] == r["forward_macs"]
        assert r["grad_input_macs"] in (None, r["forward_macs"])
        assert r["flop_counter_forward_macs"] == r["forward_macs"]
        assert r["flop_counter_grad_input_macs"] == r["grad_input_macs"]
        if "dw_conv" in r["layer"]:
            channels = int(r["type"].split("C=")[1].split()[0])
            assert r["flop_counter_factor"] == {"grad_weight": channels}
        else:
            assert r["flop_counter_factor"] == {}
    assert total["forward_macs"] == sum(r["forward_macs"] for r in layers)


def test_summary_backward_without_torch_columns():
    result = npconv("summary", "mobilenet_block", "--input", "1,8,8,8", "--backward", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["backward"]
    assert all(r["flop_counter_grad_weight_macs"] is None for r in rows)
    assert all(r["grad_weight_macs"] == r["forward_macs"] for r in rows)


def test_verify_a_block_with_its_options():
    result = npconv("verify", "hybrid_block", "--input", "2,4,9,9", "--out-channels", "6", "--seed", "3",
                    "--no-timing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ verified hybrid_block" in result.stdout


# ----------------------------------------------------------------------------- summary


def mobilenet_v1_by_hand(width, size):
    """(MACs, parameters) of Howard et al. 2017, Table 1 (see test_summary.py)."""
    c = lambda n: int(n * width)  # noqa: E731
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    h = (size - 1) // 2 + 1
    macs, params = h * h * c(32) * 27, c(32) * 27 + 2 * c(32)
    for cin, cout, stride in blocks:
        h = (h - 1) // stride + 1
        macs += h * h * c(cin) * (9 + c(cout))
        params += c(cin) * 9 + 2 * c(cin) + c(cin) * c(cout) + 2 * c(cout)
    return macs + c(1024) * 1000, params + c(1024) * 1000 + 1000


def test_summary_json_schema():
    result = npconv("summary", "mobilenet_v1", "--width", "0.5", "--input", "1,3,32,32", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    total = report["total"]
    assert isinstance(total["params"], int) and isinstance(total["macs"], int)
    assert (total["macs"], total["params"]) == mobilenet_v1_by_hand(0.5, 32)
    assert total["flops"] == 2 * total["macs"]
    assert report["ok"] is True and report["formula_mismatches"] == []
    names = [layer["name"] for layer in report["layers"]]
    assert names[0] == "features.0.0" and names[-1] == "classifier"
    for layer in report["layers"]:
        assert {"name", "type", "output_shape", "params", "macs", "formula_macs", "padding_macs", "counted",
                "bytes", "intensity"} <= set(layer)
        assert layer["macs"] == layer["formula_macs"]
    assert set(report["conventions"]) >= {"macs", "flops", "params", "bytes"}


def test_summary_table_markdown_and_flop_counter():
    table = npconv("summary", "tiny_mobilenet", "--input", "1,3,32,32")
    assert table.returncode == 0, table.stderr
    assert "features.3.dw_conv.0" in table.stdout and "Total:" in table.stdout
    markdown = npconv("summary", "inverted_residual", "--input", "1,8,8,8", "--markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "| `conv.0` | Conv2d |" in markdown.stdout and "res+" in markdown.stdout
    fc = npconv("summary", "mobilenet_v2", "--width", "0.5", "--input", "1,3,32,32", "--flop-counter", "--json")
    assert fc.returncode == 0, fc.stderr
    total = json.loads(fc.stdout)["total"]
    assert total["flop_counter_macs"] == total["macs"]
    assert total["torch_params"] == total["params"]


def test_summary_exits_non_zero_on_a_formula_mismatch():
    code = ("import sys, npconv.formulas as f; real = f.conv2d_macs; "
            "f.conv2d_macs = lambda *a, **k: real(*a, **k) + 1; "
            "from npconv.cli import main; sys.exit(main(['summary', 'mobilenet_block', '--input', '1,4,8,8']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert result.returncode == 1
    assert "FORMULA MISMATCH" in result.stdout
    assert result.stderr.strip().count("\n") == 0 and "formula mismatch" in result.stderr


# ----------------------------------------------------------------------------- compare


def test_compare_json():
    result = npconv("compare", "--in", "4", "--out", "8", "--kernel", "3", "--size", "12", "--batch", "2", "--json",
                    "--no-timing")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    std, sep = report["standard"], report["separable"]
    oh = 12  # padding K//2 keeps the size
    assert std["params"] == 8 * 4 * 9 + 8 and sep["params"] == (4 * 9 + 4) + (8 * 4 + 8)
    assert std["macs"] == 2 * 8 * oh * oh * 4 * 9 and sep["macs"] == 2 * oh * oh * 4 * (9 + 8)
    for side in (std, sep):
        assert side["macs"] == side["formula_macs"] == side["flop_counter_macs"]
        assert side["params"] == side["formula_params"] == side["torch_params"]
        assert side["torch_agreement"]["float32_error_over_bound"] <= 1
    assert report["ratio"]["macs_counted"] == pytest.approx(1 / 8 + 1 / 9, rel=1e-12)
    assert report["ok"] is True


def test_compare_table():
    """The tutorial's example (3 -> 64, 3x3) on a 32x32 input, timed on every engine."""
    result = npconv("compare", "--size", "32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{64 * 32 * 32 * 27:,}" in result.stdout          # standard MACs
    assert f"{32 * 32 * 3 * (9 + 64):,}" in result.stdout     # separable MACs
    assert "1/64 + 1/9" in result.stdout
    assert "time, npconv fast" in result.stdout and "time, PyTorch" in result.stdout


# ----------------------------------------------------------------------------- help and models


def test_help_for_every_command():
    for args in ((), ("verify",), ("summary",), ("compare",), ("models",)):
        result = npconv(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: npconv" in result.stdout
    assert "tiny_mobilenet" in npconv("verify", "--help").stdout
    assert "Start here" in npconv("--help").stdout


def test_models_json():
    result = npconv("models", "--json")
    assert result.returncode == 0
    names = json.loads(result.stdout)
    assert {"tiny_mobilenet", "mobilenet_v1", "mobilenet_v2", "depthwise_separable_conv", "mobilenet_block",
            "inverted_residual", "hybrid_block"} <= set(names)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("args, fragments", [
    (("summary", "resnet50"), ("unknown model 'resnet50'", "mobilenet_v1")),
    (("verify", "mobilenet_v7"), ("unknown model",)),
    (("summary", "mobilenet_v1", "--input", "1,3,224"), ("--input must be N,C,H,W",)),
    (("summary", "mobilenet_v1", "--input", "1,3,a,224"), ("--input must be N,C,H,W",)),
    (("summary", "mobilenet_v1", "--input", "0,3,224,224"), ("four positive integers",)),
    (("summary", "mobilenet_v1", "--width", "-0.5"), ("--width must be a positive number",)),
    (("verify", "mobilenet_v2", "--width", "0"), ("--width must be a positive number",)),
    (("summary", "mobilenet_v1", "--width", "0.01"), ("0 channels",)),
    (("summary", "mobilenet_v1", "--input", "1,3,16,16"), ("too small for mobilenet_v1", "at least 32")),
    (("verify", "tiny_mobilenet", "--input", "1,3,4,4"), ("too small for tiny_mobilenet",)),
    (("summary", "tiny_mobilenet", "--width", "0.5"), ("--width applies to",)),
    (("summary", "mobilenet_v1", "--input", "1,4,224,224"), ("C = 3",)),
    (("summary", "mobilenet_v1", "--num-classes", "0"), ("--num-classes must be at least 1",)),
    (("summary", "mobilenet_block", "--out-channels", "-2"), ("--out-channels must be at least 1",)),
    (("summary", "mobilenet_v1", "--width", "wide"), ("invalid float value",)),
    (("summary",), ("MODEL",)),
    (("summary", "mobilenet_v1", "--json", "--markdown"), ("not allowed with",)),
    (("compare", "--kernel", "0"), ("--kernel must be at least 1",)),
    (("compare", "--size", "-3"), ("--size must be at least 1",)),
    (("frobnicate",), ("invalid choice",)),
    (("verify", "--seed", "-1"), ("--seed must be an integer in [0, 2**32)",)),
    (("verify", "--seed", "123456789012345678901"), ("--seed must be",)),
    (("verify", "no_such_package_xyz.models:build"), ("cannot import 'no_such_package_xyz.models'",)),
    (("verify", "json:no_such_factory"), ("'json' has no attribute 'no_such_factory'",)),
    (("verify", "os:getcwd", "--no-timing"), ("returned a str, not a torch.nn.Module",)),
    (("summary", "missing/models.py:build"), ("no such file: missing/models.py",)),
    (("verify", "npconv.twins:classes", "--width", "2"), ("--width applies to the built-in models",)),
])
def test_bad_arguments_give_one_line_and_a_non_zero_exit(args, fragments):
    assert_one_line_error(npconv(*args), *fragments)


# ----------------------------------------------------------------------------- your own model

_USER_MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.left = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.right = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([x + self.left(x), self.right(x)], dim=1)
        return self.head(y.mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net()


def unsupported():
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU(), nn.Upsample(scale_factor=2))
"""


def test_verify_and_summary_of_a_model_spec_file(tmp_path):
    """A user's file.py:factory with functional data flow (residual +, cat, mean): every node
    checked, MACs == FlopCounterMode/2, parameters == sum(numel)."""
    path = tmp_path / "my_models.py"
    path.write_text(_USER_MODELS)
    result = npconv("verify", f"{path}:build", "--input", "2,3,16,16", "--no-timing", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    total = report["summary"]["total"]
    # stem 8*3*9*8*8 per image, depthwise 8*9*8*8, pointwise 4*8*8*8, head 12*5; batch 2
    assert total["macs"] == 2 * (8 * 27 * 64 + 8 * 9 * 64 + 4 * 8 * 64 + 12 * 5) == total["flop_counter_macs"]
    assert total["params"] == (8 * 27 + 8) + 16 + (8 * 9 + 8) + (4 * 8 + 4) + (12 * 5 + 5) == total["torch_params"]
    assert {n["op"] for n in report["nodes"]} >= {"aten.add.Tensor", "aten.cat.default", "aten.mean.dim"}
    summary = npconv("summary", f"{path}:build", "--input", "1,3,16,16", "--flop-counter", "--json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["total"]["macs"] == total["macs"] // 2


def test_a_model_spec_with_unsupported_ops_names_them(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(_USER_MODELS)
    result = npconv("verify", f"{path}:unsupported", "--input", "1,3,8,8", "--no-timing")
    assert_one_line_error(result, "2 unsupported ops", "aten.gelu.default (nn.GELU) ×1, first at 1",
                          "aten.upsample_nearest2d.vec (nn.Upsample) ×1, first at 2")
    assert result.returncode == 2


def test_models_without_rich_gives_the_install_hint():
    code = "import sys; sys.modules['rich'] = None; from npconv.cli import main; sys.exit(main(['models']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "npconv models: error: tables need the rich package: pip install " \
                                    "'npconv[cli]' (or use --json)"


# ----------------------------------------------------------------------------- width: nothing cut at 80, 100, 120

_LONG_NAMES = """
from collections import OrderedDict

import torch
from torch import nn


def _seq(**layers):
    return nn.Sequential(OrderedDict(layers))


def deep_names():
    \"\"\"Qualified names up to 67 characters, like a model zoo's.\"\"\"
    torch.manual_seed(0)
    unit = _seq(branch2=_seq(conv1=_seq(
        depthwise_separable=_seq(dw=nn.Conv2d(16, 16, 3, padding=1, groups=16), bn=nn.BatchNorm2d(16)),
        pointwise_projection=_seq(conv=nn.Conv2d(16, 96, 1), activation=nn.ReLU6()))))
    return _seq(features=_seq(init_block=_seq(conv=nn.Conv2d(3, 16, 3, stride=2, padding=1), activ=nn.ReLU()),
                              stage3=_seq(unit4=unit)),
                final_pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                output_classifier_head=nn.Linear(96, 1000))
"""

WIDTHS = ("80", "100", "120")


def render(args, widths=WIDTHS):
    """{"json": (status, stdout), "80": (status, stdout), ...} of `npconv ARGS`: --json once
    (COLUMNS unset), then the table at each width with COLUMNS set and stdout a pipe (not a
    terminal), as `COLUMNS=80 npconv ... | cat` prints it. In this process (`_in_process`):
    the CLI builds its console from COLUMNS at each call, so nothing carries over between
    the runs but the capture below.

    The runs build the same seeded model; capturing it with torch.export is most of a run's
    time, and what is tested here is the layout: each model (structure, weights, input) is
    captured once and its graph reused by the later runs."""
    import npconv.graph

    module = importlib.import_module("npconv.graph.capture")
    captured, original = {}, module.capture

    def capture_once(model, x, **options):
        digest = hashlib.sha256(repr(model).encode() + np.asarray(x).tobytes())
        for tensor in model.state_dict().values():
            digest.update(tensor.detach().cpu().numpy().tobytes())
        key = (digest.hexdigest(), tuple(sorted(options.items())))
        if key not in captured:
            captured[key] = original(model, x, **options)
        return captured[key]

    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "capture", capture_once)
        patch.setattr(npconv.graph, "capture", capture_once)
        for key in ["json", *widths]:
            run = _in_process(list(args) + (["--json"] if key == "json" else []), columns=None if key == "json" else key)
            out[key] = (run.returncode, run.stdout)
    return out


def _figures(report: dict, command: str) -> tuple[set, set]:
    """(every layer or model name, every count as printed with thousands separators) that
    `npconv COMMAND --json` reports; zeros and None are left out (the tables leave them blank)."""
    names, numbers = set(), set()

    def count(*values):
        numbers.update(f"{v:,}" for v in values if isinstance(v, int) and not isinstance(v, bool) and v)

    if command == "models":
        for name, spec in report.items():
            names.add(name)
            numbers.add(",".join(map(str, spec["default_input"])))
        return names, numbers
    if command == "compare":
        for side in (report["standard"], report["separable"]):
            count(*(side[k] for k in ("params", "formula_params", "torch_params", "macs", "formula_macs",
                                      "flop_counter_macs", "padding_macs")))
        return names, numbers
    summary = report["summary"] if command == "verify" else report
    for layer in summary["layers"]:
        names.add(layer["name"] or "(model)")
        count(layer["macs"], layer["formula_macs"], layer["flop_counter_macs"])
        if command == "verify":
            count(layer["params"]["total"])
        else:  # summary prints the parts: weights, bias, BatchNorm
            count(layer["params"]["weight"], layer["params"]["bias"], layer["params"]["bn"], layer["padding_macs"])
    t = summary["total"]
    count(t["params"], t["macs"], t["flop_counter_macs"])
    if command == "summary":
        count(t["padding_macs"], t["weight_params"], t["bias_params"], t["bn_params"], t["flops"], t["bytes"])
    for row in report.get("backward", []):
        if row["layer"] != "(total)":
            names.add(row["layer"])
        count(row["forward_macs"], row["grad_input_macs"], row["grad_weight_macs"],
              row["flop_counter_grad_input_macs"], row["flop_counter_grad_weight_macs"])
    return names, numbers


def assert_fits_and_whole(text: str, width: int, names: set, numbers: set):
    """No line wider than `width`; every name and number appears whole: not cut, not folded,
    not glued to a neighbouring digit."""
    from rich.cells import cell_len

    lines = text.splitlines()
    assert lines, "no output"
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {width}:\n" + "\n".join(too_wide[:5])
    for name in names:
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", text), f"layer name {name!r} not whole at {width}"
    for number in numbers:
        assert re.search(rf"(?<![\d,.]){re.escape(number)}(?![\d]|[,.]\d)", text), f"{number} not whole at {width}"


@pytest.mark.parametrize("args", [
    ("models",),
    ("summary", "mobilenet_v1", "--input", "1,3,32,32"),
    ("summary", "{user}:deep_names", "--input", "1,3,32,32", "--flop-counter"),
    ("verify", "{user}:deep_names", "--input", "1,3,32,32", "--no-timing"),
    ("verify", "hybrid_block", "--input", "1,8,16,16", "--backward"),
    ("compare", "--in", "4", "--out", "8", "--size", "8"),
], ids=["models", "summary", "summary-spec", "verify-spec", "verify-backward-timed", "compare"])
def test_every_table_fits_80_100_120_columns_and_cuts_nothing(args, tmp_path):
    """The issue's check: at 80, 100 and 120 columns every line fits and every layer name and
    every count of the --json output appears whole (with its thousands separators), including
    qualified names of 67 characters from a model of one's own."""
    path = tmp_path / "zoo.py"
    path.write_text(_LONG_NAMES)
    args = [a.replace("{user}", str(path)) for a in args]
    out = render(args)
    status, stdout = out["json"]
    assert status == 0, stdout
    names, numbers = _figures(json.loads(stdout), args[0])
    assert names or args[0] == "compare"
    assert numbers
    for width in WIDTHS:
        status, text = out[width]
        assert status == 0, text
        assert_fits_and_whole(text, int(width), names, numbers)
        if "hybrid_block" in args or args[0] == "compare":
            flat = " ".join(text.split())
            assert "median of 5" in flat
            verdicts = flat.count("timing is noisy here") + flat.count("relative to the fastest")
            assert verdicts == (2 if args[0] == "compare" else 1), flat


def test_a_pipe_without_columns_gets_full_width_lines():
    """COLUMNS unset and stdout not a terminal: tables as wide as their content, every
    sentence one line (a pipe or a file is not wrapped at 80)."""
    env = {k: v for k, v in ENV.items() if k != "COLUMNS"}
    result = subprocess.run([sys.executable, "-m", "npconv", "models"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    from npconv.cli import MODELS

    lines = result.stdout.splitlines()
    for name, spec in MODELS.items():
        assert any(line.startswith(name + " ") and spec.description in line for line in lines), name
    assert any(line.startswith("Or any model of your own") and line.endswith("(npconv verify --help).")
               for line in lines)


def test_timing_rule_noisy_ranks_nothing_quiet_gives_ratios():
    """The one rule: any contender whose slowest of its runs took more than 1.5x its fastest
    makes the timing noisy and nothing is ranked; otherwise medians relative to the fastest,
    with overlapping ranges called no clear difference."""
    from npconv.tables import NOISE_RATIO, timing_note

    assert NOISE_RATIO == 1.5
    noisy = timing_note([("PyTorch", 2.23, 0.9, 2.5), ("npconv fast", 0.5, 0.49, 0.52)])
    assert "timing is noisy here" in noisy and "PyTorch" in noisy
    assert "relative" not in noisy and "2.8×" in noisy  # 2.5 / 0.9 said, no ranking
    quiet = timing_note([("npconv reference", 0.40, 0.39, 0.41), ("PyTorch", 0.010, 0.009, 0.011),
                         ("npconv fast", 0.0105, 0.0100, 0.0110)])
    assert "noisy" not in quiet
    assert "relative to the fastest (PyTorch)" in quiet
    assert "npconv fast 1.1× (ranges overlap: no clear difference)" in quiet
    assert "npconv reference 40×" in quiet
    assert timing_note([("PyTorch", 1.0, 1.0, 1.5)]).startswith("every run within")  # 1.5 itself is not noisy
