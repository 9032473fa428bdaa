"""Cross-entropy of logits against class indices, averaged over the batch (PyTorch's
`F.cross_entropy(z, target)`, reduction='mean', no weights, no label smoothing):

    loss = (1 / N) * sum_n ( logsumexp(z[n, :]) - z[n, target[n]] )
    logsumexp(z[n, :]) = largest + log( sum_k exp(z[n, k] - largest) ),   largest = max_k z[n, k]

Subtracting the row's largest logit before exponentiating is exact in real arithmetic and
keeps every exp(.) in (0, 1], so no finite logits overflow (the usual log-sum-exp shift).
logsumexp per row is kept for the backward (PyTorch keeps log_softmax's output).

Counts, incremented where the work happens:
    loss_compares  one per logit after the first of its row (the running maximum)
    loss_exps      one per logit, exp(z - largest), with the add into the row's sum
    loss_logs      one per row
    loss_adds      one per row: its loss added into the batch total
"""

import numpy as np
from numba import njit


@njit(cache=True)
def cross_entropy(z, target, log_sum_exp, losses):
    # z:           (N, K)   logits
    # target:      (N,)     int64 class indices, each in [0, K) (checked by the caller)
    # log_sum_exp: (N,)     overwritten with logsumexp(z[n, :])
    # losses:      (N,)     overwritten with each row's loss
    # returns the batch mean of the losses (0 / 0 = NaN for an empty batch, as PyTorch) and the counts
    N, K = z.shape
    zero = z.dtype.type(0)
    compares = 0
    exps = 0
    logs = 0
    adds = 0
    total = zero
    for n in range(N):
        largest = z[n, 0]
        for k in range(1, K):
            if z[n, k] > largest:
                largest = z[n, k]
            compares += 1
        sum_exp = zero
        for k in range(K):
            sum_exp += np.exp(z[n, k] - largest)
            exps += 1
        log_sum_exp[n] = largest + np.log(sum_exp)
        logs += 1
        losses[n] = log_sum_exp[n] - z[n, target[n]]
        total += losses[n]
        adds += 1
    return total / z.dtype.type(N), compares, exps, logs, adds
