"""Closed-form operation counts of the backward passes of MobileNet's non-convolution layers,
of the cross-entropy loss and of an SGD step.

As in `npconv.formulas.conv` and `npconv.formulas.backward`, these predict what the kernels
count (npconv/kernels/*_backward.py, cross_entropy*.py, sgd.py); the tests hold them
against the counters. Notation: N batch, C channels, H x W input, OH x OW output,
IN / OUT features, K classes; `rows` the number of vectors a Linear layer maps
(the product of its input's leading dimensions).
"""

from __future__ import annotations

from .pooling import adaptive_avg_pool2d_adds, adaptive_avg_pool2d_divides

__all__ = [
    "adaptive_avg_pool2d_backward_adds",
    "adaptive_avg_pool2d_backward_divides",
    "batch_norm2d_backward_counts",
    "cross_entropy_backward_exps",
    "cross_entropy_counts",
    "linear_grad_bias_adds",
    "linear_grad_input_macs",
    "linear_grad_weight_macs",
    "relu6_backward_compares",
    "relu_backward_compares",
    "residual_add_backward_adds",
    "sgd_updates",
]


def batch_norm2d_backward_counts(batch: int, channels: int, height: int, width: int, *, training: bool,
                                 needs_input_grad: bool = True) -> dict[str, int]:
    """Counts of `batch_norm2d_backward` on an (N, C, H, W) input, by kind.

    Derivation: one pass over the N*C*H*W elements accumulates sum(gy) (grad_bias, one add
    each) and sum(gy * x_hat) (grad_weight, one MAC each), recomputing x_hat (one
    normalisation each). The input gradient needs one more operation per element: in
    evaluation a multiply by weight * invstd, in the same pass; in training
    scale * (gy - mean(gy) - x_hat * mean(gy * x_hat)), which needs both sums first, so
    a second pass that recomputes x_hat once more.
    """
    elements = batch * channels * height * width
    second_pass = training and needs_input_grad
    return {
        "bn_normalize": elements * (2 if second_pass else 1),
        "bn_grad_sum_adds": elements,
        "bn_grad_dot_macs": elements,
        "bn_grad_input": elements if needs_input_grad else 0,
    }


def relu_backward_compares(numel: int) -> int:
    """One comparison (x <= 0) per element."""
    return numel


def relu6_backward_compares(numel: int) -> int:
    """Two comparisons (x <= 0, x >= 6) per element."""
    return 2 * numel


def adaptive_avg_pool2d_backward_adds(batch: int, channels: int, in_size, out_size) -> int:
    """Scatter adds of the pooling gradient: N * C * (sum_i |rows(i)|) * (sum_j |cols(j)|).

    Derivation: each output (i, j) adds its share onto every position of its window,
    |rows(i)| * |cols(j)| of them: the forward's pool_adds (`adaptive_avg_pool2d_adds`),
    N * C * H * W when OH divides H and OW divides W, more when windows overlap.
    """
    return adaptive_avg_pool2d_adds(batch, channels, in_size, out_size)


def adaptive_avg_pool2d_backward_divides(batch: int, channels: int, out_size) -> int:
    """One division (gy / |window|) per output element: N * C * OH * OW."""
    return adaptive_avg_pool2d_divides(batch, channels, out_size)


def linear_grad_input_macs(rows: int, in_features: int, out_features: int) -> int:
    """gx[n, k] = sum_o gy[n, o] w[o, k]: rows * IN sums of OUT products = the forward's MACs."""
    return rows * in_features * out_features


def linear_grad_weight_macs(rows: int, in_features: int, out_features: int) -> int:
    """gw[o, k] = sum_n gy[n, o] x[n, k]: OUT * IN sums of `rows` products = the forward's MACs."""
    return rows * in_features * out_features


def linear_grad_bias_adds(rows: int, out_features: int) -> int:
    """gb[o] = sum_n gy[n, o]: one add per element of gy."""
    return rows * out_features


def residual_add_backward_adds(numel: int) -> int:
    """One add per element at the fork of a residual connection, gx = gy + g_branch."""
    return numel


def cross_entropy_counts(batch: int, classes: int) -> dict[str, int]:
    """Counts of the forward loss on (N, K) logits: the running maximum compares each row's
    K - 1 later logits, one exp per logit, one log per row, one add per row into the total."""
    return {
        "loss_compares": batch * max(classes - 1, 0),
        "loss_exps": batch * classes,
        "loss_logs": batch,
        "loss_adds": batch,
    }


def cross_entropy_backward_exps(batch: int, classes: int) -> int:
    """One exp (the softmax probability, recomputed from the saved logsumexp) per logit."""
    return batch * classes


def sgd_updates(parameters: int) -> int:
    """One update param -= lr * grad per parameter element."""
    return parameters
