"""Regenerate the corpus table of docs/conformance.md: every OpInfo and ModuleInfo sample and
error input of the ops npconv implements, run on the CPU and classified by reference_tests/opinfo_corpus.py.

    python docs/conformance_table.py [--write]

Run from the repository root; needs the test extra (torch); about half a minute.
reference_tests/test_opinfo_corpus.py reads the table back (`opinfo_corpus.documented`) and
fails when a run's counts differ from it: regenerate it whenever they change."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "reference_tests"))
sys.path.insert(0, str(ROOT / "docs"))

from generated_section import main  # noqa: E402
from opinfo_corpus import DOC, END, START, format_table, run  # noqa: E402

if __name__ == "__main__":
    main("Regenerate the corpus table of docs/conformance.md.", DOC, START, END, lambda: format_table(run("cpu")))
