"""`Dropout`."""

from __future__ import annotations

import numpy as np

from .. import ops
from . import init
from .module import Module


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014), `torch.nn.Dropout(p=0.5, inplace=False)`.

    Evaluation mode: the identity (the input array itself is returned).
    Training mode: each element is zeroed with probability p and the others are scaled by
    1 / (1 - p), with a keep mask drawn from this layer's own NumPy generator (seeded from
    `rng` at construction), so runs are reproducible but the mask is not PyTorch's.
    `inplace` is accepted and ignored.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace
        self.generator = np.random.default_rng(init.generator(rng).integers(2**63))

    def forward(self, input):
        return ops.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
