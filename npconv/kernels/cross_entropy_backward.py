"""Gradient of the batch-mean cross-entropy (cross_entropy.py) with respect to the logits.

From loss = (1/N) sum_n (logsumexp(z[n, :]) - z[n, t_n]) and
d logsumexp(z[n, :]) / dz[n, k] = exp(z[n, k] - logsumexp(z[n, :])) = softmax(z[n, :])[k]:

    gz[n, k] = (grad_loss / N) * ( softmax(z[n, :])[k] - [k == t_n] )

the predicted probabilities minus the one-hot target, scaled by the loss's own gradient
(1 for a loss that is the end of the graph) over the batch size. The softmax is
recomputed from the forward's logsumexp, one exp per logit.

Counts: loss_grad_exps, one per logit (the exp, the subtraction of the one-hot where
k == t_n, and the multiplication by grad_loss / N).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def cross_entropy_backward(z, target, log_sum_exp, grad_loss, gz):
    # z:           (N, K)   logits
    # target:      (N,)     int64 class indices in [0, K)
    # log_sum_exp: (N,)     from the forward
    # grad_loss:   a scalar of z's dtype, dL/dloss
    # gz:          (N, K)   overwritten with dL/dz
    N, K = z.shape
    one = z.dtype.type(1)
    scale = grad_loss / z.dtype.type(N)
    exps = 0
    for n in range(N):
        for k in range(K):
            probability = np.exp(z[n, k] - log_sum_exp[n])
            exps += 1
            if k == target[n]:
                probability -= one
            gz[n, k] = probability * scale
    return exps
