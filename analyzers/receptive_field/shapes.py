"""Shape propagation for the RF recurrence without computing a single activation.

The recurrence needs every node's output shape. A real forward of a zero input (torch.fx's ``ShapeProp``)
spent ~90 % of the theoretical-RF time in convolution arithmetic whose values are thrown away, and it
runs train-mode BatchNorms on the shared model (updating its running statistics). Here shapes flow on the
``meta`` device instead: the common leaf modules get their output shape from the same formulas ATen uses
(convolution, pooling, shape-preserving activations and eval-mode norms, linear), every other node runs on
meta tensors through a meta twin of its module (parameters and buffers as meta tensors, no hooks; the
module itself is never copied deeply nor touched). Anything meta cannot run (data-dependent code, a tensor
attribute outside the module's parameters and buffers) makes the caller fall back to the real forward, so
the result (shapes, and the node a too-small input fails at) stays that of the real pass.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from analyzers.receptive_field.ops import ELEMENTWISE_MODULES

META = torch.device("meta")
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")
#: shape-preserving modules that still check their input (channel counts, divisibility): the twin runs them
_CHECKING = (nn.PReLU, nn.ChannelShuffle, nn.LocalResponseNorm, nn.CrossMapLRN2d)


class Shapes(fx.Interpreter):
    """Shape propagation (as torch.fx's ShapeProp) that stops quietly at the first node that fails
    (a fixed-size head at another input size) and remembers it."""

    failed: fx.Node | None = None

    def run_node(self, n):
        try:
            result = super().run_node(n)
        except Exception:
            self.failed = n
            raise
        found = []

        def extract(obj):
            if isinstance(obj, torch.Tensor):
                found.append(True)
                return _extract_tensor_metadata(obj)
            return obj

        meta = fx.node.map_aggregate(result, extract)
        if found:
            n.meta["tensor_meta"] = meta
        elif isinstance(result, (int, float, bool)):  # sizes and indices computed in the graph
            n.meta["rf_value"] = result
        return result


def twin(module: nn.Module, tensor) -> nn.Module:
    """A shallow copy of ``module`` (recursively) whose parameters and buffers are ``tensor(t)`` and which
    has no hooks; the original, its tensors and its hooks are not touched."""
    copy_ = copy.copy(module)
    copy_._parameters = {k: None if v is None else nn.Parameter(tensor(v), requires_grad=False)
                         for k, v in module._parameters.items()}
    copy_._buffers = {k: None if v is None else tensor(v) for k, v in module._buffers.items()}
    copy_._modules = {k: None if v is None else twin(v, tensor) for k, v in module._modules.items()}
    for name in _HOOK_DICTS:
        if name in copy_.__dict__:
            copy_.__dict__[name] = OrderedDict()
    return copy_


def meta_twin(module: nn.Module) -> nn.Module:
    """The module with empty meta tensors of the same shapes and dtypes (no memory, no arithmetic)."""
    return twin(module, lambda t: torch.empty_like(t, device=META))


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """ATen's ``pooling_output_shape`` (also the convolution size with ceil=False)."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _tup(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _window_shape(m: nn.Module, x: torch.Tensor) -> tuple | None:
    """Output shape of a plain convolution or max/avg pool by formula; None where the module needs its
    own forward (channel mismatch, string padding, unusual ranks): the meta twin then decides."""
    if isinstance(m, nn.modules.conv._ConvNd) and not m.transposed:
        nd = len(m.kernel_size)
        if x.dim() != nd + 2 or x.shape[1] != m.in_channels or isinstance(m.padding, str):
            return None
        sp = [_pool_out(x.shape[2 + i], m.kernel_size[i], m.stride[i], m.padding[i], m.dilation[i], False)
              for i in range(nd)]
        return (x.shape[0], m.out_channels, *sp) if min(sp) > 0 else None
    if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)) and \
            not getattr(m, "return_indices", False):
        nd = int(type(m).__name__[-2])
        if x.dim() != nd + 2:
            return None
        k, p = _tup(m.kernel_size, nd), _tup(m.padding, nd)
        s = _tup(m.stride if m.stride not in (None, ()) else m.kernel_size, nd)
        d = _tup(getattr(m, "dilation", 1), nd)
        if any(pi * 2 > ki for pi, ki in zip(p, k, strict=True)):
            return None  # ATen refuses: let the twin raise the same error
        sp = [_pool_out(x.shape[2 + i], k[i], s[i], p[i], d[i], bool(m.ceil_mode)) for i in range(nd)]
        return (*x.shape[:2], *sp) if min(sp) > 0 else None
    return None


class MetaShapes(Shapes):
    """:class:`Shapes` over meta tensors: formulas for the common leaf modules, meta twins for the rest."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self._twins: dict[str, nn.Module] = {}

    def call_module(self, target, args, kwargs):
        m = self.fetch_attr(target)
        x = args[0] if args and isinstance(args[0], torch.Tensor) and not kwargs and len(args) == 1 else None
        if x is not None and type(m).__module__.startswith("torch.nn."):  # torch's own forward, not a subclass'
            if (isinstance(m, ELEMENTWISE_MODULES) and not isinstance(m, _CHECKING)) or (
                    isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training and x.dim() >= 2
                    and x.shape[1] == m.num_features):
                return x  # shape-preserving: no arithmetic needed
            shape = _window_shape(m, x)
            if shape is not None:
                return torch.empty(shape, dtype=x.dtype, device=META)
            if isinstance(m, nn.Linear) and x.dim() >= 1 and x.shape[-1] == m.in_features:
                return torch.empty((*x.shape[:-1], m.out_features), dtype=x.dtype, device=META)
        twin = self._twins.get(target)
        if twin is None:
            twin = self._twins[target] = meta_twin(m)
        return twin(*args, **kwargs)

    def get_attr(self, target, args, kwargs):
        value = super().get_attr(target, args, kwargs)
        if isinstance(value, torch.Tensor):
            return torch.empty_like(value, device=META)
        return meta_twin(value) if isinstance(value, nn.Module) else value


def propagate_meta(gm: fx.GraphModule, shape: tuple, dtype: torch.dtype) -> bool:
    """Store every node's output shape in ``node.meta`` from a meta input (1, *shape). False (and the
    stored shapes are to be recomputed by the real pass) when any node cannot run on meta tensors."""
    prop = MetaShapes(gm)
    try:
        with torch.no_grad():
            prop.run(torch.empty((1, *shape), dtype=dtype, device=META))
    except Exception:  # noqa: BLE001 - any node meta cannot evaluate: the real pass decides
        return False
    return True


def signature(module: nn.Module) -> tuple:
    """What the traced graph and its shapes depend on besides the code: each submodule's identity (a
    replaced layer changes it), class and mode."""
    return tuple((name, id(m), type(m), m.training) for name, m in module.named_modules())

