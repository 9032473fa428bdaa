"""npconv.counters: every popular FLOP counter's number, predicted from what npconv's kernels
counted and each counter's convention, held against what the counter itself reports.

The predictions come from npconv's per-node counts (npconv.counters.node_facts) through the
conventions written in npconv.counters.conventions; the reported figures from running
FlopCounterMode, fvcore, thop, ptflops (both backends) and torchinfo (pinned in the test
extra). Nothing predicted is copied from a counter: a convention modelled wrongly breaks
the equality (test_a_mis_modelled_convention_is_caught_at_its_layer shows it does), and the
issue's own statement of thop's convention is checked against npconv's tally directly.

Corpus: the tutorial's TinyMobileNet at 1×3×224×224; a few pytorchcv models at 64×64 in CI
(every model of reference_tests/zoo.py at 224×224 in the thorough profile, and once through
docs/counters_table.py); random networks (npconv.strategies.random_networks) as a
Hypothesis property; a TinyMobileNet training step for FlopCounterMode.
"""

import json
import os
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings

torch = pytest.importorskip("torch")

from npconv import capture, count  # noqa: E402
from npconv.counters import CONVENTIONS, DEPARTURES, explain, explain_training_step, node_facts  # noqa: E402
from npconv.counters.conventions import Part  # noqa: E402
from npconv.counters.installed import REPORTERS, installed  # noqa: E402
from npconv.counters.report import compare_modules  # noqa: E402
from npconv.oracle import twins  # noqa: E402
from npconv.strategies.random_networks import networks  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from zoo import ZOO, pytorchcv_model  # noqa: E402

THOROUGH = os.environ.get("NPCONV_HYPOTHESIS_PROFILE") == "thorough"
ZOO_SIZE = 224 if THOROUGH else 64
# CI: two models between them holding the constructs the conventions read differently that
# random networks lack (Hardswish and Hardsigmoid written with F.relu6, squeeze-excitation
# with AdaptiveAvgPool2d, a final AvgPool2d, MaxPool2d with ceil_mode, convolution biases);
# capturing a model is most of each test's time. The thorough profile and
# docs/counters_table.py run all seventeen.
ZOO_CI = ("mobilenetv3_small_w1", "squeezenet_v1_1")
PACKAGES = ("fvcore", "thop", "ptflops", "torchinfo")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The counters run many small forward passes; on a loaded two-core machine PyTorch's
    second intra-op thread makes each one tens of times slower. Counts do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_counters_are_installed():
    """The test extra pins every counter; without one, its predicted == reported checks
    would pass vacuously (reported None)."""
    assert all(installed(p) for p in PACKAGES), [p for p in PACKAGES if not installed(p)]


def _assert_every_counter_agrees(report):
    for row in report.rows:
        assert row.error is None, f"{row.label} failed: {row.error}"
        assert row.reported is not None, f"{row.label} is not installed"
        assert row.predicted == row.reported and not row.differences, (
            f"{report.model}: {row.label} predicted {row.predicted:,}, reported {row.reported:,}; "
            f"first differences: {row.differences}")


# ----------------------------------------------------------------------------- TinyMobileNet


@pytest.fixture(scope="module")
def tiny():
    """TinyMobileNet at 1×3×224×224: its graph's facts and every counter's own figures."""
    model = twins.build("TinyMobileNet", seed=0, calibration_shape=(2, 3, 64, 64))
    x = np.zeros((1, 3, 224, 224), np.float32)
    graph = capture(model, x)
    facts = node_facts(graph, x, model)
    reported = {name: REPORTERS[name](model, x) for name in CONVENTIONS}
    return model, x, graph, facts, reported


def test_tiny_mobilenet_every_counter_reports_what_npconv_predicts(tiny):
    model, x, graph, facts, _ = tiny
    report = explain(model, x, facts=facts)
    _assert_every_counter_agrees(report)
    assert [row.name for row in report.rows] == list(CONVENTIONS)
    # the one departure in this model: ptflops counts its AdaptiveAvgPool2d twice
    findings = {(row.name, f.departure): f for row in report.rows for f in row.findings}
    assert set(findings) == {("ptflops_pytorch", "ptflops.double_count")}
    pool = findings["ptflops_pytorch", "ptflops.double_count"]
    assert pool.what == {"AdaptiveAvgPool2d": 1} and pool.excess == 1 * 256 * 28 * 28


def test_the_issue_statement_of_each_convention_against_npconv_tally(tiny):
    """Each counter's convention as the issue states it, written over npconv's own tally
    (by op and by category), not through npconv.counters.conventions."""
    _, x, graph, _, reported = tiny
    with count() as tally:
        graph(x)
    macs, bias = tally.macs, tally.bias_adds
    bn = tally.other["bn_scale_shift"]
    pool_adds, pool_divides = tally.other["pool_adds"], tally.other["pool_divides"]
    # TinyMobileNet: convolutions, BatchNorm2d, ReLU6, one AdaptiveAvgPool2d(1) (7×7 -> 1×1, so
    # its adds are its input elements and its divides its output elements), one Linear
    assert reported["flop_counter"].total == 2 * macs
    assert reported["fvcore"].total == macs + 2 * bn + pool_adds
    # thop: conv and linear MACs + 4 per BatchNorm element + the input and output elements of
    # AdaptiveAvgPool2d modules (+ the output elements of AvgPool2d modules: none here); ReLU6 0
    assert reported["thop"].total == macs + 4 * bn + pool_adds + pool_divides
    # ptflops pytorch: + bias adds, 2 per BatchNorm element, 1 per ReLU6 output element (its
    # forward calls F.hardtanh, not patched: once), the pool's input elements twice
    relu6 = tally.other["activation_compares"] // 2            # ReLU6 compares twice per element
    assert reported["ptflops_pytorch"].total == macs + bias + 2 * bn + relu6 + 2 * pool_adds
    assert reported["ptflops_aten"].total == macs + bias
    # torchinfo: MACs + bias adds of the weighted layers, BatchNorm 2·C per sample
    bn_channels = sum(shape[0] for name, shape in _params(graph) if "BatchNorm" in name)
    assert reported["torchinfo"].total == macs + bias + 2 * bn_channels


def _params(graph):
    """(module class + parameter name, shape) of the graph's BatchNorm weights."""
    for name, array in graph.parameters.items():
        path = graph.fqn[name].rpartition(".")[0]
        if graph.fqn[name].endswith(".weight"):
            yield graph.modules.get(path, "") + "." + graph.fqn[name], array.shape


def _halve(term):
    """A convention with the amounts of `term` halved: a mis-modelled factor."""
    def parts(convention):
        def mutated(facts):
            for p in convention.parts(facts):
                yield replace(p, amount=p.amount // 2) if p.term == term else p
        return mutated
    return parts


def _drop_departures(convention):
    def mutated(facts):
        return (p for p in convention.parts(facts) if p.departure is None)
    return mutated


def _count_bias(convention):
    """fvcore as if it counted bias adds: + the counted bias adds of every convolution."""
    def mutated(facts):
        yield from convention.parts(facts)
        for node in facts.nodes:
            if node.counts.get("bias_adds"):
                yield Part("bias", node.counts["bias_adds"], node.module, node.name)
    return mutated


@pytest.mark.parametrize("name, mistake, layer", [
    ("flop_counter", _halve("macs"), "features.0"),                 # MACs, not 2 × MACs
    ("fvcore", _halve("batch_norm"), "features.1"),                 # BatchNorm 1 per element
    ("thop", _halve("norm"), "features.1"),                         # BatchNorm 2 per element, not 4
    ("ptflops_pytorch", _drop_departures, "features.8"),            # the pool counted once
    ("ptflops_aten", _halve("macs_bias"), ""),                      # reports top-level children only
    ("torchinfo", _halve("per_sample"), "features.1"),              # BatchNorm C per sample
    ("fvcore", _count_bias, "classifier"),                         # bias adds counted (the Linear's)
])
def test_a_mis_modelled_convention_is_caught_at_its_layer(tiny, name, mistake, layer):
    """The property's teeth: change one rule of one convention and the prediction no longer
    equals what the counter reports, first at the layer that rule applies to."""
    _, _, _, facts, reported = tiny
    convention = CONVENTIONS[name]
    wrong = replace(convention, parts=mistake(convention)).predict(facts)
    assert wrong.total != reported[name].total
    differences = compare_modules(wrong.own, reported[name], facts.module_order(), convention.granularity)
    assert differences, name
    first = differences[0].split(":")[0]
    if name == "ptflops_aten":  # per child of the model: the features
        assert first == "features"
    else:
        assert first == layer, differences


# ----------------------------------------------------------------------------- the pytorchcv zoo


@pytest.mark.parametrize("name", list(ZOO) if THOROUGH else list(ZOO_CI))
def test_pytorchcv_model_every_counter_reports_what_npconv_predicts(name):
    model = pytorchcv_model(name, ZOO_SIZE)
    x = np.zeros((1, 3, ZOO_SIZE, ZOO_SIZE), np.float32)
    _assert_every_counter_agrees(explain(model, x, name=name))


# ----------------------------------------------------------------------------- random networks


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@settings(max_examples=max(settings.default.max_examples // 3, 4))
@given(networks())
def test_random_networks_every_counter_reports_what_npconv_predicts(spec):
    """Every counter on every drawn network: Conv2d with every padding mode and "same",
    ConvTranspose2d, BatchNorm, every activation (Hardswish, SiLU, Hardtanh: the modules
    counters miss or count through patched functions), max and average pooling (ceil_mode,
    divisor_override), AdaptiveAvgPool2d, residual / concat / squeeze-excitation (x.mean,
    torch.relu, torch.sigmoid) / channel shuffle / split blocks, a Linear head, batch 1 or 2
    (ptflops divides only its module hooks by the batch)."""
    model, x = spec.build(), spec.input()
    _assert_every_counter_agrees(explain(model, x))


# ----------------------------------------------------------------------------- a training step


def test_tiny_mobilenet_training_step_flop_counter_and_its_groups_departure():
    """FlopCounterMode over a TinyMobileNet training step equals npconv's prediction, and
    the prediction names the departure: each depthwise convolution's weight gradient charged
    `groups` times. What FlopCounterMode reports beyond 2 × the MACs npconv's forward and
    backward loops executed is exactly that departure's excess."""
    from npconv import models
    from npconv.counters import training_step_prediction

    size = 224 if THOROUGH else 64
    npconv_model = models.TinyMobileNet(rng=0)
    twin = twins.build("TinyMobileNet", seed=0, calibration_shape=(2, 3, size, size))
    report = explain_training_step(npconv_model, twin, (1, 3, size, size))
    (row,) = report.rows
    assert row.name == "flop_counter" and row.equal, (row.predicted, row.reported, row.differences)
    (finding,) = row.findings
    assert finding.departure == "flop_counter.grouped_weight_gradient"
    assert finding.calls == 5 and set(finding.what) == {f"Conv2d groups={c}" for c in (32, 64, 128, 256)}
    _, rows = training_step_prediction(npconv_model, (1, 3, size, size))
    executed = sum(r.forward + (r.grad_input or 0) + r.grad_weight for r in rows[:-1])
    assert row.reported - 2 * executed == finding.excess > 0


# ----------------------------------------------------------------------------- departures


@pytest.mark.parametrize("key", list(DEPARTURES))
def test_each_departure_reproduces_as_documented(key):
    """Each departure's minimal reproduction (in npconv.counters.departures and
    docs/counters.md) runs against the installed counter and its assertion holds."""
    exec(compile(DEPARTURES[key].reproduction, f"<departure {key}>", "exec"), {})


def test_every_departure_is_named_by_its_convention():
    """Each departure in DEPARTURES is a Term of its counter's convention (so the command can
    name it), and each departure Term is documented."""
    named = {t.departure for c in CONVENTIONS.values() for t in c.terms if t.departure}
    assert named == set(DEPARTURES)
    for key, departure in DEPARTURES.items():
        assert CONVENTIONS[key.split(".")[0].replace("ptflops", "ptflops_pytorch")].label == departure.counter


# ----------------------------------------------------------------------------- the command


def _cli(monkeypatch, args, columns=None):
    """(exit status, stdout) of `npconv ARGS` run in this process (COLUMNS set or unset, stdout
    not a terminal, as `COLUMNS=80 npconv ... | cat`)."""
    import contextlib
    import io

    from npconv.cli import main

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue() + err.getvalue()


def test_summary_counters_json_and_table_fit_80_100_120(tmp_path, monkeypatch):
    """`npconv summary SPEC --counters`: --json adds counters: {name: {"predicted": int,
    "reported": int}}, equal for every counter; the table fits 80, 100 and 120 columns with
    every counter and every figure whole (qualified names of up to 67 characters in the
    summary above it)."""
    from test_cli import _LONG_NAMES, assert_fits_and_whole

    path = tmp_path / "zoo.py"
    path.write_text(_LONG_NAMES)
    args = ["summary", f"{path}:deep_names", "--input", "1,3,32,32", "--counters"]
    status, stdout = _cli(monkeypatch, args + ["--json"])
    assert status == 0, stdout
    counters = json.loads(stdout)["counters"]
    assert list(counters) == list(CONVENTIONS)
    for name, entry in counters.items():
        assert isinstance(entry["predicted"], int) and entry["predicted"] == entry["reported"], (name, entry)
        assert entry["equal"] is True and entry["first_differences"] == []
    doubled = [d for d in counters["ptflops_pytorch"]["departures"] if d["departure"] == "ptflops.double_count"]
    assert doubled and doubled[0]["where"] == {"ReLU": 1, "AdaptiveAvgPool2d": 1}
    labels = {CONVENTIONS[name].label for name in counters}
    numbers = {f"{entry[k]:,}" for entry in counters.values() for k in ("predicted", "reported")}
    for width in (80, 100, 120):
        status, text = _cli(monkeypatch, args, columns=width)
        assert status == 0, text
        assert_fits_and_whole(text, width, set(), numbers)
        assert all(label in text for label in labels)
        assert "counted twice: AdaptiveAvgPool2d ×1, ReLU ×1" in " ".join(text.split())


def test_summary_counters_backward_names_the_groups_departure(monkeypatch):
    """`npconv summary tiny_mobilenet --counters --backward`: the training step's
    FlopCounterMode row, equal, with the ×groups departure named, in --json and the table."""
    from test_cli import assert_fits_and_whole

    args = ["summary", "tiny_mobilenet", "--input", "1,3,32,32", "--counters", "--backward"]
    status, stdout = _cli(monkeypatch, args + ["--json"])
    assert status == 0, stdout
    step = json.loads(stdout)["counters_training_step"]
    assert list(step) == ["flop_counter"]
    row = step["flop_counter"]
    assert row["equal"] and row["predicted"] == row["reported"]
    assert [d["departure"] for d in row["departures"]] == ["flop_counter.grouped_weight_gradient"]
    status, text = _cli(monkeypatch, args, columns=80)
    assert status == 0, text
    assert_fits_and_whole(text, 80, set(), {f"{row['predicted']:,}"})
    assert "grouped weight gradient" in " ".join(text.split())
