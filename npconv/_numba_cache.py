"""Numba's on-disk cache, keyed by the source of every file a kernel can call into.

Numba's `cache=True` keys a compiled kernel by its own file's timestamp only: a kernel whose
callee lives in another file (npconv/fast/planes.py calls npconv/kernels/pad2d.py's
`source_index`) keeps running the old callee after that file is edited, until the cache is
cleared by hand. An oracle that tests old code is no oracle, so npconv points Numba's cache
at a directory named by a hash of all of npconv/kernels/*.py and npconv/fast/*.py: any edit
to any of them selects a fresh, empty cache, and every kernel is compiled from the sources
as they are.

The directory: $NPCONV_NUMBA_CACHE, else $XDG_CACHE_HOME/npconv/numba (~/.cache/...), with
one subdirectory per source hash. A NUMBA_CACHE_DIR the user set is kept as the parent. If
no such directory can be written, Numba's default (__pycache__ beside each file) stays in
use, with the old hazard. This sets `numba.config.CACHE_DIR` for the process, so other
libraries' cached kernels compiled after importing npconv land there too (harmlessly).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_DIRS = ("kernels", "fast")


def source_hash() -> str:
    """sha256 of the kernel sources (file names and contents), first 16 hex digits."""
    digest = hashlib.sha256()
    for folder in _KERNEL_DIRS:
        for path in sorted((_PACKAGE / folder).glob("*.py")):
            digest.update(f"{folder}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("NPCONV_NUMBA_CACHE") or os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "npconv" / "numba"
    return Path(base) / source_hash()


def configure() -> Path | None:
    """Point numba.config.CACHE_DIR at cache_dir() (module docstring); the directory, or None
    when it cannot be written."""
    import numba

    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return None
    numba.config.CACHE_DIR = str(path)
    return path
