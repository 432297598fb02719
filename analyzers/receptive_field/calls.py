"""torch.fx ``call_function`` / ``call_method`` nodes onto the RF recurrence (see :mod:`analyzers.receptive_field.ops`
for modules and the shared helpers): elementwise ops and unions, layout changes (reshape, permute,
indexing), reductions, functional convolutions/pools/padding/resampling, attention-like products.
Unknown calls give GLOBAL with a warning (conservative: never a too-small RF).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
import torch.fx as fx
import torch.nn.functional as F

from analyzers._shared.tracing import ADD_FUNCS, MUL_FUNCS
from analyzers.receptive_field import box as rb
from analyzers.receptive_field.box import FLAT, GLOBAL, LOCAL, NONE, Box
from analyzers.receptive_field.ops import (
    _adaptive,
    _arg,
    _contract_last,
    _conv,
    _elementwise,
    _first,
    _inputs,
    _layer_norm,
    _norm_box,
    _out_ndim,
    _pad,
    _resample,
    _reshaped,
    tensor_shape,
)

ELEMENTWISE_FUNCS = ADD_FUNCS | MUL_FUNCS | {
    operator.sub, operator.truediv, operator.floordiv, operator.neg,
    operator.pow, operator.isub, operator.itruediv,
    torch.sub, torch.div, torch.relu, torch.sigmoid, torch.tanh, torch.exp,
    torch.abs, torch.sqrt, torch.rsqrt, torch.clamp, torch.where, torch.maximum, torch.minimum,
    torch.neg, torch.erf, torch.square, torch.log, torch.sin, torch.cos, torch.clone,
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.hardtanh, F.leaky_relu, F.elu,
    F.selu, F.celu, F.mish, F.sigmoid, F.tanh, F.softplus, F.logsigmoid, F.prelu, F.softsign,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
}
ELEMENTWISE_NAMES = {"stochastic_depth", "_patch_merging_pad"}  # torchvision's fx-wrapped helpers
GLOBAL_FUNCS = {torch.einsum, torch.bmm, torch.baddbmm, F.scaled_dot_product_attention, F.group_norm,
                F.instance_norm}
GLOBAL_NAMES = {"shifted_window_attention"}
ELEMENTWISE_METHODS = {
    "add", "sub", "mul", "div", "relu", "sigmoid", "tanh", "clamp", "contiguous", "clone", "float",
    "double", "half", "to", "type", "type_as", "detach", "exp", "abs", "sqrt", "rsqrt", "pow", "neg",
    "masked_fill", "add_", "mul_", "sub_", "div_", "relu_", "sigmoid_", "clamp_", "expand", "expand_as",
    "__add__", "__mul__", "__sub__", "__truediv__", "__radd__", "__rmul__", "tanh_",
    "softplus", "gelu", "silu", "maximum", "minimum", "square", "erf", "log",
}
RESHAPES_F = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
RESHAPES_M = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as", "unflatten"}
REDUCE_F = {torch.mean, torch.sum, torch.amax, torch.amin, torch.max, torch.min, torch.std, torch.var,
            torch.logsumexp, torch.norm}
REDUCE_M = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm"}
SPLIT_F = {torch.chunk, torch.split, torch.unbind, torch.tensor_split}
SPLIT_M = {"chunk", "split", "unbind", "tensor_split"}
NONE_M = {"size", "dim", "numel", "ndimension", "nelement"}



def _reduce(box: Box, node, ndim_out: int) -> Box:
    """mean/sum/amax over dims: global when a spatial dim is reduced."""
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", None)
    if dim is None or dim == () or dim == []:
        return Box(GLOBAL, (), ndim=ndim_out) if box.kind != NONE else box
    dims = [int(x) % box.ndim for x in (dim if isinstance(dim, (tuple, list)) else (dim,))]
    shape = tensor_shape(node)  # None for (values, indices) tuples: read keepdim then
    keep = len(shape) == box.ndim if shape is not None else bool(node.kwargs.get("keepdim", False))
    return rb.drop_dims(box, dims, keep)


def _value(v):
    """A Python value recorded for a node during shape propagation (x.shape[2], ...), else v itself;
    slices are resolved part by part."""
    if isinstance(v, slice):
        return slice(_value(v.start), _value(v.stop), _value(v.step))
    if isinstance(v, fx.Node) and "rf_value" in v.meta:
        return v.meta["rf_value"]
    return v


def _getitem(box: Box, node, src) -> Box:
    """Indexing a tensor: slices along a spatial dim shift unit 0 and may multiply the jump."""
    shape = tensor_shape(src)
    idx = node.args[1]
    if shape is None or box.kind == NONE:
        return box  # a tuple output (chunk, max with indices): every element shares the box
    idx = tuple(_value(i) for i in (idx if isinstance(idx, tuple) else (idx,)))
    if any(isinstance(i, fx.Node) or (isinstance(i, slice) and any(
            isinstance(v, fx.Node) for v in (i.start, i.stop, i.step))) for i in idx):
        return rb.make_global(box)  # a tensor index (gather): positions are data dependent
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if Ellipsis in idx:
        e = idx.index(Ellipsis)
        idx = idx[:e] + (slice(None),) * (len(shape) - n_real) + idx[e + 1:]
    new_pos, offsets, steps, out_dim, in_dim, dropped = {}, {}, {}, 0, 0, []
    for item in idx:
        if item is None:
            out_dim += 1
            continue
        if isinstance(item, slice):
            a, _, st = item.indices(int(shape[in_dim]))
            offsets[in_dim], steps[in_dim] = a, st
            new_pos[in_dim] = out_dim
            out_dim += 1
        else:
            dropped.append(in_dim)
        in_dim += 1
    for t in range(in_dim, len(shape)):
        new_pos[t], out_dim = out_dim, out_dim + 1
    out = rb.shift(box, offsets, steps) if box.kind == LOCAL else box
    if any(t in dropped for t in box.dims):
        return Box(FLAT if box.kind != GLOBAL else GLOBAL, (), (max(box.r),) if box.r else (),
                   ndim=out_dim, approx=True)
    return out.replace(dims=tuple(new_pos[t] for t in box.dims), ndim=out_dim)


def _permute_order(node, ndim: int) -> tuple | None:
    args = node.args[1:]
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name in ("permute",):
        dims = node.kwargs.get("dims", args[0] if len(args) == 1 and isinstance(args[0], (tuple, list))
                               else args)
        return tuple(int(d) % ndim for d in dims)
    if name in ("transpose", "swapaxes", "swapdims"):
        a, b = (int(x) % ndim for x in (args if len(args) == 2 else (node.kwargs["dim0"], node.kwargs["dim1"])))
        order = list(range(ndim))
        order[a], order[b] = order[b], order[a]
        return tuple(order)
    return None


def _fn_name(target) -> str:
    return getattr(target, "__name__", str(target))


def function_box(node, env, warn: Callable[[str], None]) -> Box:
    """Output box of a call_function node (torch functions, F.*, operators, wrapped helpers)."""
    f, name = node.target, _fn_name(node.target)
    x, src = _first(node, env), _arg(node, 0, "input")
    ins = _inputs(node, env)
    if f is getattr or name in ("_assert", "eq", "ne", "lt", "gt", "le", "ge"):
        return Box(NONE)
    if f is operator.getitem:
        return _getitem(x, node, src)
    if all(b.kind == NONE for b in ins):
        return Box(NONE, ndim=_out_ndim(node, x))
    if f in ELEMENTWISE_FUNCS or name in ELEMENTWISE_NAMES:
        return _elementwise(node, env)
    if f in (torch.cat, torch.concat, torch.concatenate):
        return rb.union(ins, _out_ndim(node, x))[0]
    if f is torch.stack:
        at = int(_arg(node, 1, "dim", 0))
        return rb.union([rb.insert_dim(b, at % (b.ndim + 1)) for b in ins], _out_ndim(node, x))[0]
    if f in (torch.permute, torch.transpose, torch.swapaxes, torch.swapdims):
        return rb.permute(x, _permute_order(node, x.ndim)) if x.kind != NONE else x
    if f in RESHAPES_F:
        return _reshaped(x, node, src)
    if f in REDUCE_F:
        return _reduce(x, node, _out_ndim(node, x))
    if f in SPLIT_F:
        return x
    if f in GLOBAL_FUNCS or name in GLOBAL_NAMES:
        return rb.make_global(x) if x.kind != NONE else Box(GLOBAL, (), ndim=_out_ndim(node, x))
    if f in (torch.matmul, operator.matmul):
        return _matmul(node, env)
    if f in (torch.repeat_interleave, torch.tile):
        return _repeat(x, node, name)
    box = _functional(f, name, node, x, src)
    if box is not None:
        return box
    warn(f"{name}: unknown function, treated as global")
    return rb.make_global(x) if x.kind != NONE else Box(GLOBAL, (), ndim=_out_ndim(node, x))


def _functional(f, name: str, node, x: Box, src) -> Box | None:
    """torch.nn.functional ops with window, padding, resampling or normalisation semantics."""
    if name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        w = tensor_shape(_arg(node, 1, "weight"))
        if w is None:
            return None
        nd, tr = len(w) - 2, name.startswith("conv_t")
        dil = _arg(node, 7, "dilation", 1) if tr else _arg(node, 5, "dilation", 1)
        return _conv(x, nd, tuple(w[2:]), _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), dil, tr)
    if name.startswith(("max_pool", "avg_pool")) and name[-1] == "d":
        nd = int(name[-2])
        dil = _arg(node, 4, "dilation", 1) if name.startswith("max") else 1
        return _conv(x, nd, _arg(node, 1, "kernel_size"), _arg(node, 2, "stride", None),
                     _arg(node, 3, "padding", 0), dil)
    if name.startswith("lp_pool"):
        return _conv(x, int(name[-2]), _arg(node, 2, "kernel_size"), _arg(node, 3, "stride", None), 0, 1)
    if name.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        return _adaptive(x, int(name[-2]), tensor_shape(src), tensor_shape(node))
    if f is F.pad or name == "pad":
        return _pad(x, tuple(_arg(node, 1, "pad")))
    if f is F.interpolate or name in ("interpolate", "upsample"):
        return _resample(x, node, _arg(node, 3, "mode", "nearest"), bool(_arg(node, 4, "align_corners", False)))
    if f is F.linear:
        return _contract_last(x)
    if f is F.layer_norm:
        shape = _arg(node, 1, "normalized_shape")
        return _layer_norm(x, len(shape) if isinstance(shape, (tuple, list)) else 1)
    if f is F.batch_norm:
        return _norm_box(x, bool(_arg(node, 5, "training", False)) or _arg(node, 1, "running_mean") is None)
    if f in (F.softmax, F.log_softmax, F.softmin, torch.softmax, torch.log_softmax):
        return _contract_last(x, int(_arg(node, 1, "dim", -1)))
    return None


def _matmul(node, env) -> Box:
    """x @ W with a constant W contracts x's last dim; two input-dependent operands is attention."""
    a, b = (env.get(n, Box(NONE)) if isinstance(n, fx.Node) else Box(NONE) for n in node.args[:2])
    if a.kind != NONE and b.kind != NONE:
        return rb.make_global(a, dims=(), ndim=_out_ndim(node, a))
    if a.kind != NONE:
        return _contract_last(a).replace(ndim=_out_ndim(node, a))
    if b.kind in (LOCAL, FLAT) and (b.ndim - 2) % max(b.ndim, 1) in b.dims:
        return rb.make_global(b, dims=(), ndim=_out_ndim(node, b))
    return b.replace(ndim=_out_ndim(node, b))


def _repeat(x: Box, node, name: str) -> Box:
    """Copies along a dim (repeat_interleave, repeat, tile): harmless along channels; along a spatial
    dim the positions no longer map to input pixels one to one (global, to stay conservative)."""
    out = tensor_shape(node)
    if out is None or x.kind == NONE:
        return x
    if name == "repeat_interleave":
        dim = _arg(node, 2, "dim", None)
        if dim is None:  # flattens first
            return _reshaped(x, node, node.args[0]) if len(out) == 1 else rb.make_global(x)
        return rb.make_global(x) if int(dim) % x.ndim in x.dims else x
    shift = len(out) - x.ndim  # repeat/tile may prepend dims
    moved = x.replace(dims=tuple(t + shift for t in x.dims), ndim=len(out))
    src = tensor_shape(node.args[0]) or ()
    grown = any(out[t + shift] != src[t] for t in x.dims if t < len(src))
    return rb.make_global(moved) if grown else moved


def method_box(node, env, warn: Callable[[str], None]) -> Box:
    """Output box of a call_method node (tensor methods)."""
    name, x, src = node.target, _first(node, env), node.args[0]
    if name in NONE_M:
        return Box(NONE)
    if all(b.kind == NONE for b in _inputs(node, env)):
        return Box(NONE, ndim=_out_ndim(node, x))
    if name in ELEMENTWISE_METHODS:
        return _elementwise(node, env)
    if name in ("permute", "transpose", "swapaxes", "swapdims"):
        return rb.permute(x, _permute_order(node, x.ndim)) if x.kind != NONE else x
    if name in RESHAPES_M:
        return _reshaped(x, node, src)
    if name in REDUCE_M:
        return _reduce(x, node, _out_ndim(node, x))
    if name in SPLIT_M:
        return x
    if name in ("softmax", "log_softmax"):
        return _contract_last(x, int(_arg(node, 1, "dim", -1)))
    if name in ("matmul", "bmm", "__matmul__"):
        return _matmul(node, env)
    if name in ("repeat_interleave", "repeat", "tile"):
        return _repeat(x, node, name)
    warn(f"Tensor.{name}: unknown method, treated as global")
    return rb.make_global(x)
