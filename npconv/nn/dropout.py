"""`Dropout`."""

from __future__ import annotations

import copy

import numpy as np

from ..functional import layers as ops
from ..functional.layer_backward import dropout_backward
from . import init
from .module import Module, is_grad_enabled


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014), `torch.nn.Dropout(p=0.5, inplace=False)`.

    Evaluation mode: the identity (the input array itself is returned).
    Training mode: each element is zeroed with probability p and the others are scaled by
    1 / (1 - p), with a keep mask drawn from this layer's own NumPy generator (seeded from
    `rng` at construction), so runs are reproducible but the mask is not PyTorch's.
    `inplace` is accepted and ignored.

    Backward: the identity in evaluation; in training gy / (1 - p) where the forward kept an
    element and 0 where it dropped one, from the keep-mask a recorded forward keeps.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace
        self.generator = init.spawn(rng)  # seeded by one draw from rng (none inside init.dry())

    def forward(self, input):
        replay = copy.deepcopy(self.generator) if self.training and is_grad_enabled() else None
        output = ops.dropout(input, self.p, self.training, self.generator)
        # the mask ops.dropout drew: element k kept where the generator's k-th uniform draw is >= p
        keep = None if replay is None else replay.random(np.size(input)).reshape(np.shape(input)) >= self.p
        self.save_for_backward(keep)
        return output

    def backward(self, grad_output):
        (keep,) = self.saved_for_backward()
        if not self.needs_input_grad:
            return None
        return grad_output if keep is None else dropout_backward(grad_output, keep, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
