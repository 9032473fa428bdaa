"""Closed-form sizes, parameter counts and operation counts: what npconv's kernels count,
predicted from shapes and arguments alone.

These live apart from the kernels on purpose: the kernels count what they execute, the
functions here predict it, and the tests hold one against the other. Conventions (see
docs/semantics.md): a MAC is one multiply-accumulate `y += x * w` of a dense kernel over
the padded input, so taps that land in the padding border count; bias adds are apart;
FLOPs = 2 * MACs.

Every name is importable from here (`npconv.formulas.conv2d_macs`); the derivations are
grouped by subject, each submodule importing only `_common` and the ones before it:

    conv         the convolution forward: sizes, parameters, MACs, padding MACs
    backward     transposed convolution, and the backward of conv2d / conv_transpose2d
    pooling      max / average pooling, means, and the windows of adaptive pooling
    elementwise  the element-wise ops of the graph evaluator
    layers       the backward of MobileNet's other layers, the loss and an SGD step

`npconv.formulas_backward` and `npconv.formulas_layer_backward` are the former homes of
`backward` and `layers`, kept as aliases.
"""

from __future__ import annotations

from . import backward
from . import conv
from . import elementwise
from . import layers
from . import pooling
from .backward import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403

__all__ = conv.__all__ + backward.__all__ + pooling.__all__ + elementwise.__all__ + layers.__all__
