"""Property-testing PyTorch's execution paths against one oracle (docs/paths.md).

    from npconv.testing import check_paths, assert_paths

    report = check_paths(model, x, paths=["eager", "channels_last", "torchscript_trace",
                                          "compile", "bf16_autocast", "onnxruntime"])
    print(report)                     # per path: pass/fail, |c·(y_path − y)| / bound, where
    assert_paths(model, x)            # the cheap paths; AssertionError with the report

Every path's output is held to npconv's float64 evaluation of the captured graph within a
bound derived for that path's arithmetic (`arithmetic`: float32; BatchNorm folded into the
convolution; bfloat16 autocast; TF32): a first-order running-error bound Σ_k |∂(c·y)/∂v_k|·b_k
over the graph's nodes for a few directions c, rigorous to first order, and a sharper
probabilistic one that sums each element's own roundings in quadrature (Higham and Mary 2019),
the default criterion (`oracle`). A failing path is localised to the first node whose output,
computed by the same path on a prefix of the graph (`prefix`), leaves its bound
(`check.localise`). A path of your own is any callable `f(module)` or `f(module, example)`
returning something callable (`paths.as_path`); `planted_fault` makes a faulty one.

Importing this package does not import torch.
"""

from .arithmetic import BFLOAT16_AUTOCAST, FLOAT32, FLOAT32_BN_FOLDED, TF32, Arithmetic
from .check import Localisation, PathResult, PathsReport, assert_paths, check_paths, localise
from .oracle import Comparison, Oracle
from .paths import ALL, CHEAP, PATHS, Path, as_path, planted_fault
from .prefix import Prefixes

__all__ = [
    "ALL",
    "Arithmetic",
    "BFLOAT16_AUTOCAST",
    "CHEAP",
    "Comparison",
    "FLOAT32",
    "FLOAT32_BN_FOLDED",
    "Localisation",
    "Oracle",
    "PATHS",
    "Path",
    "PathResult",
    "PathsReport",
    "Prefixes",
    "TF32",
    "as_path",
    "assert_paths",
    "check_paths",
    "localise",
    "planted_fault",
]
