"""Any PyTorch CNN on npconv's kernels: capture with torch.export, run, count, verify.

    graph = npconv.capture(torch_model, x)            # capture.py: torch.export -> core ATen
    y = graph(x)                                       # graph.py: every node on npconv's kernels
    report = npconv.graph.verify.verify(torch_model, x)   # verify.py: node by node, within bounds

ops.py lists the ATen ops npconv runs, each with its kernel, bound and closed-form counts.
Importing this package does not import torch.
"""

from .capture import CaptureError, UnsupportedOpsError, capture
from .graph import Graph, Node, Ref
from .ops import OPS

__all__ = ["OPS", "CaptureError", "Graph", "Node", "Ref", "UnsupportedOpsError", "capture"]
