"""Does a PyTorch model compute what npconv computes? `npconv verify`, as a library.

    report = npconv.verify.verify_model(torch_model, x)      # x: a NumPy float32 input
    report.ok, report.failures

Any model torch.export captures goes through one path (npconv.graph): capture, then every
node checked on PyTorch's own inputs within its rounding bound (float32 and float64), the
counted MACs held against the closed forms and FlopCounterMode/2 per module, and the
parameters against sum(numel). npconv's own models and the tutorial's twins are no special
case. The derivation of each bound is in npconv.bounds and npconv.graph.ops; the check
itself in npconv.graph.verify.
"""

from ..graph.verify import NodeCheck, VerifyReport, verify

__all__ = ["NodeCheck", "VerifyReport", "verify_model"]

verify_model = verify
