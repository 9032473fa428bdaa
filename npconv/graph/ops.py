"""The ATen ops an npconv graph can run: each one's npconv implementation, rounding bound,
closed-form counts and the name a user knows it by.

One entry per ATen overload in `OPS`:

    run(*args, **kwargs)            npconv's evaluation on NumPy arrays (the reference kernels
                                    of npconv.kernels through their checked wrappers), in the
                                    input's dtype; a tuple for ops with several outputs
    bound(dtype, *args, **kwargs)   one-sided rounding bound of an implementation working in
                                    `dtype` on exact float64 `args` (npconv.bounds); None for
                                    an exact op, which must match bit for bit
    formula(out, *args, **kwargs)   the counts `run` records, from shapes and arguments alone
                                    (npconv.formulas), tested against the counts
    user                            the Python-level name ("nn.Conv2d / F.conv2d")

Counting categories (npconv.counting): macs, padding_macs, bias_adds and inside_macs of
convolutions; macs and bias_adds of matrix products (addmm, mm); bn_scale_shift;
activation_compares (relu, hardtanh, clamp); sigmoid_exps; adds, subs, muls, divides
(element-wise arithmetic, one per output element); pool_adds, pool_divides (average pools
and means), pool_compares (max pools); copies (clone, cat, pad: one per element written).
View ops (view, permute, transpose, split, getitem, squeeze, expand, slice) move nothing and
count nothing.

The set covers the core ATen ops (torch.export's `run_decompositions()`) of the pytorchcv
models in the tests and of npconv's own; anything else is named by
`unsupported_ops` before any work is done.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import counting
from ..oracle import bounds
from ..functional import elementwise
from ..cost import formulas
from ..functional import layers as ops
from ..functional import pooling
from ..functional.conv import conv2d
from ..functional.conv_nd import conv1d, conv3d, conv_transpose1d, conv_transpose3d
from ..geometry import conv2d_geometry, conv_nd_geometry, conv_transpose_nd_geometry
from ..functional.pad import pad as _npconv_pad
from ..functional.conv_transpose import conv_transpose2d, conv_transpose2d_geometry
from .graph import Node, resolve

__all__ = ["OPS", "OpSpec", "run_node", "unsupported_ops"]


@dataclass(frozen=True)
class OpSpec:
    """One ATen op (module docstring)."""

    run: Callable
    bound: Callable | None
    formula: Callable
    user: str
    view: bool = False    # only re-indexes its input: moves no data


def _numel(a) -> int:
    return int(np.asarray(a).size)


def _no_counts(out, *args, **kwargs) -> dict:
    return {}


def _view(fn, user: str) -> OpSpec:
    """An op that only re-indexes its input: exact, counts nothing."""
    return OpSpec(fn, None, _no_counts, user, view=True)


def _copies(out, *args, **kwargs) -> dict:
    if isinstance(out, (tuple, list)):
        return {"copies": sum(_numel(o) for o in out)}
    return {"copies": _numel(out)}


def _copy(fn, user: str, op: str) -> OpSpec:
    """An op that writes a new array of values it copies: exact, counts `copies`."""
    def run(*args, **kwargs):
        out = fn(*args, **kwargs)
        counting.record(op, **_copies(out))
        return out
    return OpSpec(run, None, _copies, user)


# ----------------------------------------------------------------------------- convolution


def _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """aten.convolution: conv1d / conv2d / conv3d (or their transposed twins) by the weight's
    rank, 3, 4 or 5."""
    dims = np.ndim(w) - 2
    if dims not in _CONVOLUTIONS:
        raise NotImplementedError(f"convolution with a {dims}-d kernel: npconv has 1-d, 2-d and 3-d convolution")
    conv, conv_transpose = _CONVOLUTIONS[dims]
    if transposed:
        return conv_transpose(x, w, b, tuple(stride), tuple(padding), tuple(output_padding), groups, tuple(dilation))
    return conv(x, w, b, tuple(stride), tuple(padding), tuple(dilation), groups)


_CONVOLUTIONS = {1: (conv1d, conv_transpose1d), 2: (conv2d, conv_transpose2d), 3: (conv3d, conv_transpose3d)}


def _convolution_bound(dtype, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """γ_n(u)·(|W| ⋆ |x| + |b|) + n·tiny, n terms per output (+1 for the bias): Higham eq. 3.5
    for any evaluation tree of an inner product; GEMM + col2im for a transposed convolution is one.
    n = (C_in/g)·prod(kernel) for any rank (a transposed convolution: at most one input
    position per tap and axis reaches an output, so the same count with its own C_in/g)."""
    kernel_taps = int(np.prod(np.shape(w)[2:]))
    n = (w.shape[0] // groups if transposed else w.shape[1]) * kernel_taps + (0 if b is None else 1)
    with counting.paused():
        magnitude = _convolution(np.abs(x), np.abs(w), None if b is None else np.abs(b), stride, padding, dilation,
                                 transposed, output_padding, groups)
    return bounds.inner_product_bound(magnitude, n, dtype)


def _convolution_formula(out, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    bias_shape = None if b is None else np.shape(b)
    dims = np.ndim(w) - 2
    if dims != 2:
        return _convolution_nd_formula(dims, out, x, w, bias_shape, stride, padding, dilation, transposed,
                                       output_padding, groups)
    if transposed:
        g = conv_transpose2d_geometry(np.shape(x), np.shape(w), bias_shape, tuple(stride), tuple(padding),
                                      tuple(output_padding), groups, tuple(dilation))
        batch = 1 if np.ndim(x) == 3 else np.shape(x)[0]
        in_channels, h, wd = np.shape(x)[-3:]
        out_channels, oh, ow = np.shape(out)[-3:]
        return {"macs": formulas.conv_transpose2d_macs(batch, in_channels, out_channels, (h, wd), np.shape(w)[2:],
                                                      groups),
                "inside_macs": formulas.conv_transpose2d_inside_macs(g),
                "bias_adds": batch * out_channels * oh * ow if b is not None else 0}
    g = conv2d_geometry(np.shape(x), np.shape(w), bias_shape, tuple(stride), tuple(padding), tuple(dilation), groups)
    return {"macs": formulas.conv2d_macs(g.batch, g.in_channels, g.out_channels, (g.out_h, g.out_w),
                                         (g.kernel_h, g.kernel_w), g.groups),
            "padding_macs": formulas.conv2d_padding_macs(g),
            "bias_adds": formulas.conv2d_bias_adds(g.batch, g.out_channels, (g.out_h, g.out_w), g.has_bias)}


def _convolution_nd_formula(dims, out, x, w, bias_shape, stride, padding, dilation, transposed, output_padding,
                            groups):
    """The closed forms of a 1-d or 3-d aten.convolution (npconv.formulas.conv1d_* / conv3d_*)."""
    name = f"conv{dims}d"
    if transposed:
        g = conv_transpose_nd_geometry(dims, np.shape(x), np.shape(w), bias_shape, tuple(stride), tuple(padding),
                                       tuple(output_padding), groups, tuple(dilation))
        return {"macs": getattr(formulas, f"conv_transpose{dims}d_macs")(g.batch, g.in_channels, g.out_channels,
                                                                        g.size, g.kernel, g.groups),
                "inside_macs": getattr(formulas, f"conv_transpose{dims}d_inside_macs")(g),
                "bias_adds": getattr(formulas, f"{name}_bias_adds")(g.batch, g.out_channels, g.out_size, g.has_bias)}
    g = conv_nd_geometry(dims, np.shape(x), np.shape(w), bias_shape, tuple(stride), tuple(padding), tuple(dilation),
                         groups)
    return {"macs": getattr(formulas, f"{name}_macs")(g.batch, g.in_channels, g.out_channels, g.out_size, g.kernel,
                                                      g.groups),
            "padding_macs": getattr(formulas, f"{name}_padding_macs")(g),
            "bias_adds": getattr(formulas, f"{name}_bias_adds")(g.batch, g.out_channels, g.out_size, g.has_bias)}


# ----------------------------------------------------------------------------- matrix products


def _addmm(bias, mat1, mat2, beta=1, alpha=1):
    if beta != 1 or alpha != 1:
        raise NotImplementedError(f"addmm with beta={beta}, alpha={alpha}: npconv runs beta = alpha = 1 (nn.Linear)")
    return ops.linear(mat1, np.ascontiguousarray(np.transpose(mat2)), np.broadcast_to(bias, (np.shape(mat2)[1],)))


def _mm(mat1, mat2):
    return ops.linear(mat1, np.ascontiguousarray(np.transpose(mat2)))


def _addmm_bound(dtype, bias, mat1, mat2, beta=1, alpha=1):
    """γ_{K+1}(u)·(|A||B| + |b|) + (K+1)·tiny: an inner product of K terms plus the bias."""
    n = mat1.shape[1] + 1
    with counting.paused():
        magnitude = _addmm(np.abs(bias), np.abs(mat1), np.abs(mat2))
    return bounds.inner_product_bound(magnitude, n, dtype)


def _mm_bound(dtype, mat1, mat2):
    n = mat1.shape[1]
    with counting.paused():
        magnitude = _mm(np.abs(mat1), np.abs(mat2))
    return bounds.inner_product_bound(magnitude, n, dtype)


def _addmm_formula(out, bias, mat1, mat2, beta=1, alpha=1):
    rows, k = np.shape(mat1)
    return {"macs": rows * k * np.shape(mat2)[1], "bias_adds": rows * np.shape(mat2)[1]}


def _mm_formula(out, mat1, mat2):
    rows, k = np.shape(mat1)
    return {"macs": rows * k * np.shape(mat2)[1]}


# ----------------------------------------------------------------------------- batch norm


def _batch_norm(x, weight, bias, running_mean, running_var, momentum, eps):
    y = ops.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)  # (N, C, *)
    empty = np.empty(0, dtype=np.asarray(x).dtype)
    return y, empty, empty


def _batch_norm_bound(dtype, x, weight, bias, running_mean, running_var, momentum, eps):
    return (bounds.batch_norm_eval_bound(x, weight, bias, running_mean, running_var, eps, dtype), None, None)


def _batch_norm_formula(out, x, *args):
    return {"bn_scale_shift": _numel(x)}


# ----------------------------------------------------------------------------- pooling


def _adaptive_avg_pool2d_bound(dtype, x, output_size):
    return bounds.adaptive_avg_pool2d_bound(x, output_size, dtype)


def _adaptive_avg_pool2d_formula(out, x, output_size):
    return {"pool_adds": formulas.adaptive_avg_pool2d_adds(*_batch_channels(x), np.shape(x)[-2:], np.shape(out)[-2:]),
            "pool_divides": formulas.adaptive_avg_pool2d_divides(*_batch_channels(x), np.shape(out)[-2:])}


def _adaptive_avg_pool3d_bound(dtype, x, output_size):
    return bounds.adaptive_avg_pool3d_bound(x, output_size, dtype)


def _adaptive_avg_pool3d_formula(out, x, output_size):
    planes = _batch_channels(x, 3)
    return {"pool_adds": formulas.adaptive_avg_pool3d_adds(*planes, np.shape(x)[-3:], np.shape(out)[-3:]),
            "pool_divides": formulas.adaptive_avg_pool3d_divides(*planes, np.shape(out)[-3:])}


def _max_pool2d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pooling.max_pool2d(x, kernel_size, stride or None, padding, dilation, ceil_mode, return_indices=True)


def _batch_channels(x, dims: int = 2) -> tuple[int, int]:
    """(N, C) of an (N, C, *spatial) input with `dims` spatial axes; (1, C) unbatched."""
    shape = np.shape(x)
    return (shape[0], shape[1]) if len(shape) == dims + 2 else (1, shape[0])


def _max_pool2d_formula(out, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return {"pool_compares": formulas.max_pool2d_compares(*_batch_channels(x), np.shape(x)[-2:], kernel_size,
                                                          stride or None, padding, dilation, ceil_mode)}


def _avg_pool2d(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    return pooling.avg_pool2d(x, kernel_size, stride or None, padding, ceil_mode, count_include_pad, divisor_override)


def _avg_pool2d_bound(dtype, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
    return bounds.avg_pool2d_bound(x, kernel_size, stride or None, padding, ceil_mode, count_include_pad,
                                   divisor_override, dtype)


def _avg_pool2d_formula(out, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    args = (*_batch_channels(x), np.shape(x)[-2:], kernel_size, stride or None, padding, ceil_mode)
    return {"pool_adds": formulas.avg_pool2d_adds(*args), "pool_divides": formulas.avg_pool2d_divides(*args)}


def _max_pool3d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pooling.max_pool3d(x, kernel_size, stride or None, padding, dilation, ceil_mode, return_indices=True)


def _max_pool3d_formula(out, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return {"pool_compares": formulas.max_pool3d_compares(*_batch_channels(x, 3), np.shape(x)[-3:], kernel_size,
                                                          stride or None, padding, dilation, ceil_mode)}


def _avg_pool3d(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    return pooling.avg_pool3d(x, kernel_size, stride or None, padding, ceil_mode, count_include_pad, divisor_override)


def _avg_pool3d_bound(dtype, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
    return bounds.avg_pool3d_bound(x, kernel_size, stride or None, padding, ceil_mode, count_include_pad,
                                   divisor_override, dtype)


def _avg_pool3d_formula(out, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    args = (*_batch_channels(x, 3), np.shape(x)[-3:], kernel_size, stride or None, padding, ceil_mode)
    return {"pool_adds": formulas.avg_pool3d_adds(*args), "pool_divides": formulas.avg_pool3d_divides(*args)}


def _mean(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        raise NotImplementedError("mean with a dtype argument")
    return pooling.mean(x, list(range(np.ndim(x))) if dim is None else dim, keepdim)


def _mean_bound(working_dtype, x, dim=None, keepdim=False, dtype=None):
    return bounds.mean_bound(x, list(range(np.ndim(x))) if dim is None else dim, keepdim, working_dtype)


def _mean_formula(out, x, dim=None, keepdim=False, dtype=None):
    return {"pool_adds": formulas.mean_adds(np.shape(x), dim), "pool_divides": formulas.mean_divides(np.shape(x), dim)}


# ----------------------------------------------------------------------------- element-wise


def _elementwise_formula(category: str):
    def formula(out, *args, **kwargs):
        counts = {category: _numel(out)}
        if kwargs.get("alpha", 1) != 1:
            counts["muls"] = _numel(out)
        return counts
    return formula


def _clamp_formula(out, x, min=None, max=None):
    return {"activation_compares": formulas.clamp_compares(_numel(out), min is not None, max is not None)}


def _hardtanh_formula(out, x, min_val=-1.0, max_val=1.0):
    return {"activation_compares": formulas.clamp_compares(_numel(out), True, True)}


# ----------------------------------------------------------------------------- data movement


def _cat(tensors, dim=0):
    return np.concatenate([np.asarray(t) for t in tensors], axis=dim)


def _split_with_sizes(x, split_sizes, dim=0):
    return tuple(np.split(x, np.cumsum(split_sizes)[:-1], axis=dim))


def _split(x, split_size, dim=0):
    size = np.shape(x)[dim]
    return _split_with_sizes(x, [min(split_size, size - start) for start in range(0, size, split_size)] or [0], dim)


def _slice(x, dim=0, start=None, end=None, step=1):
    index = [slice(None)] * np.ndim(x)
    index[dim] = slice(start, end, step)
    return x[tuple(index)]


def _squeeze(x, dims=None):
    dims = range(np.ndim(x)) if dims is None else ([dims] if isinstance(dims, int) else dims)
    return np.squeeze(x, axis=tuple(d % max(np.ndim(x), 1) for d in dims if np.shape(x)[d] == 1))


def _expand(x, size, implicit=False):
    shape = tuple(np.shape(x)[i - (len(size) - np.ndim(x))] if s == -1 else s for i, s in enumerate(size))
    return np.broadcast_to(x, shape)


def _padding(mode: str, user: str) -> OpSpec:
    """constant_pad_nd / reflection_pad{1,2,3}d / replication_pad{1,2,3}d: npconv.pad, which
    checks the call as PyTorch does and records op "pad", copies (one per output element)."""
    if mode == "constant":
        def run(x, pad, value=0.0):
            return _npconv_pad(x, list(pad), "constant", value)
    else:
        def run(x, pad):
            return _npconv_pad(x, list(pad), mode)
    return OpSpec(run, None, _copies, user)


OPS: dict[str, OpSpec] = {
    "aten.convolution.default": OpSpec(_convolution, _convolution_bound, _convolution_formula,
                                       "nn.Conv1d/2d/3d / nn.ConvTranspose1d/2d/3d / F.conv*d"),
    "aten.addmm.default": OpSpec(_addmm, _addmm_bound, _addmm_formula, "nn.Linear / F.linear"),
    "aten.mm.default": OpSpec(_mm, _mm_bound, _mm_formula, "nn.Linear(bias=False) / torch.mm"),
    "aten._native_batch_norm_legit_no_training.default": OpSpec(_batch_norm, _batch_norm_bound,
                                                                _batch_norm_formula, "nn.BatchNorm1d/2d/3d (eval)"),
    "aten.relu.default": OpSpec(ops.relu, None, lambda out, x: {"activation_compares": _numel(out)},
                                "nn.ReLU / F.relu"),
    # aten.hardtanh with min_val > max_val gives max_val (as clamp); only F.hardtanh refuses it
    "aten.hardtanh.default": OpSpec(lambda x, min_val=-1.0, max_val=1.0: elementwise.clamp(x, min_val, max_val),
                                    None, _hardtanh_formula, "nn.ReLU6 / nn.Hardtanh"),
    "aten.clamp.default": OpSpec(elementwise.clamp, None, _clamp_formula, "torch.clamp (also in Hardswish)"),
    "aten.sigmoid.default": OpSpec(elementwise.sigmoid, lambda dtype, x: bounds.sigmoid_bound(x, dtype),
                                   _elementwise_formula("sigmoid_exps"), "nn.Sigmoid / torch.sigmoid (also SiLU)"),
    "aten.add.Tensor": OpSpec(elementwise.add, lambda dtype, a, b, alpha=1: bounds.add_bound(a, b, dtype, alpha),
                              _elementwise_formula("adds"), "+ / torch.add"),
    "aten.sub.Tensor": OpSpec(elementwise.sub, lambda dtype, a, b, alpha=1: bounds.add_bound(a, b, dtype, alpha),
                              _elementwise_formula("subs"), "- / torch.sub"),
    "aten.mul.Tensor": OpSpec(elementwise.mul, lambda dtype, a, b: bounds.mul_bound(a, b, dtype),
                              _elementwise_formula("muls"), "* / torch.mul"),
    "aten.div.Tensor": OpSpec(elementwise.div, lambda dtype, a, b: bounds.div_bound(a, b, dtype),
                              _elementwise_formula("divides"), "/ / torch.div"),
    "aten.mean.dim": OpSpec(_mean, _mean_bound, _mean_formula, "torch.mean / x.mean(dims)"),
    "aten.mean.default": OpSpec(_mean, _mean_bound, _mean_formula, "torch.mean"),
    "aten._adaptive_avg_pool2d.default": OpSpec(ops.adaptive_avg_pool2d, _adaptive_avg_pool2d_bound,
                                                 _adaptive_avg_pool2d_formula, "nn.AdaptiveAvgPool2d"),
    "aten._adaptive_avg_pool3d.default": OpSpec(ops.adaptive_avg_pool3d, _adaptive_avg_pool3d_bound,
                                                 _adaptive_avg_pool3d_formula, "nn.AdaptiveAvgPool3d"),
    "aten.avg_pool2d.default": OpSpec(_avg_pool2d, _avg_pool2d_bound, _avg_pool2d_formula,
                                      "nn.AvgPool2d / F.avg_pool2d"),
    "aten.max_pool2d_with_indices.default": OpSpec(_max_pool2d_with_indices, None, _max_pool2d_formula,
                                                   "nn.MaxPool2d / F.max_pool2d"),
    "aten.avg_pool3d.default": OpSpec(_avg_pool3d, _avg_pool3d_bound, _avg_pool3d_formula,
                                      "nn.AvgPool3d / F.avg_pool3d"),
    "aten.max_pool3d_with_indices.default": OpSpec(_max_pool3d_with_indices, None, _max_pool3d_formula,
                                                   "nn.MaxPool3d / F.max_pool3d"),
    "aten.cat.default": _copy(_cat, "torch.cat", "cat"),
    "aten.clone.default": _copy(lambda x, memory_format=None: np.array(x, copy=True), "x.clone() / .contiguous()",
                                "clone"),
    "aten.constant_pad_nd.default": _padding("constant", "F.pad (constant)"),
    "aten.reflection_pad1d.default": _padding("reflect", "F.pad (reflect)"),
    "aten.reflection_pad2d.default": _padding("reflect", "F.pad (reflect) / padding_mode='reflect'"),
    "aten.reflection_pad3d.default": _padding("reflect", "F.pad (reflect)"),
    "aten.replication_pad1d.default": _padding("replicate", "F.pad (replicate)"),
    "aten.replication_pad2d.default": _padding("replicate", "F.pad (replicate) / padding_mode='replicate'"),
    "aten.replication_pad3d.default": _padding("replicate", "F.pad (replicate)"),
    "aten.view.default": _view(lambda x, size: np.reshape(x, tuple(size)), "x.view / torch.flatten"),
    "aten._unsafe_view.default": _view(lambda x, size: np.reshape(x, tuple(size)), "x.reshape"),
    "aten.permute.default": _view(lambda x, dims: np.transpose(x, tuple(dims)), "x.permute"),
    "aten.transpose.int": _view(lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1), "x.transpose"),
    "aten.t.default": _view(lambda x: np.transpose(x), "x.t()"),
    "aten.unsqueeze.default": _view(lambda x, dim: np.expand_dims(x, dim if dim >= 0 else dim + np.ndim(x) + 1),
                                    "x.unsqueeze"),
    "aten.squeeze.dims": _view(_squeeze, "x.squeeze"),
    "aten.squeeze.dim": _view(_squeeze, "x.squeeze"),
    "aten.expand.default": _view(_expand, "x.expand"),
    "aten.slice.Tensor": _view(_slice, "x[a:b]"),
    "aten.split_with_sizes.default": _view(_split_with_sizes, "torch.split / torch.chunk"),
    "aten.split.Tensor": _view(_split, "torch.split / torch.chunk"),
    "aten.alias.default": _view(lambda x: x, "alias"),
    "getitem": _view(operator.getitem, "tuple indexing"),
}


def run_node(node: Node, env: dict):
    """Evaluate one node on npconv's kernels, its counts recorded under its module's name."""
    spec = OPS[node.op]
    with counting.scope(node.module):
        return spec.run(*resolve(node.args, env), **resolve(node.kwargs, env))


def unsupported_ops(nodes) -> list[tuple[str, str, int, str]]:
    """(ATen name, Python-level name, occurrences, first module) for every op of `nodes`
    that `OPS` lacks, in order of first appearance."""
    found: dict[str, list] = {}
    for node in nodes:
        if node.op in OPS:
            continue
        entry = found.setdefault(node.op, [node.source, 0, node.module])
        entry[1] += 1
    return [(op, source, n, module) for op, (source, n, module) in found.items()]
