#!/usr/bin/env python3
"""A mutation campaign over npconv's kernels, bounds, formulas, summary, verify and graph
(issue #13, part 2). The results, the survivors' dispositions and the reasons behind every
choice here: docs/mutation.md.

    python tools/mutate.py list --sample 150 [-v]            # population and sample, nothing run
    python tools/mutate.py run --from-head --sample 150      # baseline, then the sample (resumable)
    python tools/mutate.py rerun --commit <campaign's head>  # the survivors, with today's tests
    python tools/mutate.py report                            # kill rates and survivors, Markdown

A small AST mutator, no third-party tool: every file of TARGETS is parsed, and each
operator of OPERATORS proposes edits at AST nodes; an edit replaces one span of the source
(an operator token, a literal, an operand, a condition, a statement), so the rest of the
file keeps its bytes, line numbers and comments. The population is enumerated file by file
in source order, deduplicated and compiled (an edit that does not compile is dropped); a
deterministic sample is drawn from it, seeded and stratified by module group, and run
interleaved so that a run cut short stays stratified. The hand-written mutants of NAMED
(the issue's earlier survivors) are always run.

Each mutant runs in a fresh copy of the tree under test (npconv/, reference_tests/,
pyproject.toml, README.md; the package from `git archive` with --from-head / --commit) at
one fixed path under --workdir: pytest's cwd and PYTHONPATH are the copy (a plugin written
beside it checks that `import npconv` is the copy's), NPCONV_NUMBA_CACHE is inside the copy,
the Hypothesis profile is CI's, `-x -q -p no:cacheprovider`, a timeout from the unmutated
baseline, `nice -n 15`, one mutant at a time. Exit status 0: survived; 1: killed; past the
timeout: killed by timeout; anything else (an import error, a crash): killed by an error.
Results go to tools/mutation_results.json after every mutant.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "tools" / "mutation_results.json"
SEED = 13  # the number

# ----------------------------------------------------------------------------- what is mutated

# (group, glob patterns relative to the tree root); every file belongs to the first group
# that matches it
TARGETS = [
    ("kernels", ["npconv/kernels/*.py"]),
    ("tolerance", ["npconv/oracle/tolerance.py"]),
    ("bounds", ["npconv/oracle/bounds.py"]),
    ("formulas", ["npconv/cost/formulas/*.py"]),
    ("summary", ["npconv/cost/summary.py"]),
    ("verify", ["npconv/graph/verify.py", "npconv/oracle/verify.py"]),
    ("graph", ["npconv/graph/*.py"]),
]

# ----------------------------------------------------------------------------- which tests run

# Test files (or node ids) run for a mutant, in order (fast, likely killers first; -x stops
# at the first failure). Keys: a file path (most specific), else a group.
# reference_tests/test_mutants.py is appended to every selection when it exists (a final
# campaign, `rerun`). Entries that do not exist in the tree are left out.
_T = "reference_tests/"
_ELEMENTWISE = [_T + "test_elementwise.py"]
_POOLING = [_T + "test_pooling.py"]
_LAYERS = [_T + "test_nn_layers.py"]
_LAYER_BACKWARD = [_T + "test_layer_backward.py", _T + "test_train.py"]  # test_train: dropout, channel shuffle
_CONV = [_T + "test_conv2d_torch.py", _T + "test_counting.py", _T + "test_algebra.py"]
_BACKWARD = [_T + "test_backward.py"]
_GRAPH = [_T + "test_graph.py"]  # its zoo is cut to ZOO_KEPT (SKIP)
_CLI_SUMMARY = [_T + "test_cli.py::test_summary_json_schema",
                _T + "test_cli.py::test_summary_table_markdown_and_flop_counter"]
_CLI_VERIFY = [_T + "test_cli.py::test_verify_json_on_mobilenet_v2_with_residual_adds"]
SELECTIONS: dict[str, list[str]] = {
    # kernels, by the functional wrapper that calls each
    "npconv/kernels/conv2d.py": _CONV + [_T + "test_fast.py"],
    "npconv/kernels/pad2d.py": [_T + "test_conv2d_torch.py", _T + "test_fast.py"] + _BACKWARD,
    "npconv/kernels/pad2d_grad.py": _BACKWARD,
    "npconv/kernels/conv2d_grad_bias.py": _BACKWARD,
    "npconv/kernels/conv2d_grad_input.py": _BACKWARD,
    "npconv/kernels/conv2d_grad_weight.py": _BACKWARD,
    "npconv/kernels/conv_transpose2d.py": [_T + "test_transpose.py"],
    "npconv/kernels/conv_transpose2d_grad_input.py": _BACKWARD,
    "npconv/kernels/conv_transpose2d_grad_weight.py": _BACKWARD,
    "npconv/kernels/add.py": _ELEMENTWISE + _LAYERS,
    "npconv/kernels/sub.py": _ELEMENTWISE,
    "npconv/kernels/mul.py": _ELEMENTWISE,
    "npconv/kernels/div.py": _ELEMENTWISE,
    "npconv/kernels/clamp.py": _ELEMENTWISE,
    "npconv/kernels/sigmoid.py": _ELEMENTWISE,
    "npconv/kernels/max_pool2d.py": _POOLING,
    "npconv/kernels/avg_pool2d.py": _POOLING,
    "npconv/kernels/mean.py": _POOLING,
    "npconv/kernels/adaptive_avg_pool2d.py": _LAYERS + _POOLING,
    "npconv/kernels/batch_norm2d.py": _LAYERS + _LAYER_BACKWARD,
    "npconv/kernels/relu.py": _LAYERS,
    "npconv/kernels/relu6.py": _LAYERS,
    "npconv/kernels/linear.py": _LAYERS,
    "npconv/kernels/dropout.py": _LAYERS,
    "npconv/kernels/channel_shuffle.py": _LAYERS + [_T + "test_shufflenet_unit.py"],
    "npconv/kernels/cat_channels.py": _LAYERS + [_T + "test_shufflenet_unit.py"],  # ShuffleNetV2's concatenation
    # the backward kernels and the training step
    "npconv/kernels/adaptive_avg_pool2d_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/add_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/batch_norm2d_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/channel_shuffle_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/dropout_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/linear_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/relu6_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/relu_backward.py": _LAYER_BACKWARD,
    "npconv/kernels/cross_entropy.py": [_T + "test_train.py"],
    "npconv/kernels/cross_entropy_backward.py": [_T + "test_train.py"],
    "npconv/kernels/sgd.py": [_T + "test_train.py"],
    # any other kernel file (one that lands later): the layer and the convolution tests
    "kernels": _LAYERS + _CONV + _BACKWARD,
    # the oracle
    "tolerance": [_T + "test_tolerance.py", _T + "test_oracle_pins.py", _T + "test_bounds.py",
                  _T + "test_summary.py::test_single_conv_bound_matches_the_core_tolerance",
                  _T + "test_conv2d_torch.py"],
    "bounds": [_T + "test_bounds.py", _T + "test_oracle_pins.py", _T + "test_tolerance.py", _T + "test_pooling.py",
               _T + "test_elementwise.py"] + _GRAPH,
    # counts
    "formulas": [_T + "test_counting.py", _T + "test_pooling.py", _T + "test_nn_layers.py", _T + "test_transpose.py",
                 _T + "test_layer_backward.py", _T + "test_train.py", _T + "test_elementwise.py"] + _BACKWARD
                + [_T + "test_summary.py"],
    "summary": [_T + "test_summary.py", _T + "test_oracle_pins.py"] + _GRAPH + _CLI_SUMMARY,
    "verify": _GRAPH + [_T + "test_summary.py", _T + "test_oracle_pins.py"] + _CLI_VERIFY,
    "graph": _GRAPH + [_T + "test_summary.py", _T + "test_oracle_pins.py", _T + "test_network_strategies.py"],
}
# test_graph's zoo (reference_tests/zoo.py): 17 pytorchcv models, 270 s; a mutant meets the cheapest (3 s)
ZOO_KEPT = ("squeezenet_v1_1",)
SKIP = r"test_pytorchcv_model_verifies_node_by_node\[(?!(" + "|".join(ZOO_KEPT) + r")\])"
NEW_TESTS = _T + "test_mutants.py"

# ----------------------------------------------------------------------------- hand-written mutants

# The mutants that survived an earlier campaign (issue #13), always run: (path, text to
# replace, its replacement) edits applied in order; every `old` must occur exactly once.
NAMED = [
    {
        "name": "H1a float32 bound x4",
        "path": "npconv/oracle/tolerance.py",
        "what": "the float32 error bound multiplied by 4 (bound_from_magnitude)",
        "edits": [("    return c * (rel * magnitude + n * tiny(dtype))",
                   "    if dtype == np.float32:\n"
                   "        rel, c = 4 * rel, 4 * c\n"
                   "    return c * (rel * magnitude + n * tiny(dtype))")],
    },
    {
        "name": "H1b float32 bound x10",
        "path": "npconv/oracle/tolerance.py",
        "what": "the float32 error bound multiplied by 10 (bound_from_magnitude)",
        "edits": [("    return c * (rel * magnitude + n * tiny(dtype))",
                   "    if dtype == np.float32:\n"
                   "        rel, c = 10 * rel, 10 * c\n"
                   "    return c * (rel * magnitude + n * tiny(dtype))")],
    },
    {
        "name": "H1c float32 unit roundoff x4",
        "path": "npconv/oracle/bounds.py",
        "what": "u for float32 taken as 2^-22 (every float32 bound about 4x too loose)",
        "edits": [("U32 = 2.0**-24", "U32 = 2.0**-22")],
    },
    {
        "name": "H2 NaN not required",
        "path": "npconv/oracle/tolerance.py",
        "what": "assert_within_bound no longer requires NaN where the reference is NaN",
        "edits": [("        (ref_nan & ~np.isnan(actual))\n        | (ref_inf", "        (ref_inf")],
    },
    {
        "name": "H3a FlopCounterMode flag off",
        "path": "npconv/cost/summary.py",
        "what": "the per-module FlopCounterMode disagreement (FlopCounterMode/2 != counted MACs) never raised",
        "edits": [("        if row.flop_counter_macs != row.macs:", "        if False:")],
    },
    {
        "name": "H3b FlopCounterMode flags off",
        "path": "npconv/cost/summary.py",
        "what": "both FlopCounterMode disagreement flags off: per module and the model's total",
        "edits": [("        if row.flop_counter_macs != row.macs:", "        if False:"),
                  ("    if total_fc != counted:", "    if False:")],
    },
    {
        "name": "H4 stale callee",
        "path": "npconv/kernels/pad2d.py",
        "what": "pad2d.source_index, the callee that fast/planes.py's cached kernels compile into themselves "
                "(the stale-kernel issue), reflects the top/left border one place off",
        "edits": [("        return -k if k < 0 else", "        return -k - 1 if k < 0 else")],
    },
]

# Survivors argued equivalent (docs/mutation.md): mutant id -> the argument. `report` prints it.
EQUIVALENT = {
    "npconv/kernels/avg_pool2d.py:53:COND:1":
        "unreachable: the empty-window branch needs a window with no input tap, and every argument set "
        "pooling.avg_pool2d accepts (PyTorch's: pad <= kernel // 2, a ceil_mode window only if it starts "
        "before size + pad) gives each window at least one; the kernel has no other caller",
    "npconv/graph/ops.py:160:CONST:4":
        "the default of a parameter the function never reads: _addmm_formula's `alpha` (counts do not "
        "depend on it; _addmm refuses alpha != 1 before anything is counted)",
    "npconv/graph/ops.py:224:CONST:3":
        "the default of a parameter the function never reads: _avg_pool2d_formula's `count_include_pad` "
        "(the divisor rule changes what is divided by, not how many adds and divides there are)",
}

# ----------------------------------------------------------------------------- the mutator

OPERATORS = {
    "AOR": "arithmetic operator swap: + <-> -, * <-> /, // -> *, % -> //, ** -> * (also in +=, -=, ...)",
    "BIT": "| <-> &",
    "DROP": "drop one operand of | or &",
    "ROR": "comparison flip: < <-> <=, > <-> >=, == <-> !=, is <-> is not, in <-> not in",
    "LCR": "and <-> or",
    "NOT": "drop a `not`, a `~` or a unary minus",
    "CONST": "int n -> n + 1 (and 1 -> 0), float c -> 2c (0.0 -> 1.0), True <-> False",
    "MINMAX": "min <-> max, np.minimum <-> np.maximum, np.min <-> np.max",
    "COND": "the condition of an if / elif / conditional expression replaced by True, or by False",
    "RET": "a returned value replaced by None",
    "DEL": "a statement of a loop body removed (replaced by `pass`)",
}

_AOR = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "*", ast.Mod: "//", ast.Pow: "*"}
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.BitOr: "|", ast.BitAnd: "&"}
_ROR = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
        ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
_MINMAX = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "amin": "amax",
           "amax": "amin", "fmin": "fmax", "fmax": "fmin"}
# calls whose arguments are messages, not computation
_MESSAGE_CALLS = {"print", "warn", "step", "progress", "TypeError", "ValueError", "AssertionError",
                  "NotImplementedError", "RuntimeError", "CaptureError", "UnsupportedOpsError"}


@dataclass
class Mutant:
    id: str
    group: str
    path: str
    line: int
    op: str
    original: str           # the source span replaced
    replacement: str
    start: int = 0          # byte offsets of the span in the file
    end: int = 0
    name: str | None = None  # hand-written mutants
    what: str | None = None
    edits: list | None = None
    where: str = ""          # the enclosing function (Class.method), "" at module level

    def describe(self) -> str:
        if self.name:
            return self.what or self.name
        a, b = _short(self.original), _short(self.replacement)
        return f"`{a}` → `{b}`"


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _token_pattern(token: str) -> str:
    if token[0].isalpha():
        return r"\b" + r"\s+".join(re.escape(t) for t in token.split()) + r"\b"
    return r"(?<![<>=!*/+\-%&|^~@])" + re.escape(token) + r"(?![<>=*/])"


class _Collector:
    """Walks one module's AST and proposes (op, start, end, replacement) edits on its bytes."""

    def __init__(self, source: bytes):
        self.src = source
        lines = source.split(b"\n")
        self.offsets = [0]
        for line in lines:
            self.offsets.append(self.offsets[-1] + len(line) + 1)
        self.edits: list[tuple[str, int, int, int, str]] = []  # (op, line, start, end, replacement)

    def pos(self, line: int, col: int) -> int:
        return self.offsets[line - 1] + col

    def span(self, node) -> tuple[int, int]:
        return self.pos(node.lineno, node.col_offset), self.pos(node.end_lineno, node.end_col_offset)

    def text(self, start: int, end: int) -> str:
        return self.src[start:end].decode()

    def add(self, op, line, start, end, replacement):
        self.edits.append((op, line, start, end, replacement))

    def token_between(self, op, line, left, right, token, replacement):
        """Replace the operator `token` found in the gap between two nodes."""
        a, b = self.span(left)[1], self.span(right)[0]
        gap = self.text(a, b)
        masked = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), gap)
        found = list(re.finditer(_token_pattern(token), masked))
        if len(found) != 1:
            return
        s, e = found[0].span()
        self.add(op, line, a + len(gap[:s].encode()), a + len(gap[:e].encode()), replacement)

    # -- traversal

    def visit_module(self, tree: ast.Module):
        self.body(tree.body, in_loop=False)

    def body(self, stmts, in_loop: bool):
        for i, stmt in enumerate(stmts):
            if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str):
                continue  # a docstring
            if in_loop:
                s, e = self.span(stmt)
                self.add("DEL", stmt.lineno, s, e, "pass")
            self.stmt(stmt)

    def stmt(self, node):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Raise, ast.Global, ast.Nonlocal, ast.Pass,
                             ast.Break, ast.Continue)):
            return  # imports; a raise builds a message
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                self.expr(default)
            self.body(node.body, in_loop=False)  # decorators and annotations are not mutated
            return
        if isinstance(node, ast.ClassDef):
            self.body(node.body, in_loop=False)
            return
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                return
            self.expr(node.value)
            for t in node.targets:
                self.target(t)
            return
        if isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name) and node.target.id == "__all__":
                return
            kind = type(node.op)
            if kind in _AOR:
                self.token_between("AOR", node.lineno, node.target, node.value, _OP_TEXT[kind] + "=",
                                   _AOR[kind] + "=")
            self.target(node.target)
            self.expr(node.value)
            return
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value)
            return
        if isinstance(node, ast.Return):
            if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
                s, e = self.span(node.value)
                self.add("RET", node.lineno, s, e, "None")
                self.expr(node.value)
            return
        if isinstance(node, ast.Expr):
            self.expr(node.value)
            return
        if isinstance(node, ast.If):
            self.condition(node.test)
            self.expr(node.test)
            self.body(node.body, in_loop=False)
            self.body(node.orelse, in_loop=False)
            return
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter)
            self.body(node.body, in_loop=True)
            self.body(node.orelse, in_loop=False)
            return
        if isinstance(node, ast.While):
            self.expr(node.test)
            self.body(node.body, in_loop=True)
            self.body(node.orelse, in_loop=False)
            return
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
            self.body(node.body, in_loop=False)
            return
        if isinstance(node, ast.Try):
            self.body(node.body, in_loop=False)
            for handler in node.handlers:
                self.body(handler.body, in_loop=False)
            self.body(node.orelse, in_loop=False)
            self.body(node.finalbody, in_loop=False)
            return
        if isinstance(node, ast.Assert):
            self.expr(node.test)
            return
        if isinstance(node, ast.Delete):
            return
        for child in ast.iter_child_nodes(node):  # anything else (match, ...)
            if isinstance(child, ast.expr):
                self.expr(child)

    def target(self, node):
        """Assignment targets: only the expressions inside subscripts (y[n, o, i, j] indices)."""
        if isinstance(node, ast.Subscript):
            self.expr(node.slice)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.target(elt)

    def condition(self, test):
        s, e = self.span(test)
        self.add("COND", test.lineno, s, e, "True")
        self.add("COND", test.lineno, s, e, "False")

    def expr(self, node):
        if node is None:
            return
        if isinstance(node, ast.JoinedStr):
            return  # f-strings are messages
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else None)
            if name in _MESSAGE_CALLS:
                return
            if name in _MINMAX:
                s, e = self.span(node.func)
                text = self.text(s, e)
                self.add("MINMAX", node.lineno, s, e, text[: len(text) - len(name)] + _MINMAX[name])
        if isinstance(node, ast.BinOp):
            kind = type(node.op)
            if kind in _AOR:
                self.token_between("AOR", node.lineno, node.left, node.right, _OP_TEXT[kind], _AOR[kind])
            if kind in (ast.BitOr, ast.BitAnd):
                other = "&" if kind is ast.BitOr else "|"
                self.token_between("BIT", node.lineno, node.left, node.right, _OP_TEXT[kind], other)
                s, e = self.span(node)
                for operand in (node.left, node.right):
                    self.add("DROP", node.lineno, s, e, "(" + self.text(*self.span(operand)) + ")")
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.Invert)) or (
                    isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant)):
                s, e = self.span(node)
                self.add("NOT", node.lineno, s, e, "(" + self.text(*self.span(node.operand)) + ")")
        elif isinstance(node, ast.Compare):
            operands = [node.left] + node.comparators
            for i, op in enumerate(node.ops):
                token, other = _ROR[type(op)]
                self.token_between("ROR", node.lineno, operands[i], operands[i + 1], token, other)
        elif isinstance(node, ast.BoolOp):
            token, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:]):
                self.token_between("LCR", node.lineno, left, right, token, other)
        elif isinstance(node, ast.IfExp):
            self.condition(node.test)
        elif isinstance(node, ast.Constant):
            value = node.value
            s, e = self.span(node)
            if isinstance(value, bool):
                self.add("CONST", node.lineno, s, e, repr(not value))
            elif isinstance(value, int):
                self.add("CONST", node.lineno, s, e, repr(value + 1))
                if value == 1:
                    self.add("CONST", node.lineno, s, e, "0")
            elif isinstance(value, float):
                self.add("CONST", node.lineno, s, e, repr(value * 2) if value else "1.0")
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.comprehension):
                self.expr(child.iter)
                for cond in child.ifs:
                    self.expr(cond)
            elif isinstance(child, ast.keyword):
                self.expr(child.value)


def _group_of(path: str) -> str | None:
    for group, patterns in TARGETS:
        if any(fnmatch.fnmatch(path, p) for p in patterns):
            return group
    return None


def target_files(tree: Path) -> list[tuple[str, str]]:
    """(group, path relative to the tree) of every file mutated, in a fixed order."""
    seen, out = set(), []
    for group, patterns in TARGETS:
        for pattern in patterns:
            for path in sorted(tree.glob(pattern)):
                rel = path.relative_to(tree).as_posix()
                if rel not in seen:
                    seen.add(rel)
                    out.append((group, rel))
    return out


def mutate_source(source: bytes, start: int, end: int, replacement: str) -> bytes:
    return source[:start] + replacement.encode() + source[end:]


def _scopes(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and class, outer first, and of
    every module-level assignment (a table such as OPS)."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                out.append((child.lineno, child.end_lineno, name))
                walk(child, name + ".")
            elif not prefix and isinstance(child, (ast.Assign, ast.AnnAssign)):  # a module-level table
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    out.append((child.lineno, child.end_lineno, names[0]))
            else:
                walk(child, prefix)
    walk(tree, "")
    return out


def enclosing(scopes, line: int) -> str:
    inside = [name for first, last, name in scopes if first <= line <= last]
    return max(inside, key=len) if inside else ""


def generate(tree: Path) -> tuple[list[Mutant], dict]:
    """Every generated mutant of the tree, in file and source order; and counts of the edits
    dropped (duplicates, ones that do not compile)."""
    mutants, dropped = [], {"duplicate": 0, "does_not_compile": 0}
    for group, rel in target_files(tree):
        source = (tree / rel).read_bytes()
        collector = _Collector(source)
        module = ast.parse(source)
        collector.visit_module(module)
        scopes = _scopes(module)
        seen = {hashlib.sha256(source).hexdigest()}
        counter: dict[tuple, int] = {}
        for op, line, start, end, replacement in sorted(collector.edits, key=lambda e: (e[2], e[3], e[0], e[4])):
            new = mutate_source(source, start, end, replacement)
            digest = hashlib.sha256(new).hexdigest()
            if digest in seen:
                dropped["duplicate"] += 1
                continue
            seen.add(digest)
            try:
                compile(new, rel, "exec")
            except SyntaxError:
                dropped["does_not_compile"] += 1
                continue
            key = (rel, line, op)
            counter[key] = counter.get(key, 0) + 1
            mid = f"{rel}:{line}:{op}:{counter[key]}"
            mutants.append(Mutant(mid, group, rel, line, op, source[start:end].decode(), replacement, start, end,
                                  where=enclosing(scopes, line)))
    return mutants, dropped


def named_mutants(tree: Path) -> list[Mutant]:
    out = []
    for spec in NAMED:
        text = (tree / spec["path"]).read_text()
        line = text[: text.find(spec["edits"][0][0])].count("\n") + 1 if spec["edits"][0][0] in text else 0
        out.append(Mutant(spec["name"], _group_of(spec["path"]), spec["path"], line, "NAMED",
                          spec["edits"][0][0], spec["edits"][0][1], name=spec["name"], what=spec["what"],
                          edits=[list(e) for e in spec["edits"]]))
    return out


def apply(mutant: Mutant, tree: Path) -> bytes:
    """The mutated file's bytes (of the file under `tree`)."""
    source = (tree / mutant.path).read_bytes()
    if mutant.edits is None:
        if source[mutant.start:mutant.end].decode() != mutant.original:
            raise RuntimeError(f"{mutant.id}: the source changed since the mutant was generated")
        return mutate_source(source, mutant.start, mutant.end, mutant.replacement)
    text = source.decode()
    for old, new in mutant.edits:
        if text.count(old) != 1:
            raise RuntimeError(f"{mutant.id}: {old!r} occurs {text.count(old)} times in {mutant.path}")
        text = text.replace(old, new)
    return text.encode()


def sample(mutants: list[Mutant], size: int | None, seed: int) -> list[Mutant]:
    """A deterministic sample of `size` mutants, stratified by group: each group gets
    max(MIN_PER_GROUP, its share of `size` proportional to its population), at most its
    population, drawn by a seeded shuffle of the group. Returned interleaved: at every point
    the group furthest behind its quota comes next, so that any prefix (a run cut short by
    --budget-minutes) is itself close to stratified."""
    by_group: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_group.setdefault(m.group, []).append(m)
    total = len(mutants)
    if size is None or size >= total:
        quotas = {g: len(ms) for g, ms in by_group.items()}
    else:
        quotas = {g: min(len(ms), max(MIN_PER_GROUP, round(size * len(ms) / total))) for g, ms in by_group.items()}
    drawn = {}
    for group, ms in by_group.items():
        order = list(ms)
        random.Random(f"{seed}:{group}").shuffle(order)
        drawn[group] = order[: quotas[group]]
    taken = {g: 0 for g in drawn}
    out = []
    while len(out) < sum(quotas.values()):
        group = min((g for g in drawn if taken[g] < quotas[g]), key=lambda g: ((taken[g] + 0.5) / quotas[g], g))
        out.append(drawn[group][taken[group]])
        taken[group] += 1
    return out


MIN_PER_GROUP = 15

# ----------------------------------------------------------------------------- running


_GUARD = '''"""pytest plugin written by tools/mutate.py: npconv must be the mutated copy's, and a
failing Hypothesis example is reported as found (no shrinking: the verdict is the same)."""
import os


def pytest_sessionstart(session):
    import npconv
    root = os.path.realpath(os.environ["NPCONV_MUTATE_TREE"])
    where = os.path.realpath(npconv.__file__)
    with open(os.environ["NPCONV_MUTATE_IMPORTED"], "w") as f:
        f.write(where)
    if not where.startswith(root + os.sep):
        raise SystemExit(f"npconv imported from {where}, not from the copy {root}")
    if os.environ.get("NPCONV_MUTATE_NO_SHRINK"):
        from hypothesis import Phase, settings
        current = settings.default
        phases = tuple(p for p in current.phases if p not in (Phase.shrink, Phase.explain))
        settings.register_profile("mutate", parent=current, phases=phases)
        settings.load_profile("mutate")


def pytest_collection_modifyitems(config, items):
    import re
    skip = os.environ.get("NPCONV_MUTATE_SKIP")
    if not skip:
        return
    dropped = [item for item in items if re.search(skip, item.nodeid)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
'''


def _kernel_hash(tree: Path) -> str:
    spec = importlib.util.spec_from_file_location("_npconv_numba_cache_copy", tree / "npconv" / "_numba_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_hash()


_JIT_DIRS = ("npconv/kernels", "npconv/fast")


def _importers(tree: Path, rel: str) -> set[str]:
    """`rel` and every kernels/ or fast/ file that imports it, transitively (a Numba kernel
    compiles its jitted callees into itself, so their cached code holds the callee's)."""
    stem = Path(rel).stem
    files = [p for d in _JIT_DIRS for p in sorted((tree / d).glob("*.py"))]
    found, frontier = {rel}, [stem]
    while frontier:
        name = frontier.pop()
        pattern = re.compile(rf"^\s*from\s+(\.|\.\.kernels\.|\.\.fast\.){name}\s+import", re.M)
        for p in files:
            r = p.relative_to(tree).as_posix()
            if r not in found and pattern.search(p.read_text()):
                found.add(r)
                frontier.append(p.stem)
    return found


class Runner:
    def __init__(self, source_tree: Path, workdir: Path, seed_cache: bool, shrink: bool, verbose: bool,
                 commit: str | None = None):
        self.source_tree = source_tree
        self.commit = commit
        self.workdir = workdir
        self.pristine = workdir / "pristine"
        self.tree = workdir / "tree"
        self.cache = self.tree / ".numba-cache"   # the Numba cache lives inside the copy
        self.saved_cache = workdir / "numba-cache"  # kept between copies for unmutated kernels
        self.plugins = workdir / "plugins"
        self.seed_cache = seed_cache
        self.shrink = shrink
        self.verbose = verbose
        self.base_hash = None

    def prepare(self):
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.pristine.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
        if self.commit:  # the package as committed (a revision), the working tree's tests
            archive = subprocess.run(["git", "archive", self.commit, "npconv", "pyproject.toml", "README.md"],
                                     cwd=self.source_tree, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(self.pristine)], input=archive, check=True)
            shutil.copytree(self.source_tree / "reference_tests", self.pristine / "reference_tests", ignore=ignore)
        else:
            for name in ("npconv", "reference_tests"):
                shutil.copytree(self.source_tree / name, self.pristine / name, ignore=ignore)
            for name in ("pyproject.toml", "README.md"):
                if (self.source_tree / name).exists():
                    shutil.copy2(self.source_tree / name, self.pristine / name)
        self.plugins.mkdir()
        (self.plugins / "npconv_mutate_guard.py").write_text(_GUARD)
        self.base_hash = _kernel_hash(self.pristine)

    def fresh_copy(self):
        if self.tree.exists():
            shutil.rmtree(self.tree)
        shutil.copytree(self.pristine, self.tree)  # copy2: modification times kept (Numba's cache stamps)
        if self.saved_cache.exists():
            self.saved_cache.rename(self.cache)

    def keep_cache(self, mutated: str | None):
        """Keep the unmutated kernels' Numba cache for the next copy; drop the mutant's."""
        if self.cache.exists():
            for entry in self.cache.iterdir():
                if entry.name != self.base_hash:
                    shutil.rmtree(entry, ignore_errors=True)
            self.cache.rename(self.saved_cache)

    def seed_kernel_cache(self, rel: str):
        """A mutated kernel changes the source hash, hence Numba's cache directory. With
        --seed-cache, the new directory starts with the cached code of every kernels/ and
        fast/ file that neither is the mutated file nor imports it (transitively): those
        compile to the same code, and the stamps (mtime, size) Numba checks are unchanged.
        The mutated file and its importers are compiled afresh."""
        new_hash = _kernel_hash(self.tree)
        base = self.cache / self.base_hash
        if new_hash == self.base_hash or not base.exists() or not self.seed_cache:
            return new_hash
        excluded = _importers(self.tree, rel)
        target = self.cache / new_hash
        for sub in base.iterdir():  # kernels_<path hash>/, fast_<path hash>/: Numba's per-folder caches
            folder = "npconv/kernels" if sub.name.startswith("kernels") else "npconv/fast"
            (target / sub.name).mkdir(parents=True, exist_ok=True)
            for f in sub.iterdir():  # <module>.<function>-<line>.py311[.k].nbc / .nbi
                if f"{folder}/{f.name.split('.', 1)[0]}.py" not in excluded:
                    shutil.copy2(f, target / sub.name / f.name)
        return new_hash

    def pytest(self, files: list[str], timeout: float, extra_args=(), stop_first: bool = True) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
        imported = self.workdir / "imported.txt"
        if imported.exists():
            imported.unlink()
        env.update({
            "PYTHONPATH": f"{self.tree}{os.pathsep}{self.plugins}",
            "NPCONV_NUMBA_CACHE": str(self.cache),
            "NPCONV_HYPOTHESIS_PROFILE": "ci",
            "NPCONV_MUTATE_TREE": str(self.tree),
            "NPCONV_MUTATE_IMPORTED": str(imported),
            "PYTHONHASHSEED": "0",
            "NPCONV_MUTATE_SKIP": SKIP,
        })
        if not self.shrink:
            env["NPCONV_MUTATE_NO_SHRINK"] = "1"
        files = _existing(files, self.tree)
        command = ["nice", "-n", "15", sys.executable, "-m", "pytest", *(["-x"] if stop_first else []), "-q",
                   "-p", "no:cacheprovider", "-p", "npconv_mutate_guard",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning", *extra_args, *files]
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=self.tree, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
            rc = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            rc = None
        except BaseException:  # interrupted: take the test run down with the campaign
            os.killpg(process.pid, signal.SIGKILL)
            raise
        elapsed = time.monotonic() - start
        where = imported.read_text() if imported.exists() else None
        return {"rc": rc, "seconds": round(elapsed, 1), "output": output, "files": files, "imported": where}


def _existing(files: list[str], tree: Path) -> list[str]:
    """The entries whose test file exists in `tree` (node ids: their file)."""
    return [f for f in files if (tree / f.split("::")[0]).exists()]


def _first_failure(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:300]
    if "Fatal Python error" in output:  # a crash: faulthandler's stack names the test that ran
        kind = re.search(r"Fatal Python error: ([^\n]*)", output).group(1).strip()
        frames = re.findall(r'File "[^"]*?(reference_tests/test_\w+\.py)", line \d+ in (\w+)', output)
        test = next(((f, t) for f, t in frames if t.startswith("test_")), frames[-1] if frames else None)
        return f"CRASHED ({kind}) in {test[0]}::{test[1]}" if test else f"CRASHED ({kind})"
    for line in output.splitlines():
        if "Error" in line or "error" in line:
            return line.strip()[:300]
    return None


def selection(m: Mutant, with_new_tests: bool, extra=(), first_run: list[str] | None = None) -> list[str]:
    """The test files (node ids) for `m`: SELECTIONS', then `extra`; with_new_tests: NEW_TESTS
    last (a final campaign: a kill stays with the older test that makes it). For `rerun`
    (`first_run`: the files the mutant survived): the files added since, NEW_TESTS, then the
    files it survived -- an older test that now reaches the mutant gets the kill first."""
    files = list(SELECTIONS.get(m.path) or SELECTIONS[m.group]) + [f for f in extra]
    if first_run is not None:
        added = [f for f in files if f not in first_run and f != NEW_TESTS]
        return added + [NEW_TESTS] + [f for f in first_run if f != NEW_TESTS]
    if with_new_tests and NEW_TESTS not in files:
        files = files + [NEW_TESTS]
    return files


def classify(result: dict) -> str:
    rc = result["rc"]
    if rc is None:
        return "timeout"
    if rc == 0:
        return "survived"
    if rc == 1:
        return "killed"
    if rc == 5:
        return "no_tests"
    return "error"  # 2: interrupted (a collection or import error), 3: internal error, 4: usage


def run_one(runner: Runner, m: Mutant, files: list[str], timeout: float) -> dict:
    runner.fresh_copy()
    try:
        try:
            new = apply(m, runner.tree)
        except RuntimeError as error:  # a named mutant whose text is gone from the tree
            return {"status": "not_applicable", "rc": None, "seconds": 0.0, "files": files, "failure": str(error),
                    "tail": None}
        (runner.tree / m.path).write_bytes(new)
        kernel = m.path.startswith(_JIT_DIRS)
        if kernel:
            runner.seed_kernel_cache(m.path)
        result = runner.pytest(files, timeout)
    finally:
        runner.keep_cache(m.path)
    status = classify(result)
    if result["imported"] and not result["imported"].startswith(str(runner.tree)):
        raise SystemExit(f"{m.id}: npconv was imported from {result['imported']}, not the copy")
    return {"status": status, "rc": result["rc"], "seconds": result["seconds"], "files": result["files"],
            "failure": None if status == "survived" else _first_failure(result["output"]),
            "tail": result["output"][-1500:] if status in ("error", "no_tests") else None}


def baseline(runner: Runner, selections: list[list[str]]) -> dict:
    """Every test of every selection, once, on the unmutated copy, in one pytest run (from an
    empty Numba cache, so compiling is included): all must pass. A selection's time is the
    sum of its tests' times (JUnit XML) plus the run's start-up; it sets the timeout."""
    import xml.etree.ElementTree as ET

    union = []
    for files in selections:
        union += [f for f in files if f not in union]
    report = runner.workdir / "baseline.xml"
    runner.fresh_copy()
    result = runner.pytest(union, timeout=7200, extra_args=["--junitxml", str(report)], stop_first=False)
    runner.keep_cache(None)
    if result["rc"] != 0:
        sys.stdout.write(result["output"][-4000:])
        raise SystemExit(f"the unmutated tree fails its selections: rc {result['rc']}")
    if not (result["imported"] or "").startswith(str(runner.tree)):
        raise SystemExit(f"npconv was imported from {result['imported']}, not from the copy {runner.tree}")
    cases = []  # (file, test name, seconds)
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        cases.append(("/".join(module[:2]) + ".py", case.get("name", ""), float(case.get("time", 0))))
    startup = max(0.0, result["seconds"] - sum(c[2] for c in cases))

    def seconds(entry: str) -> float:
        file, _, test = entry.partition("::")
        return sum(t for f, name, t in cases if f == file and (not test or name == test or name.startswith(test + "[")))

    out = {}
    for files in selections:
        out[" ".join(files)] = round(startup + sum(seconds(f) for f in files), 1)
    print(f"  baseline: {len(cases)} tests passed in {result['seconds']:.0f} s (start-up {startup:.0f} s)", flush=True)
    for key, value in out.items():
        print(f"  {value:7.1f} s  {key}", flush=True)
    return out


def _timeout(baseline_seconds: float, kernel: bool, factor: float, compile_allowance: float) -> float:
    return factor * baseline_seconds + (compile_allowance if kernel else 30)


# ----------------------------------------------------------------------------- rates and report


def _outcome(r: dict) -> str:
    """A record's outcome: killed, error, timeout (first run); wider (a survivor killed on
    `rerun` by an existing test: the first selection missed it); new (killed by NEW_TESTS);
    equivalent (argued in EQUIVALENT); survived; not_applicable."""
    if r["status"] != "survived":
        return r["status"]
    final = r.get("final_status", "survived")
    if final == "killed_by_new_test":
        return "new"
    if final in ("killed", "error", "timeout"):
        return "wider"
    return "equivalent" if r["id"] in EQUIVALENT else "survived"


_COLUMNS = ("killed", "error", "timeout", "wider", "new", "equivalent", "survived")


def rates(records: list[dict]) -> dict:
    """Per group and overall: mutants run, each outcome, and three rates: `first_run` (killed
    by the first selection: killed, error, timeout), `kill_rate` (killed by any test: + wider
    + new) and `score` (kill_rate with the equivalent mutants left out of the count)."""
    table: dict[str, dict] = {}
    for r in records:
        outcome = _outcome(r)
        if outcome == "not_applicable":
            continue
        for key in (r["group"], "all"):
            row = table.setdefault(key, {"run": 0, **{c: 0 for c in _COLUMNS}})
            row["run"] += 1
            row[outcome] += 1
    for row in table.values():
        first = row["killed"] + row["error"] + row["timeout"]
        killed = first + row["wider"] + row["new"]
        row["first_run"] = round(first / row["run"], 4)
        row["kill_rate"] = round(killed / row["run"], 4)
        row["score"] = round(killed / (row["run"] - row["equivalent"]), 4) if row["run"] > row["equivalent"] else None
    return table


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, data: dict):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def print_rates(records: list[dict]):
    table = rates(records)
    print(f"{'group':<10} {'run':>4} " + " ".join(f"{c[:7]:>7}" for c in _COLUMNS)
          + f" {'1st run':>8} {'kill':>7} {'score':>7}")
    for g in [g for g, _ in TARGETS] + ["all"]:
        if g in table:
            r = table[g]
            print(f"{g:<10} {r['run']:>4} " + " ".join(f"{r[c]:>7}" for c in _COLUMNS)
                  + f" {100 * r['first_run']:>7.1f}% {100 * r['kill_rate']:>6.1f}% "
                  + (f"{100 * r['score']:>6.1f}%" if r["score"] is not None else "      -"))


def _test_name(failure: str | None) -> str:
    """`test_x.py::test_y` from a "FAILED reference_tests/test_x.py::test_y[...] - ..." line."""
    if not failure:
        return "?"
    match = re.search(r"(test_\w+\.py::\w+)", failure)
    return f"`{match.group(1)}`" if match else failure


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(data: dict) -> str:
    """The kill-rate table and the survivor table of docs/mutation.md."""
    records = data["mutants"]
    table = rates(records)
    population = data["population"]["by_group"]
    lines = ["| group | population | run | killed | crashed | timed out | killed on rerun by an existing test "
             "| killed by test_mutants.py | equivalent | survived | first run | kill rate | score |",
             "|---|" + "---:|" * 12]
    for g in [g for g, _ in TARGETS] + ["all"]:
        if g not in table:
            continue
        r = table[g]
        pop = sum(population.values()) if g == "all" else population.get(g, 0)
        score = f"{100 * r['score']:.1f}%" if r["score"] is not None else "–"
        name = "**all**" if g == "all" else g
        lines.append(f"| {name} | {pop} | {r['run']} | {r['killed']} | {r['error']} | {r['timeout']} | {r['wider']} | "
                     f"{r['new']} | {r['equivalent']} | {r['survived']} | {100 * r['first_run']:.1f}% | "
                     f"{100 * r['kill_rate']:.1f}% | {score} |")
    lines += ["", "| mutant | in | edit | disposition |", "|---|---|---|---|"]
    for r in records:
        if r["status"] != "survived":
            continue
        outcome = _outcome(r)
        if outcome == "new":
            how = "killed by " + _test_name(r.get("killed_by"))
        elif outcome == "wider":
            how = "killed on rerun by an existing test outside its first selection: " + _test_name(r.get("killed_by"))
        elif outcome == "equivalent":
            how = "**equivalent**: " + EQUIVALENT[r["id"]]
        else:
            how = "**survives**"
        where = f"`{r['where']}`" if r.get("where") else "(module)"
        lines.append(f"| `{r['id']}` | {where} | {_cell(r['describe'])} | {_cell(how)} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- commands


def _all_mutants(tree: Path, size: int | None, seed: int):
    generated, dropped = generate(tree)
    chosen = sample(generated, size, seed)
    population = {}
    for m in generated:
        population[m.group] = population.get(m.group, 0) + 1
    by_op = {}
    for m in generated:
        by_op[m.op] = by_op.get(m.op, 0) + 1
    return generated, chosen, named_mutants(tree), {"by_group": population, "by_operator": by_op,
                                                      "dropped": dropped, "total": len(generated)}


def cmd_list(args):
    tree = Path(args.tree).resolve()
    runner = None
    if args.commit:  # materialise the revision's package
        runner = Runner(tree, Path(args.workdir), False, False, False, args.commit)
        runner.prepare()
        tree = runner.pristine
    generated, chosen, named, population = _all_mutants(tree, args.sample, args.seed)
    print(json.dumps(population, indent=1))
    sampled = {}
    for m in chosen:
        sampled[m.group] = sampled.get(m.group, 0) + 1
    print("sampled", len(chosen), json.dumps(sampled))
    if args.verbose:
        for m in named + chosen:
            print(f"{m.id:<60} {m.where or '(module)':<30} {m.describe()}")
    if runner is not None:
        shutil.rmtree(args.workdir, ignore_errors=True)


def _resolve(tree: Path, rev: str) -> str | None:
    """The commit `rev` names in the repository at `tree` (None outside one)."""
    try:
        return subprocess.run(["git", "rev-parse", rev], cwd=tree, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _run_records(runner: Runner, data: dict, todo: list[Mutant], results_path: Path, with_new_tests: bool,
                 factor: float, compile_allowance: float, field_prefix: str = "", rerun: bool = False,
                 extra=(), deadline: float | None = None):
    base = data["baseline_seconds"]
    records = {r["id"]: r for r in data["mutants"]}
    for i, m in enumerate(todo, 1):
        if deadline is not None and time.time() > deadline:
            print(f"--budget-minutes reached: {len(todo) - i + 1} mutants not run", flush=True)
            data["not_run"] = [t.id for t in todo[i - 1:]]
            break
        first_run = records[m.id]["files"] if rerun else None
        files = selection(m, with_new_tests, extra, first_run)
        key = " ".join(_existing(files, runner.pristine))
        kernel = m.path.startswith(_JIT_DIRS)
        timeout = _timeout(base[key], kernel, factor, compile_allowance)
        outcome = run_one(runner, m, files, timeout)
        record = records.get(m.id) or {"id": m.id, "group": m.group, "path": m.path, "line": m.line, "op": m.op,
                                        "describe": m.describe(), "where": m.where, "original": m.original,
                                        "replacement": m.replacement, "named": m.name}
        if field_prefix:
            record[field_prefix] = outcome
        else:
            record.update(outcome)
        records[m.id] = record
        data["mutants"] = list(records.values())
        _save(results_path, data)
        print(f"[{i}/{len(todo)}] {outcome['status']:<9} {outcome['seconds']:6.1f}s  {m.id}  {m.describe()}",
              flush=True)
    return data


def cmd_run(args):
    tree = Path(args.tree).resolve()
    results_path = Path(args.results).resolve()
    data = _load(results_path) if args.resume else {}
    runner = Runner(tree, Path(args.workdir), args.seed_cache, args.shrink, args.verbose, args.commit)
    started = time.time()
    if not data:
        runner.prepare()  # the pristine copy: the mutants are generated from it, so they apply to it
    else:
        runner.base_hash = _kernel_hash(runner.pristine)
    generated, chosen, named, population = _all_mutants(runner.pristine, args.sample, args.seed)
    todo = named + chosen
    if args.only:
        todo = [m for m in todo if any(re.search(p, m.id) for p in args.only)]
    if not data:
        with_new = args.with_new_tests and (runner.pristine / NEW_TESTS).exists()
        selections = []
        for m in todo:
            files = _existing(selection(m, with_new), runner.pristine)
            if files not in selections:
                selections.append(files)
        print(f"population {population['total']} generated mutants {json.dumps(population['by_group'])}; "
              f"sampled {len(chosen)}, named {len(named)}; {len(selections)} test selections", flush=True)
        data = {
            "tree": str(tree), "commit": args.commit and _resolve(tree, args.commit),
            "git_head": _resolve(tree, "HEAD"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": args.seed, "sample_size": args.sample,
            "operators": OPERATORS, "population": population,
            "sampled_by_group": {g: sum(1 for m in chosen if m.group == g) for g, _ in TARGETS},
            "named": [m.id for m in named], "with_new_tests": with_new, "shrink": args.shrink,
            "seed_cache": args.seed_cache, "timeout_factor": args.timeout_factor, "skip": SKIP,
            "baseline_seconds": baseline(runner, selections), "mutants": [],
        }
        _save(results_path, data)
    with_new = data["with_new_tests"]
    done = {r["id"] for r in data["mutants"]}
    todo = [m for m in todo if m.id not in done]
    deadline = started + 60 * args.budget_minutes if args.budget_minutes else None
    data = _run_records(runner, data, todo, results_path, with_new, args.timeout_factor, args.compile_allowance,
                        deadline=deadline)
    data["wall_seconds"] = round(data.get("wall_seconds", 0) + time.time() - started, 1)
    data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _save(results_path, data)
    print_rates(data["mutants"])
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


def cmd_rerun(args):
    """Re-run recorded mutants (by default the survivors) with the current tests,
    test_mutants.py included: a survivor that now fails there is `killed_by_new_test`."""
    tree = Path(args.tree).resolve()
    results_path = Path(args.results).resolve()
    data = _load(results_path)
    runner = Runner(tree, Path(args.workdir), args.seed_cache, args.shrink, args.verbose, args.commit)
    runner.prepare()
    generated, _, named, _ = _all_mutants(runner.pristine, None, args.seed)
    by_id = {m.id: m for m in generated + named}
    ids = [r["id"] for r in data["mutants"] if r["status"] in args.status]
    if args.only:
        ids = [i for i in ids if any(re.search(p, i) for p in args.only)]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SystemExit(f"not generated from {tree} any more (the source moved?): {missing}")
    todo = [by_id[i] for i in ids]
    selections = []
    for m in todo:
        first_run = next(r["files"] for r in data["mutants"] if r["id"] == m.id)
        files = _existing(selection(m, True, args.extra, first_run), runner.pristine)
        if files not in selections:
            selections.append(files)
    data["baseline_seconds"].update(baseline(runner, selections))
    started = time.time()
    data = _run_records(runner, data, todo, results_path, True, args.timeout_factor, args.compile_allowance,
                        field_prefix="rerun", rerun=True, extra=args.extra)
    for r in data["mutants"]:
        if r["id"] in ids:
            rerun = r["rerun"]
            if rerun["status"] == "survived":
                r["final_status"] = "survived"
            else:
                r["final_status"] = "killed_by_new_test" if "test_mutants" in (rerun["failure"] or "") \
                    else rerun["status"]
                r["killed_by"] = rerun["failure"]
    data["rerun_wall_seconds"] = round(data.get("rerun_wall_seconds", 0) + time.time() - started, 1)
    _save(results_path, data)
    print_rates(data["mutants"])
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


def cmd_report(args):
    data = _load(Path(args.results))
    print_rates(data["mutants"])
    print()
    print(markdown(data))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tree", default=str(REPO), help="the tree to mutate and test (default: this working tree)")
    common.add_argument("--results", default=str(RESULTS), help="the JSON results file")
    common.add_argument("--from-head", dest="commit", action="store_const", const="HEAD",
                        help="mutate the package as committed (git archive HEAD) with the tree's reference_tests")
    common.add_argument("--commit", default=None,
                        help="the same for another revision: git archive COMMIT (e.g. a campaign's git_head)")
    common.add_argument("--seed", type=int, default=SEED)
    common.add_argument("--sample", type=int, default=None, help="generated mutants to draw (default: all)")
    common.add_argument("--workdir", default=f"/tmp/npconv-mutate-{os.getpid()}", help="where the copies live")
    common.add_argument("--only", nargs="*", help="regular expressions: run only mutants whose id matches one")
    common.add_argument("--timeout-factor", type=float, default=3.0,
                        help="timeout = factor x the selection's unmutated time + 30 s (+ --compile-allowance "
                             "for a kernel)")
    common.add_argument("--compile-allowance", type=float, default=120.0)
    common.add_argument("--no-seed-cache", dest="seed_cache", action="store_false")
    common.add_argument("--shrink", action="store_true", help="let Hypothesis shrink failing examples (slower)")
    common.add_argument("--keep", action="store_true", help="keep the work directory")
    common.add_argument("--verbose", "-v", action="store_true")
    p = sub.add_parser("list", parents=[common])
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("run", parents=[common])
    p.add_argument("--resume", action="store_true", help="continue a run recorded in --results (same --workdir)")
    p.add_argument("--with-new-tests", action="store_true",
                   help=f"append {NEW_TESTS} to every selection (a final campaign)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="stop starting mutants after this long (the sample's order keeps any prefix stratified)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("rerun", parents=[common])
    p.add_argument("--status", nargs="*", default=["survived"])
    p.add_argument("--extra", nargs="*", default=[], help="more test files (node ids) to run after the selection")
    p.set_defaults(func=cmd_rerun)
    p = sub.add_parser("report", parents=[common])
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill <pid>: stop the running tests too
    args.func(args)


if __name__ == "__main__":
    main()
