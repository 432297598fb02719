"""LinearScope rules for the non-linear units: each is frozen at z0 into ``z1 -> G z1 + g``.

Functions take the :class:`analyzers.linear_scope.ops.StepBuilder` ``b`` and the fx node and
return a replay step ``fn(env, s)``; ``s`` (K,) scales the bias groups. Conventions are listed
in the docstring of :mod:`analyzers.linear_scope.ops`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.fx.node import Node, map_arg

from workbench.core.errors import UnsupportedModelError

aten = torch.ops.aten
Step = Callable[[dict, torch.Tensor], object]
PIECEWISE = frozenset(("relu", "leaky_relu", "hardtanh", "clamp", "clamp_min", "clamp_max", "threshold",
                       "abs", "prelu", "_prelu_kernel", "relu6", "hardshrink", "softshrink"))
SMOOTH = frozenset(("sigmoid", "tanh", "gelu", "silu", "elu", "selu", "celu", "softplus", "hardswish", "hardsigmoid",
                    "mish", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "reciprocal", "pow", "sin", "cos", "erf",
                    "atan", "square", "logit", "log_sigmoid_forward", "softsign"))


def packet(target) -> str:
    """Overload-packet name of an aten op without a trailing in-place underscore ('add_' -> 'add')."""
    name = getattr(getattr(target, "overloadpacket", None), "__name__", getattr(target, "__name__", str(target)))
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def functional(target):
    """The out-of-place twin of an in-place aten overload (``add_.Tensor`` -> ``add.Tensor``)."""
    name = getattr(getattr(target, "overloadpacket", None), "__name__", "")
    if name.endswith("_") and not name.startswith("_") and hasattr(aten, name[:-1]):
        return getattr(getattr(aten, name[:-1]), target._overloadname, target)
    return target


def is_float(v) -> bool:
    return isinstance(v, torch.Tensor) and v.is_floating_point()


def layer_of(names: frozenset[str]) -> str:
    """Module path shared by parameter/buffer names ('layer1.bn1.weight' -> 'layer1.bn1')."""
    mods = sorted({n.rsplit(".", 1)[0] if "." in n else n for n in names})
    return mods[0] if mods else ""


def _unit(b, node: Node, rule: str) -> str:
    name = f"{packet(node.target)} after {b.last_layer}"
    b.units.append({"op": packet(node.target), "layer": b.last_layer, "rule": rule})
    return name


def index_pool(b, node: Node) -> Step:
    """max_pool{1,2,3}d_with_indices / adaptive_max_pool: gather z1 at the argmax of z0."""
    src = node.args[0]
    out0, idx0 = b.val0[node][0], b.val0[node][1]
    k = int(packet(node.target).split("max_pool")[1][0])  # pooled dimensions
    flat = idx0.flatten(-k)
    _unit(b, node, "argmax indices of z0")

    def step(env: dict, s: torch.Tensor):
        z1 = env[src]
        return z1.flatten(-k).gather(-1, flat).reshape(out0.shape), idx0

    return step


def max_dim(b, node: Node) -> Step:
    """max.dim / min.dim: values gathered at the indices chosen by z0."""
    src, dim = node.args[0], node.args[1]
    keep = bool(node.args[2]) if len(node.args) > 2 else bool(node.kwargs.get("keepdim", False))
    idx0 = b.val0[node][1]
    idx = idx0 if keep else idx0.unsqueeze(dim)
    _unit(b, node, "argmax indices of z0")

    def step(env: dict, s: torch.Tensor):
        v = env[src].gather(dim, idx)
        return (v if keep else v.squeeze(dim)), idx0

    return step


def _norm_step(b, node: Node, scale: torch.Tensor, shift: torch.Tensor, layer: str) -> Step:
    src, rest = node.args[0], tuple(b.val0[node][1:])
    b.last_layer = layer
    core = b.with_bias(lambda env: env[src] * scale, layer, shift)
    return lambda env, s: (core(env, s), *rest)


def layer_norm(b, node: Node) -> Step:
    """native_layer_norm: (z1 - mean(z0)) * rstd(z0) * w + bias."""
    a = list(map_arg(node.args, lambda n: b.val0[n]))
    _, mean0, rstd0 = b.val0[node]
    w, bias = a[2], a[3]
    scale = rstd0 * (w if w is not None else 1.0)
    shift = (bias if bias is not None else 0.0) - mean0 * scale
    layer = b.const_layer(node, 2, 3) or f"layer_norm after {b.last_layer}"
    b.units.append({"op": "layer_norm", "layer": layer, "rule": "statistics of z0"})
    return _norm_step(b, node, scale, shift, layer)


def group_norm(b, node: Node) -> Step:
    """native_group_norm: per-group mean / rstd of z0, then the per-channel affine."""
    a = list(map_arg(node.args, lambda n: b.val0[n]))
    z0, w, bias, groups = a[0], a[1], a[2], a[6]
    _, mean0, rstd0 = b.val0[node]
    n, c = z0.shape[:2]
    mean_c = mean0.reshape(n, groups).repeat_interleave(c // groups, dim=1)
    rstd_c = rstd0.reshape(n, groups).repeat_interleave(c // groups, dim=1)
    scale = rstd_c * (w if w is not None else 1.0)
    shift = (bias if bias is not None else 0.0) - mean_c * scale
    shape = (n, c, *([1] * (z0.dim() - 2)))
    layer = b.const_layer(node, 1, 2) or f"group_norm after {b.last_layer}"
    b.units.append({"op": "group_norm", "layer": layer, "rule": "statistics of z0"})
    return _norm_step(b, node, scale.reshape(shape), shift.reshape(shape), layer)


def _derivative(phi: Callable, z0: torch.Tensor) -> torch.Tensor:
    """Elementwise phi'(z0) of a pointwise op by one forward-mode product with a ones tangent."""
    return torch.func.jvp(phi, (z0,), (torch.ones_like(z0),))[1]


def pointwise_gate(b, node: Node, name: str) -> Step:
    """A pointwise unit of one input-dependent tensor: z1 -> G z1 + g with g = phi(z0) - G z0."""
    src = node.args[0]
    z0, f0 = b.val0[src], b.val0[node]
    rest, kwargs = map_arg(node.args[1:], lambda n: b.val0[n]), map_arg(node.kwargs, lambda n: b.val0[n])
    op = functional(node.target)

    def phi(z):
        return op(z, *rest, **kwargs)

    deriv = _derivative(phi, z0)
    rule = "linear piece at z0" if name in PIECEWISE else "tangent phi'(z0)"
    gain = deriv
    if name not in PIECEWISE and b.gate == "ratio":
        phi_zero = phi(torch.zeros_like(z0))
        if bool(torch.isfinite(phi_zero).all()):
            tau = torch.finfo(z0.dtype).eps ** 0.5 * (1.0 + z0.abs())
            safe = z0.abs() > tau
            gain = torch.where(safe, (f0 - phi_zero) / torch.where(safe, z0, torch.ones_like(z0)), deriv)
            rule = "secant through phi(0)"
        else:
            rule = "tangent phi'(z0) (phi(0) undefined)"
    gain = gain.detach()
    unit = _unit(b, node, rule)
    return b.with_bias(lambda env: gain * env[src], f"offset of {unit}", (f0 - gain * z0).detach())


def tangent(b, node: Node, name: str) -> Step:
    """Fallback for any other differentiable op: its tangent at z0 (forward-mode JVP) plus the offset
    f(z0) - J z0 as a bias group. Exact at x0; listed in the result as a fallback."""
    deps: list[Node] = []
    map_arg((node.args, node.kwargs), lambda n: deps.append(n) if n in b.dep and n not in deps else None)
    op, f0 = functional(node.target), b.val0[node]
    if not is_float(f0):
        raise UnsupportedModelError(f"LinearScope has no linear rule for the multi-output op {name}",
                                    "use a model built from standard layers, or report the op")

    def f(*d):
        sub = dict(zip(deps, d, strict=True))
        args, kwargs = b.bind(node, lambda n: sub[n] if n in sub else b.val0[n])
        return op(*args, **kwargs)

    primals = tuple(b.val0[n] for n in deps)
    try:
        lin0 = torch.func.jvp(f, primals, primals)[1]
    except Exception as e:  # noqa: BLE001 - any failure means the op has no usable tangent
        raise UnsupportedModelError(f"LinearScope cannot linearize the op {name} ({type(e).__name__})",
                                    "use a model built from standard layers, or report the op") from None
    b.fallbacks.append(name)
    unit = _unit(b, node, "tangent (JVP fallback)")
    return b.with_bias(lambda env: torch.func.jvp(f, primals, tuple(env[n] for n in deps))[1],
                       f"offset of {unit}", (f0 - lin0).detach())
