"""npconv: 2-D convolution and MobileNet from first principles.

Readable NumPy/Numba reference kernels that count the multiply-accumulates they execute,
an oracle for property-testing PyTorch, and closed-form formulas held against the counts.

    import numpy as np, npconv
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8), dtype=np.float32)
    w = np.random.default_rng(1).standard_normal((16, 3, 3, 3), dtype=np.float32)
    with npconv.count() as tally:
        y = npconv.conv2d(x, w, padding=1)
    tally.macs == npconv.formulas.conv2d_macs(1, 3, 16, 8, 3)   # True

Any PyTorch CNN: `graph = npconv.capture(torch_model, x)` captures it with torch.export and
runs every node on npconv's kernels (npconv.graph); `npconv.verify.verify_model` checks it
node by node against PyTorch.

Importing npconv does not import torch; `npconv.strategies` imports hypothesis.
"""

from . import _numba_cache, _threads

_numba_cache.configure()  # before any kernel is compiled: the cache follows the kernels' sources
_threads.configure()  # before Numba's thread pool starts: a layer that does not spin (npconv/_threads.py)

from . import engine, models, nn, train  # noqa: E402
from .cost import formulas
from .cost.formulas import backward as formulas_backward
from .cost.formulas import layers as formulas_layer_backward
from .functional import layer_backward
from .functional import layers as ops
from .functional.backward import conv2d_backward, conv_transpose2d_backward
from .convert import from_torch
from .graph import capture
from .counting import Tally, count
from .functional.conv import conv2d, depthwise_conv2d, depthwise_separable_conv2d, pointwise_conv2d
from .functional.conv_nd import conv1d, conv1d_backward, conv3d  # one and three axes: docs/semantics.md
from .functional.conv_nd import conv_transpose1d, conv_transpose1d_backward, conv_transpose3d
from .functional.pad import pad
from .geometry import Conv2dGeometry, conv2d_geometry
from .cost.summary import summary
from .functional.conv_transpose import ConvTranspose2dGeometry, conv_transpose2d, conv_transpose2d_geometry
from .oracle.tolerance import assert_close_to_reference, assert_within_bound, conv2d_error_bound


def _keep_former_paths() -> None:
    """The modules moved into the pipeline's folders keep their former import paths
    (`import npconv.ops`, `from npconv.tolerance import ...`): each name is registered as an
    alias of the same module object."""
    import importlib
    import sys

    for old, new in _FORMER_PATHS.items():
        sys.modules[f"{__name__}.{old}"] = importlib.import_module(f"{__name__}.{new}")


_FORMER_PATHS = {
    "transpose": "functional.conv_transpose",
    "ops": "functional.layers",
    "elementwise": "functional.elementwise",
    "pooling": "functional.pooling",
    "channels": "functional.channels",
    "backward": "functional.backward",
    "layer_backward": "functional.layer_backward",
    "formulas": "cost.formulas",
    "formulas_backward": "cost.formulas.backward",
    "formulas_layer_backward": "cost.formulas.layers",
    "summary": "cost.summary",
    "cost_backward": "cost.backward",
    "bounds": "oracle.bounds",
    "tolerance": "oracle.tolerance",
    "verify": "oracle.verify",
    "twins": "oracle.twins",
    "twins_shufflenet": "oracle.twins_shufflenet",
}
_keep_former_paths()

__version__ = "0.1.0"

__all__ = [
    "Conv2dGeometry",
    "ConvTranspose2dGeometry",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_geometry",
    "formulas_backward",
    "formulas_layer_backward",
    "layer_backward",
    "train",
    "from_torch",
    "models",
    "nn",
    "ops",
    "Tally",
    "capture",
    "assert_close_to_reference",
    "assert_within_bound",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_error_bound",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose3d",
    "conv2d_geometry",
    "count",
    "engine",
    "depthwise_conv2d",
    "depthwise_separable_conv2d",
    "formulas",
    "pointwise_conv2d",
    "summary",
]
