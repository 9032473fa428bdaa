"""Shared by the scripts that regenerate a marked section of a docs page.

    python docs/SCRIPT.py            print the section
    python docs/SCRIPT.py --write    replace the text between the page's START and END markers
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable


def main(description: str, doc: Path, start: str, end: str, make_text: Callable[[], str]) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--write", action="store_true", help=f"replace the generated section of {doc}")
    args = parser.parse_args()
    text = make_text()
    if not args.write:
        print(text)
        return
    page = doc.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(page):
        raise SystemExit(f"{doc} has no {start} ... {end} section")
    doc.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", page))
    print(f"updated {doc}")
