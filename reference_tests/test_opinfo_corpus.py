"""PyTorch's own test corpus against npconv: every OpInfo and ModuleInfo sample, reference
input and error input of the ops npconv implements, on the CPU and (when present) CUDA.

What is proved, entry by entry (reference_tests/opinfo_corpus.py has the rules, docs/conformance.md
the table):
* no input disagrees: where torch raises, npconv raises a compatible type, and only there;
  where both return, the results are equal bit for bit (pad, relu, relu6, hardtanh,
  max_pool2d and its indices) or both within npconv's rigorous bound of its float64 reference
  (conv1d/2d/3d, conv_transpose1d/2d/3d, linear, batch_norm of any rank with the running
  statistics, the average poolings), with equal shapes and dtypes;
* on the CPU, every row's counts (agree, and not expressible per reason) are the ones
  docs/conformance.md shows, for the torch version it names: the table cannot go stale;
* the verdicts are not vacuous: a result one ulp off, a -0.0 turned into 0.0, a result just
  outside the bound, a missing or extra raise, a wrong exception type and a crash are each a
  disagreement.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import DEVICES

import opinfo_corpus as corpus


@pytest.fixture(scope="module")
def documented():
    return corpus.documented()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("entry", corpus.ENTRIES)
def test_every_input_agrees_or_is_not_expressible(entry, device, documented):
    rows = corpus.run_entry(entry, device)
    disagreements = [d for row in rows for d in row.disagreements]
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements)
    for row in rows:
        assert row.counts["total"] == sum(row.counts[v] for v in (corpus.AGREE, corpus.DISAGREE) + corpus.REASONS)
    version, table = documented
    if device != "cpu" or version != torch.__version__:
        return  # the documented counts are the CPU's, for one torch release
    assert {row.key: row.counts for row in rows} == {k: v for k, v in table.items() if k[0] == entry}, (
        "the counts differ from docs/conformance.md: regenerate it with `python docs/conformance_table.py --write`")


def test_the_table_has_a_row_for_every_entry_and_names_this_torch(documented):
    version, table = documented
    assert version == torch.__version__, f"docs/conformance.md counts torch {version}, this is {torch.__version__}"
    assert {entry for entry, _ in table} == set(corpus.ENTRIES)
    assert all(counts[corpus.DISAGREE] == 0 for counts in table.values())


def test_every_entry_exists_in_torchs_corpus():
    """A renamed or removed OpInfo / ModuleInfo is an error, not a silently empty row."""
    for entry in corpus.ENTRIES:
        (corpus._opinfo if entry in corpus.OPINFO else corpus._moduleinfo)(entry)


def test_importing_torchs_corpus_leaves_torch_and_hypothesis_as_they_were():
    """torch.testing._internal loads a Hypothesis profile of its own (10 random examples),
    overwriting conftest's "dev", and freezes torch.backends' flags: opinfo_corpus.databases
    puts both back, whichever test imported it first in this process."""
    from hypothesis import settings

    corpus.databases()
    assert settings._current_profile == os.environ.get("NPCONV_HYPOTHESIS_PROFILE", "ci")
    assert settings.get_profile("dev").max_examples == 100 and settings.get_profile("ci").max_examples == 25  # conftest's
    assert not torch.backends.flags_frozen()
    torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32  # would raise if frozen


# --------------------------------------------------------------------------------------
# The verdicts are not vacuous
# --------------------------------------------------------------------------------------


def _verdict(op, theirs, ours, a, device="cpu"):
    def run(result):
        def call():
            if isinstance(result, BaseException):
                raise result
            return result
        return call

    return corpus.judge(run(theirs), run(ours), lambda t, o: op.compare(t, o, a, device))[0]


def test_exact_ops_compare_bits():
    x = np.array([-1.0, -0.0, 0.5, np.nan], np.float32)
    relu = corpus.Relu()
    theirs = {"output": np.array([0.0, 0.0, 0.5, np.nan], np.float32)}
    assert _verdict(relu, theirs, {"output": theirs["output"].copy()}, {"input": x}) == corpus.AGREE
    one_ulp = theirs["output"].copy()
    one_ulp[2] = np.nextafter(one_ulp[2], np.float32(1))
    assert _verdict(relu, theirs, {"output": one_ulp}, {"input": x}) == corpus.DISAGREE
    signed = theirs["output"].copy()
    signed[1] = -0.0
    assert _verdict(relu, theirs, {"output": signed}, {"input": x}) == corpus.DISAGREE
    assert _verdict(relu, theirs, {"output": theirs["output"].astype(np.float64)}, {"input": x}) == corpus.DISAGREE
    indices = {"output": theirs["output"], "indices": np.arange(4)}
    assert _verdict(relu, indices, {"output": theirs["output"]}, {"input": x}) == corpus.DISAGREE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bounded_ops_reject_a_result_just_outside_the_bound(dtype):
    rng = np.random.default_rng(0)
    op = corpus.AvgPool2d()
    a = op.bind((rng.standard_normal((1, 2, 6, 6)).astype(dtype), 3), {})
    ours = op.ours(dict(a))
    bound = op.reference(a, np.dtype(dtype))["output"]
    assert _verdict(op, ours, {"output": ours["output"].copy()}, a) == corpus.AGREE
    for direction in (1, -1):
        outside = {"output": (bound.value + direction * 1.01 * bound.error).astype(dtype)}
        assert _verdict(op, outside, ours, a) == corpus.DISAGREE
        assert _verdict(op, ours, outside, a) == corpus.DISAGREE


def test_raising_must_match():
    op = corpus.Relu()
    result = {"output": np.zeros(1, np.float32)}
    a = {"input": np.zeros(1, np.float32)}
    assert _verdict(op, RuntimeError("torch"), ValueError("npconv"), a) == corpus.AGREE
    assert _verdict(op, NotImplementedError("torch"), NotImplementedError("npconv"), a) == corpus.AGREE
    assert _verdict(op, RuntimeError("torch"), result, a) == corpus.DISAGREE
    assert _verdict(op, result, ValueError("npconv"), a) == corpus.DISAGREE
    assert _verdict(op, RuntimeError("torch"), TypeError("npconv"), a) == corpus.DISAGREE
    assert _verdict(op, NotImplementedError("torch"), ValueError("npconv"), a) == corpus.DISAGREE
    assert _verdict(op, RuntimeError("torch"), ZeroDivisionError("a crash"), a) == corpus.DISAGREE
    assert _verdict(op, result, ZeroDivisionError("a crash"), a) == corpus.DISAGREE


def test_an_unknown_keyword_is_a_disagreement_not_a_skip():
    with pytest.raises(corpus.Unsupported):
        corpus.Conv2d().bind((np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1))), {"memory_format": "x"})


def test_dtypes_are_classified_in_order():
    i = torch.zeros(2, dtype=torch.int64)
    c = torch.zeros(2, dtype=torch.complex64)
    b = torch.zeros(2, dtype=torch.bfloat16)
    f = torch.zeros(2)
    assert corpus.dtype_reason([f, (f, None)]) is None
    assert corpus.dtype_reason([b, i]) == corpus.INTEGER
    assert corpus.dtype_reason([i, {"bias": c}]) == corpus.COMPLEX
    assert corpus.dtype_reason([torch.zeros(2, dtype=torch.bool)]) == corpus.INTEGER
    assert corpus.dtype_reason([f, b]) is None  # bfloat16 is compared (ml_dtypes.bfloat16 arrays)
