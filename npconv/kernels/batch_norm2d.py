"""Reference batch normalisation over the channels of an NCHW array (Ioffe & Szegedy 2015, Alg. 1).

    y[n, c, i, j] = (x[n, c, i, j] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

In evaluation, mean and var are the running statistics. In training they are the batch's
own, over the m = N * H * W values of each channel, computed in two passes:

    mean[c]    = (1 / m) * sum_{n,i,j} x[n, c, i, j]
    var_sum[c] = sum_{n,i,j} (x[n, c, i, j] - mean[c])^2,     var[c] = var_sum[c] / m

normalising with the biased variance var_sum / m and updating the running statistics with
the unbiased one var_sum / (m - 1), as `torch.nn.BatchNorm2d` does:

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var_sum / (m - 1)

Counts, incremented where the work happens:
    bn_mean_adds        one per value added into a channel's sum
    bn_var_macs         one per squared deviation accumulated into var_sum
    bn_scale_shift      one per output element (x - mean) * scale + bias
    bn_running_updates  one per running statistic blended (2 per channel)

Every constant is made in the arrays' dtype (`x.dtype.type(...)`) so that float32 stays
float32: Numba would widen float32 arithmetic with a Python float or int to float64.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def batch_statistics(x, mean, var, var_sum):
    # x:       (N, C, H, W)
    # mean:    (C,)   overwritten with the batch mean of each channel
    # var:     (C,)   overwritten with the biased variance var_sum / m
    # var_sum: (C,)   overwritten with the sum of squared deviations from that mean
    N, C, H, W = x.shape
    m = x.dtype.type(N * H * W)
    mean_adds = 0
    var_macs = 0
    for c in range(C):
        total = x.dtype.type(0)
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    total += x[n, c, i, j]
                    mean_adds += 1
        mean[c] = total / m
        squares = x.dtype.type(0)
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    deviation = x[n, c, i, j] - mean[c]
                    squares += deviation * deviation
                    var_macs += 1
        var_sum[c] = squares
        var[c] = squares / m
    return mean_adds, var_macs


@njit(cache=True)
def normalize(x, mean, var, weight, bias, eps, y):
    # x:    (N, C, H, W)
    # mean, var, weight, bias: (C,)   eps: a scalar of x's dtype
    # y:    (N, C, H, W)   overwritten
    # y[n, c, i, j] = (x[n, c, i, j] - mean[c]) * (weight[c] / sqrt(var[c] + eps)) + bias[c]
    N, C, H, W = x.shape
    one = x.dtype.type(1)
    scale_shifts = 0
    for c in range(C):
        scale = weight[c] * (one / np.sqrt(var[c] + eps))
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    y[n, c, i, j] = (x[n, c, i, j] - mean[c]) * scale + bias[c]
                    scale_shifts += 1
    return scale_shifts


@njit(cache=True)
def update_running_stats(running_mean, running_var, mean, var_sum, m, momentum):
    # running_mean, running_var: (C,)   updated in place
    # mean, var_sum:             (C,)   the batch's, from batch_statistics
    # m: values per channel (> 1)   momentum: a scalar of the arrays' dtype
    one = mean.dtype.type(1)
    unbiased_divisor = mean.dtype.type(m - 1)
    updates = 0
    for c in range(mean.shape[0]):
        running_mean[c] = (one - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c] = (one - momentum) * running_var[c] + momentum * (var_sum[c] / unbiased_divisor)
        updates += 2
    return updates
