"""Leaf-module nodes of a torch.fx graph onto the RF recurrence of :mod:`analyzers.receptive_field.box`, and the
helpers the call nodes (:mod:`analyzers.receptive_field.calls`) share.

``module_box(module, node, env, warn)`` returns the output :class:`Box` of one leaf-module call given
the boxes of its inputs (``env``) and the shapes stored in ``node.meta['tensor_meta']``. Modules that
make the RF the whole input (global pooling, attention, batch-statistics or group norms, softmax or
linear layers over a spatial dim) give GLOBAL; a module we do not know gives GLOBAL too, with a
warning naming it (conservative: never a too-small RF).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import TensorMetadata

from analyzers.receptive_field import box as rb
from analyzers.receptive_field.box import FLAT, GLOBAL, LOCAL, NONE, Box

_ACT = nn.modules.activation
ELEMENTWISE_MODULES = tuple(
    c for c in vars(_ACT).values()
    if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == _ACT.__name__
    and c not in (_ACT.Softmax, _ACT.Softmin, _ACT.LogSoftmax, _ACT.Softmax2d, _ACT.MultiheadAttention,
                  _ACT.GLU, _ACT.NonDynamicallyQuantizableLinear, nn.Module)
) + (nn.modules.dropout._DropoutNd, nn.Identity, nn.ChannelShuffle, nn.LocalResponseNorm, nn.CrossMapLRN2d)
GLOBAL_MODULES = (nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder,
                  nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.GroupNorm)
POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._LPPoolNd)
ADAPTIVE = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
PADS = (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
        nn.modules.padding._ReplicationPadNd, nn.modules.padding._CircularPadNd)

def tensor_shape(node) -> tuple | None:
    """Shape ShapeProp recorded for a node that produced one tensor; None otherwise."""
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else None


def _tup(v, n: int) -> tuple:
    if isinstance(v, (tuple, list)):
        return tuple(v) if len(v) == n else tuple(v) * n if len(v) == 1 else tuple(v[-n:])
    return (v,) * n


def _window_params(box: Box, nd: int, k, s, p, d) -> dict[int, tuple]:
    """Per tensor dim (the last ``nd`` dims) -> (k, s, p_left, d) for :func:`rf_box.window`."""
    k, s, p, d = _tup(k, nd), _tup(s if s not in (None, ()) else k, nd), _tup(p, nd), _tup(d, nd)
    return {box.ndim - nd + i: (int(k[i]), s[i], p[i], int(d[i])) for i in range(nd)}


def _conv(box: Box, nd: int, k, s, p, d, transposed: bool = False) -> Box:
    if box.kind == LOCAL and 1 in box.dims:  # a spatial axis in the channel dim: fully contracted
        return rb.make_global(box)
    if isinstance(p, str):  # 'same' pads d(k-1) in total, the extra pixel on the right; 'valid' none
        kk = _tup(k, nd)
        p = tuple(_tup(d, nd)[i] * (kk[i] - 1) // 2 if p == "same" else 0 for i in range(nd))
    params = _window_params(box, nd, k, s, p, d)
    return rb.transposed_window(box, params) if transposed else rb.window(box, params)


def _adaptive(box: Box, nd: int, in_shape: tuple, out_shape: tuple) -> Box:
    """Adaptive pooling: identity, global (output 1), exact k = s = in/out, or approximate."""
    params, approx = {}, False
    for t in range(len(in_shape) - nd, len(in_shape)):
        i, o = int(in_shape[t]), int(out_shape[t])
        if t not in box.dims or i == o:
            continue
        if o == 1:
            return rb.make_global(box)
        if i % o == 0:
            params[t] = (i // o, i // o, 0, 1)
        else:
            params[t], approx = (math.ceil(i / o) + 1, i / o, 0, 1), True
    out = rb.window(box, params)
    return out.replace(approx=out.approx or approx) if out.kind == LOCAL else out


def _pad(box: Box, pad: tuple) -> Box:
    """F.pad order: (last-dim left, last-dim right, second-to-last left, ...). Negative = crop."""
    offsets = {box.ndim - 1 - i: -float(pad[2 * i]) for i in range(len(pad) // 2)}
    return rb.shift(box, offsets)


def _resample(box: Box, node, mode: str, align_corners: bool = False) -> Box:
    """Interpolation over the spatial dims whose sizes ShapeProp recorded (input -> output)."""
    src = node.args[0] if node.args else node.kwargs.get("input")
    i, o = tensor_shape(src), tensor_shape(node)
    if i is None or o is None:
        return box
    params = {t: (int(i[t]), int(o[t]), mode, bool(align_corners)) for t in range(2, len(i)) if i[t] and o[t]}
    return rb.resample(box, params)


def _contract_last(box: Box, dim: int = -1) -> Box:
    """Linear/softmax/layer-norm style op over ``dim``: global if that dim holds a spatial axis."""
    if box.kind in (NONE, GLOBAL):
        return box
    dim %= box.ndim
    return rb.make_global(box) if dim in box.dims or (box.kind == FLAT and not box.dims) else box


# ---- dispatch ---------------------------------------------------------------------------------

def _inputs(node, env) -> list[Box]:
    out: list[Box] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: out.append(env.get(n, Box(NONE))) or n)
    return out


def _arg(node, i: int, name: str, default=None):
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def _first(node, env) -> Box:
    a = _arg(node, 0, "input")
    return env.get(a, Box(NONE)) if isinstance(a, fx.Node) else Box(NONE)


def _out_ndim(node, box: Box) -> int:
    shape = tensor_shape(node)
    return len(shape) if shape is not None else box.ndim


def _elementwise(node, env) -> Box:
    return rb.union(_inputs(node, env), _out_ndim(node, _first(node, env)))[0]


def _nd_of(m) -> int:
    name = type(m).__name__
    return int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else 2


def _reshaped(box: Box, node, src) -> Box:
    i, o = tensor_shape(src), tensor_shape(node)
    return box if i is None or o is None else rb.remap_reshape(box, i, o)


def _norm_box(x: Box, batch_stats: bool) -> Box:
    return rb.make_global(x) if batch_stats and x.kind in (LOCAL, FLAT) else x


def module_box(m: nn.Module, node, env, warn: Callable[[str], None]) -> Box:
    """Output box of a leaf module call."""
    x, src = _first(node, env), _arg(node, 0, "input")
    if all(b.kind == NONE for b in _inputs(node, env)):
        return Box(NONE, ndim=_out_ndim(node, x))
    conv = nn.modules.conv
    if isinstance(m, (conv._ConvNd, nn.modules.pooling._LPPoolNd)) or isinstance(m, POOLS):
        nd = len(m.kernel_size) if isinstance(m.kernel_size, tuple) else _nd_of(m)
        return _conv(x, nd, m.kernel_size, m.stride, getattr(m, "padding", 0), getattr(m, "dilation", 1),
                     transposed=isinstance(m, conv._ConvTransposeNd))
    if isinstance(m, ADAPTIVE):
        return _adaptive(x, _nd_of(m), tensor_shape(src), tensor_shape(node))
    if isinstance(m, PADS):
        return _pad(x, tuple(m.padding))
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return _norm_box(x, m.training or m.running_mean is None)
    if isinstance(m, nn.modules.instancenorm._InstanceNorm):
        return _norm_box(x, m.training or not m.track_running_stats)
    if isinstance(m, nn.LayerNorm):
        return _layer_norm(x, len(m.normalized_shape))
    if isinstance(m, GLOBAL_MODULES):
        return rb.make_global(x)
    if isinstance(m, (nn.Linear, nn.Bilinear)):
        return _contract_last(x)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return _contract_last(x, m.dim if m.dim is not None else (0 if x.ndim in (0, 1, 3) else 1))
    if isinstance(m, nn.Softmax2d):
        return _contract_last(x, -3)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return _reshaped(x, node, src)
    if isinstance(m, nn.Upsample):
        return _resample(x, node, m.mode, bool(m.align_corners))
    if isinstance(m, nn.PixelUnshuffle):
        f = m.downscale_factor
        return rb.window(x, {x.ndim - 2: (f, f, 0, 1), x.ndim - 1: (f, f, 0, 1)})
    if isinstance(m, nn.PixelShuffle):
        return _resample(x, node, "pixel_shuffle")
    if isinstance(m, ELEMENTWISE_MODULES):
        return _elementwise(node, env)
    warn(f"{type(m).__name__} (module {node.target}): unknown op, treated as global")
    return rb.make_global(x)


def _layer_norm(x: Box, n_last: int) -> Box:
    if x.kind in (NONE, GLOBAL):
        return x
    last = set(range(x.ndim - n_last, x.ndim))
    hit = any(t in last for t in x.dims) or (x.kind == FLAT and not x.dims)
    return rb.make_global(x) if hit else x
