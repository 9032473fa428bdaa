"""Every reproduction in docs/findings.md, run against the installed torch.

A reproduction is a ```python block whose first line is `# reproduction`; it asserts the
surprising behaviour, so a failure here means PyTorch changed: the finding is fixed (move it,
or delete it and the special case in npconv's tests that it explains) or reworded.

Markers on the first line: `# reproduction` runs in this process, in a namespace of its own
(such a block must leave global state as it found it); `# reproduction (subprocess)` runs in a
fresh interpreter, for blocks that change the process for good; `# reproduction (slow)` also
runs in a fresh interpreter, and only under the thorough Hypothesis profile. A block that
imports onnxruntime or onnxscript is skipped where they are not installed, and one that
mentions CUDA where no GPU is present.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FINDINGS = Path(__file__).resolve().parent.parent / "docs" / "findings.md"
MARKER = re.compile(r"#\s*reproduction(?:\s*\((subprocess|slow)\))?\s*$")
THOROUGH = os.environ.get("NPCONV_HYPOTHESIS_PROFILE") == "thorough"
OPTIONAL_MODULES = ("onnxruntime", "onnxscript")


def _reproductions() -> list[tuple[str, str, str]]:
    """(section title, mode, code) for every marked block, in the page's order."""
    blocks, section = [], "(no section)"
    lines = FINDINGS.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        if line.strip() == "```python":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            code = textwrap.dedent("\n".join(lines[i + 1:end]))
            match = MARKER.fullmatch(code.splitlines()[0].strip()) if code.strip() else None
            if match:
                blocks.append((section, match.group(1) or "inline", code))
            i = end
        i += 1
    return blocks


REPRODUCTIONS = _reproductions()


def _id(block: tuple[str, str, str]) -> str:
    number = re.match(r"(\d+)\.", block[0])
    return f"finding-{number.group(1)}" if number else re.sub(r"\W+", "-", block[0]).strip("-")[:40]


def test_the_page_has_reproductions():
    """Guards the extraction: a changed marker or fence would otherwise run nothing."""
    assert len(REPRODUCTIONS) >= 15, [title for title, _, _ in REPRODUCTIONS]


@pytest.mark.parametrize("block", REPRODUCTIONS, ids=[_id(b) for b in REPRODUCTIONS])
def test_reproduction_still_holds(block):
    title, mode, code = block
    pytest.importorskip("torch")
    for module in OPTIONAL_MODULES:
        if re.search(rf"\bimport\b[^\n]*\b{module}\b", code):
            pytest.importorskip(module)
    if "cuda" in code:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs CUDA")
    if mode == "slow" and not THOROUGH:
        pytest.skip("slow reproduction: thorough profile")
    failure = f"docs/findings.md, '{title}': the reproduction no longer holds; PyTorch changed?"
    if mode == "inline":
        namespace = {"__name__": f"findings_{_id(block)}"}
        try:
            exec(compile(code, f"<docs/findings.md: {title}>", "exec"), namespace)
        except AssertionError as error:
            raise AssertionError(f"{failure}\n{error!r}") from error
        return
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "CI"})
    assert run.returncode == 0, f"{failure}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
