"""Gradients of batch normalisation over the channels of an NCHW array (Ioffe & Szegedy 2015,
Sec. 3, the backward equations below Alg. 1), in training and in evaluation mode.

The forward, per channel c over its m = N * H * W values (npconv/kernels/batch_norm2d.py):

    x_hat = (x - mean[c]) * invstd[c],     invstd[c] = 1 / sqrt(var[c] + eps)
    y     = weight[c] * x_hat + bias[c]

Evaluation: mean and var are the running statistics, constants. So

    grad_bias[c]   = sum_{n,i,j} gy                       (y moves one-for-one with bias)
    grad_weight[c] = sum_{n,i,j} gy * x_hat               (and with weight, by x_hat)
    gx             = gy * weight[c] * invstd[c]           (a per-channel scale)

Training: mean and var are the batch's (var biased, the sum of squares over m), so every
x of the channel moves them. With g = gy * weight = dL/dx_hat and
dmean/dx = 1/m, dvar/dx = 2 (x - mean) / m, the chain rule gives (Ioffe & Szegedy's
three terms collected)

    gx = weight[c] * invstd[c] * (gy - mean(gy) - x_hat * mean(gy * x_hat))

with mean(.) over the channel's m values: the gradient is gy with its channel mean and
its component along x_hat projected out, then scaled. grad_weight and grad_bias are as
in evaluation, with the batch's statistics. The two channel sums are exactly
grad_bias and grad_weight: one pass computes them, a second computes gx.

mean and var are what the forward used (PyTorch saves them as save_mean / save_invstd);
the kernel recomputes x_hat from them rather than storing an N*C*H*W array.

Counts, incremented where the work happens (per element of the channel, per pass):
    bn_normalize     x_hat = (x - mean) * invstd recomputed: one subtract, one multiply
    bn_grad_sum_adds one per gy added into sum(gy)                    (grad_bias)
    bn_grad_dot_macs one per gy * x_hat accumulated into sum(gy*x_hat) (grad_weight)
    bn_grad_input    one per gx element: training two subtracts and two multiplies
                     (scale * (gy - mean_gy - x_hat * mean_gy_xhat)), evaluation one
                     multiply (gy * scale)
and per channel (not counted: C of them against N*C*H*W) one sqrt, divisions by m.

Every constant is made in the arrays' dtype (`x.dtype.type(...)`), so float32 stays float32.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def batch_norm2d_backward_train(gy, x, mean, var, weight, eps, needs_input_grad, gx, grad_weight, grad_bias):
    # gy, x:      (N, C, H, W)   x the forward's input, gy = dL/dy
    # mean, var:  (C,)           the batch mean and biased variance the forward normalised with
    # weight:     (C,)           gamma (ones for a layer without affine parameters)
    # eps:        a scalar of x's dtype
    # gx:         (N, C, H, W)   overwritten when needs_input_grad
    # grad_weight, grad_bias: (C,) overwritten
    N, C, H, W = x.shape
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    m = x.dtype.type(N * H * W)
    normalize = 0
    sum_adds = 0
    dot_macs = 0
    input_grads = 0
    for c in range(C):
        invstd = one / np.sqrt(var[c] + eps)
        sum_gy = zero
        sum_gy_xhat = zero
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    x_hat = (x[n, c, i, j] - mean[c]) * invstd
                    normalize += 1
                    sum_gy += gy[n, c, i, j]
                    sum_adds += 1
                    sum_gy_xhat += gy[n, c, i, j] * x_hat
                    dot_macs += 1
        grad_bias[c] = sum_gy
        grad_weight[c] = sum_gy_xhat
        if needs_input_grad:
            mean_gy = sum_gy / m
            mean_gy_xhat = sum_gy_xhat / m
            scale = weight[c] * invstd
            for n in range(N):
                for i in range(H):
                    for j in range(W):
                        x_hat = (x[n, c, i, j] - mean[c]) * invstd
                        normalize += 1
                        gx[n, c, i, j] = scale * (gy[n, c, i, j] - mean_gy - x_hat * mean_gy_xhat)
                        input_grads += 1
    return normalize, sum_adds, dot_macs, input_grads


@njit(cache=True)
def batch_norm2d_backward_eval(gy, x, running_mean, running_var, weight, eps, needs_input_grad, gx, grad_weight,
                               grad_bias):
    # gy, x:      (N, C, H, W)
    # running_mean, running_var: (C,)   the constants the forward normalised with
    # weight:     (C,)           gamma (ones for a layer without affine parameters)
    # eps:        a scalar of x's dtype
    # gx:         (N, C, H, W)   overwritten when needs_input_grad
    # grad_weight, grad_bias: (C,) overwritten
    N, C, H, W = x.shape
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    normalize = 0
    sum_adds = 0
    dot_macs = 0
    input_grads = 0
    for c in range(C):
        invstd = one / np.sqrt(running_var[c] + eps)
        scale = weight[c] * invstd
        sum_gy = zero
        sum_gy_xhat = zero
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    x_hat = (x[n, c, i, j] - running_mean[c]) * invstd
                    normalize += 1
                    sum_gy += gy[n, c, i, j]
                    sum_adds += 1
                    sum_gy_xhat += gy[n, c, i, j] * x_hat
                    dot_macs += 1
                    if needs_input_grad:
                        gx[n, c, i, j] = gy[n, c, i, j] * scale
                        input_grads += 1
        grad_bias[c] = sum_gy
        grad_weight[c] = sum_gy_xhat
    return normalize, sum_adds, dot_macs, input_grads
