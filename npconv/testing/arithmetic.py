"""The arithmetic of an execution path, and each node's local rounding bound under it.

A path computes the captured graph's nodes (or a graph that equals it up to rounding) in some
arithmetic. For every node k whose op rounds, `local_bounds` gives b_k, an element-wise bound
on the *local* error e_k = v̂_k − f_k(v̂_inputs): what node k adds on top of the errors its
inputs already carry (docs/paths.md derives each case):

Each bound is split for the probabilistic criterion (`LocalBound`: the part shared between
output elements, held at its worst, and each element's own roundings, summed in quadrature).

* `FLOAT32`: npconv's own bound of the op in float32 (`npconv.graph.ops.OPS[op].bound`),
  valid for any evaluation order, blocking or fused multiply-add.
* `FLOAT32_BN_FOLDED`: as FLOAT32, and where a BatchNorm reads a convolution that nothing
  else reads, the path may fold the BatchNorm into the convolution's weights (TorchScript's
  optimize_for_inference, torch.compile with freezing, ONNX Runtime's Conv+BatchNormalization
  fusion). The BatchNorm node's bound becomes max(b_BN, b_fold), which covers both the
  folded and the unfolded computation (`folded_batch_norm_bound`).
* `BFLOAT16_AUTOCAST`: torch.autocast(dtype=torch.bfloat16): convolutions and matrix
  products round their inputs, weights and bias to bfloat16 (u = 2⁻⁸) and accumulate in
  float32; every op computes in float32 and may round its output to bfloat16. b_k = the
  float32 bound + γ₂(2⁻⁸)·(|W|⋆|x|) + 2⁻⁸|b| (conv, linear) + 2⁻⁸|v_k| (every rounding op).
* `TF32`: CUDA with TF32 on: both factors of every product of a convolution or matrix
  product rounded to 10 explicit bits (u = 2⁻¹¹): + γ₂(2⁻¹¹)·(|W|⋆|x|).

Exact ops (views, cat, ReLU, clamp, max pooling, ...) have no local bound: their output is a
function of their inputs with no rounding, in every arithmetic here (bfloat16 rounding
commutes with them: it is monotone and keeps 0 and the clamp limits of the networks tested,
multiples of 1/4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import counting
from ..graph.graph import Ref, resolve
from ..graph.ops import OPS
from ..oracle import bounds

__all__ = ["BFLOAT16_AUTOCAST", "FLOAT32", "FLOAT32_BN_FOLDED", "FOLD_SCALE_ROUNDINGS", "FOLD_SHIFT_ROUNDINGS",
           "INDEPENDENT", "TF32", "U_BF16", "U_TF32", "Arithmetic", "LocalBound", "folded_batch_norm_bound",
           "local_bounds", "roundings"]

U_BF16 = 2.0**-8    # bfloat16: 8 significant bits
U_TF32 = 2.0**-11   # TF32: 11 significant bits (10 explicit)

# Roundings on the folded weight w·α̂ and on the folded shift ((b − μ)·α̂ + β), derived in
# `folded_batch_norm_bound`.
FOLD_SCALE_ROUNDINGS = 5
FOLD_SHIFT_ROUNDINGS = 7

CONVOLUTION = "aten.convolution.default"
BATCH_NORM = "aten._native_batch_norm_legit_no_training.default"
PRODUCTS = ("aten.convolution.default", "aten.addmm.default", "aten.mm.default")


@dataclass(frozen=True)
class Arithmetic:
    """How a path computes (module docstring). `fold_batch_norm`: BatchNorm may be folded
    into the preceding convolution; `product_inputs`: unit roundoff of the rounding applied to
    the inputs, weights (and, for bfloat16, bias) of convolutions and matrix products (0:
    none); `rounded_outputs`: unit roundoff of a rounding every op may apply to its output
    (0: none). The ops themselves compute in float32."""

    name: str
    fold_batch_norm: bool = False
    product_inputs: float = 0.0
    round_bias: bool = False
    rounded_outputs: float = 0.0

    def __str__(self) -> str:
        return self.name


FLOAT32 = Arithmetic("float32")
FLOAT32_BN_FOLDED = Arithmetic("float32, BatchNorm folded", fold_batch_norm=True)
BFLOAT16_AUTOCAST = Arithmetic("bfloat16 autocast", product_inputs=U_BF16, round_bias=True, rounded_outputs=U_BF16)
TF32 = Arithmetic("tf32", product_inputs=U_TF32)


def _abs(value):
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return np.abs(value)
    return value


def product_magnitude(node, args, kwargs) -> np.ndarray:
    """|W|⋆|x| (convolution) or |A||B| (addmm, mm), bias left out, in float64."""
    spec = OPS[node.op]
    with counting.paused():
        if node.op == CONVOLUTION:
            x, w, _bias, *rest = args
            return spec.run(np.abs(x), np.abs(w), None, *rest, **kwargs)
        if node.op == "aten.addmm.default":
            _bias, a, b = args[:3]
            return OPS["aten.mm.default"].run(np.abs(a), np.abs(b))
        return spec.run(*[_abs(a) for a in args], **kwargs)


def _bias_of(node, args):
    if node.op == CONVOLUTION:
        return args[2]
    if node.op == "aten.addmm.default":
        return args[0]
    return None


def _conv_terms(node, args) -> int:
    """Terms of each output's inner product, bias not counted."""
    x, w, _b, _stride, _padding, _dilation, transposed, _output_padding, groups = args
    kh, kw = w.shape[2], w.shape[3]
    return (w.shape[0] // groups if transposed else w.shape[1]) * kh * kw


def folded_batch_norm_bound(conv_node, conv_args, bn_args, dtype=np.float32, *, parts: bool = False):
    """Bound on |ŷ − y| where y = BN(conv(x, w) + b) is computed as one convolution with
    folded weights w' = w·α and bias b' = (b − μ)·α + β, α = γ / sqrt(σ² + ε):

        |ŷ − y| <= γ_{n+5}(u)·|α|(|w|⋆|x|) + γ_{n+7}(u)·(|α|(|b| + |μ|) + |β|) + n·tiny

    n = terms of the convolution's inner product + 1 (the folded bias). Derivation
    (Higham, 2nd ed., Lemma 3.1 and 3.3): torch.nn.utils.fusion.fuse_conv_bn_weights (used by
    TorchScript's frozen folding and Inductor's freezing) computes α̂ = γ·rsqrt(σ² + ε),
    rsqrt as 1/sqrt: the add (whose factor stays one under the square root), the sqrt, the
    reciprocal and the product with γ give α̂ = α(1 + θ₄); ŵ' = w·α̂ adds one: θ₅
    (FOLD_SCALE_ROUNDINGS). b̂' = ((b − μ)·rsqrt)·γ + β: the subtraction, rsqrt's three, two
    products and the add: θ₇ on the b and μ terms (FOLD_SHIFT_ROUNDINGS), one on β. ONNX
    Runtime's fusion (scale = γ / sqrt(σ² + ε): three; W·scale; (B − mean)·scale + β)
    has fewer. The folded convolution then rounds its n-term inner product:
    ŷ = conv(x, ŵ') + b̂' + δ, |δ| <= γ_n(|ŵ'|⋆|x| + |b̂'|), and
    γ_n(1 + γ_a) + γ_a <= γ_{n+a} gives the two terms.

    parts=True also returns the folding's own share γ₅·|α|(|w|⋆|x|) + γ₇·(|α|(|b| + |μ|) + |β|)
    (shared by a channel's outputs), the accumulation's γ_n(1 + γ₇)·(|ŵ'|⋆|x| + |b̂'|) bound
    (each output's own) and n."""
    bn_x, weight, bias, mean, var, _momentum, eps = bn_args
    u = bounds.unit_roundoff(dtype)
    channels = np.shape(var)[0]
    gamma_ = np.ones(channels) if weight is None else np.asarray(weight, np.float64)
    beta = np.zeros(channels) if bias is None else np.asarray(bias, np.float64)
    alpha = np.abs(gamma_ / np.sqrt(np.asarray(var, np.float64) + eps)) * (1 + 8 * bounds.U64)
    shape = (1, -1) + (1,) * (np.ndim(bn_x) - 2)
    n = _conv_terms(conv_node, conv_args) + 1
    conv_bias = conv_args[2]
    b = np.zeros(channels) if conv_bias is None else np.abs(np.asarray(conv_bias, np.float64))
    products = product_magnitude(conv_node, conv_args, {})
    shift = alpha * (b + np.abs(np.asarray(mean, np.float64))) + np.abs(beta)
    scaled, shift = alpha.reshape(shape) * products, shift.reshape(shape)
    total = (bounds.gamma(n + FOLD_SCALE_ROUNDINGS, u) * scaled + bounds.gamma(n + FOLD_SHIFT_ROUNDINGS, u) * shift
             + n * bounds.tiny(dtype))
    if not parts:
        return total
    # the folding's roundings (shared by every output of a channel) and the folded
    # convolution's own accumulation (each output's own), for the probabilistic criterion
    folding = bounds.gamma(FOLD_SCALE_ROUNDINGS, u) * scaled + bounds.gamma(FOLD_SHIFT_ROUNDINGS, u) * shift
    accumulation = bounds.gamma(n, u) * (scaled + shift) * (1 + bounds.gamma(FOLD_SHIFT_ROUNDINGS, u)) \
        + n * bounds.tiny(dtype)
    return total, folding, accumulation, n


def _primary(value):
    """The first output of a multi-output node (BatchNorm's normalised output)."""
    return value[0] if isinstance(value, (tuple, list)) else value


@dataclass
class LocalBound:
    """Node k's local error bound, element by element (float64 arrays of its output's shape,
    or 0.0):

    worst     b_k: |e_k| <= b_k, every rounding at its worst (the first-order criterion)
    shared    the part of b_k from roundings that are shared between output elements or not
              modelled as random (a BatchNorm's per-channel α̂, a folded weight, an input or a
              weight rounded to bfloat16 or TF32, exp, division): held at its worst by the
              probabilistic criterion too
    variance  u²·Σ a_j² over the roundings of each element that are its own (the rounding of
              each product and partial sum of a convolution's or matrix product's inner
              product; of an add, subtract or multiply; of an output rounded to bfloat16),
              a_j the coefficient of rounding j in e_k: what the probabilistic criterion
              sums in quadrature (npconv.testing.oracle)."""

    worst: object
    shared: object
    variance: object


INDEPENDENT = ("aten.convolution.default", "aten.addmm.default", "aten.mm.default", "aten.add.Tensor",
               "aten.sub.Tensor", "aten.mul.Tensor")


def roundings(node, args) -> int:
    """r such that node's float32 bound is γ_r(u)·m (+ r·tiny) and each element's own
    roundings have Σ a_j² <= r·m²: the inner product's terms (+1 for a bias) for convolutions
    and matrix products (n products and n − 1 partial sums, each coefficient at most
    m = Σ|x_i||w_i| (+|b|): Σ a_j² <= n·m², Higham and Mary 2019, §3); 1 for add, subtract,
    multiply."""
    if node.op == CONVOLUTION:
        return _conv_terms(node, args) + (0 if args[2] is None else 1)
    if node.op == "aten.addmm.default":
        return int(np.shape(args[1])[1]) + 1
    if node.op == "aten.mm.default":
        return int(np.shape(args[0])[1])
    return 1


def local_bounds(graph, values: dict, arithmetic: Arithmetic, *, until: int | None = None) -> dict:
    """node name -> LocalBound (shapes of the node's output; for a node with several outputs,
    of its first) for every node of `graph` whose op rounds, under `arithmetic`, evaluated on
    the exact float64 `values` (npconv's trace: every input, parameter and node output by
    name). `until`: only the first `until` nodes."""
    users: dict[str, int] = {}
    for node in graph.nodes:
        for ref in _refs(node.args) + _refs(node.kwargs):
            users[ref] = users.get(ref, 0) + 1
    by_name = {node.name: node for node in graph.nodes}
    out = {}
    with counting.paused():
        for node in graph.nodes[:until]:
            spec = OPS[node.op]
            if spec.bound is None:
                continue
            args, kwargs = resolve(node.args, values), resolve(node.kwargs, values)
            value = np.asarray(_primary(values[node.name]), np.float64)
            b = np.broadcast_to(np.asarray(_primary(spec.bound(np.float32, *args, **kwargs)), np.float64), value.shape)
            if node.op in INDEPENDENT:
                worst, shared, variance = b, 0.0, b * b / roundings(node, args)
            else:
                worst, shared, variance = b, b, 0.0
            if arithmetic.product_inputs and node.op in PRODUCTS:
                extra = bounds.gamma(2, arithmetic.product_inputs) * product_magnitude(node, args, kwargs)
                bias = _bias_of(node, args)
                if arithmetic.round_bias and bias is not None:
                    extra = extra + arithmetic.product_inputs * np.abs(_bias_shape(node, bias, value))
                worst, shared = worst + extra, shared + extra
            if arithmetic.fold_batch_norm and node.op == BATCH_NORM:
                source = node.args[0]
                producer = by_name.get(source.name) if isinstance(source, Ref) else None
                if producer is not None and producer.op == CONVOLUTION and users.get(producer.name) == 1:
                    conv_args = resolve(producer.args, values)
                    folded, folding, accumulation, n = folded_batch_norm_bound(producer, conv_args, args, parts=True)
                    worst = np.maximum(worst, folded)
                    shared = shared + folding
                    variance = variance + accumulation * accumulation / n
            if arithmetic.rounded_outputs:
                rounding = arithmetic.rounded_outputs * np.abs(value)
                worst = worst + rounding
                variance = variance + rounding * rounding
            out[node.name] = LocalBound(np.asarray(worst, np.float64), shared, variance)
    return out


def _bias_shape(node, bias, value):
    bias = np.asarray(bias, np.float64)
    if node.op == CONVOLUTION:
        return bias.reshape((1, -1) + (1,) * (value.ndim - 2))
    return bias


def _refs(value) -> list:
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    return []
